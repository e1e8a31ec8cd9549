"""Scores as horizontal bars, one row per label, and the panel that puts a sentence on the best
label above them: for classification results of any modality."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app import theme


class ScoreBars(QWidget):
    """`set_scores([(label, score), ...])` draws them in the order given (callers sort);
    the first row is drawn in the full accent colour, the rest lighter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_scores(self, rows: list[tuple[str, float]]) -> None:
        self._rows = [(str(label), float(score)) for label, score in rows]
        self.updateGeometry()
        self.update()

    def rows(self) -> list[tuple[str, float]]:
        return list(self._rows)

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 14

    def sizeHint(self) -> QSize:
        return QSize(360, max(1, len(self._rows)) * self._row_height())

    def minimumSizeHint(self) -> QSize:
        return QSize(200, len(self._rows) * self._row_height())

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = self.fontMetrics()
        width = self.width()
        label_w = min(int(width * 0.4), max((metrics.horizontalAdvance(l) for l, _ in self._rows), default=0) + 12)
        score_w = metrics.horizontalAdvance("100.0 %") + 12
        bar_x, bar_w = label_w, max(10, width - label_w - score_w)
        text = self.palette().color(QPalette.ColorRole.Text)
        track = self.palette().color(QPalette.ColorRole.Midlight)
        row_h = self._row_height()
        bar_h = max(8, metrics.height() - 4)
        for i, (label, score) in enumerate(self._rows):
            top = i * row_h
            painter.setPen(text)
            # a pixel of slack: advances are rounded, and the widest label must not be cut
            elided = metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 11)
            painter.drawText(QRectF(0, top, label_w - 11, row_h), Qt.AlignmentFlag.AlignVCenter, elided)
            bar = QRectF(bar_x, top + (row_h - bar_h) / 2, bar_w, bar_h)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(bar, 4, 4)
            fill = QColor(theme.accent(self))
            if i > 0:
                fill.setAlphaF(0.55)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(bar.x(), bar.y(), bar.width() * min(max(score, 0.0), 1.0), bar.height()), 4, 4)
            painter.setPen(text)
            painter.drawText(
                QRectF(bar_x + bar_w, top, score_w, row_h),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                f"{100 * score:.1f} %",
            )
        painter.end()


class ScoresPanel(QWidget):
    """`summary` (rich text on the best label) above `bars`; a tab may add more to `layout()`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.bars = ScoreBars()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.bars)
