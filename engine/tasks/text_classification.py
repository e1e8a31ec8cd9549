"""Text classification: one label for a whole text (sentiment, topic, ...), scored the way
transformers' text-classification pipeline scores it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.errors import InputError
from engine.tasks.base import Hooks, Option, Result
from engine.tasks.text_common import TextTask, check_text, require_tokens


@dataclass
class LabelScore:
    label: str
    score: float


@dataclass
class Classification(Result):
    """Every label (or the `top_k` best), best first."""

    labels: list[LabelScore]
    function: str  # "softmax", "sigmoid" or "none": how logits became scores
    tokens: int  # tokens the model read, special tokens included

    def to_json(self) -> list[dict[str, Any]]:
        return [{"label": s.label, "score": s.score} for s in self.labels]


class TextClassification(TextTask):
    """Classify a text with a BERT or DistilBERT sequence-classification checkpoint: the first
    token's final vector goes through the classifier; softmax over the labels, or a sigmoid when
    the model has a single label."""

    name = "text-classification"
    title = "Text classification"
    default_model = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    suggested_models = (
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "nlptown/bert-base-multilingual-uncased-sentiment",
    )
    head = "sequence-classification"
    options = (Option("top_k", int, None, "how many labels to return, best first (all when unset)"),)

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Classification:
        hooks = hooks or Hooks()
        top_k = self.resolve_options(options)["top_k"]
        if top_k is not None and top_k < 1:
            raise InputError("--top-k must be 1 or more")
        text = check_text(input)
        encoding = self.encode(text)
        require_tokens(encoding)
        warnings = []
        total = len(encoding.ids)
        if total > self.max_length:
            encoding = self.encode_windows(text, max_length=self.max_length, stride=0)[0]
            warnings.append(f"input truncated to {self.max_length} tokens of {total}")
        (logits,) = self.forward([encoding], cancel=hooks.cancel)
        function = self.score_function()
        scores = {"softmax": lambda x: torch.softmax(x, -1), "sigmoid": torch.sigmoid}.get(
            function, lambda x: x
        )(logits)
        ranked = sorted(
            (LabelScore(self.label(i), float(s)) for i, s in enumerate(scores.tolist())),
            key=lambda s: s.score,
            reverse=True,
        )
        return Classification(ranked[:top_k], function, len(encoding.ids), warnings=warnings)

    def score_function(self) -> str:
        """As the pipeline chooses by default: from `problem_type` when the config names it,
        else a sigmoid for one label and a softmax for several."""
        problem = self.config.get("problem_type")
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or len(self.labels) == 1:
            return "sigmoid"
        return "softmax"
