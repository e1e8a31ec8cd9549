"""Parts the tabs share: the two button rows every tab has (Run/Cancel under the input,
Copy/Save above the result), and the read-only table of results several tabs list."""

from __future__ import annotations

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
