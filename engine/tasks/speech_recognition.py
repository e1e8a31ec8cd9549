"""Speech recognition with CTC checkpoints (Wav2Vec2, HuBERT): audio file or samples in, text
with word timings out, shaped like transformers' "automatic-speech-recognition" pipeline.

Long audio is cut into overlapping windows on the pipeline's chunk grid (see engine.tasks.speech_common):
each window is decoded with context on both sides and only its middle frames are kept, so
words at the seams come out as a single pass would give them. Files are read and resampled
block by block, so memory stays at about one window whatever the length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import audio
from engine.ctc import CTCVocabulary, Span
from engine.errors import InputError
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, Hooks, Option, Result
from engine.tasks.speech_common import (
    AudioInput,
    Chunk,
    SpeechTask,
    StridedChunker,
    as_samples,
    best_ids,
    chunk_logits,
    chunk_sizes,
)
from engine.tasks.speech_inside import FrameTops


@dataclass
class Transcript(Result):
    """`text`, and with timestamps `chunks`: [{"text", "timestamp": (start_s, end_s)}]."""

    text: str
    chunks: list[dict[str, Any]] | None = None
    duration: float = 0.0  # seconds of audio heard

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.chunks is not None:
            out["chunks"] = [dict(c) for c in self.chunks]
        return out

    def write_files(self, folder: Path, stem: str) -> dict[str, Any]:
        """Subtitles (`stem`.srt) when the transcript has timings, else its text (`stem`.txt);
        the JSON with the file's path under "subtitles" or "text_file"."""
        from engine.tasks.subtitles import export  # it builds on this module

        if self.chunks is None:
            return {**self.to_json(), "text_file": str(export(self, Path(folder) / f"{stem}.txt"))}
        return {**self.to_json(), "subtitles": str(export(self, Path(folder) / f"{stem}.srt"))}


@dataclass
class FrameIds:
    """Argmax ids of consecutive frames, collected window by window."""

    parts: list[np.ndarray] = field(default_factory=list)

    def add(self, ids: np.ndarray) -> None:
        self.parts.append(ids)

    def all(self) -> np.ndarray:
        if len(self.parts) != 1:  # join once; later calls reuse the joined array
            self.parts = [np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)]
        return self.parts[0]


class SpeechRecognition(SpeechTask):
    """Wav2Vec2 / HuBERT with a CTC head: greedy decoding of per-frame characters."""

    name = "automatic-speech-recognition"
    title = "Speech recognition"
    head = "ctc"
    default_model = "facebook/wav2vec2-base-960h"
    suggested_models = (
        "facebook/wav2vec2-base-960h",
        "facebook/wav2vec2-large-960h-lv60-self",
        "facebook/hubert-large-ls960-ft",
    )
    extra_files = ("preprocessor_config.json", "vocab.json", "tokenizer_config.json", "special_tokens_map.json")
    output_files = "subtitles (.srt) of each recording, or its text (.txt) with --return-timestamps none"
    options = (
        Option(
            "chunk_length_s", float, 30.0,
            "decode audio longer than this in overlapping windows of this many seconds; 0 decodes it in one pass",
        ),
        Option("stride_length_s", float, None, "seconds of context on each side of a window; None: a sixth of it"),
        Option("return_timestamps", str, "word", "timestamps per word, per character, or none", ("word", "char", "none")),
        EXPLAIN,
    )  # fmt: skip

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.vocabulary = CTCVocabulary.from_folder(folder)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "vocabulary": len(self.vocabulary), "head": "CTC (greedy)"}

    def run(self, input: AudioInput, *, hooks: Hooks | None = None, **options: Any) -> Transcript:
        hooks = hooks or Hooks()
        options = self.resolve_options(options)
        if isinstance(input, (str, Path)):
            total = audio.audio_info(input).duration
            blocks: Iterable[np.ndarray] = audio.iter_audio(input, self.rate)
        else:
            samples = as_samples(input)
            total = len(samples) / self.rate
            blocks = [samples]
        tops = FrameTops() if options["explain"] else None
        ids, heard = self._frame_ids(
            blocks, total, options["chunk_length_s"], options["stride_length_s"], hooks, tops
        )
        transcript = self.transcript(ids, options["return_timestamps"], heard / self.rate)
        if tops is not None:
            frame_s = self.model.config.samples_per_frame / self.rate
            transcript.internals = tops.internals(self.vocabulary, ids, frame_s)
        return transcript

    def _frame_ids(
        self,
        blocks: Iterable[np.ndarray],
        total: float,
        chunk_length_s: float | None,
        stride_length_s: float | None,
        hooks: Hooks,
        tops: FrameTops | None = None,
    ) -> tuple[np.ndarray, int]:
        """Per-frame argmax ids of the whole input, and how many samples it had; `tops`, when
        given, collects each frame's best characters too."""
        report = _Progress(hooks, total)
        if not chunk_length_s:  # one pass over everything
            samples = np.concatenate(list(blocks))
            check_cancel(hooks.cancel)
            every = self.model(samples)
            if tops is not None:
                tops.add(every)
            report(len(samples) / self.rate)
            return every.argmax(-1).cpu().numpy(), len(samples)
        config = self.model.config
        sizes = chunk_sizes(chunk_length_s, stride_length_s, self.rate, config.samples_per_frame, config.shortest_input)
        chunker = StridedChunker(*sizes)
        collected = FrameIds()
        for chunk in _windows(chunker, blocks):
            check_cancel(hooks.cancel)
            logits = chunk_logits(self.model, chunk)
            if logits is not None:
                collected.add(best_ids(logits))
                if tops is not None:
                    tops.add(logits)
            report((chunk.start + len(chunk.samples) - chunk.right) / self.rate)
            if hooks.on_partial is not None:  # the text so far: it only ever grows
                hooks.on_partial(self.vocabulary.decode(collected.all()))
        if chunker.received == 0:
            raise InputError("the audio holds no samples")
        return collected.all(), chunker.received

    def transcript(self, ids: np.ndarray, timestamps: str = "word", duration: float = 0.0) -> Transcript:
        """Text (and timestamps) from the per-frame ids of a whole input."""
        text = self.vocabulary.decode(ids)
        if timestamps == "none":
            return Transcript(text, duration=duration)
        spans = self.vocabulary.word_spans(ids) if timestamps == "word" else self.vocabulary.char_spans(ids)
        return Transcript(text, [self.timed(span) for span in spans], duration=duration)

    def timed(self, span: Span) -> dict[str, Any]:
        """A span as the pipeline reports it: frame offsets times the frame duration."""
        step, rate = self.model.config.samples_per_frame, self.rate
        return {"text": span.text, "timestamp": (span.start * step / rate, span.end * step / rate)}


def _windows(chunker: StridedChunker, blocks: Iterable[np.ndarray]) -> Iterator[Chunk]:
    for block in blocks:
        yield from chunker.push(block)
    yield from chunker.finish()


class _Progress:
    """Calls `on_progress(done_seconds, total_seconds, "transcribing")`, never past the total."""

    def __init__(self, hooks: Hooks, total: float) -> None:
        self.hooks, self.total = hooks, round(total, 2) or None

    def __call__(self, done: float) -> None:
        if self.hooks.on_progress is not None:
            done = round(done, 2)
            self.hooks.on_progress(min(done, self.total) if self.total else done, self.total, "transcribing")
