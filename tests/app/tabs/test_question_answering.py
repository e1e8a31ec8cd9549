"""The question-answering tab end to end: the best answer highlighted in the text, the top k
listed, the no-answer state, and Run only with both a question and a text."""

from __future__ import annotations

from engine.tasks.question_answering import Answer, Answers
from tests.app.tabs.text_helpers import engine_result, run_and_wait, shown_tab

TASK = "question-answering"
CONTEXT = (
    "The Analytical Engine was designed by Charles Babbage. Ada Lovelace wrote notes on it in "
    "1843, and the Science Museum in London keeps a part of the machine."
)
QUESTION = "Who designed the engine?"


def test_shows_the_engines_answers_and_highlights_the_best(qtbot, window, tiny_models):
    tab = shown_tab(qtbot, window, TASK)
    tab.question.setText(QUESTION)
    tab.context.setPlainText(CONTEXT)
    tab.options_form.widget("top_k").setValue(3)
    run_and_wait(qtbot, tab)
    expected = engine_result(TASK, tiny_models[TASK], CONTEXT, question=QUESTION, top_k=3).to_json()
    assert tab.answer_rows() == [
        (a["answer"], f"{100 * a['score']:.1f} %", f"{a['start']}–{a['end']}") for a in expected
    ]
    assert expected[0]["answer"] in tab.answer.text()
    assert tab.highlighted_text() == [expected[0]["answer"]]
    tab.table.selectRow(2)
    assert tab.highlighted_text() == [expected[2]["answer"]]
    assert tab.context.textCursor().selectedText() == expected[2]["answer"]
    # spans point into the text the model read: an edit drops the highlight
    tab.context.appendPlainText("More text.")
    assert tab.highlighted_text() == []
    assert tab.context.toPlainText().startswith(CONTEXT)


def test_run_needs_a_question_and_a_text(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.context.setPlainText(CONTEXT)
    tab.question.clear()
    assert not tab.run_button.isEnabled()
    tab.run()
    assert tab.banner.kind == "info" and not tab.is_busy()
    tab.question.setText(QUESTION)
    assert tab.run_button.isEnabled()


def test_no_answer_is_said_plainly(qtbot, window):
    tab = shown_tab(qtbot, window, TASK)
    tab.context.setPlainText(CONTEXT)
    tab.show_result(Answers([Answer("", 0.9, 0, 0)], no_answer=True))
    assert "No answer found" in tab.answer.text()
    assert tab.table.isHidden() and tab.highlighted_text() == []


def test_the_question_is_remembered(qtbot, window, settings):
    tab = shown_tab(qtbot, window, TASK)
    tab.question.setText(QUESTION)
    assert settings.value("tabs/question-answering/state/question") == QUESTION
