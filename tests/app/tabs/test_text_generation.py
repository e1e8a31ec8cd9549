"""The text-generation tab end to end through the real worker on a tiny GPT-2: the text streams
in, then every token is shown with its probability; presets set the decoding options."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.app.conftest import close_window, open_window
from tests.app.tabs.text_helpers import WAIT_MS, engine_result, run_and_wait, shown_tab
from tests.engine.models.tiny_generative import PROMPTS, save_gpt2

TASK = "text-generation"
GREEDY = {"do_sample": False, "num_beams": 1, "max_new_tokens": 10}


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    save_gpt2(folder)
    return folder


@pytest.fixture
def window(qtbot, settings, gpt2_folder):
    win = open_window(qtbot, settings, {TASK: gpt2_folder}, tasks=(TASK,))
    yield win
    close_window(win)


def greedy(tab) -> None:
    tab.preset.setCurrentText("Greedy")
    tab.options_form.set_values({"max_new_tokens": GREEDY["max_new_tokens"]})


def test_the_continuation_streams_in_then_shows_each_tokens_probability(qtbot, window, gpt2_folder):
    tab = shown_tab(qtbot, window, TASK)
    prompt = PROMPTS[0]
    tab.text.setPlainText(prompt)
    greedy(tab)
    streamed = []
    original = tab.show_partial
    tab.show_partial = lambda value: (streamed.append(value.text), original(value))
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, gpt2_folder, prompt, explain=True, **GREEDY)  # as the tab runs it
    assert tab.result_json() is not None and expected.to_json()[0]["generated_text"] in tab.result_json()
    sequence = expected.sequences[0]
    assert streamed and streamed[-1] == sequence.text  # the last partial is the whole text
    assert all(later.startswith(earlier) for earlier, later in zip(streamed, streamed[1:]))
    shown = tab.view.toPlainText()
    assert shown.startswith(prompt)
    assert [t.probability for t in tab.view.tokens] == [t.probability for t in sequence.tokens]
    assert "".join(t.text for t in tab.view.tokens if not t.special) == sequence.text
    assert "tokens/s" in tab.busy_label.text() or "tokens in" in tab.busy_label.text()


def test_hovering_a_token_names_it_and_its_alternatives(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(PROMPTS[0])
    greedy(tab)
    run_and_wait(qtbot, tab)
    token = tab.view.tokens[0]
    tab.view.hovered.emit(0)
    assert f"{100 * token.probability:.1f} %" in tab.detail.text()
    best = token.alternatives[0]
    assert f"{100 * best[1]:.1f} %" in tab.detail.text()
    # the view finds the token under a point of its own text
    cursor = tab.view.textCursor()
    cursor.setPosition(len(PROMPTS[0]) + 1)
    rect = tab.view.cursorRect(cursor)
    assert tab.view.token_at(rect.center().x(), rect.center().y()) == 0 or len(tab.view.tokens[0].text) == 1


def test_presets_set_the_options_and_editing_one_makes_it_custom(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.preset.setCurrentText("Beam search")
    values = tab.options_form.values()
    assert values["num_beams"] == 4 and values["do_sample"] is False and values["no_repeat_ngram_size"] == 3
    tab.preset.setCurrentText("Creative sampling")
    assert tab.options_form.values()["do_sample"] is True
    tab.options_form.widget("temperature").setValue(1.3)
    assert tab.preset.currentText() == "Custom"


class WaitsForStop:
    """The real task, whose first streamed token waits (in the worker thread) until the tab has
    asked to stop, as a slow model would still be at work then."""

    def __init__(self, task) -> None:
        self.task = task

    def info(self):
        return self.task.info()

    def parameter_bytes(self) -> int:
        return self.task.parameter_bytes()

    def run(self, input, *, hooks, **options):
        def on_partial(value):
            hooks.on_partial(value)
            hooks.cancel.wait(timeout=WAIT_MS / 1000)

        return self.task.run(input, hooks=replace(hooks, on_partial=on_partial), **options)


def test_stop_keeps_what_was_streamed(qtbot, settings, gpt2_folder):
    from app.worker import load_engine_task

    win = open_window(qtbot, settings, {TASK: gpt2_folder}, tasks=(TASK,),
                      loader=lambda spec, hooks: WaitsForStop(load_engine_task(spec, hooks)))
    try:
        tab = shown_tab(qtbot, win, TASK)
        tab.text.setPlainText(PROMPTS[0])
        greedy(tab)
        first = []
        original = tab.show_partial

        def stop_after_first(value):
            original(value)
            if not first:
                first.append(value.text)
                tab.cancel()

        tab.show_partial = stop_after_first
        tab.run()
        qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
        assert tab.banner.kind != "error", tab.banner.text()
        assert tab.busy_label.text() == "Cancelled"
        assert tab.last_outcome is None
        assert tab.view.toPlainText() == PROMPTS[0] + first[0]
    finally:
        close_window(win)


def test_hovering_a_token_tints_the_prompt_words_its_step_attended_to(qtbot, window, gpt2_folder):
    tab = shown_tab(qtbot, window, TASK)
    prompt = PROMPTS[0]
    tab.text.setPlainText(prompt)
    greedy(tab)
    run_and_wait(qtbot, tab)
    result = tab.last_outcome.result
    expected = engine_result(TASK, gpt2_folder, prompt, explain=True, **GREEDY)
    np.testing.assert_allclose(result.sequences[0].self_attention, expected.sequences[0].self_attention, rtol=1e-5)
    assert tab.text.extraSelections() == []
    tab.view.hovered.emit(0)  # the first token: its step saw the prompt alone
    spans = {(m.cursor.selectionStart(), m.cursor.selectionEnd()) for m in tab.text.extraSelections()}
    heaviest = result.source[int(np.argmax(tab.weights()[0]))]
    assert (heaviest.start, heaviest.end) in spans
    assert "looked most at" in tab.detail.text()
    tab.view.hovered.emit(-1)
    assert tab.text.extraSelections() == []


def test_inside_the_model_shows_the_staircase_of_self_attention(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(PROMPTS[0])
    greedy(tab)
    run_and_wait(qtbot, tab)
    tab.inside_panel.set_open(True)
    result = tab.last_outcome.result
    attention = result.sequences[0].self_attention  # (tokens, layers, prompt + tokens - 1)
    tokens, layers, width = attention.shape
    assert width == result.prompt_tokens + tokens - 1
    grid = tab.alignment
    assert grid.weights.shape == (tokens, width) and tab.layer_choice.count() == layers + 1
    assert [label for label, _ in grid.columns[: result.prompt_tokens]] == [
        PROMPTS[0][p.start : p.end] for p in result.source
    ]
    assert [mine for _, mine in grid.columns[result.prompt_tokens :]] == [False] * (tokens - 1)
    for row in range(tokens):  # a step sees only what came before the token it writes
        assert not grid.weights[row, result.prompt_tokens + row :].any()
    tab.layer_choice.setCurrentIndex(layers)  # the last layer alone
    np.testing.assert_allclose(tab.weights(layers - 1), attention[:, layers - 1])
