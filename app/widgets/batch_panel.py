"""The panel of a folder's batch: overall progress with Cancel, a table of the files (name, the
result in a few words, the time it took) whose rows show that file's result when clicked, and
the exports. It draws what it is told; app/tabs/batch_mixin.py drives it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.widgets.tab_parts import results_table

_FAILED = QColor("#cf222e")


class BatchPanel(QFrame):
    """Hidden until `begin`. `picked(row)` when a row is clicked, `cancel_requested`,
    `export_requested(kind)` for each export button (`add_export`), `closed` by Close."""

    picked = Signal(int)
    cancel_requested = Signal()
    export_requested = Signal(str)
    closed = Signal()

    def __init__(self, parent: QFrame | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.title = QLabel()
        self.title.setObjectName("sectionLabel")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(8)
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the batch after the file under way")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Hide the batch's table")
        self.close_button.clicked.connect(self.closed)
        self.table = results_table(("File", "Result", "Time"))
        self.table.setMinimumHeight(120)
        header = self.table.horizontalHeader()  # the result takes the room left; a long one is elided
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.cancel_button)
        head.addWidget(self.close_button)
        self.exports = QHBoxLayout()
        self.exports.addWidget(self.status, 1)
        self.export_buttons: dict[str, QPushButton] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(head)
        layout.addWidget(self.bar)
        layout.addLayout(self.exports)
        layout.addWidget(self.table, 1)
        self.hide()

    def add_export(self, kind: str, text: str, tip: str) -> None:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda: self.export_requested.emit(kind))
        self.exports.addWidget(button)
        self.export_buttons[kind] = button

    def begin(self, title: str, names: list[str]) -> None:
        """A new batch of files called `names`: every row waiting."""
        self.title.setText(title)
        self.table.setRowCount(0)
        self.table.setRowCount(len(names))
        for row, name in enumerate(names):
            self._set(row, 0, name)
            self._set(row, 1, "waiting")
            self._set(row, 2, "")
        self.bar.setRange(0, max(1, len(names)))
        self.bar.setValue(0)
        self.set_running(True)
        self.show()

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        for button in self.export_buttons.values():
            button.setEnabled(not running)

    def show_row(self, row: int, summary: str, seconds: float | None, failed: bool = False) -> None:
        self._set(row, 1, summary, failed)
        self._set(row, 2, "" if seconds is None else f"{seconds:.2f} s")

    def set_status(self, finished_files: int, total: int, text: str) -> None:
        self.bar.setValue(finished_files)
        self.bar.setMaximum(max(1, total))
        self.status.setText(text)

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _set(self, row: int, column: int, text: str, failed: bool = False) -> None:
        item = QTableWidgetItem(text)
        item.setToolTip(text)
        if failed:
            item.setForeground(_FAILED)
        item.setTextAlignment(
            (Qt.AlignmentFlag.AlignRight if column == 2 else Qt.AlignmentFlag.AlignLeft) | Qt.AlignmentFlag.AlignVCenter
        )
        self.table.setItem(row, column, item)

    def _on_selection(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.picked.emit(row)
