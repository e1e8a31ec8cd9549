"""Question answering: a question and a text; the best answer is highlighted inside the text,
the top k answers are listed, and "no answer" is said plainly."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import theme
from app.tabs.text_common import TextTab, encoder_paragraph, result_items
from app.widgets.tab_parts import results_table
from app.widgets.text_inside import SpanScores

SAMPLE_CONTEXT = (
    "The Analytical Engine was a general-purpose mechanical computer designed by Charles Babbage. "
    "Ada Lovelace translated an article about it from French in 1843 and added her own notes, "
    "which include what is often called the first computer program: a method for calculating "
    "Bernoulli numbers with the machine."
)
SAMPLE_QUESTION = "Who designed the Analytical Engine?"
COLUMNS = ("Answer", "Score", "Span")


class QuestionAnsweringTab(TextTab):
    """Its input is a question and a context, so it builds and reads its own two boxes; files
    opened or dropped go into the context."""

    task = "question-answering"
    title = "Question answering"
    blurb = "Ask a question about a text; the model points at the words that answer it."
    own_options = ("question",)

    def build_input(self) -> QWidget:
        self.question = QLineEdit()
        self.question.setPlaceholderText("Your question, e.g. Who wrote the notes?")
        self.question.setClearButtonEnabled(True)
        self.question.setText(str(self.settings.value("question", "") or ""))
        self.question.textChanged.connect(self._on_question_changed)
        self.question.returnPressed.connect(self.run)
        self.context = self.text_box("The text to search for the answer: type, paste, or drop a .txt file", self._on_context_changed)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        for text, widget, stretch in (("Question", self.question, 0), ("Text", self.context, 1)):
            label = QLabel(text)
            label.setObjectName("sectionLabel")
            label.setBuddy(widget)
            layout.addWidget(label)
            layout.addWidget(widget, stretch)
        return holder

    def build_result(self) -> QWidget:
        self.answer = QLabel()
        self.answer.setWordWrap(True)
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        self.answer.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answer.setText("<span style='color:gray'>Ask a question and run the model to see its answers.</span>")
        self.answer.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.table = results_table(COLUMNS)
        self.table.currentCellChanged.connect(lambda row, *_: self.reveal_answer(row))
        self.hint = QLabel("Select an answer to find it in the text.")
        self.hint.setObjectName("hint")
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.answer)
        layout.addWidget(self.hint)
        layout.addWidget(self.table, 1)
        layout.addStretch(0)
        self._answers: list[dict[str, Any]] = []
        self.clear_result()
        return holder

    def current_input(self) -> str | None:
        text = self.context.toPlainText()
        return text if text.strip() and self.question.text().strip() else None

    def extra_options(self) -> dict[str, Any]:
        return {"question": self.question.text().strip()}

    def empty_input_message(self) -> str:
        return "Type a question and a text that might answer it."

    def show_result(self, result: Any) -> None:
        items = result_items(result.to_json())
        # the null answer (empty, at 0..0) means "the text does not say"; it is not a span
        self._answers = [a for a in items if not (a["answer"] == "" and a["start"] == a["end"])]
        no_answer = bool(getattr(result, "no_answer", False)) or not self._answers
        if no_answer:
            self.answer.setText(
                "<span style='font-size:13pt'><b>No answer found</b></span><br>"
                "The model thinks this text does not answer the question."
            )
        else:
            best = self._answers[0]
            self.answer.setText(
                f"<span style='font-size:13pt'><b>{html.escape(best['answer'])}</b></span>"
                f" &nbsp;{100 * best['score']:.1f} %"
            )
        self.table.setRowCount(len(self._answers))
        for row, item in enumerate(self._answers):
            cells = (item["answer"], f"{100 * item['score']:.1f} %", f"{item['start']}–{item['end']}")
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if column:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)
        # one answer is already said above; the table is for comparing candidates
        self.table.setVisible(len(self._answers) > 1)
        self.hint.setText(
            "Select an answer to find it in the text."
            if len(self._answers) > 1
            else "Raise Top k to compare the model's other candidates."
        )
        self.hint.setVisible(not no_answer)
        if self._answers and not no_answer and self._context_unchanged():
            best = self._answers[0]
            self.context.highlight([(best["start"], best["end"], theme.answer_colour(self))])

    def build_inside_parts(self) -> list[tuple[str, QWidget]]:
        self.span_scores = SpanScores()
        return [("Start and end scores along the text", self.span_scores)]

    def show_inside_parts(self, internals: dict[str, Any], result: Any) -> None:
        best = self._answers[0] if self._answers and not getattr(result, "no_answer", False) else None
        self.span_scores.set_scores(
            self.last_input or "",
            internals["context_spans"],
            internals["start_logits"],
            internals["end_logits"],
            (best["start"], best["end"]) if best is not None else None,
        )

    def clear_result(self) -> None:
        self._answers = []
        self.table.setRowCount(0)
        self.table.hide()
        self.hint.hide()
        self.context.highlight([])

    def reveal_answer(self, row: int) -> None:
        if 0 <= row < len(self._answers) and self._context_unchanged():
            answer = self._answers[row]
            self.context.highlight([(answer["start"], answer["end"], theme.answer_colour(self))])
            self.context.reveal(answer["start"], answer["end"])

    def answer_rows(self) -> list[tuple[str, ...]]:
        return [
            tuple(self.table.item(r, c).text() for c in range(self.table.columnCount()))
            for r in range(self.table.rowCount())
        ]

    def highlighted_text(self) -> list[str]:
        """The spans marked in the context box (what a person sees highlighted)."""
        return [s.cursor.selectedText() for s in self.context.extraSelections()]

    def _context_unchanged(self) -> bool:
        # spans index the text the model read; after an edit they would point at other words
        return self.last_input is not None and self.context.toPlainText() == self.last_input

    def _on_context_changed(self) -> None:
        if self.context.extraSelections() and not self._context_unchanged():
            self.context.highlight([])
        self.input_changed()

    def _on_question_changed(self, text: str) -> None:
        self.settings.set_value("question", text)
        self.input_changed()

    def explain(self, info: dict[str, Any] | None) -> str:
        head = (
            "Here the question and your text go in together, as <code>[CLS]</code> question "
            "<code>[SEP]</code> text <code>[SEP]</code>, so every piece of the text can attend to "
            "the question. This tab adds the <b>span head</b> (<code>qa_outputs</code>): one linear "
            "layer gives each piece of the text two scores, how likely the answer <i>starts</i> there "
            "and how likely it <i>ends</i> there. A softmax turns each set into probabilities, and "
            "the answer is the span whose start and end probabilities give the highest product, "
            "with the end not before the start and not too far after it (<i>Max answer len</i>). "
            "A long text is read in overlapping windows (<i>Window tokens</i>, <i>Doc stride</i>) "
            "and the best spans of all windows compete. Models trained on SQuAD 2.0 can also point "
            "at <code>[CLS]</code>, meaning \"no answer\" (<i>Handle impossible answer</i>)."
        )
        return encoder_paragraph(info) + f"<p>{head}</p>"

    def open_path(self, path: Path) -> None:
        self.context.load_file(path)

    def load_sample(self) -> None:
        self.question.setText(SAMPLE_QUESTION)
        self.context.setPlainText(SAMPLE_CONTEXT)
