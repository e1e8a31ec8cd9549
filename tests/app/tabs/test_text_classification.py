"""The text-classification tab end to end through the real worker thread, plus the faults a
person can cause: empty, huge and unreadable input, and checkpoints that cannot be used."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.app.conftest import use_model
from tests.app.tabs.text_helpers import WAIT_MS, engine_result, run_and_wait, shown_tab

TASK = "text-classification"
TEXT = "The reading rooms were full and the coffee was good."


def test_shows_the_engines_scores_as_sorted_bars(qtbot, window, tiny_models, tmp_path):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(TEXT)
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], TEXT).to_json()
    assert tab.bars.rows() == [(item["label"], item["score"]) for item in expected]
    assert [score for _, score in tab.bars.rows()] == sorted((s for _, s in tab.bars.rows()), reverse=True)
    assert expected[0]["label"] in tab.summary.text()
    assert json.loads(tab.result_json()) == expected
    tab.export_json(tmp_path / "result.json")
    assert json.loads((tmp_path / "result.json").read_text(encoding="utf-8")) == expected
    # the status bar names what ran
    assert tiny_models[TASK].name in window.model_label.text()
    assert window.device_label.text() == "CPU · fp32"
    assert window.latency_label.text().startswith("Last run:")


def test_top_k_option_reaches_the_engine(qtbot, window, tiny_models):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(TEXT)
    tab.options_form.widget("top_k").setValue(1)
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], TEXT, top_k=1).to_json()
    assert tab.bars.rows() == [(expected[0]["label"], expected[0]["score"])]


def test_empty_input_disables_run_and_says_so_gently(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText("   \n ")
    assert not tab.run_button.isEnabled()
    QTest.keyClick(tab.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert not tab.is_busy()
    assert tab.banner.kind == "info" and "text" in tab.banner.text()
    tab.text.setPlainText(TEXT)
    assert tab.run_button.isEnabled() and tab.banner.kind == ""


def test_ctrl_enter_runs_the_current_tab(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(TEXT)
    tab.text.setFocus()
    QTest.keyClick(tab.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert tab.is_busy()
    qtbot.waitUntil(lambda: tab.last_outcome is not None, timeout=WAIT_MS)
    assert tab.text.toPlainText() == TEXT  # the shortcut did not type a newline


def test_a_huge_text_is_truncated_with_a_warning_and_kept_whole_in_the_editor(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    huge = "the library was good and the rooms were happy " * 2200  # ~100,000 characters
    tab.text.setPlainText(huge)
    run_and_wait(qtbot, tab)
    assert tab.warnings.kind == "warning" and "truncated" in tab.warnings.text()
    assert tab.bars.rows()
    assert tab.text.toPlainText() == huge


def test_an_engine_error_shows_inline_and_the_next_run_works(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText("\u200b\u200b")  # zero-width spaces: nothing the tokenizer can read
    run_and_wait(qtbot, tab)
    assert tab.banner.kind == "error" and "no readable characters" in tab.banner.text()
    assert tab.text.toPlainText() == "\u200b\u200b"
    tab.text.setPlainText(TEXT)
    run_and_wait(qtbot, tab)
    assert tab.banner.kind == "" and tab.bars.rows()


def test_a_checkpoint_of_another_architecture_is_refused_and_the_tab_stays_usable(
    qtbot, window, tiny_models, wrong_architecture
):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(TEXT)
    use_model(qtbot, tab, wrong_architecture)
    message = tab.banner.text()
    assert tab.banner.kind == "error" and "gpt2" in message and "bert" in message
    assert tab.text.toPlainText() == TEXT
    assert tab.run_button.isEnabled()
    use_model(qtbot, tab, tiny_models[TASK])
    assert tab.banner.kind == ""
    run_and_wait(qtbot, tab)
    assert tab.bars.rows()


def test_a_corrupt_checkpoint_is_named(qtbot, window, corrupt_checkpoint):
    tab = shown_tab(qtbot, window, TASK)
    use_model(qtbot, tab, corrupt_checkpoint)
    assert tab.banner.kind == "error" and "model.safetensors" in tab.banner.text()


def test_a_model_missing_offline_offers_a_local_folder(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    use_model(qtbot, tab, "nobody/no-such-model")
    assert tab.banner.kind == "error"
    assert "nobody/no-such-model" in tab.banner.text()
    assert [b.text() for b in tab.banner.action_buttons()] == ["Open local folder…"]


def test_a_dropped_or_opened_file_fills_the_box_and_a_bad_one_keeps_the_text(qtbot, window, tmp_path):
    tab = shown_tab(qtbot, window, TASK)
    good = tmp_path / "note.txt"
    good.write_text("A note from a file.", encoding="utf-8")
    tab.open_path(good)
    assert tab.text.toPlainText() == "A note from a file."
    bad = tmp_path / "binary.txt"
    bad.write_bytes(b"\xff\xfe\x00\x81")
    tab.open_path(bad)
    assert tab.text.toPlainText() == "A note from a file."
    assert tab.banner.kind == "error" and "UTF-8" in tab.banner.text()
