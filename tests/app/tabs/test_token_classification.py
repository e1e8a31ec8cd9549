"""The named-entities tab end to end: highlights, legend and table equal the engine's entities;
selecting a row selects its characters, emoji and all."""

from __future__ import annotations

from tests.app.tabs.text_helpers import engine_result, run_and_wait, shown_tab

TASK = "token-classification"
TEXT = "Ada Lovelace met Charles Babbage in London, and the Science Museum keeps the engine."


def shown_rows(entities: list[dict]) -> list[tuple[str, ...]]:
    return [
        (
            e["word"],
            e.get("entity_group") or e["entity"],
            f"{100 * e['score']:.1f} %",
            f"{e['start']}–{e['end']}",
        )
        for e in entities
    ]


def test_shows_the_engines_entities_highlighted_and_listed(qtbot, window, tiny_models):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(TEXT)
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], TEXT, aggregation_strategy="simple").to_json()
    assert expected, "the tiny model should find something to show"
    assert tab.entity_rows() == shown_rows(expected)
    marked = [s.cursor.selectedText() for s in tab.view.extraSelections()]
    assert marked == [TEXT[e["start"] : e["end"]] for e in expected]
    for group in {e["entity_group"] for e in expected}:
        assert group in tab.legend.text()
    tab.table.selectRow(len(expected) - 1)
    last = expected[-1]
    assert tab.view.textCursor().selectedText() == TEXT[last["start"] : last["end"]]


def test_aggregation_none_lists_every_token_label(qtbot, window, tiny_models):
    tab = shown_tab(qtbot, window, TASK)
    combo = tab.options_form.widget("aggregation_strategy")
    combo.setCurrentIndex(combo.findData("none"))
    tab.text.setPlainText(TEXT)
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], TEXT, aggregation_strategy="none").to_json()
    assert tab.entity_rows() == shown_rows(expected)
    assert all(row[1][:2] in ("B-", "I-") for row in tab.entity_rows())


def test_the_ignore_labels_box_leaves_those_labels_out(qtbot, window, tiny_models):
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(TEXT)
    run_and_wait(qtbot, tab)
    assert "LOC" in {row[1] for row in tab.entity_rows()}
    tab.options_form.widget("ignore_labels").setText("O, LOC")
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], TEXT, aggregation_strategy="simple", ignore_labels="O,LOC")
    assert tab.entity_rows() == shown_rows(expected.to_json())
    assert "LOC" not in {row[1] for row in tab.entity_rows()}


def test_spans_stay_on_their_characters_after_emoji(qtbot, window, tiny_models):
    """Qt counts emoji as two positions, Python as one: highlights must not drift."""
    text = "😀😀 Ada Lovelace 🎉 visited London 😀 with Charles Babbage."
    tab = shown_tab(qtbot, window, TASK)
    tab.text.setPlainText(text)
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], text, aggregation_strategy="simple").to_json()
    assert any("😀" in text[: e["end"]] for e in expected), "no entity after an emoji to check"
    marked = [s.cursor.selectedText() for s in tab.view.extraSelections()]
    assert marked == [text[e["start"] : e["end"]] for e in expected]
