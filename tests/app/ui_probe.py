"""A probe for the rule that the UI thread never waits on the engine.

A precise 5 ms timer in the UI thread notes when it fires; the longest gap between two notes is
the longest time the event loop went without turning. What these tests guard against, a model,
a tokenizer or a picture held on the UI thread (or by the GIL), freezes the window for a second
or more at the sizes they use. A busy 2-core CI machine can delay a timer by a tenth of a second
on its own, so the bar sits at STALL_S, well clear of both.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer

STALL_S = 0.35


class UiProbe:
    def __init__(self) -> None:
        self.ticks: list[float] = []
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def __enter__(self) -> UiProbe:
        self.ticks.append(time.perf_counter())
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.stop()
        self.ticks.append(time.perf_counter())

    def span(self) -> float:
        return self.ticks[-1] - self.ticks[0] if self.ticks else 0.0

    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:])), default=0.0)

    def assert_kept_turning(self) -> None:
        longest = self.longest_gap()
        assert longest < STALL_S, f"the UI thread stalled for {longest * 1000:.0f} ms"
