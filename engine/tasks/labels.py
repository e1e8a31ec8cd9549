"""What the classification tasks share: label names, the pipelines' choice of softmax or sigmoid,
and one result type for "labels with scores", best first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import torch

from engine.tasks.base import Result

FUNCTIONS = ("softmax", "sigmoid", "none")


class LabelScore(TypedDict):
    """One label and its score, the shape the pipelines return."""

    label: str
    score: float


@dataclass
class ScoredLabels(Result):
    """Labels with their scores, best first."""

    labels: list[LabelScore] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.labels]

    def gist(self) -> Any:
        """The top label: the order of the unlikely ones below it may shift with precision."""
        return self.labels[0]["label"] if self.labels else None


def label_name(labels: Mapping[int, str], index: int) -> str:
    """The name of label `index`; unnamed labels are called as transformers calls them."""
    return labels.get(index, f"LABEL_{index}")


def default_function(problem_type: str | None, num_labels: int, *, one_label_sigmoid: bool = True) -> str:
    """How a pipeline turns logits into scores when the caller does not say: none for
    regression, a sigmoid for multi-label heads (and, in the text and image pipelines, for a
    head with a single label), a softmax otherwise. The audio pipeline gives a single label a
    softmax: `one_label_sigmoid=False`."""
    if problem_type == "regression":
        return "none"
    if problem_type == "multi_label_classification" or (one_label_sigmoid and num_labels == 1):
        return "sigmoid"
    return "softmax"


def apply_function(logits: torch.Tensor, function: str) -> torch.Tensor:
    """Scores from logits over the last axis: "softmax", "sigmoid" or "none"."""
    if function == "softmax":
        return logits.softmax(-1)
    if function == "sigmoid":
        return logits.sigmoid()
    return logits
