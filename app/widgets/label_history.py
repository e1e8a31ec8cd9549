"""A strip of the most recent top labels of a live classifier, oldest on the left: each label keeps
its colour, so a change of what is heard shows as a change of colour along the strip."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from app import theme


class LabelHistory(QWidget):
    """`set_history([(label, score), ...])`, oldest first; the newest is drawn with a border.
    A cell's opacity follows its score, so confident windows stand out."""

    def __init__(self, slots: int = 12, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slots = slots
        self._items: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_history(self, items: list[tuple[str, float]]) -> None:
        self._items = [(str(label), float(score)) for label, score in items][-self.slots :]
        self.setToolTip(" → ".join(label for label, _ in self._items))
        self.update()

    def labels(self) -> list[str]:
        return [label for label, _ in self._items]

    def sizeHint(self) -> QSize:
        return QSize(360, self.fontMetrics().height() + 16)

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        gap = 4
        cell_w = (self.width() - gap * (self.slots - 1)) / self.slots
        metrics = self.fontMetrics()
        text = self.palette().color(QPalette.ColorRole.Text)
        empty = self.palette().color(QPalette.ColorRole.Midlight)
        offset = self.slots - len(self._items)  # newest always in the last slot
        for slot in range(self.slots):
            rect = QRectF(slot * (cell_w + gap), 1, cell_w, self.height() - 2)
            painter.setPen(Qt.PenStyle.NoPen)
            if slot < offset:
                painter.setBrush(empty)
                painter.drawRoundedRect(rect, 4, 4)
                continue
            label, score = self._items[slot - offset]
            fill = QColor(theme.entity_colour(label, self))
            fill.setAlphaF(0.35 + 0.65 * min(max(score, 0.0), 1.0))
            painter.setBrush(fill)
            if slot == self.slots - 1:
                painter.setPen(text)
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(text)
            shown = metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(cell_w) - 4)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, shown)
        painter.end()
