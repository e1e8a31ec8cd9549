"""Text classification: one score per label for a whole text, drawn as sorted bars."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

from app.tabs.text_common import TextTab, encoder_paragraph
from app.widgets.score_bars import ScoresPanel
from app.widgets.text_inside import LabelLogits

_LOGITS_ABOUT = {
    "softmax": "The classifier's last layer gives one number per label, its <i>logit</i>. The softmax "
    "makes them probabilities that add up to 1: each is e<sup>logit</sup> over the sum of them all, so "
    "only the differences count, and a label whose logit is 1 higher is e ≈ 2.7 times as likely.",
    "sigmoid": "The classifier's last layer gives one number per label, its <i>logit</i>. A sigmoid scores "
    "each label on its own, 1 / (1 + e<sup>−logit</sup>): a logit of 0 is 50 %, and the scores need not add up to 1.",
    "none": "The classifier's last layer gives one number per label, its <i>logit</i>; this model's "
    "scores are those numbers as they are.",
}


class TextClassificationTab(TextTab):
    task = "text-classification"
    title = "Text classification"
    blurb = "Give a text; the model scores every label it knows (sentiment, topic, …)."
    sample = (
        "The new library opened on Saturday and the reading rooms were full all afternoon. "
        "The staff were friendly, the chairs comfortable, and the coffee surprisingly good."
    )

    def build_result(self) -> QWidget:
        holder = ScoresPanel()
        self.summary, self.bars = holder.summary, holder.bars
        holder.layout().addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(holder)
        self.placeholder = QLabel("Run the model to see how it scores each label.")
        self.placeholder.setObjectName("hint")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.result_stack = QStackedWidget()
        self.result_stack.addWidget(self.placeholder)
        self.result_stack.addWidget(scroll)
        return self.result_stack

    def show_result(self, result: Any) -> None:
        rows = [(item["label"], item["score"]) for item in result.to_json()]
        self.bars.set_scores(rows)
        if rows:
            label, score = rows[0]
            tokens = getattr(result, "tokens", None)
            read = f" · the model read {tokens} tokens" if tokens else ""
            self.summary.setText(f"<span style='font-size:13pt'><b>{label}</b></span> &nbsp;{100 * score:.1f} %{read}")
        else:
            self.summary.setText("The model returned no labels.")
        self.result_stack.setCurrentIndex(1)

    def build_inside_parts(self) -> list[tuple[str, QWidget]]:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 6, 0, 0)
        self.logit_about = QLabel()
        self.logit_about.setObjectName("hint")
        self.logit_about.setWordWrap(True)
        self.logit_table = LabelLogits()
        layout.addWidget(self.logit_about)
        layout.addWidget(self.logit_table, 1)
        return [("Logits to scores", page)]

    def show_inside_parts(self, internals: dict[str, Any], result: Any) -> None:
        function = getattr(result, "function", "softmax")
        self.logit_about.setText(_LOGITS_ABOUT.get(function, _LOGITS_ABOUT["none"]))
        self.logit_table.set_logits(internals["labels"].tolist(), internals["logits"], internals["scores"], function)

    def clear_result(self) -> None:
        self.bars.set_scores([])
        self.summary.clear()
        self.result_stack.setCurrentIndex(0)

    def explain(self, info: dict[str, Any] | None) -> str:
        if (info or {}).get("model_type") == "distilbert":
            head = (
                "This tab adds the <b>classification head</b>: the final vector of <code>[CLS]</code> "
                "goes through a dense layer with a ReLU (<code>pre_classifier</code>) and then "
                "the <code>classifier</code>, which gives one number per label."
            )
        else:
            head = (
                "This tab adds the <b>classification head</b>: the final vector of <code>[CLS]</code>, "
                "which has attended to the whole text, goes through the <i>pooler</i> (a dense layer "
                "with tanh) and then the <code>classifier</code>, which gives one number per label."
            )
        scoring = (
            " A softmax turns those numbers into probabilities that add up to 1 (a model with a "
            "single label uses a sigmoid instead). Texts longer than the model's positions are cut, "
            "and the tab says so."
        )
        return encoder_paragraph(info) + f"<p>{head}{scoring}</p>"
