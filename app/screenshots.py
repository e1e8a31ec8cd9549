"""`python -m app --screenshots DIR`: every tab with sample input (and a result when a model is
at hand) rendered to PNG, to check the app by eye without clicking through it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.window import MainWindow

LOAD_TIMEOUT_S = 120.0


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Turn the event loop until `condition()` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: (condition() or time.monotonic() > deadline) and loop.quit())
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    return condition()


def render_all(window: MainWindow, out_dir: Path, model_dir: Path | None) -> int:
    """One PNG per tab, named by position and task; returns the process exit code."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not wait_until(lambda: window.engine.info is not None, LOAD_TIMEOUT_S):
        print("the engine did not start in time")
        return 1
    for number, tab in enumerate(window.tabs(), start=1):
        window.select_task(tab.task)
        folder = Path(model_dir) / tab.task if model_dir else None
        if folder is not None and folder.is_dir():
            tab.picker.choose(str(folder))
        wait_until(lambda: not tab.is_busy(), LOAD_TIMEOUT_S)
        tab.load_sample()
        if tab.inside_panel is not None:  # the view's internals come with the run
            tab.inside_panel.set_open(True)
        if tab.loaded is not None:
            tab.run()
            wait_until(lambda: not tab.is_busy(), LOAD_TIMEOUT_S)
        # tabs that prepare input in the background (decoding a picture) say when it is ready
        pending = getattr(tab, "input_pending", None)
        if pending is not None:
            wait_until(lambda: not pending(), LOAD_TIMEOUT_S)
        tab.how.set_open(True)
        QApplication.processEvents()
        path = out_dir / f"{number:02d}-{tab.task}.png"
        window.grab().save(str(path))
        state = "with a result" if tab.last_outcome is not None else "without a model"
        print(f"{path} ({state})")
        # tabs with a live input play their sample into it; the picture is taken mid-stream
        start_live = getattr(tab, "start_live_sample", None)
        ready = start_live() if start_live is not None and tab.loaded is not None else None
        if ready is not None:
            wait_until(ready, LOAD_TIMEOUT_S)
            QApplication.processEvents()
            path = out_dir / f"{number:02d}-{tab.task}-live.png"
            window.grab().save(str(path))
            print(f"{path} (live)")
            tab.stop_live()
            wait_until(lambda: not tab.is_live(), LOAD_TIMEOUT_S)
    return 0
