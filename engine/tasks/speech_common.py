"""What the Wav2Vec2-family audio tasks share: reading the checkpoint and its
preprocessor_config.json, turning samples into model input exactly as transformers'
`Wav2Vec2FeatureExtractor` does, and the strided chunk grid used for long audio.

The chunk grid is the one of transformers' speech-recognition pipeline (`chunk_length_s`,
`stride_length_s`): windows of `chunk` samples that start every `chunk - left - right`
samples, whose first `left` and last `right` samples are context only. The file task and the
live transcriber both walk it with `StridedChunker`, so they see exactly the same windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from engine.audio import check_samples
from engine.config import from_dict, read_json
from engine.errors import InputError
from engine.models import wav2vec2
from engine.tasks.base import Family, Task, find_family

AudioInput = str | Path | np.ndarray

_HEADS = {"ctc": wav2vec2.Wav2Vec2ForCTC, "audio-classification": wav2vec2.Wav2Vec2ForSequenceClassification}
_TASK_OF_HEAD = {"ctc": "speech recognition", "audio-classification": "audio classification"}
FAMILIES: dict[str, Family] = {
    # HuBERT checkpoints differ from Wav2Vec2 only in pre-training: same modules, same keys
    name: Family(title, wav2vec2.Wav2Vec2Config.from_json, _HEADS, wav2vec2.adapt, wav2vec2.describe)
    for name, title in (("wav2vec2", "Wav2Vec2"), ("hubert", "HuBERT"))
}


@dataclass(frozen=True)
class FeatureSettings:
    """preprocessor_config.json of a Wav2Vec2FeatureExtractor (its defaults when absent).

    Its `return_attention_mask` is not read: clips go through the model one at a time and
    unpadded, where a mask of ones would change nothing."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset({"sampling_rate"})

    sampling_rate: int = 16_000
    do_normalize: bool = True


def feature_settings(folder: Path) -> FeatureSettings:
    path = Path(folder) / "preprocessor_config.json"
    if not path.is_file():
        return FeatureSettings()
    return from_dict(FeatureSettings, read_json(path), source=path.name)


def load_speech_model(
    folder: Path, head: str, device: torch.device, dtype: torch.dtype
) -> tuple[nn.Module, wav2vec2.Wav2Vec2Config]:
    """The checkpoint in `folder` built with `head` ("ctc" or "audio-classification")."""
    data = read_json(Path(folder) / "config.json")
    family = find_family(data, FAMILIES, head, _TASK_OF_HEAD[head])
    config = family.config(data)
    return family.load(head, folder, config, device, dtype), config


def normalize(samples: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Zero mean, unit variance per utterance when the checkpoint asks for it, in float32 with
    the same operations as transformers (so the values agree to the last bit)."""
    samples = np.asarray(samples, dtype=np.float32)
    if not settings.do_normalize:
        return samples
    return (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)


def as_samples(value: Any) -> np.ndarray:
    """A 1-D float32 array from what a caller hands a task; anything else is an `InputError`."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()  # numpy has no bfloat16
    if not isinstance(value, np.ndarray):
        raise InputError(f"expected an audio file or an array of samples, got {type(value).__name__}")
    if value.ndim != 1:
        raise InputError(f"audio arrays must be mono (samples,), got shape {value.shape}")
    if value.dtype.kind not in "fiu":
        raise InputError(f"audio samples must be numbers, got {value.dtype}")
    if len(value) == 0:
        raise InputError("the audio holds no samples")
    return check_samples(value).astype(np.float32, copy=False)  # checked first: 1e300 is inf in float32


class SpeechModel:
    """A loaded model with its input settings: samples in, the head's output out."""

    def __init__(self, folder: Path, head: str, device: torch.device, dtype: torch.dtype) -> None:
        self.module, self.config = load_speech_model(folder, head, device, dtype)
        self.family = FAMILIES[self.config.model_type]
        self.features = feature_settings(folder)
        self.device = device
        self.dtype = dtype

    @property
    def rate(self) -> int:
        return self.features.sampling_rate

    def check_length(self, n: int) -> None:
        need = self.config.shortest_input
        if n < need:
            raise InputError(
                f"the audio is too short ({n} samples): the model needs at least {need} "
                f"({1000 * need / self.rate:.0f} ms)"
            )

    @torch.inference_mode()
    def __call__(self, samples: np.ndarray) -> torch.Tensor:
        """One utterance through the model (batch of one; no padding, so no mask is needed)."""
        self.check_length(len(samples))
        x = torch.from_numpy(normalize(samples, self.features))[None].to(self.device, self.dtype)
        return self.module(x)[0].float()

    def describe(self) -> dict[str, Any]:
        """Facts for `Task.info()`: the conv stack, the Transformer and the frame rate."""
        return {
            "model_type": self.config.model_type,
            "architecture": self.family.title,
            **self.family.describe(self.config),
            "frame_ms": 1000 * self.config.samples_per_frame / self.rate,
            "frames_per_second": self.rate / self.config.samples_per_frame,
            "sampling_rate": self.rate,
            "normalize_input": self.features.do_normalize,
        }


class SpeechTask(Task):
    """A Wav2Vec2-family checkpoint with the head named by `head`, and its feature settings."""

    modality = "audio"
    input_kind = "audio"
    head: ClassVar[str]  # a key of FAMILIES' heads

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.model = SpeechModel(folder, self.head, device, dtype)

    @property
    def rate(self) -> int:
        return self.model.rate

    def network(self) -> nn.Module:
        return self.model.module

    def info(self) -> dict[str, Any]:
        return {**self.model.describe(), "parameters": self.parameter_count(), **self.runtime_facts()}


# ---- the strided chunk grid -----------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """One window of the grid: its samples, where it starts, and how many samples at each end
    are context only (0 at the very start and at the very end)."""

    samples: np.ndarray
    start: int
    left: int
    right: int
    is_last: bool


def chunk_sizes(
    chunk_length_s: float,
    stride_length_s: float | None,
    rate: int,
    samples_per_frame: int,
    shortest_input: int = 1,
) -> tuple[int, int, int]:
    """(chunk, left, right) in samples, rounded to whole frames as the pipeline rounds them;
    the stride defaults to a sixth of the chunk on each side. A chunk must hold at least the
    model's `shortest_input` (its receptive field: the samples that make one frame)."""
    if stride_length_s is None:
        stride_length_s = chunk_length_s / 6
    if not (math.isfinite(chunk_length_s) and math.isfinite(stride_length_s)):
        raise InputError("chunk and stride lengths must be finite numbers of seconds")
    if chunk_length_s < 0 or stride_length_s < 0:
        raise InputError("chunk and stride lengths must not be negative")

    def to_samples(seconds: float) -> int:
        return int(round(seconds * rate / samples_per_frame) * samples_per_frame)

    chunk, stride = to_samples(chunk_length_s), to_samples(stride_length_s)
    if chunk < shortest_input:
        shortest = math.ceil(shortest_input / samples_per_frame) * samples_per_frame / rate
        raise InputError(
            f"a chunk of {chunk_length_s:g} s is shorter than the model's smallest window: one frame "
            f"takes {1000 * shortest_input / rate:g} ms of audio (its receptive field) and chunks are "
            f"whole {1000 * samples_per_frame / rate:g} ms frames, so use at least {shortest:g} s "
            "(or 0 for one pass over everything)"
        )
    if chunk <= 2 * stride:
        raise InputError(
            f"the chunk ({chunk_length_s:g} s) must be longer than twice the stride ({stride_length_s:g} s)"
        )
    return chunk, stride, stride


class StridedChunker:
    """Walks the chunk grid over a stream of samples pushed in pieces of any size.

    A window is complete as a middle window once a sample past its end has arrived (until
    then it might turn out to be the last one); `finish()` closes the stream. Only the
    samples from the start of the next window on are kept, so memory stays at one window."""

    def __init__(self, chunk: int, left: int, right: int) -> None:
        self.chunk, self.left, self.right = chunk, left, right
        self.step = chunk - left - right
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream position of _buffer[0]
        self._next = 0  # stream position where the next window starts
        self._done = False

    @property
    def received(self) -> int:
        return self._buffer_start + len(self._buffer)

    def push(self, samples: np.ndarray) -> list[Chunk]:
        if self._done:
            raise RuntimeError("push() after the last window")
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32)])
        ready = []
        while self.received > self._next + self.chunk:
            ready.append(self._take(self.chunk, is_last=False))
        return ready

    def finish(self) -> list[Chunk]:
        """The windows left once the stream has ended, the last one included."""
        if self._done:
            return []
        self._done = True
        ready = []
        while True:
            end = self._next + self.chunk
            is_last = end >= self.received
            left = self.left if self._next > 0 else 0
            if min(end, self.received) - self._next > left:  # the pipeline skips windows of context only
                ready.append(self._take(self.chunk, is_last=is_last))
            elif not is_last:
                self._advance()
            if is_last:
                return ready

    def pending(self) -> tuple[np.ndarray, int, int]:
        """The samples of the window under way (from its start to now), its stream position
        and its left context, for a provisional decode."""
        offset = self._next - self._buffer_start
        return self._buffer[offset:], self._next, (self.left if self._next > 0 else 0)

    def _take(self, size: int, *, is_last: bool) -> Chunk:
        offset = self._next - self._buffer_start
        samples = self._buffer[offset : offset + size].copy()
        chunk = Chunk(
            samples,
            self._next,
            self.left if self._next > 0 else 0,
            0 if is_last else self.right,
            is_last,
        )
        self._advance()
        return chunk

    def _advance(self) -> None:
        self._next += self.step
        drop = min(self._next - self._buffer_start, len(self._buffer))
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop


def kept_frames(n_samples: int, left: int, right: int, samples_per_frame: int) -> tuple[int, int]:
    """The frame range [first, end) of a window's logits that is not context: the pipeline's
    `rescale_stride`, rounding included (so frame counts agree with it exactly)."""
    frames = int(round(n_samples / samples_per_frame))
    first = int(round(left / n_samples * frames))
    last = int(round(right / n_samples * frames))
    return first, frames - last


def chunk_logits(model: SpeechModel, chunk: Chunk) -> torch.Tensor | None:
    """The logits (frames, vocabulary) of a window's own frames (its context frames cut off),
    or None for a sliver at the end too short for one frame."""
    if chunk.start > 0 and len(chunk.samples) < model.config.shortest_input:
        return None
    first, end = kept_frames(len(chunk.samples), chunk.left, chunk.right, model.config.samples_per_frame)
    return model(chunk.samples)[first:end]


def chunk_ids(model: SpeechModel, chunk: Chunk) -> np.ndarray:
    """The argmax ids of a window's own frames (its context frames cut off)."""
    logits = chunk_logits(model, chunk)
    return np.zeros(0, dtype=np.int32) if logits is None else best_ids(logits)


def best_ids(logits: torch.Tensor) -> np.ndarray:
    """Each frame's argmax id, as int32 (4 bytes per 20 ms kept)."""
    return logits.argmax(-1).cpu().numpy().astype(np.int32)
