"""The main window: start-up without torch, tabs grouped by modality, device and precision,
shortcuts, the status bar, and what QSettings keeps between sessions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from app.tabs import MODALITIES, available_tabs
from tests.app.conftest import close_window, open_window
from tests.app.tabs.text_helpers import WAIT_MS, run_and_wait, shown_tab, slow_loader

ROOT = Path(__file__).resolve().parents[2]


def test_the_window_shows_before_torch_is_imported():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "--startup-time"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "torch imported before the window showed: False" in done.stdout
    seconds = float(done.stdout.split("window shown ")[1].split(" s")[0])
    assert 0 < seconds < 10  # the target is 1.5 s; a loaded CI machine gets slack, not a pass for any value


def test_tabs_are_grouped_by_modality_in_order():
    tabs = available_tabs()
    order = list(MODALITIES)
    ranks = [order.index(tab.modality) for tab in tabs]
    assert ranks == sorted(ranks)
    assert {"text-classification", "token-classification", "question-answering"} <= {t.task for t in tabs}


def test_sidebar_shows_a_heading_then_the_text_tabs(window):
    items = [window.nav.item(row).text() for row in range(window.nav.count())]
    assert items == ["TEXT", "Text classification", "Named entities", "Question answering"]
    assert not window.nav.item(0).flags() & Qt.ItemFlag.ItemIsSelectable


def test_device_and_precision_choices_reload_the_model(qtbot, window):
    tab = shown_tab(qtbot, window, "text-classification")
    devices = [window.device_combo.itemData(i) for i in range(window.device_combo.count())]
    assert devices[0] == "auto" and devices[-1] == "cpu"
    assert window.device_combo.itemText(0).startswith("Auto (")
    choices = [window.dtype_combo.itemData(i) for i in range(window.dtype_combo.count())]
    assert choices == ["auto", "fp32", "bf16", "fp16", "int8"] and window.dtype_combo.itemText(0) == "Auto"
    window.dtype_combo.setCurrentIndex(window.dtype_combo.findData("int8"))
    qtbot.waitUntil(lambda: tab.loaded.dtype == "int8" and not tab.is_busy(), timeout=WAIT_MS)
    assert window.device_label.text() == "CPU · int8"
    assert window.device_label.toolTip().startswith("same answers as fp32") or "differ" in window.device_label.toolTip()
    assert tab.loaded.info["int8_linear_layers"] > 0
    tab.text.setPlainText("a good day in the library")
    run_and_wait(qtbot, tab)
    assert tab.bars.rows()


def test_auto_is_the_default_and_the_status_bar_shows_what_it_chose(qtbot, settings, tiny_models):
    settings.remove("runtime/dtype")  # a first start
    window = open_window(qtbot, settings, tiny_models)
    try:
        assert window.runtime()[1] == "auto" and window.dtype_combo.currentText() == "Auto"
        tab = shown_tab(qtbot, window, "text-classification")
        qtbot.waitUntil(lambda: tab.loaded is not None and not tab.is_busy(), timeout=WAIT_MS)
        chosen = tab.loaded.info["precision"]
        assert chosen.endswith(" (auto)") and chosen.split()[0] in ("fp32", "bf16", "int8")
        assert window.device_label.text() == f"CPU · {chosen}"
        assert "speed against fp32" in window.device_label.toolTip()
    finally:
        close_window(window)


def test_bf16_without_native_support_shows_the_fallback(qtbot, window, monkeypatch):
    from engine import precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    tab = shown_tab(qtbot, window, "text-classification")
    window.dtype_combo.setCurrentIndex(window.dtype_combo.findData("bf16"))
    qtbot.waitUntil(lambda: tab.loaded.spec.dtype == "bf16" and not tab.is_busy(), timeout=WAIT_MS)
    assert window.device_label.text() == "CPU · fp32 (bf16 unavailable)"
    assert "no native bf16" in window.device_label.toolTip()


def test_shortcuts_are_the_documented_ones(window):
    keys = {a.text().replace("&", ""): [k.toString() for k in a.shortcuts()] for a in window.findChildren(type(window.run_action))}
    assert keys["Run"] == ["Ctrl+Return", "Ctrl+Enter"]
    assert keys["Cancel"] == ["Esc"]
    assert QKeySequence(QKeySequence.StandardKey.Open).toString() in keys["Open…"]
    assert QKeySequence(QKeySequence.StandardKey.Save).toString() in keys["Save result as JSON…"]


def test_escape_cancels_a_running_job_and_the_text_stays(qtbot, settings, tiny_models):
    window = open_window(qtbot, settings, tiny_models, loader=slow_loader(seconds=10))
    try:
        tab = shown_tab(qtbot, window, "text-classification")
        tab.text.setPlainText("a long wait")
        QTest.keyClick(tab.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert tab.is_busy() and tab.cancel_button.isEnabled()
        QTest.keyClick(tab.text, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=5_000)  # far less than the 10 s run
        assert tab.busy_label.text() == "Cancelled"
        assert tab.last_outcome is None and tab.text.toPlainText() == "a long wait"
    finally:
        close_window(window)


def test_settings_are_kept_between_sessions(qtbot, settings, tiny_models):
    window = open_window(qtbot, settings, tiny_models)
    tab = shown_tab(qtbot, window, "token-classification")
    combo = tab.options_form.widget("aggregation_strategy")
    combo.setCurrentIndex(combo.findData("max"))
    window.dtype_combo.setCurrentIndex(window.dtype_combo.findData("bf16"))
    window.resize(760, 600)  # inside the offscreen screen (800 × 800), unlike the default size
    height = window.height()
    close_window(window)

    window = open_window(qtbot, settings, {})
    try:
        assert window.current_tab().task == "token-classification"
        assert window.dtype_combo.currentData() == "bf16"
        assert window.height() == height != 840  # the width is clamped to the small offscreen screen
        tab = window.tab("token-classification")
        assert tab.options_form.values()["aggregation_strategy"] == "max"
        assert tab.picker.current() == str(tiny_models["token-classification"])
        assert str(tiny_models["token-classification"]) in tab.picker.choices()  # a recent model
    finally:
        close_window(window)
