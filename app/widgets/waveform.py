"""An overview of a sound: its loudness envelope over time, with one span (a word) marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize
from PySide6.QtGui import QColor, QPainter, QPalette, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from app import theme

COLUMNS = 600  # envelope points; more than any card is wide in pixels
MAX_OVERVIEW_S = 15 * 60  # longer files are read only for their header: no waiting to open them


def envelope(path: str | Path, columns: int = COLUMNS) -> np.ndarray | None:
    """Peak amplitude per column of a whole file, read block by block; None when the file is
    too long to scan at once."""
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        if not f.frames or f.frames > MAX_OVERVIEW_S * f.samplerate:
            return None
        per = max(1, -(-f.frames // columns))  # frames per column, rounded up
        peaks = []
        while True:
            block = f.read(per * 64, dtype="float32", always_2d=True)
            if not len(block):
                break
            mono = np.abs(block).max(axis=1)
            pad = -len(mono) % per
            peaks.append(np.pad(mono, (0, pad)).reshape(-1, per).max(axis=1))  # (columns in block,)
    return np.concatenate(peaks) if peaks else None


class Waveform(QWidget):
    """`set_envelope(peaks, duration_s)` draws the sound; `mark(start_s, end_s)` shades a span.
    With `normalise` the loudest column fills the height (a file's overview); without it the
    height is full scale (a live input, where silence should look like silence)."""

    def __init__(self, normalise: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.normalise = normalise
        self._peaks = np.zeros(0, dtype=np.float32)
        self._duration = 0.0
        self._mark: tuple[float, float] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(40)
        self.setMaximumHeight(140)  # taller says nothing more; the rest of a card stays free

    def sizeHint(self) -> QSize:
        return QSize(320, 56)

    def set_envelope(self, peaks: np.ndarray | None, duration_s: float) -> None:
        self._peaks = np.zeros(0, dtype=np.float32) if peaks is None else np.asarray(peaks, dtype=np.float32)
        self._duration = duration_s
        self._mark = None
        self.update()

    def mark(self, start_s: float, end_s: float) -> None:
        self._mark = (start_s, end_s)
        self.update()

    def clear_mark(self) -> None:
        self._mark = None
        self.update()

    def marked(self) -> tuple[float, float] | None:
        return self._mark

    def envelope(self) -> np.ndarray:
        """The peaks drawn, one per column over the whole sound (empty when none)."""
        return self._peaks

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        mid = h / 2
        if self._mark is not None and self._duration > 0:
            start, end = (w * t / self._duration for t in self._mark)
            shade = QColor(theme.answer_colour(self))
            painter.fillRect(QRectF(start, 0, max(2.0, end - start), h), shade)
        n = len(self._peaks)
        if n:
            # normalised to the loudest column, so quiet recordings are still readable
            loudest = max(float(self._peaks.max()), 1e-4) if self.normalise else 1.0
            scale = (mid - 2) / loudest
            top = [QPointF(w * i / max(1, n - 1), mid - min(p, loudest) * scale) for i, p in enumerate(self._peaks)]
            bottom = [QPointF(pt.x(), 2 * mid - pt.y()) for pt in reversed(top)]
            painter.setPen(theme.accent(self))
            painter.setBrush(theme.accent(self))
            painter.drawPolygon(QPolygonF(top + bottom))
        else:
            painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
            painter.drawLine(QPointF(0, mid), QPointF(w, mid))
        painter.end()
