"""The task-specific parts of the text tabs' "Inside the model" views: the classifier's logits
beside the scores made of them (text classification), every piece's label probabilities before
aggregation (named entities), and the start and end scores along the context with the chosen
answer marked (question answering)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem, QWidget

from app import theme

END_COLOUR = QColor("#e08a2c")  # the end scores; the start scores take the accent


class ReadOnlyTable(QTableWidget):
    """A table to read, row by row, its columns as wide as their contents."""

    def __init__(self, minimum_height: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setMinimumHeight(minimum_height)

    def cell_text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return item.text() if item is not None else ""


class PieceProbabilities(ReadOnlyTable):
    """One row per piece, one column per label: each cell its probability, shaded by it, the
    best label of each piece in bold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(220, parent)

    def set_probabilities(self, pieces: list[str], ids: list[int], labels: list[str], table: np.ndarray) -> None:
        self.clear()
        self.setColumnCount(2 + len(labels))
        self.setHorizontalHeaderLabels(["Piece", "Id", *labels])
        self.setRowCount(len(pieces))
        accent = theme.accent(self)
        bold = QFont(self.font())
        bold.setBold(True)
        for row, (piece, piece_id) in enumerate(zip(pieces, ids)):
            self.setItem(row, 0, QTableWidgetItem(piece))
            self.setItem(row, 1, _number(str(piece_id)))
            scores = table[row]
            best = -1 if np.isnan(scores).any() else int(scores.argmax())
            for column, score in enumerate(scores.tolist()):
                item = _number("" if np.isnan(score) else f"{100 * score:.1f}")
                shade = QColor(accent)
                shade.setAlphaF(0.0 if np.isnan(score) else 0.75 * float(score))
                item.setBackground(shade)
                if column == best:
                    item.setFont(bold)
                self.setItem(row, 2 + column, item)


def _number(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class SpanScores(QWidget):
    """The start and end logits of the context's pieces as two lines along the context, the
    pieces of the chosen answer shaded; hovering a piece names it with its two scores."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pieces: list[str] = []
        self.start = np.zeros(0, dtype=np.float32)
        self.end = np.zeros(0, dtype=np.float32)
        self.answer: tuple[int, int] | None = None  # pieces [first, last] of the answer
        self.hovered: int | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(180)

    def sizeHint(self) -> QSize:
        return QSize(600, 220)

    def set_scores(
        self, context: str, spans: np.ndarray, start: np.ndarray, end: np.ndarray, answer: tuple[int, int] | None
    ) -> None:
        """`spans` (pieces, 2) are the pieces' characters in `context`; `answer` the answer's
        characters, or None for no answer."""
        self.pieces = [context[a:b] for a, b in spans.tolist()]
        self.start, self.end = np.asarray(start, np.float32), np.asarray(end, np.float32)
        self.answer = None
        if answer is not None and answer[1] > answer[0]:
            inside = np.flatnonzero((spans[:, 1] > answer[0]) & (spans[:, 0] < answer[1]))
            if len(inside):
                self.answer = (int(inside[0]), int(inside[-1]))
        self.hovered = None
        self.update()

    def _plot(self) -> QRectF:
        return QRectF(44, 22, max(1.0, self.width() - 56), max(1.0, self.height() - 52))

    def _x(self, index: int) -> float:
        plot, n = self._plot(), max(1, len(self.pieces))
        return plot.left() + plot.width() * (index + 0.5) / n

    def hover(self, index: int | None) -> None:
        if index != self.hovered:
            self.hovered = index
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        plot = self._plot()
        if not self.pieces or not plot.left() <= event.position().x() <= plot.right():
            self.hover(None)
            return
        index = int((event.position().x() - plot.left()) / plot.width() * len(self.pieces))
        self.hover(min(max(index, 0), len(self.pieces) - 1))

    def leaveEvent(self, _event: object) -> None:
        self.hover(None)

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot, n = self._plot(), len(self.pieces)
        text = self.palette().color(QPalette.ColorRole.Text)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
        painter.drawRect(plot)
        if not n:
            painter.end()
            return
        low = float(min(self.start.min(), self.end.min()))
        high = float(max(self.start.max(), self.end.max()))
        high = high if high > low else low + 1.0

        def y(value: float) -> float:
            return plot.bottom() - (value - low) / (high - low) * plot.height()

        width = plot.width() / n
        if self.answer is not None:
            first, last = self.answer
            painter.fillRect(
                QRectF(self._x(first) - width / 2, plot.top(), width * (last - first + 1), plot.height()),
                theme.answer_colour(self),
            )
        if low < 0 < high:
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(plot.left(), y(0)), QPointF(plot.right(), y(0)))
        for values, colour in ((self.start, theme.accent(self)), (self.end, END_COLOUR)):
            path = QPainterPath(QPointF(self._x(0), y(float(values[0]))))
            for i in range(1, n):
                path.lineTo(self._x(i), y(float(values[i])))
            painter.setPen(QPen(colour, 1.6))
            painter.drawPath(path)
        painter.setPen(muted)
        painter.drawText(QRectF(0, plot.top() - 4, plot.left() - 4, 16), Qt.AlignmentFlag.AlignRight, f"{high:.1f}")
        painter.drawText(QRectF(0, plot.bottom() - 12, plot.left() - 4, 16), Qt.AlignmentFlag.AlignRight, f"{low:.1f}")
        self._draw_pieces(painter, plot, width, text)
        self._draw_caption(painter, text)
        painter.end()

    def _draw_pieces(self, painter: QPainter, plot: QRectF, width: float, text: QColor) -> None:
        """Piece texts under the axis, as many as fit without overlapping."""
        metrics = self.fontMetrics()
        every = max(1, int(np.ceil((metrics.averageCharWidth() * 6) / max(width, 1e-3))))
        painter.setPen(text)
        for i in range(0, len(self.pieces), every):
            label = self.pieces[i]
            painter.drawText(
                QRectF(self._x(i) - width * every / 2, plot.bottom() + 2, width * every, 16),
                Qt.AlignmentFlag.AlignHCenter,
                metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(width * every)),
            )

    def _draw_caption(self, painter: QPainter, text: QColor) -> None:
        """The legend, or the hovered piece with its scores, above the plot."""
        band = QRectF(44, 2, self.width() - 56, 18)
        if self.hovered is None:
            painter.setPen(theme.accent(self))
            painter.drawText(band, Qt.AlignmentFlag.AlignLeft, "— start score")
            painter.setPen(END_COLOUR)
            painter.drawText(band.adjusted(110, 0, 0, 0), Qt.AlignmentFlag.AlignLeft, "— end score")
            return
        i = self.hovered
        x = self._x(i)
        painter.setPen(QPen(text, 1, Qt.PenStyle.DotLine))
        plot = self._plot()
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        painter.setPen(text)
        painter.drawText(
            band, Qt.AlignmentFlag.AlignLeft,
            f"“{self.pieces[i]}”  start {self.start[i]:.2f}  ·  end {self.end[i]:.2f}",
        )  # fmt: skip


class LabelLogits(ReadOnlyTable):
    """The classifier's raw number for each label (its logit), highest first, beside the score
    the softmax or sigmoid made of it, so that a reader sees the step between them."""

    SHOWN = 50  # labels at most: a many-label model's tail says nothing more

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(180, parent)

    def set_logits(self, labels: list[str], logits: np.ndarray, scores: np.ndarray, function: str) -> None:
        """Each label's logit and the task's score for it; `function` is how the task turned
        the one into the other: "softmax", "sigmoid" or "none"."""
        order = np.argsort(-logits, kind="stable")[: self.SHOWN]
        self.clear()
        self.setColumnCount(3)
        heading = {"softmax": "Softmax", "sigmoid": "Sigmoid"}.get(function, "Score")
        self.setHorizontalHeaderLabels(["Label", "Logit", heading])
        self.setRowCount(len(order))
        accent = theme.accent(self)
        for row, index in enumerate(order.tolist()):
            self.setItem(row, 0, QTableWidgetItem(labels[index]))
            self.setItem(row, 1, _number(f"{float(logits[index]):+.3f}"))
            score = float(scores[index])
            item = _number(f"{100 * score:.1f} %" if function in ("softmax", "sigmoid") else f"{score:+.3f}")
            shade = QColor(accent)
            shade.setAlphaF(0.75 * min(max(score, 0.0), 1.0))
            item.setBackground(shade)
            self.setItem(row, 2, item)
