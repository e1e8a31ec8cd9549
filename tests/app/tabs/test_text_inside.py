"""The text tabs' "Inside the model" view through the real worker: opening it re-runs the input
with internals, the head view follows the chosen layer, head and hovered piece, NER shows every
piece's label probabilities and QA its start and end scores; closed, runs keep nothing."""

from __future__ import annotations

import numpy as np
import pytest

from app.widgets.head_view import ALL_HEADS
from tests.app.tabs.text_helpers import WAIT_MS, engine_result, run_and_wait, shown_tab

TEXT = "Ada Lovelace met Charles Babbage in London."
CONTEXT = "Ada Lovelace wrote the first programme. She was born in London, the capital on the Thames river."
QUESTION = "Who wrote the first programme?"


def _fill(tab, task):
    if task == "question-answering":
        tab.question.setText(QUESTION)
        tab.context.setPlainText(CONTEXT)
    else:
        tab.text.setPlainText(TEXT)


def _inside(qtbot, window, task):
    """The tab of `task` run on its input with the view closed, then the view opened on that
    result, computed without internals: the tab runs again, with them. (tab, internals)."""
    tab = shown_tab(qtbot, window, task)
    tab.inside_panel.set_open(False)
    _fill(tab, task)
    run_and_wait(qtbot, tab)
    assert not tab.last_outcome.result.internals
    tab.inside_panel.set_open(True)
    qtbot.waitUntil(lambda: not tab.is_busy() and bool(tab.last_outcome.result.internals), timeout=WAIT_MS)
    return tab, tab.last_outcome.result.internals


def _picture(widget):
    return widget.grab().toImage()


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "question-answering"])
def test_the_head_view_follows_layer_head_and_hover(qtbot, window, task):
    tab, internals = _inside(qtbot, window, task)
    view = tab.head_view
    tab.inside_pages.setCurrentWidget(view)
    view.resize(600, 500)
    layers, heads, shown, _ = internals["attention"].shape
    pieces, texts = internals["pieces"].tolist(), internals["piece_texts"].tolist()
    # the tiny vocabulary lacks most words: an [UNK] piece shows the text it stands for
    assert view.canvas.pieces == [t if p == "[UNK]" else p for p, t in zip(pieces, texts)][:shown]
    assert view.canvas.unknown == {i for i, p in enumerate(pieces[:shown]) if p == "[UNK]"}
    assert view.layer_box.count() == layers and view.head_box.count() == heads + 1
    mean = internals["attention"][0].astype(np.float32).mean(axis=0)
    np.testing.assert_allclose(view.canvas.weights, mean)
    before = _picture(view.canvas)
    view.choose(layers - 1, 1)
    np.testing.assert_allclose(view.canvas.weights, internals["attention"][layers - 1, 1].astype(np.float32))
    after_head = _picture(view.canvas)
    assert after_head != before
    view.canvas.hover("query", 1)
    assert view.canvas.hovered == ("query", 1)
    assert _picture(view.canvas) != after_head
    view.canvas.hover(None)
    assert _picture(view.canvas) == after_head
    view.choose(0, ALL_HEADS)
    assert view.head == ALL_HEADS

    tab.inside_panel.set_open(False)
    run_and_wait(qtbot, tab)
    assert tab.last_outcome.result.internals == {}


def test_named_entities_show_every_pieces_label_probabilities(qtbot, window, tiny_models):
    task = "token-classification"
    tab, internals = _inside(qtbot, window, task)
    table = tab.piece_table
    expected = engine_result(task, tiny_models[task], TEXT, explain=True).internals
    pieces = expected["text_pieces"].tolist()
    shown = [t if p == "[UNK]" else p for p, t in zip(pieces, expected["text_piece_texts"].tolist())]
    assert table.rowCount() == len(pieces)
    assert [table.cell_text(r, 0) for r in range(len(pieces))] == shown
    labels = expected["labels"].tolist()
    assert [table.horizontalHeaderItem(c).text() for c in range(2, 2 + len(labels))] == labels
    assert table.cell_text(1, 2) == f"{100 * internals['piece_probabilities'][1, 0]:.1f}"
    tab.inside_panel.set_open(False)


def test_question_answering_plots_the_scores_with_the_answer_marked(qtbot, window):
    task = "question-answering"
    tab, internals = _inside(qtbot, window, task)
    plot = tab.span_scores
    plot.resize(600, 220)
    spans = internals["context_spans"].tolist()
    assert plot.pieces == [CONTEXT[a:b] for a, b in spans]
    best = tab._answers[0]
    first, last = plot.answer
    assert spans[first][0] <= best["start"] < spans[first][1]
    assert spans[last][0] < best["end"] <= spans[last][1]
    before = _picture(plot)
    plot.hover(first)
    assert _picture(plot) != before
    tab.inside_panel.set_open(False)


def test_text_classification_shows_each_labels_logit_and_its_score(qtbot, window):
    tab, internals = _inside(qtbot, window, "text-classification")
    result = tab.last_outcome.result
    table = tab.logit_table
    labels, logits = internals["labels"].tolist(), internals["logits"]
    assert table.rowCount() == len(labels) and table.columnCount() == 3
    shown = [table.cell_text(row, 0) for row in range(table.rowCount())]
    assert shown == [labels[i] for i in np.argsort(-logits, kind="stable")]
    assert [float(table.cell_text(row, 1)) for row in range(table.rowCount())] == pytest.approx(
        sorted(logits.tolist(), reverse=True), abs=5e-4
    )
    # the score column is the result's own scores, which the softmax made of those logits
    scores = {entry["label"]: entry["score"] for entry in result.to_json()}
    for row in range(table.rowCount()):
        assert float(table.cell_text(row, 2).rstrip(" %")) == pytest.approx(100 * scores[shown[row]], abs=0.05)
    assert "softmax" in tab.logit_about.text()
