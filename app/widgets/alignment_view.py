"""Cross-attention as a grid: one row per generated token, one column per source piece, each
cell as dark as the weight the token's step gave the piece. Hovering a row (or `set_row`)
outlines it; `row_hovered(index)` tells which row the mouse is on (-1 off the grid)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

CELL = 16  # pixels a side


class AlignmentView(QWidget):
    """`set_matrix(weights, rows, columns)`: weights (rows, columns), each row a distribution
    (or any non-negative numbers: each row is shaded against its own largest), with the row
    and column labels. Columns whose label is None are drawn as the prefix or special tokens
    they are: greyed."""

    row_hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.rows: list[str] = []
        self.columns: list[tuple[str, bool]] = []  # (label, from the user's text)
        self.row = -1

    def set_matrix(self, weights: np.ndarray, rows: list[str], columns: list[tuple[str, bool]]) -> None:
        if weights.shape != (len(rows), len(columns)):
            raise ValueError(f"weights {weights.shape} for {len(rows)} rows and {len(columns)} columns")
        peak = weights.max(axis=1, keepdims=True) if weights.size else weights
        self.weights = np.divide(weights, peak, out=np.zeros_like(weights, dtype=np.float32), where=peak > 0)
        self.rows, self.columns, self.row = list(rows), list(columns), -1
        self.updateGeometry()
        self.adjustSize()
        self.update()

    def set_row(self, row: int) -> None:
        if row != self.row:
            self.row = row
            self.update()

    def _margins(self) -> tuple[int, int]:
        """The width of the row labels and the height of the (upright) column labels."""
        metrics = QFontMetrics(self.font())
        left = max((metrics.horizontalAdvance(label) for label in self.rows), default=0) + 8
        top = max((metrics.horizontalAdvance(label) for label, _ in self.columns), default=0) + 8
        return min(left, 160), min(top, 120)

    def sizeHint(self) -> QSize:
        left, top = self._margins()
        return QSize(left + CELL * len(self.columns) + 2, top + CELL * len(self.rows) + 2)

    def cell_rect(self, row: int, column: int) -> QRect:
        left, top = self._margins()
        return QRect(left + column * CELL, top + row * CELL, CELL, CELL)

    def row_at(self, point: QPoint) -> int:
        left, top = self._margins()
        row = (point.y() - top) // CELL
        inside = point.x() >= left and point.y() >= top and point.x() < left + CELL * len(self.columns)
        return int(row) if inside and 0 <= row < len(self.rows) else -1

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().toPoint())
        if row != self.row:
            self.set_row(row)
            self.row_hovered.emit(row)

    def leaveEvent(self, event: object) -> None:
        if self.row != -1:
            self.set_row(-1)
            self.row_hovered.emit(-1)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        text, faint = palette.text().color(), palette.placeholderText().color()
        ink = palette.highlight().color()
        left, top = self._margins()
        metrics = QFontMetrics(self.font())
        for r, label in enumerate(self.rows):
            painter.setPen(text)
            box = QRect(0, top + r * CELL, left - 6, CELL)
            painter.drawText(box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, metrics.elidedText(label, Qt.TextElideMode.ElideLeft, left - 6))
        painter.save()
        painter.rotate(-90)
        for c, (label, mine) in enumerate(self.columns):
            painter.setPen(text if mine else faint)
            # rotated: x runs up the widget, y to the right
            box = QRect(-(top - 4), left + c * CELL, top - 6, CELL)
            painter.drawText(box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, metrics.elidedText(label, Qt.TextElideMode.ElideRight, top - 6))
        painter.restore()
        for (r, c), weight in np.ndenumerate(self.weights):
            colour = QColor(ink)
            colour.setAlphaF(float(weight) * 0.95)
            painter.fillRect(self.cell_rect(r, c), colour)
        painter.setPen(faint)
        painter.drawRect(QRect(left, top, CELL * len(self.columns), CELL * len(self.rows)))
        if 0 <= self.row < len(self.rows):
            painter.setPen(text)
            painter.drawRect(QRect(left, top + self.row * CELL, CELL * len(self.columns), CELL))
        painter.end()
