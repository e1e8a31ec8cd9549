"""What the text-tab tests share: the engine's own answer for the same input, to compare the
widgets against, and a window whose worker runs every task slowly (to cancel and probe it)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from app.worker import ModelSpec, load_engine_task
from engine.errors import Cancelled

WAIT_MS = 60_000


@functools.lru_cache(maxsize=None)
def _engine_task(task: str, folder: str) -> Any:
    from engine import tasks

    return tasks.get(task).load(folder, device="cpu")


def engine_result(task: str, folder: Path, text: str, **options: Any) -> Any:
    """What the engine returns, computed here in the test thread."""
    return _engine_task(task, str(folder)).run(text, **options)


def shown_tab(qtbot, window, task: str):
    """The tab for `task`, on screen, with its tiny model loaded."""
    window.select_task(task)
    tab = window.tab(task)
    qtbot.waitUntil(lambda: tab.loaded is not None and not tab.is_busy(), timeout=WAIT_MS)
    return tab


def run_and_wait(qtbot, tab) -> None:
    tab.run()
    assert tab.is_busy()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)


class SlowTask:
    """A real task whose run first waits up to `seconds` in the worker thread, checking the
    cancel flag every 10 ms, as a long inference would."""

    def __init__(self, task: Any, seconds: float) -> None:
        self._task, self._seconds = task, seconds

    def info(self) -> dict:
        return self._task.info()

    def parameter_bytes(self) -> int:
        return self._task.parameter_bytes()

    def run(self, input: Any, *, hooks: Any = None, **options: Any) -> Any:
        end = time.monotonic() + self._seconds
        while time.monotonic() < end:
            if hooks is not None and hooks.cancel.is_set():
                raise Cancelled()
            time.sleep(0.01)
        return self._task.run(input, hooks=hooks, **options)


def slow_loader(seconds: float):
    def load(spec: ModelSpec, hooks: Any) -> SlowTask:
        return SlowTask(load_engine_task(spec, hooks), seconds)

    return load
