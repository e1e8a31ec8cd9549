"""Inline progress for a model download or load: bytes, speed, time left, and Cancel."""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

_WINDOW_S = 4.0  # speed is averaged over the last few seconds so it settles but still reacts


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_seconds(s: float) -> str:
    s = max(0, round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class LoadProgress(QFrame):
    """Hidden until `begin`. `update` takes what the engine reports: (done, total, message);
    bytes and speed appear once a download reports sizes, otherwise the bar just pulses."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self._message = QLabel()
        self._detail = QLabel()
        self._detail.setObjectName("hint")
        self._bar = QProgressBar()
        self._bar.setTextVisible(False)
        self._bar.setFixedHeight(8)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.cancel_requested)
        text = QVBoxLayout()
        text.setSpacing(4)
        text.addWidget(self._message)
        text.addWidget(self._bar)
        text.addWidget(self._detail)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addLayout(text, 1)
        layout.addWidget(cancel)
        self._samples: deque[tuple[float, int]] = deque()
        self.hide()

    def begin(self, message: str) -> None:
        self._samples.clear()
        self._message.setText(message)
        self._detail.setText("")
        self._bar.setRange(0, 0)  # pulses until sizes are known
        self.show()

    def update_progress(self, done: int, total: int | None, message: str, in_bytes: bool = True) -> None:
        """`done` of `total` bytes (a download, a load) or, with `in_bytes` False, of a run's
        own steps (windows read, seconds transcribed), which are shown as plain numbers."""
        if message:
            self._message.setText(message[:1].upper() + message[1:])
        amount = human_bytes if in_bytes else _plain_number
        if not total:
            self._bar.setRange(0, 0)
            self._detail.setText(amount(done) if done else "")
            return
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > _WINDOW_S:
            self._samples.popleft()
        self._bar.setRange(0, 1000)
        self._bar.setValue(int(1000 * min(done, total) / total))
        parts = [f"{amount(done)} of {amount(total)}"]
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 > t0 and d1 > d0:
            speed = (d1 - d0) / (t1 - t0)
            if in_bytes:
                parts.append(f"{human_bytes(speed)}/s")
            parts.append(f"{human_seconds((total - done) / speed)} left")
        self._detail.setText(" · ".join(parts))

    def detail(self) -> str:
        return self._detail.text()

    def end(self) -> None:
        self.hide()


def _plain_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
