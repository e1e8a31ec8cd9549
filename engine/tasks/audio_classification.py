"""Audio classification with Wav2Vec2 / HuBERT sequence-classification checkpoints (keyword
spotting, emotion, language id): a clip in, the top labels with their probabilities out, as
transformers' "audio-classification" pipeline gives them. `RollingClassifier` classifies the
last second or so of a live stream, again and again.

A long file is classified in windows rather than in one pass, whose memory and time grow with
the square of its length (a 30-minute file took 126 s and 1.27 GB in one pass). Windows are
`chunk_length_s` long (30 s, as speech recognition's chunks) and start every `chunk_length_s -
stride_length_s` (neighbours share a sixth of a window by default); the last one ends where the
file ends, so every window is full. A file that fits one window is read in one pass and gets
exactly the pipeline's answer. The answer for a longer file is the mean of its windows' scores
(probabilities after the head's softmax or sigmoid), and the result keeps every window's scores
and times (`window_scores`, `window_times`) for a plot of the classes over time. The file is
read block by block, so memory stays at about one window; progress is reported and a cancel
honoured between windows.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
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
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, Hooks, Option
from engine.tasks.labels import LabelScore, ScoredLabels, apply_function, default_function, label_name
from engine.tasks.speech_common import AudioInput, SpeechTask, as_samples


#: The default window: files up to this long are read in one pass, as the pipeline reads them.
WINDOW_S = 30.0
#: Longer than this, a file read in one pass (--chunk-length-s 0) is warned about.
LONG_ONE_PASS_S = 60.0


class AudioClassification(SpeechTask):
    """Wav2Vec2 / HuBERT frames, mean-pooled over the clip and classified."""

    name = "audio-classification"
    title = "Audio classification"
    head = "audio-classification"
    default_model = "superb/wav2vec2-base-superb-ks"
    suggested_models = ("superb/wav2vec2-base-superb-ks", "superb/hubert-large-superb-er")
    extra_files = ("preprocessor_config.json",)
    options = (
        Option("top_k", int, 5, "how many labels to return"),
        Option(
            "chunk_length_s", float, WINDOW_S,
            "classify audio longer than this in windows of this many seconds and give the mean of "
            "their scores; 0 reads it in one pass",
        ),
        Option("stride_length_s", float, None, "seconds neighbouring windows share; None: a sixth of a window"),
        EXPLAIN,
    )  # fmt: skip

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        labels = id2label(self.config)
        self.labels = [label_name(labels, i) for i in range(self.model.config.num_labels)]
        self.activation = default_function(
            self.config.get("problem_type"), len(self.labels), one_label_sigmoid=False
        )

    def info(self) -> dict[str, Any]:
        return {**super().info(), "labels": list(self.labels), "head": "mean-pooled frames, linear"}

    def run(self, input: AudioInput, *, hooks: Hooks | None = None, **options: Any) -> WindowedLabels:
        hooks = hooks or Hooks()
        opts = self.resolve_options(options)
        _check_top_k(opts["top_k"])
        if isinstance(input, (str, Path)):
            total = audio.audio_info(input).duration
            blocks: Iterable[np.ndarray] = audio.iter_audio(input, self.rate)
        else:
            samples = as_samples(input)
            total, blocks = len(samples) / self.rate, [samples]
        size, step = self.window_sizes(opts["chunk_length_s"], opts["stride_length_s"])
        warnings = []
        if size is None and total > LONG_ONE_PASS_S:
            warnings.append(
                f"{total:.0f} s of audio were read as one window: memory and time grow with the square "
                f"of the length; --chunk-length-s {WINDOW_S:g} classifies it in windows"
            )
            if hooks.on_progress is not None:
                hooks.on_progress(0, total, f"reading {total:.0f} s as one window")
        rows, times = [], []
        # explain watches only the projector (its output: the frames the head pools), so the
        # attention keeps its fused path and the scores stay bit-identical
        with maybe_watching(opts["explain"], self.network_head.projector, taps=[""]) as probe:
            for start, window in SlidingWindows(size, step).over(blocks):
                check_cancel(hooks.cancel)
                rows.append(apply_function(self.model(window), self.activation))
                times.append((start / self.rate, (start + len(window)) / self.rate))
                if hooks.on_progress is not None:
                    hooks.on_progress(round(min(times[-1][1], total), 2), round(total, 2) or None, "classifying")
        scores = torch.stack(rows)  # (windows, labels)
        result = self.top(scores.mean(0), opts["top_k"])
        windowed = WindowedLabels(
            result.labels, labels_order=list(self.labels), window_scores=scores.tolist(), window_times=times,
            warnings=warnings,
        )
        if probe is not None:
            windowed.internals = self.inside(probe.records[""][0], windowed)
        return windowed

    @property
    def network_head(self) -> Wav2Vec2ForSequenceClassification:
        """The loaded model, typed as the classification model `load_speech_model` built."""
        return cast(Wav2Vec2ForSequenceClassification, self.model.module)

    def inside(self, frames: torch.Tensor, result: WindowedLabels) -> dict[str, np.ndarray]:
        """What the "Inside the model" view shows: the label scores over time (`window_scores`
        (windows, labels), `window_times` (windows, 2) seconds), the `labels`, and for a
        weighted-layer-sum head the softmaxed `layer_weights` (layers + 1: the encoder's input,
        then each layer's output). A file read in windows shows its windows' scores; a clip
        read in one pass shows `frame_windows` of its projected `frames` (frames, size), from
        the same pass."""
        if len(result.window_scores) > 1:
            times = np.asarray(result.window_times, dtype=np.float32).reshape(-1, 2)
            scores = np.asarray(result.window_scores, dtype=np.float32)
        else:
            with torch.inference_mode():
                frame_logits = self.network_head.classifier(frames).float()  # (frames, labels)
            frame_s = self.model.config.samples_per_frame / self.rate
            times, scores = frame_windows(frame_logits, frame_s, self.activation)
        kept = {"window_times": times, "window_scores": scores, "labels": np.array(self.labels, dtype=np.str_)}
        weights = getattr(self.network_head, "layer_weights", None)
        if weights is not None:
            kept["layer_weights"] = weights.detach().float().softmax(-1).cpu().numpy()
        return kept

    def window_sizes(self, chunk_length_s: float, stride_length_s: float | None) -> tuple[int | None, int]:
        """(window, step) in samples for these options; window None for one pass."""
        if chunk_length_s < 0 or (stride_length_s is not None and stride_length_s < 0):
            raise InputError("--chunk-length-s and --stride-length-s must not be negative")
        if chunk_length_s == 0:
            return None, 0
        size = round(chunk_length_s * self.rate)
        shortest = self.model.config.shortest_input
        if size < shortest:
            raise InputError(
                f"a window of {chunk_length_s:g} s is shorter than the model's smallest input "
                f"({1000 * shortest / self.rate:g} ms)"
            )
        shared = round((chunk_length_s / 6 if stride_length_s is None else stride_length_s) * self.rate)
        if shared >= size:
            raise InputError(
                f"windows of {chunk_length_s:g} s cannot share {stride_length_s:g} s: the stride must be shorter"
            )
        return size, size - shared

    def classify(self, samples: np.ndarray, top_k: int | None = 5) -> ScoredLabels:
        """The labels of one window of samples, as the pipeline gives them."""
        _check_top_k(top_k)
        return self.top(self.scores(samples), top_k)

    def scores(self, samples: np.ndarray) -> torch.Tensor:
        """(labels,) every label's score for one window of samples, in the labels' order."""
        return apply_function(self.model(samples), self.activation)

    def top(self, scores: torch.Tensor, top_k: int | None) -> ScoredLabels:
        """The `top_k` best of (labels,) `scores` (all of them for None), best first."""
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        best = scores.topk(k)
        return ScoredLabels(
            # score first, as the pipeline orders its keys
            [LabelScore(score=s, label=self.labels[i]) for s, i in zip(best.values.tolist(), best.indices.tolist())]
        )


#: The window and step of the scores over time of a clip read in one pass, in seconds
#: (keyword models hear one second).
SCORES_WINDOW_S, SCORES_STEP_S = 1.0, 0.5


def frame_windows(
    frame_logits: torch.Tensor,
    frame_s: float,
    function: str,
    window_s: float = SCORES_WINDOW_S,
    step_s: float = SCORES_STEP_S,
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


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise InputError("--top-k must be at least 1")


@dataclass
class WindowedLabels(ScoredLabels):
    """The labels of a whole clip (the mean of its windows' scores, best first) and each
    window's scores for every label: `window_scores[w][i]` is label `labels_order[i]` in
    window `w`, which covers `window_times[w]` = (start_s, end_s). JSON gives only the labels,
    as the pipeline does."""

    labels_order: list[str] = field(default_factory=list)
    window_scores: list[list[float]] = field(default_factory=list)
    window_times: list[tuple[float, float]] = field(default_factory=list)


class SlidingWindows:
    """Windows of `size` samples every `step` samples over a stream pushed in blocks, the last
    one ending at the stream's end; a stream no longer than `size` (or any stream, when `size`
    is None) is one window of everything. Keeps at most about a window and a step of samples."""

    def __init__(self, size: int | None, step: int) -> None:
        self.size, self.step = size, step
        self._blocks: list[np.ndarray] = []  # the samples kept, from stream position _kept_from
        self._kept_from = 0
        self._received = 0
        self._next = 0  # where the next window starts

    def over(self, blocks: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """(start, samples) of each window, as soon as it is complete."""
        for block in blocks:
            yield from self.push(block)
        yield from self.finish()

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self._blocks.append(np.asarray(block, dtype=np.float32))
        self._received += len(block)
        if self.size is None:
            return []  # one pass: joined once, at the end
        ready = []
        # a window is complete once a sample past its end has come: until then it might be the
        # whole stream, which is read as one window of everything
        while self._received > self._next + self.size:
            ready.append((self._next, self._slice(self._next, self._next + self.size)))
            self._next += self.step
        # keep what the next window, and a last one ending at the newest sample, need
        self._drop_before(min(self._next, self._received - self.size))
        return ready

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The last window: everything for a short stream, else the one ending at its end."""
        if self._received == 0:
            raise InputError("the audio holds no samples")
        start = 0 if self.size is None else max(0, self._received - self.size)
        return [(start, self._slice(start, self._received))]

    def _slice(self, start: int, end: int) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0][start - self._kept_from : end - self._kept_from].copy()

    def _drop_before(self, position: int) -> None:
        drop = position - self._kept_from
        if drop > 0 and self._blocks:
            joined = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
            self._blocks = [joined[drop:]]
            self._kept_from = position


def window_count(samples: int, size: int, step: int) -> int:
    """How many windows `SlidingWindows(size, step)` makes of `samples` samples."""
    if samples <= size:
        return 1
    return math.ceil((samples - size) / step) + 1


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
        self.last_scores: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        """Whether enough audio has arrived for one frame of the model."""
        return len(self._buffer) >= self.task.model.config.shortest_input

    def feed(self, block: np.ndarray) -> None:
        samples = self._resampler.push(audio.to_mono(block))
        self._buffer = np.concatenate([self._buffer, samples])[-self._size :]

    def classify(self) -> ScoredLabels | None:
        """The labels of the current window, or None while it is shorter than one frame;
        `last_scores` then holds every label's score, in the labels' order."""
        if not self.ready:
            return None
        _check_top_k(self.top_k)
        scores = self.task.scores(self._buffer)
        self.last_scores = scores.float().cpu().numpy()
        result = self.task.top(scores, self.top_k)
        if result.labels:
            self.history.append(result.labels[0])
        return result
