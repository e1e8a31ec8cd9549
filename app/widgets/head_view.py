"""A head view of attention between word pieces, in the manner of bertviz's: the pieces in two
columns, each piece on the left (a query) joined to each piece on the right (a key) by a line as
strong as the attention between them, for one layer and one head or the mean of the heads.
Hovering a piece keeps only its lines: on the left, where it looks; on the right, who looks at it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app import theme

ALL_HEADS = -1  # `head` for the mean over the heads
LEVELS = 16  # line strengths are drawn in this many steps, one pen each
FAINTEST = 0.02  # weaker lines are not drawn when nothing is hovered


class HeadCanvas(QWidget):
    """The two columns and the lines between them; `hovered` is ("query" | "key", index) or
    None. `weights` is the (queries, keys) matrix drawn."""

    hover_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pieces: list[str] = []
        self.ids: list[int] = []
        self.unknown: set[int] = set()  # pieces outside the vocabulary, shown as their text
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.hovered: tuple[str, int] | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_pieces(self, pieces: list[str], ids: list[int], unknown: set[int] | None = None) -> None:
        self.pieces, self.ids, self.unknown = list(pieces), list(ids), set(unknown or ())
        self.hovered = None
        self.updateGeometry()
        self.update()

    def set_weights(self, weights: np.ndarray) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)
        self.update()

    def row_height(self) -> int:
        return self.fontMetrics().height() + 4

    def column_width(self) -> int:
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(p) for p in self.pieces[: len(self.weights)]), default=40)
        return widest + metrics.horizontalAdvance(" 00000") + 12

    def sizeHint(self) -> QSize:
        return QSize(2 * self.column_width() + 220, self.row_height() * len(self.weights) + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(2 * self.column_width() + 80, self.row_height() * len(self.weights) + 8)

    # ----- geometry -----------------------------------------------------------------------------

    def _rows(self) -> int:
        return len(self.weights)

    def _piece_at(self, point: QPointF) -> tuple[str, int] | None:
        row = int((point.y() - 4) // self.row_height())
        if not 0 <= row < self._rows():
            return None
        column = self.column_width()
        if point.x() <= column:
            return ("query", row)
        if point.x() >= self.width() - column:
            return ("key", row)
        return None

    def hover(self, side: str | None, index: int = 0) -> None:
        """Hover a piece as the mouse would (None: leave); the lines follow."""
        hovered = None if side is None else (side, index)
        if hovered != self.hovered:
            self.hovered = hovered
            self.hover_changed.emit(hovered)
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        found = self._piece_at(event.position())
        self.hover(*(found or (None,)))

    def leaveEvent(self, _event: object) -> None:
        self.hover(None)

    # ----- painting -----------------------------------------------------------------------------

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rows, height, column = self._rows(), self.row_height(), self.column_width()
        left_end, right_start = column + 6, self.width() - column - 6
        ys = [4 + height * (i + 0.5) for i in range(rows)]
        colour = theme.accent(self)
        if self.hovered is not None:
            side, index = self.hovered
            shade = QColor(colour)
            shade.setAlphaF(0.18)
            x = 0 if side == "query" else self.width() - column
            painter.fillRect(QRectF(x, 4 + height * index, column, height), shade)
        self._draw_lines(painter, ys, left_end, right_start, colour)
        text = self.palette().color(QPalette.ColorRole.Text)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        slanted = QFont(self.font())
        slanted.setItalic(True)
        for i in range(rows):
            band = QRectF(0, 4 + height * i, column - 4, height)
            painter.setFont(small)
            painter.setPen(muted)
            if i < len(self.ids):
                painter.drawText(band, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, str(self.ids[i]))
            painter.setFont(slanted if i in self.unknown else self.font())
            painter.setPen(muted if i in self.unknown else text)
            piece = self.pieces[i] if i < len(self.pieces) else ""
            painter.drawText(band, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, piece)
            key_band = QRectF(self.width() - column + 4, 4 + height * i, column - 4, height)
            painter.drawText(key_band, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, piece)
        painter.end()

    def _draw_lines(self, painter: QPainter, ys: list[float], x0: float, x1: float, colour: QColor) -> None:
        weights = self.weights
        if not weights.size:
            return
        if self.hovered is None:
            queries, keys = np.nonzero(weights >= FAINTEST)
            strengths = weights[queries, keys]
        else:
            side, index = self.hovered
            others = np.arange(weights.shape[0])
            if side == "query":
                queries, keys = np.full_like(others, index), others
            else:
                queries, keys = others, np.full_like(others, index)
            strengths = weights[queries, keys]
        # one pen per strength step, thicker and more opaque as attention grows; on a square-root
        # scale, so that attention spread evenly over sixty pieces still shows
        steps = np.minimum((np.sqrt(strengths) * LEVELS).astype(int), LEVELS - 1)
        for level in np.unique(steps):
            chosen = steps == level
            pen_colour = QColor(colour)
            pen_colour.setAlphaF(min(1.0, 0.06 + 0.94 * (level + 1) / LEVELS))
            painter.setPen(QPen(pen_colour, 0.6 + 2.4 * (level + 1) / LEVELS))
            painter.drawLines(
                [QLineF(x0, ys[q], x1, ys[k]) for q, k in zip(queries[chosen].tolist(), keys[chosen].tolist())]
            )


class HeadView(QWidget):
    """`set_attention(pieces, ids, attention)` with attention (layers, heads, T, T) for the
    first T pieces; a layer and a head (or the mean of the heads) are chosen above the columns.
    `note` says what was left out (pieces past T)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.attention = np.zeros((0, 0, 0, 0), dtype=np.float16)
        self.layer_box = QComboBox()
        self.head_box = QComboBox()
        for box in (self.layer_box, self.head_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_box.currentIndexChanged.connect(self._redraw)
        self.head_box.currentIndexChanged.connect(self._redraw)
        self.note = QLabel()
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.canvas = HeadCanvas()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.canvas)
        scroll.setMinimumHeight(220)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer"))
        controls.addWidget(self.layer_box)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Head"))
        controls.addWidget(self.head_box)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.note)
        layout.addWidget(scroll, 1)

    def set_attention(
        self, pieces: list[str], ids: list[int], attention: np.ndarray, unknown: set[int] | None = None
    ) -> None:
        layers, heads, shown = attention.shape[:3]
        old_layer, old_head = self.layer, self.head
        self.attention = attention
        for box in (self.layer_box, self.head_box):
            box.blockSignals(True)
            box.clear()
        self.layer_box.addItems([f"{i + 1} of {layers}" for i in range(layers)])
        self.head_box.addItem("all (mean)")
        self.head_box.addItems([str(i + 1) for i in range(heads)])
        self.layer_box.setCurrentIndex(min(old_layer, layers - 1) if layers else -1)
        self.head_box.setCurrentIndex(old_head + 1 if old_head < heads else 0)
        for box in (self.layer_box, self.head_box):
            box.blockSignals(False)
        self.canvas.set_pieces(pieces[:shown], ids[:shown], unknown)
        cut = len(pieces) - shown
        self.note.setText(
            "Each piece on the left (with its id) attends to the pieces on the right; hover a piece to "
            "see only its lines."
            + (" Pieces outside the vocabulary ([UNK]) show their text, in grey italics." if unknown else "")
            + (f" Attention is kept among the first {shown} of {len(pieces)} pieces only." if cut > 0 else "")
        )
        self._redraw()

    def clear(self) -> None:
        self.attention = np.zeros((0, 0, 0, 0), dtype=np.float16)
        self.canvas.set_pieces([], [])
        self.canvas.set_weights(np.zeros((0, 0), dtype=np.float32))
        self.note.clear()

    @property
    def layer(self) -> int:
        return max(0, self.layer_box.currentIndex())

    @property
    def head(self) -> int:
        """The chosen head, or ALL_HEADS for their mean."""
        return self.head_box.currentIndex() - 1 if self.head_box.currentIndex() > 0 else ALL_HEADS

    def choose(self, layer: int, head: int = ALL_HEADS) -> None:
        self.layer_box.setCurrentIndex(layer)
        self.head_box.setCurrentIndex(head + 1)

    def _redraw(self) -> None:
        if not self.attention.size:
            return
        per_head = self.attention[self.layer].astype(np.float32)  # (heads, T, T)
        self.canvas.set_weights(per_head.mean(axis=0) if self.head == ALL_HEADS else per_head[self.head])
