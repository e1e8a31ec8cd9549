"""A horizontal input level meter in dBFS, with a peak marker that falls back slowly."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0
PEAK_FALL_DB_S = 12.0  # how fast the peak marker sinks once the sound is quieter
_ZONES = ((-12.0, "#3fae5a"), (-3.0, "#e0a83a"), (0.0, "#d6453f"))  # green to -12, amber to -3, red


def to_db(amplitude: float) -> float:
    """Linear amplitude (1.0 = full scale) to dBFS, never below the meter's floor."""
    return max(FLOOR_DB, 20 * math.log10(amplitude)) if amplitude > 0 else FLOOR_DB


class LevelMeter(QWidget):
    """`set_level(rms, peak)` with linear values; the bar shows the RMS, the marker the peak."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rms_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self._peak_at = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (dBFS): speak so the bar reaches the amber zone now and then")

    def sizeHint(self) -> QSize:
        return QSize(240, 14)

    def set_level(self, rms: float, peak: float) -> None:
        now = time.monotonic()
        self.rms_db = to_db(rms)
        fallen = self.peak_db - PEAK_FALL_DB_S * (now - self._peak_at)
        if to_db(peak) >= fallen:
            self.peak_db, self._peak_at = to_db(peak), now
        else:
            self.peak_db = max(FLOOR_DB, fallen)
            self._peak_at = now
        self.update()

    def reset(self) -> None:
        self.rms_db = self.peak_db = FLOOR_DB
        self.update()

    def _x(self, db: float) -> float:
        return self.width() * (db - FLOOR_DB) / -FLOOR_DB

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(QPalette.ColorRole.Midlight))
        painter.drawRoundedRect(QRectF(self.rect()), 3, 3)
        start = FLOOR_DB
        for end, colour in _ZONES:  # each zone filled up to the current level
            fill_to = min(end, self.rms_db)
            if fill_to > start:
                painter.setBrush(QColor(colour))
                painter.drawRect(QRectF(self._x(start), 0, self._x(fill_to) - self._x(start), self.height()))
            start = end
        if self.peak_db > FLOOR_DB:
            painter.setBrush(self.palette().color(QPalette.ColorRole.Text))
            painter.drawRect(QRectF(min(self._x(self.peak_db), self.width() - 2), 0, 2, self.height()))
        painter.end()
