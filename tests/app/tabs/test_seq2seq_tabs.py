"""The summarisation and translation tabs end to end through the real worker, on a tiny BART and
a tiny T5: the output streams in, then shows token by token; translation offers the language
pairs the checkpoint names and sends the chosen one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.app.conftest import close_window, open_window
from tests.app.tabs.text_helpers import engine_result, run_and_wait, shown_tab
from tests.engine.models.tiny_generative import save_bart, save_t5

ARTICLE = "The analysis of London was read by the engine for the first time in the new room."
GREEDY = {"do_sample": False, "num_beams": 1, "max_new_tokens": 8}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    bart, t5 = tmp_path_factory.mktemp("bart"), tmp_path_factory.mktemp("t5")
    save_bart(bart)
    save_t5(t5)
    config = json.loads((t5 / "config.json").read_text())
    config["task_specific_params"] = {
        "translation_en_to_de": {"prefix": "translate English to German: "},
        "translation_en_to_fr": {"prefix": "translate English to French: "},
    }
    (t5 / "config.json").write_text(json.dumps(config))
    return {"summarization": bart, "translation": t5}


@pytest.fixture
def window(qtbot, settings, folders):
    win = open_window(qtbot, settings, folders, tasks=tuple(folders))
    yield win
    close_window(win)


def run_greedy(qtbot, tab, new_tokens=GREEDY["max_new_tokens"]):
    """The article through `tab`, greedily, for `new_tokens` tokens at most."""
    tab.text.setPlainText(ARTICLE)
    tab.preset.setCurrentText("Greedy")
    tab.options_form.set_values({"max_new_tokens": new_tokens})
    run_and_wait(qtbot, tab)


def test_the_summary_streams_in_and_says_how_much_shorter_it_is(qtbot, window, folders):
    tab = shown_tab(qtbot, window, "summarization")
    run_greedy(qtbot, tab)
    expected = engine_result("summarization", folders["summarization"], ARTICLE, **GREEDY)
    assert json.loads(tab.result_json()) == expected.to_json()
    assert tab.view.toPlainText().replace("⟨", "").startswith(expected.sequences[0].text[:1])
    assert f"{len(ARTICLE.split())} words in" in tab.summary.text()


def test_translation_offers_the_checkpoints_pairs_and_sends_the_chosen_one(qtbot, window, folders):
    tab = shown_tab(qtbot, window, "translation")
    assert [tab.pair.itemData(i) for i in range(tab.pair.count())] == ["en → de", "en → fr"]
    assert tab.pair.itemText(1) == "English → French"
    tab.pair.setCurrentIndex(1)
    assert tab.extra_options() == {"explain": True, "src_lang": "en", "tgt_lang": "fr"}
    tab.text.setPlainText(ARTICLE)
    tab.preset.setCurrentText("Greedy")
    tab.options_form.set_values({"max_new_tokens": GREEDY["max_new_tokens"]})
    sent = []
    submit = tab.engine.run
    tab.engine.run = lambda spec, value, options, **kw: (sent.append(options), submit(spec, value, options, **kw))[1]
    run_and_wait(qtbot, tab)
    assert (sent[0]["src_lang"], sent[0]["tgt_lang"]) == ("en", "fr")
    expected = engine_result("translation", folders["translation"], ARTICLE, src_lang="en", tgt_lang="fr", **GREEDY)
    assert json.loads(tab.result_json()) == expected.to_json()


def test_hovering_an_output_token_tints_the_input_words_it_looked_at(qtbot, window, folders):
    tab = shown_tab(qtbot, window, "translation")
    run_greedy(qtbot, tab)
    result = tab.last_outcome.result
    expected = engine_result("translation", folders["translation"], ARTICLE, explain=True, **GREEDY)
    np.testing.assert_allclose(result.sequences[0].cross_attention, expected.sequences[0].cross_attention, rtol=1e-5)
    assert tab.text.extraSelections() == []
    tab.view.hovered.emit(0)
    marked = tab.text.extraSelections()
    assert marked, "no word of the input tinted"
    heaviest = int(np.argmax(tab.weights()[0]))
    piece = result.source[heaviest]
    if piece.start is not None:  # the heaviest piece is the user's: it is among the tinted spans
        spans = {(m.cursor.selectionStart(), m.cursor.selectionEnd()) for m in marked}
        assert (piece.start, piece.end) in spans
    assert "looked most at" in tab.detail.text()
    tab.view.hovered.emit(-1)
    assert tab.text.extraSelections() == []


def test_inside_the_model_shows_the_grid_for_each_layer(qtbot, window, folders):
    tab = shown_tab(qtbot, window, "summarization")
    run_greedy(qtbot, tab, new_tokens=6)
    tab.inside_panel.set_open(True)
    attention = tab.last_outcome.result.sequences[0].cross_attention
    grid = tab.alignment
    assert grid.weights.shape == (attention.shape[0], attention.shape[2])
    assert tab.layer_choice.count() == attention.shape[1] + 1
    mean = grid.weights.copy()
    tab.layer_choice.setCurrentIndex(1)  # the first layer alone
    assert grid.weights.shape == mean.shape and not np.allclose(grid.weights, mean)
    grid.row_hovered.emit(2)
    assert tab.text.extraSelections()
    grab = grid.grab()
    assert grab.width() > 100 and grab.height() > 50
