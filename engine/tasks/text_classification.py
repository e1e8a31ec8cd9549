"""Text classification: one label for a whole text (sentiment, topic, ...), scored the way
transformers' text-classification pipeline scores it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.tasks.base import EXPLAIN, Hooks, Option
from engine.tasks.labels import LabelScore, ScoredLabels, apply_function, default_function
from engine.tasks.text_common import TextTask, check_text, require_tokens
from engine.tasks.text_inside import piece_internals


@dataclass
class Classification(ScoredLabels):
    """Every label (or the `top_k` best), best first."""

    function: str = "softmax"  # "softmax", "sigmoid" or "none": how logits became scores
    tokens: int = 0  # tokens the model read, special tokens included


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
    options = (Option("top_k", int, None, "how many labels to return, best first (all when unset)"), EXPLAIN)

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Classification:
        hooks = hooks or Hooks()
        opts = self.resolve_options(options)
        top_k = opts["top_k"]
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
        internals: dict[str, np.ndarray] | None = {} if opts["explain"] else None
        (logits,) = self.forward([encoding], cancel=hooks.cancel, internals=internals)
        function = default_function(self.config.get("problem_type"), len(self.labels))
        scores = apply_function(logits, function).tolist()
        ranked = sorted(
            (LabelScore(label=self.label(i), score=float(s)) for i, s in enumerate(scores)),
            key=lambda s: s["score"],
            reverse=True,
        )
        if internals is not None:
            labels = np.array([self.label(i) for i in range(len(logits))])
            internals.update(piece_internals(self.tokenizer, encoding, (text,)), logits=logits.numpy(),
                             scores=np.array(scores, dtype=np.float32), labels=labels)
        return Classification(
            ranked[:top_k], function=function, tokens=len(encoding.ids), warnings=warnings, internals=internals or {}
        )
