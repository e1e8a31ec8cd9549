"""The audio-classification tab's "Inside the model" view: the labels' scores over time, one
column per window, and the learned weight of each layer in a weighted-layer-sum head."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from app import theme

SHOWN_LABELS = 8  # the labels that ever score highest, at most this many rows
LABEL_WIDTH = 110


class ScoresOverTime(QWidget):
    """A heat map: one row per label (those that score highest in some window first), one
    column per window, each cell as strong as the label's score there. Hovering a cell names
    the window's time, the label and the score."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.times = np.zeros((0, 2), dtype=np.float32)
        self.scores = np.zeros((0, 0), dtype=np.float32)
        self.labels: list[str] = []
        self.rows: list[int] = []  # label indices, top to bottom
        self.hovered: tuple[int, int] | None = None  # (row, window)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 6

    def sizeHint(self) -> QSize:
        return QSize(480, 24 + 20 + self._row_height() * max(1, len(self.rows)))

    def set_scores(
        self, times: np.ndarray, scores: np.ndarray, labels: list[str], first: list[int] | None = None
    ) -> None:
        """`first`: labels to put at the top in this order (live, the winners so far, so that
        rows do not move as old windows scroll away); then the windows' winners, then the rest
        by their best score."""
        self.times, self.scores, self.labels = times.reshape(-1, 2), scores, list(labels)
        if scores.size:
            winners = list(dict.fromkeys([*(first or []), *scores.argmax(axis=1).tolist()]))  # in order of first win
            rest = [int(i) for i in np.argsort(-scores.max(axis=0)) if int(i) not in winners]
            self.rows = (winners + rest)[:SHOWN_LABELS]
        else:
            self.rows = []
        self.hovered = None
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def _grid(self) -> QRectF:
        return QRectF(LABEL_WIDTH, 22, max(1.0, self.width() - LABEL_WIDTH - 8), self._row_height() * len(self.rows))

    def hover(self, cell: tuple[int, int] | None) -> None:
        if cell != self.hovered:
            self.hovered = cell
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        grid, windows = self._grid(), len(self.times)
        point = event.position()
        if not windows or not grid.contains(point):
            self.hover(None)
            return
        row = int((point.y() - grid.top()) // self._row_height())
        window = int((point.x() - grid.left()) / grid.width() * windows)
        self.hover((min(row, len(self.rows) - 1), min(window, windows - 1)))

    def leaveEvent(self, _event: object) -> None:
        self.hover(None)

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        grid, windows, height = self._grid(), len(self.times), self._row_height()
        text = self.palette().color(QPalette.ColorRole.Text)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        accent = theme.accent(self)
        width = grid.width() / max(1, windows)
        for r, label in enumerate(self.rows):
            y = grid.top() + r * height
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y, LABEL_WIDTH - 8, height), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                self.fontMetrics().elidedText(self.labels[label], Qt.TextElideMode.ElideRight, LABEL_WIDTH - 8),
            )  # fmt: skip
            for w in range(windows):
                shade = QColor(accent)
                shade.setAlphaF(0.04 + 0.96 * float(np.clip(self.scores[w, label], 0, 1)))
                painter.fillRect(QRectF(grid.left() + w * width + 0.5, y + 1, max(1.0, width - 1), height - 2), shade)
        painter.setPen(muted)
        if windows:
            start, end = float(self.times[0, 0]), float(self.times[-1, 1])
            first = "0 s" if start == 0 else f"{start:.1f} s"  # live, the oldest window kept
            painter.drawText(QRectF(grid.left(), grid.bottom() + 2, 80, 16), Qt.AlignmentFlag.AlignLeft, first)
            painter.drawText(
                QRectF(grid.right() - 80, grid.bottom() + 2, 80, 16), Qt.AlignmentFlag.AlignRight, f"{end:.1f} s"
            )
        caption = QRectF(LABEL_WIDTH, 2, self.width() - LABEL_WIDTH, 18)
        if self.hovered is not None:
            r, w = self.hovered
            label = self.rows[r]
            start, stop = self.times[w].tolist()
            painter.setPen(text)
            painter.drawText(
                caption, Qt.AlignmentFlag.AlignLeft,
                f"{start:.1f}–{stop:.1f} s · {self.labels[label]} {100 * float(self.scores[w, label]):.1f} %",
            )  # fmt: skip
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(grid.left() + w * width, grid.top() + r * height, width, height))
        elif windows:
            painter.drawText(caption, Qt.AlignmentFlag.AlignLeft, f"{windows} windows · hover one to read its score")
        painter.end()


class LayerWeights(QWidget):
    """One bar per layer: the learned, softmaxed weight a weighted-layer-sum head gives to the
    encoder's input (bar "in") and to each layer's output."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.weights = np.zeros(0, dtype=np.float32)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(120)

    def set_weights(self, weights: np.ndarray | None) -> None:
        self.weights = np.zeros(0, dtype=np.float32) if weights is None else np.asarray(weights, np.float32)
        self.update()

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        n = len(self.weights)
        if not n:
            painter.end()
            return
        top, bottom = 18.0, self.height() - 18.0
        width = min(56.0, (self.width() - 16) / n)
        highest = max(float(self.weights.max()), 1e-6)
        text = self.palette().color(QPalette.ColorRole.Text)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        best = int(self.weights.argmax())
        for i, weight in enumerate(self.weights.tolist()):
            x = 8 + i * width
            height = (bottom - top) * weight / highest
            colour = QColor(theme.accent(self))
            if i != best:
                colour.setAlphaF(0.55)
            painter.fillRect(QRectF(x + 2, bottom - height, max(1.0, width - 4), height), colour)
            painter.setPen(muted)
            painter.drawText(QRectF(x, bottom + 1, width, 16), Qt.AlignmentFlag.AlignHCenter, "in" if i == 0 else str(i))
            if width >= 26:
                painter.setPen(text)
                painter.drawText(
                    QRectF(x, bottom - height - 16, width, 16), Qt.AlignmentFlag.AlignHCenter, f"{100 * weight:.0f}%"
                )
        painter.end()
