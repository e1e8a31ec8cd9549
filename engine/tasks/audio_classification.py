"""Audio classification with Wav2Vec2 / HuBERT sequence-classification checkpoints (keyword
spotting, emotion, language id): a clip in, the top labels with their probabilities out, as
transformers' "audio-classification" pipeline gives them. `RollingClassifier` classifies the
last second or so of a live stream, again and again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from engine import audio
from engine.config import id2label
from engine.errors import InputError
from engine.models.wav2vec2 import Wav2Vec2ForSequenceClassification
from engine.probe import maybe_watching
from engine.tasks.base import EXPLAIN, Hooks, Option
from engine.tasks.labels import LabelScore, ScoredLabels, apply_function, default_function, label_name
from engine.tasks.speech_common import AudioInput, SpeechTask, as_samples


class AudioClassification(SpeechTask):
    """Wav2Vec2 / HuBERT frames, mean-pooled over the clip and classified."""

    name = "audio-classification"
    title = "Audio classification"
    head = "audio-classification"
    default_model = "superb/wav2vec2-base-superb-ks"
    suggested_models = ("superb/wav2vec2-base-superb-ks", "superb/hubert-large-superb-er")
    extra_files = ("preprocessor_config.json",)
    options = (Option("top_k", int, 5, "how many labels to return"), EXPLAIN)

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        labels = id2label(self.config)
        self.labels = [label_name(labels, i) for i in range(self.model.config.num_labels)]
        self.activation = default_function(
            self.config.get("problem_type"), len(self.labels), one_label_sigmoid=False
        )

    def info(self) -> dict[str, Any]:
        return {**super().info(), "labels": list(self.labels), "head": "mean-pooled frames, linear"}

    @property
    def network_head(self) -> Wav2Vec2ForSequenceClassification:
        """The loaded model, typed as the classification model `load_speech_model` built."""
        return cast(Wav2Vec2ForSequenceClassification, self.model.module)

    def run(self, input: AudioInput, *, hooks: Hooks | None = None, **options: Any) -> ScoredLabels:
        opts = self.resolve_options(options)
        samples = audio.load_audio(input, self.rate) if isinstance(input, (str, Path)) else as_samples(input)
        # explain watches only the projector (its output: the frames the head pools), so the
        # attention keeps its fused path and the scores stay bit-identical
        with maybe_watching(opts["explain"], self.network_head.projector, taps=[""]) as probe:
            result = self.classify(samples, opts["top_k"])
        if probe is not None:
            result.internals = self.inside(probe.records[""][0], result)
        return result

    def inside(self, frames: torch.Tensor, result: ScoredLabels) -> dict[str, np.ndarray]:
        """What the "Inside the model" view shows: the label scores over time, one window per
        step (`window_scores` (windows, labels), `window_times` (windows, 2) seconds, from
        `frame_windows` on the clip's projected `frames` (frames, size) unless `result` already
        carries them), the `labels`, and for a weighted-layer-sum head the softmaxed
        `layer_weights` (layers + 1: the encoder's input, then each layer's output)."""
        found = _result_windows(result)
        if found is None:
            with torch.inference_mode():
                frame_logits = self.network_head.classifier(frames).float()  # (frames, labels)
            frame_s = self.model.config.samples_per_frame / self.rate
            found = frame_windows(frame_logits, frame_s, self.activation)
        times, scores = found
        kept = {"window_times": times, "window_scores": scores, "labels": np.array(self.labels, dtype=np.str_)}
        weights = getattr(self.network_head, "layer_weights", None)
        if weights is not None:
            kept["layer_weights"] = weights.detach().float().softmax(-1).cpu().numpy()
        return kept

    def classify(self, samples: np.ndarray, top_k: int | None = 5) -> ScoredLabels:
        if top_k is not None and top_k < 1:
            raise InputError("--top-k must be at least 1")
        scores = apply_function(self.model(samples), self.activation)
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        best = scores.topk(k)
        return ScoredLabels(
            # score first, as the pipeline orders its keys
            [LabelScore(score=s, label=self.labels[i]) for s, i in zip(best.values.tolist(), best.indices.tolist())]
        )


#: The window and step of the scores over time, in seconds (keyword models hear one second).
WINDOW_S, STEP_S = 1.0, 0.5


def frame_windows(
    frame_logits: torch.Tensor, frame_s: float, function: str, window_s: float = WINDOW_S, step_s: float = STEP_S
) -> tuple[np.ndarray, np.ndarray]:
    """Scores over time from the clip's own pass: the head averages its frames and both of its
    layers are linear, so the clip's logits are the mean of the per-frame logits (frames,
    labels), and each window's scores are `function` of the mean over its frames. Windows of
    `window_s` every `step_s`, the last one ending with the clip (a clip no longer than one
    window is one window, whose scores are the clip's): ((windows, 2) start and end seconds,
    (windows, labels) scores)."""
    count = len(frame_logits)
    size, step = max(1, round(window_s / frame_s)), max(1, round(step_s / frame_s))
    starts = [0] if count <= size else [*range(0, count - size, step), count - size]
    means = torch.stack([frame_logits[s : s + size].mean(dim=0) for s in starts])
    times = [(s * frame_s, min(s + size, count) * frame_s) for s in starts]
    return np.array(times, dtype=np.float32), apply_function(means, function).cpu().numpy().astype(np.float32)


def _result_windows(result: ScoredLabels) -> tuple[np.ndarray, np.ndarray] | None:
    """The scores over time that windowed long-file classification puts on its result
    (`window_times`, `window_scores`), when it does; None until then."""
    times, scores = getattr(result, "window_times", None), getattr(result, "window_scores", None)
    if times is None or scores is None:
        return None
    return np.asarray(times, dtype=np.float32).reshape(-1, 2), np.asarray(scores, dtype=np.float32)


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
        self._size = max(self.task.model.config.shortest_input, int(self.window_s * self.task.rate))
        self._buffer = np.zeros(0, dtype=np.float32)
        self.history = deque(maxlen=self.history_size)

    @property
    def ready(self) -> bool:
        """Whether enough audio has arrived for one frame of the model."""
        return len(self._buffer) >= self.task.model.config.shortest_input

    def feed(self, block: np.ndarray) -> None:
        samples = self._resampler.push(audio.to_mono(block))
        self._buffer = np.concatenate([self._buffer, samples])[-self._size :]

    def classify(self) -> ScoredLabels | None:
        """The labels of the current window, or None while it is shorter than one frame."""
        if not self.ready:
            return None
        result = self.task.classify(self._buffer, self.top_k)
        if result.labels:
            self.history.append(result.labels[0])
        return result
