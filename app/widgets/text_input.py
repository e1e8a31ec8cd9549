"""The text box of the text tabs, and the bookkeeping that maps the engine's character spans
onto Qt's text positions."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")


def qt_positions(text: str) -> Callable[[int], int]:
    """Maps an index into `text` to Qt's position. Qt counts UTF-16 code units, Python counts
    code points: they differ by one after each character outside the Basic Multilingual Plane
    (most emoji). Built once per text, so marking many spans of a long text stays cheap."""
    wide = [m.start() for m in _BEYOND_BMP.finditer(text)]
    if not wide:
        return lambda index: index
    return lambda index: index + bisect.bisect_left(wide, index)


def to_qt_position(text: str, index: int) -> int:
    return qt_positions(text)(index)


class TextInput(QPlainTextEdit):
    """A plain-text box that also takes a dropped text file. `file_error(message)` reports a
    file it could not read; the text already in the box is kept."""

    file_error = Signal(str)
    file_loaded = Signal(str)

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.08)
        self.setFont(font)

    def load_file(self, path: Path) -> bool:
        """Show the text of a UTF-8 file, read with the engine's bound (`MAX_TEXT_BYTES`), or
        report why it cannot be read."""
        from engine.errors import InputError
        from engine.text import read_text_file  # the CLI's reader: the same bound, the same messages

        try:
            text = read_text_file(path)
        except InputError as exc:
            self.file_error.emit(str(exc))
            return False
        self.setPlainText(text)
        self.file_loaded.emit(str(path))
        return True

    def highlight(self, spans: list[tuple[int, int, object]]) -> None:
        """Mark character spans [(start, end, QColor)] of `toPlainText()` without editing it."""
        position = qt_positions(self.toPlainText())
        marks = []
        for start, end, colour in spans:
            mark = QTextEdit.ExtraSelection()
            mark.format.setBackground(colour)
            cursor = QTextCursor(self.document())
            cursor.setPosition(position(start))
            cursor.setPosition(position(end), QTextCursor.MoveMode.KeepAnchor)
            mark.cursor = cursor
            marks.append(mark)
        self.setExtraSelections(marks)

    def reveal(self, start: int, end: int) -> None:
        """Select a character span and scroll it into view."""
        position = qt_positions(self.toPlainText())
        cursor = self.textCursor()
        cursor.setPosition(position(start))
        cursor.setPosition(position(end), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _local_file(event) is not None:
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:
        if _local_file(event) is not None:
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = _local_file(event)
        if path is None:
            super().dropEvent(event)
            return
        event.acceptProposedAction()
        self.load_file(path)


def _local_file(event: QDropEvent) -> Path | None:
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    local = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
    return local[0] if len(local) == 1 and local[0].is_file() else None
