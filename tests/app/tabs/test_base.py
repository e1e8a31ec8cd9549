"""What every tab gets from the base class: inline download progress with bytes, speed, time
left and Cancel."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QPushButton

from app.worker import load_engine_task
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
