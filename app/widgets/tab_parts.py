"""Parts the tabs share: the two button rows every tab has (Run/Cancel under the input,
Copy/Save above the result), the read-only table of results several tabs list, and the link
that lights up a row and its item in a picture together."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QWidget,
)


class RunBar(QWidget):
    """Run (the primary action), Cancel, and a short note on the last run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("primary")
        self.run_button.setToolTip("Run (Ctrl+Enter)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel (Esc)")
        self.busy_label = QLabel()
        self.busy_label.setObjectName("hint")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.run_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.busy_label, 1)


class ResultHeader(QWidget):
    """The result's title with Copy JSON and Save JSON… beside it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Result")
        title.setObjectName("sectionLabel")
        self.copy_button = QPushButton("Copy JSON")
        self.copy_button.setToolTip("Copy the result as JSON (Ctrl+Shift+C)")
        self.save_button = QPushButton("Save JSON…")
        self.save_button.setToolTip("Save the result as JSON (Ctrl+S)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title, 1)
        layout.addWidget(self.copy_button)
        layout.addWidget(self.save_button)


def results_table(columns: tuple[str, ...]) -> QTableWidget:
    """A read-only table, one result a row, picked a whole row at a time: the first column
    takes the spare width, the others fit their contents."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for column in range(1, len(columns)):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    return table


class RowLink(QObject):
    """Rows of `table` and items of `view` (an ImageView: `hovered(index)`, `set_highlight`)
    light up together, whichever of the two the mouse is over; row i is item i."""

    def __init__(self, table: QTableWidget, view: Any) -> None:
        super().__init__(table)
        self._table, self._view = table, view
        self._viewport = table.viewport()  # kept: the filter must not call into a table being torn down
        table.setMouseTracking(True)
        table.cellEntered.connect(lambda row, _column: self.highlight(row, from_table=True))
        self._viewport.installEventFilter(self)
        view.hovered.connect(lambda index: self.highlight(index, from_table=False))

    def highlight(self, index: int, from_table: bool) -> None:
        """Light up row and item `index` (-1: none); `from_table`: the mouse is over the row."""
        if from_table:
            self._view.set_highlight(index)
        table = self._table
        table.blockSignals(True)
        if 0 <= index < table.rowCount():
            table.selectRow(index)
            table.scrollToItem(table.item(index, 0))
        else:
            table.clearSelection()
        table.blockSignals(False)

    def highlighted_row(self) -> int:
        rows = self._table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave and watched is self._viewport:
            self.highlight(-1, from_table=True)
        return super().eventFilter(watched, event)
