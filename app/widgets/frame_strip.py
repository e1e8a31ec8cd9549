"""How a CTC model read a recording, frame by frame: one cell per 20 ms frame with its most
likely character, shaded by that character's probability (the blank drawn as a faint "·"),
the sound's loudness above, and below the characters greedy decoding kept (repeats merged,
blanks dropped), each under the frames it came from, then the words. Hovering a frame
highlights the frames of its word."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from app import theme

CELL = 14  # pixels per frame
BLANK_MARK = "·"
SPACE_MARK = "␣"
OTHER_MARK = "◇"  # a token longer than one character (<s>, <unk>)
# the rows, top to bottom, and their heights in pixels
ROWS = (("sound", 26), ("frames", 20), ("probability", 8), ("kept", 20), ("words", 22), ("time", 14))


@dataclass
class FrameData:
    """What the strip draws, from the speech task's internals."""

    top_ids: np.ndarray  # (frames, k) best ids first
    top_probs: np.ndarray  # (frames, k)
    vocabulary: list[str]
    blank_id: int
    chars: list[str]
    char_frames: np.ndarray  # (chars, 2) [start, end)
    words: list[str]
    word_frames: np.ndarray  # (words, 2) [start, end)
    frame_s: float
    first_frame: int = 0  # the first frame's index in the recording (live: the newest frames only)

    @classmethod
    def from_internals(cls, internals: dict[str, np.ndarray]) -> FrameData:
        return cls(
            internals["frame_top_ids"],
            internals["frame_top_probs"],
            internals["vocabulary"].tolist(),
            int(internals["blank_id"]),
            internals["chars"].tolist(),
            internals["char_frames"].reshape(-1, 2),
            internals["words"].tolist(),
            internals["word_frames"].reshape(-1, 2),
            float(internals["frame_seconds"]),
            int(internals.get("first_frame", 0)),
        )

    def shown(self, token_id: int) -> str:
        """A frame's character as the strip shows it."""
        if token_id == self.blank_id:
            return BLANK_MARK
        text = self.vocabulary[token_id] if 0 <= token_id < len(self.vocabulary) else "?"
        return SPACE_MARK if text == "|" else text

    def word_at(self, frame: int) -> int | None:
        inside = np.flatnonzero((self.word_frames[:, 0] <= frame) & (frame < self.word_frames[:, 1]))
        return int(inside[0]) if len(inside) else None


class FrameStrip(QWidget):
    """`set_frames(data, envelope)` draws a recording's frames; `hovered_word` is the word
    whose frames are highlighted (by hovering, or `highlight_word`); `frame_hovered(index)`
    names the frame under the mouse (-1 when it leaves)."""

    frame_hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: FrameData | None = None
        self.envelope = np.zeros(0, dtype=np.float32)  # per frame, 0..1
        self.hovered_frame: int | None = None
        self.hovered_word: int | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def frames(self) -> int:
        return 0 if self.data is None else len(self.data.top_ids)

    def sizeHint(self) -> QSize:
        return QSize(max(200, self.frames() * CELL), sum(h for _, h in ROWS) + 4)

    def set_frames(self, data: FrameData | None, envelope: np.ndarray | None = None) -> None:
        """`envelope`: the sound's peaks over the whole recording, resampled here to frames."""
        self.data = data
        n = self.frames()
        if envelope is not None and len(envelope) and n:
            positions = np.linspace(0, len(envelope) - 1, n)
            resampled = np.interp(positions, np.arange(len(envelope)), envelope)
            self.envelope = (resampled / max(float(resampled.max()), 1e-4)).astype(np.float32)
        else:
            self.envelope = np.zeros(0, dtype=np.float32)
        self.hovered_frame = self.hovered_word = None
        self.resize(self.sizeHint())
        self.updateGeometry()
        self.update()

    def highlight_word(self, index: int | None) -> None:
        if index != self.hovered_word:
            self.hovered_word = index
            self.update()

    def hover_frame(self, frame: int | None) -> None:
        """Hover frame `frame` as the mouse would (None: leave)."""
        if self.data is None or frame is None or not 0 <= frame < self.frames():
            frame = None
        if frame != self.hovered_frame:
            self.hovered_frame = frame
            self.frame_hovered.emit(-1 if frame is None else frame)
        self.highlight_word(None if frame is None or self.data is None else self.data.word_at(frame))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self.hover_frame(int(event.position().x() // CELL))

    def leaveEvent(self, _event: object) -> None:
        self.hover_frame(None)

    def _row(self, name: str) -> QRectF:
        top = 2
        for row, height in ROWS:
            if row == name:
                return QRectF(0, top, self.width(), height)
            top += height
        raise KeyError(name)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        data = self.data
        if data is None:
            painter.end()
            return
        visible = event.rect()
        first = max(0, visible.left() // CELL - 1)
        last = min(self.frames(), visible.right() // CELL + 2)
        accent = theme.accent(self)
        if self.hovered_word is not None:
            start, end = data.word_frames[self.hovered_word].tolist()
            painter.fillRect(QRectF(start * CELL, 0, (end - start) * CELL, self.height()), theme.answer_colour(self))
        self._draw_sound(painter, first, last, accent)
        self._draw_frames(painter, data, first, last, accent)
        self._draw_kept(painter, data, first, last)
        self._draw_time(painter, data, first, last)
        painter.end()

    def _draw_sound(self, painter: QPainter, first: int, last: int, accent: QColor) -> None:
        if not len(self.envelope):
            return
        row = self._row("sound")
        mid = row.center().y()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(accent)
        for i in range(first, min(last, len(self.envelope))):
            half = max(0.5, float(self.envelope[i]) * (row.height() / 2 - 1))
            painter.drawRect(QRectF(i * CELL + 1, mid - half, CELL - 2, 2 * half))

    def _draw_frames(self, painter: QPainter, data: FrameData, first: int, last: int, accent: QColor) -> None:
        row, bars = self._row("frames"), self._row("probability")
        text = self.palette().color(QPalette.ColorRole.Text)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for i in range(first, last):
            token, probability = int(data.top_ids[i, 0]), float(data.top_probs[i, 0])
            cell = QRectF(i * CELL, row.top(), CELL, row.height())
            shade = QColor(accent)
            shade.setAlphaF(0.08 + 0.5 * probability if token != data.blank_id else 0.05)
            painter.fillRect(cell.adjusted(0.5, 0, -0.5, 0), shade)
            painter.setPen(muted if token == data.blank_id else text)
            painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, self._fit(data.shown(token)))
            height = probability * (bars.height() - 1)
            painter.fillRect(QRectF(i * CELL + 2, bars.bottom() - height, CELL - 4, height), muted)
            if i == self.hovered_frame:
                painter.setPen(text)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(cell.adjusted(0.5, 0.5, -0.5, -0.5))

    def _draw_kept(self, painter: QPainter, data: FrameData, first: int, last: int) -> None:
        """Each kept character under its frames (a bracket spans repeats), then the words."""
        kept, words = self._row("kept"), self._row("words")
        text = self.palette().color(QPalette.ColorRole.Text)
        line = self.palette().color(QPalette.ColorRole.Mid)
        bold = QFont(self.font())
        bold.setBold(True)
        for char, (start, end) in zip(data.chars, data.char_frames.tolist()):
            if end < first or start > last:
                continue
            span = QRectF(start * CELL + 1, kept.top(), (end - start) * CELL - 2, kept.height())
            painter.setPen(line)
            painter.drawLine(QPointF(span.left(), kept.top() + 2), QPointF(span.right(), kept.top() + 2))
            painter.setPen(text)
            painter.setFont(bold)
            label = self._fit(SPACE_MARK if char == " " else char)
            painter.drawText(QRectF(start * CELL, kept.top() + 3, CELL, kept.height() - 3), Qt.AlignmentFlag.AlignCenter, label)
        painter.setFont(self.font())
        for index, (word, (start, end)) in enumerate(zip(data.words, data.word_frames.tolist())):
            if end < first or start > last:
                continue
            box = QRectF(start * CELL + 1, words.top() + 1, (end - start) * CELL - 2, words.height() - 2)
            painter.setPen(line)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(box, 3, 3)
            painter.setPen(text)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, word)

    @staticmethod
    def _fit(token: str) -> str:
        """A token of several characters (<s>, <unk>) as one mark that fits a cell (the
        caption of a hovered frame names it)."""
        return token if len(token) <= 1 else OTHER_MARK

    def _draw_time(self, painter: QPainter, data: FrameData, first: int, last: int) -> None:
        row = self._row("time")
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        per_second = max(1, round(1 / data.frame_s))
        start = first - (first + data.first_frame) % per_second  # ticks on the recording's whole seconds
        for i in range(start, last, per_second):
            if i < 0:
                continue
            painter.drawLine(QPointF(i * CELL, row.top()), QPointF(i * CELL, row.top() + 4))
            label = f"{(i + data.first_frame) * data.frame_s:.0f} s"
            painter.drawText(QRectF(i * CELL + 2, row.top(), 60, row.height()), Qt.AlignmentFlag.AlignLeft, label)

    def describe_frame(self, frame: int) -> str:
        """A frame's time and best characters with their probabilities, for a caption."""
        if self.data is None or not 0 <= frame < self.frames():
            return ""
        data = self.data
        best = ", ".join(
            f"{'blank' if int(t) == data.blank_id else data.shown(int(t))} {100 * float(p):.0f} %"
            for t, p in zip(data.top_ids[frame], data.top_probs[frame])
        )
        index = frame + data.first_frame
        return f"frame {index + 1} at {index * data.frame_s:.2f} s: {best}"
