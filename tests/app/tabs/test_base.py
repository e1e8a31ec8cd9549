"""What every tab gets from the base class: inline download progress with bytes, speed, time
left and Cancel; the partial results and the progress of its own run, and no other."""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtWidgets import QPushButton

from app.worker import ModelSpec, load_engine_task
from engine.errors import Cancelled
from tests.app.conftest import close_window, open_window
from tests.app.tabs.text_helpers import WAIT_MS

TOTAL_BYTES = 50_000_000


def downloading_loader(spec, hooks):
    """Reports 100 kB every 20 ms, as a slow download of 50 MB would, then loads the model."""
    for step in range(1, TOTAL_BYTES // 100_000 + 1):
        if hooks.cancel.is_set():
            raise Cancelled("download cancelled")
        hooks.on_progress(step * 100_000, TOTAL_BYTES, f"downloading {spec.ref}")
        time.sleep(0.02)
    return load_engine_task(spec, hooks)


def test_download_progress_shows_bytes_speed_and_time_left_and_can_be_cancelled(qtbot, settings, tiny_models):
    window = open_window(qtbot, settings, tiny_models, loader=downloading_loader)
    try:
        window.select_task("text-classification")
        tab = window.tab("text-classification")
        qtbot.waitUntil(lambda: "left" in tab.progress.detail(), timeout=WAIT_MS)
        detail = tab.progress.detail()
        assert "of 50.0 MB" in detail and "/s" in detail
        assert tab.progress.isVisible() and tab.is_busy()
        cancel = next(b for b in tab.progress.findChildren(QPushButton) if b.text() == "Cancel")
        cancel.click()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=5_000)  # well before the 10 s download
        assert not tab.progress.isVisible()
        assert tab.loaded is None and tab.banner.kind == ""
    finally:
        close_window(window)


class StreamingTask:
    """A real task whose run first streams each word of its input as a partial ("task: word")
    with a progress report per word, then returns the real result. After the first word it
    waits for `gate` without checking the cancel flag, as a step of a real model would, so a
    test can replace the run while it still has partials to send."""

    def __init__(self, task: Any, name: str, gate: threading.Event) -> None:
        self._task, self._name, self._gate = task, name, gate

    def info(self) -> dict:
        return self._task.info()

    def parameter_bytes(self) -> int:
        return self._task.parameter_bytes()

    def run(self, input: Any, *, hooks: Any, **options: Any) -> Any:
        words = input.split()
        for done, word in enumerate(words, start=1):
            hooks.on_partial(f"{self._name}: {word}")
            hooks.on_progress(done, len(words), f"streaming {done} of {len(words)}")
            self._gate.wait()
        if hooks.cancel.is_set():
            raise Cancelled()
        return self._task.run(input, hooks=hooks, **options)


def streaming_loader(gate: threading.Event):
    def load(spec: ModelSpec, hooks: Any) -> StreamingTask:
        return StreamingTask(load_engine_task(spec, hooks), spec.task, gate)

    return load


def record(monkeypatch, tab, hook: str) -> list:
    """Every call of `tab.hook(...)` from now on, in order, instead of what the hook did."""
    calls: list = []
    monkeypatch.setattr(tab, hook, lambda *args: calls.append(args[0] if len(args) == 1 else args))
    return calls


def test_show_partial_gets_its_own_runs_partials_in_order_and_not_another_tabs(qtbot, settings, tiny_models, monkeypatch):
    gate = threading.Event()
    gate.set()
    window = open_window(qtbot, settings, tiny_models, loader=streaming_loader(gate))
    try:
        sentiment, entities = window.tab("text-classification"), window.tab("token-classification")
        seen = {tab: record(monkeypatch, tab, "show_partial") for tab in (sentiment, entities)}
        sentiment.text.setPlainText("the reading rooms were good")
        entities.text.setPlainText("Ada met Charles")
        sentiment.run()
        entities.run()
        qtbot.waitUntil(lambda: not sentiment.is_busy() and not entities.is_busy(), timeout=WAIT_MS)
        assert sentiment.last_outcome is not None and entities.last_outcome is not None
        assert seen[sentiment] == [f"text-classification: {w}" for w in "the reading rooms were good".split()]
        assert seen[entities] == ["token-classification: Ada", "token-classification: met", "token-classification: Charles"]
    finally:
        gate.set()
        close_window(window)


def test_show_partial_drops_the_partials_of_a_replaced_run(qtbot, settings, tiny_models, monkeypatch):
    gate = threading.Event()
    window = open_window(qtbot, settings, tiny_models, loader=streaming_loader(gate))
    try:
        tab = window.tab("text-classification")
        seen = record(monkeypatch, tab, "show_partial")
        tab.text.setPlainText("old words here")
        tab.run()
        qtbot.waitUntil(lambda: seen == ["text-classification: old"], timeout=WAIT_MS)
        tab.text.setPlainText("new text")
        tab.run()  # replaces the first run, which sends two more partials before it stops
        gate.set()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
        assert seen == ["text-classification: old", "text-classification: new", "text-classification: text"]
        assert tab.last_input == "new text"
    finally:
        gate.set()
        close_window(window)


def test_run_progress_goes_to_the_hook_once_the_runs_model_is_loaded(qtbot, settings, tiny_models, monkeypatch):
    gate = threading.Event()
    gate.set()
    window = open_window(qtbot, settings, tiny_models, loader=streaming_loader(gate))
    try:
        tab = window.tab("token-classification")  # not on screen: its run job loads the model
        assert tab.loaded is None
        run_progress = record(monkeypatch, tab, "show_run_progress")
        load_bar = []
        update = tab.progress.update_progress
        monkeypatch.setattr(tab.progress, "update_progress", lambda *args: (load_bar.append(args[2]), update(*args)))
        tab.text.setPlainText("Ada met Charles")
        tab.run()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
        assert tab.loaded is not None and tab.last_outcome is not None
        assert load_bar == [f"loading {tiny_models['token-classification']}"]
        # the worker sends ~20 reports a second, always the first and the last
        assert run_progress[0] == (1, 3, "streaming 1 of 3") and run_progress[-1] == (3, 3, "streaming 3 of 3")
        assert all(message.startswith("streaming") for _, _, message in run_progress)
    finally:
        close_window(window)
