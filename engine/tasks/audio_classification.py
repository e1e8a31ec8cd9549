"""Audio classification with Wav2Vec2 / HuBERT sequence-classification checkpoints (keyword
spotting, emotion, language id): a clip in, the top labels with their probabilities out, as
transformers' "audio-classification" pipeline gives them. `RollingClassifier` classifies the
last second or so of a live stream, again and again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import audio
from engine.config import id2label
from engine.errors import InputError
from engine.models.wav2vec2 import Wav2Vec2ForSequenceClassification
from engine.speech import SpeechModel, as_samples
from engine.tasks.base import Hooks, Option, Result, Task

AudioInput = str | Path | np.ndarray


@dataclass
class Labels(Result):
    """[{"label", "score"}], best first."""

    labels: list[dict[str, Any]]

    def to_json(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.labels]


class AudioClassification(Task):
    """Wav2Vec2 / HuBERT frames, mean-pooled over the clip and classified."""

    name = "audio-classification"
    title = "Audio classification"
    modality = "audio"
    input_kind = "audio"
    default_model = "superb/wav2vec2-base-superb-ks"
    suggested_models = ("superb/wav2vec2-base-superb-ks", "superb/hubert-large-superb-er")
    extra_files = ("preprocessor_config.json",)
    options = (Option("top_k", int, 5, "how many labels to return"),)

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.model = SpeechModel(folder, Wav2Vec2ForSequenceClassification, device, dtype)
        labels = id2label(self.config)
        self.labels = [labels.get(i, f"LABEL_{i}") for i in range(self.model.config.num_labels)]
        problem = self.config.get("problem_type")
        # the pipeline's choice: independent sigmoids for multi-label heads, else a softmax
        self.activation = {"multi_label_classification": "sigmoid", "regression": "none"}.get(problem, "softmax")

    @property
    def rate(self) -> int:
        return self.model.rate

    def info(self) -> dict[str, Any]:
        return {**self.model.describe(), "labels": list(self.labels), "head": "mean-pooled frames, linear"}

    def run(self, input: AudioInput, *, hooks: Hooks | None = None, **options: Any) -> Labels:
        top_k = self.resolve_options(options)["top_k"]
        samples = audio.load_audio(input, self.rate) if isinstance(input, (str, Path)) else as_samples(input)
        return self.classify(samples, top_k)

    def classify(self, samples: np.ndarray, top_k: int | None = 5) -> Labels:
        if top_k is not None and top_k < 1:
            raise InputError("--top-k must be at least 1")
        logits = self.model(samples)
        if self.activation == "softmax":
            scores = logits.softmax(-1)
        elif self.activation == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        best = scores.topk(k)
        return Labels(
            [{"score": s, "label": self.labels[i]} for s, i in zip(best.values.tolist(), best.indices.tolist())]
        )


@dataclass
class RollingClassifier:
    """Keeps the last `window_s` of a live stream and classifies it on request; `history`
    holds the top label of the most recent results (newest last).

    Feeding only copies into the buffer, so it is cheap to call from a capture loop; call
    `classify()` from wherever the model runs, as often as it keeps up."""

    task: AudioClassification
    window_s: float = 1.0
    sample_rate: int | None = None
    top_k: int = 5
    history_size: int = 10
    history: deque = field(init=False)

    def __post_init__(self) -> None:
        self._resampler = audio.StreamResampler(self.sample_rate or self.task.rate, self.task.rate)
        self._size = max(self.task.model.config.receptive_field, int(self.window_s * self.task.rate))
        self._buffer = np.zeros(0, dtype=np.float32)
        self.history = deque(maxlen=self.history_size)

    @property
    def ready(self) -> bool:
        """Whether enough audio has arrived for one frame of the model."""
        return len(self._buffer) >= self.task.model.config.receptive_field

    def feed(self, block: np.ndarray) -> None:
        samples = self._resampler.push(audio.to_mono(block))
        self._buffer = np.concatenate([self._buffer, samples])[-self._size :]

    def classify(self) -> Labels | None:
        """The labels of the current window, or None while it is shorter than one frame."""
        if not self.ready:
            return None
        result = self.task.classify(self._buffer, self.top_k)
        if result.labels:
            self.history.append(result.labels[0])
        return result
