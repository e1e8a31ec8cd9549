"""Moving live audio from an input to the engine worker, and the sessions that use it there.

`LiveFeeder` (UI thread) drains the input's ring buffer on a timer, records what it heard to a
WAV file, reports the level, and keeps every sample in a queue of its own. It sends that queue
to the worker as one `call` job whenever no job of its session is in flight: while the model is
busy, audio piles up and goes out as one larger block, so nothing is skipped and the worker is
never flooded. Stopping drains the input and sends the rest with `session.finish`.

A session (`TranscriptionSession`, `ClassificationSession`) is a plain object whose methods run
in the worker thread, one call at a time, in the order they were sent; it holds the engine's
streaming state (a `LiveTranscriber`, a `RollingClassifier`) between calls. It imports the
engine inside its methods, so this module stays free of torch.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.audio_input import AudioSource
from app.worker import Engine, ModelSpec, Outcome

PUMP_MS = 50  # how often the input is drained: the level meter moves at 20 frames a second


@dataclass(frozen=True)
class LiveText:
    """What a live transcription shows: text that will not change, and the provisional tail."""

    committed: str
    partial: str
    heard_s: float
    # the newest frames' best characters, as the speech task's inside view reads them
    # (`LiveTranscriber.frames`); None in the updates sent while one call is still running
    frames: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class LiveLabels:
    """The labels of the newest window, and the top label of each recent window (oldest first)."""

    labels: list[dict[str, Any]]
    history: list[dict[str, Any]] = field(default_factory=list)
    heard_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # every label's score in the newest window, in the model's label order (`label_names`),
    # for the inside view's scores over time; None before the first window
    scores: np.ndarray | None = None
    label_names: tuple[str, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        """The newest window's labels, shaped as the audio-classification pipeline gives them."""
        return [dict(item) for item in self.labels]


class TranscriptionSession:
    """A `LiveTranscriber` kept in the worker thread. `feed` returns a `LiveText`; `finish`
    flushes the last words and returns the engine's final `Transcript` (word timings included)."""

    def __init__(self, rate: int, chunk_length_s: float | None = None, stride_length_s: float | None = None) -> None:
        self.rate = rate
        self.chunk_length_s = chunk_length_s
        self.stride_length_s = stride_length_s
        self.fed = 0  # samples handed to the transcriber, at the input's rate
        self._transcriber: Any = None

    def _get(self, task: Any) -> Any:
        if self._transcriber is None:
            from engine.tasks.live_transcription import LIVE_CHUNK_S, LIVE_STRIDE_S, LiveTranscriber

            self._transcriber = LiveTranscriber(
                task,
                chunk_length_s=self.chunk_length_s or LIVE_CHUNK_S,
                stride_length_s=self.stride_length_s if self.chunk_length_s else LIVE_STRIDE_S,
                sample_rate=self.rate,
            )
        return self._transcriber

    def feed(self, samples: np.ndarray, task: Any, hooks: Any) -> LiveText:
        live = self._get(task)
        if hooks.on_partial is not None:
            # one call may finish several windows when audio piled up: show each as it lands
            live.on_partial = lambda committed, partial: hooks.on_partial(
                LiveText(committed, partial, live.heard_seconds)
            )
        live.feed(samples)
        self.fed += len(samples)
        return LiveText(live.committed, live.partial, live.heard_seconds, frames=live.frames())

    def finish(self, samples: np.ndarray, task: Any, hooks: Any) -> Any:
        """The last samples, then the final transcript, its `internals` the newest frames."""
        live = self._get(task)
        live.on_partial = None
        if len(samples):
            live.feed(samples)
            self.fed += len(samples)
        transcript = live.flush()
        transcript.internals = live.frames()  # the inside view keeps showing the last frames
        return transcript


class ClassificationSession:
    """A `RollingClassifier` kept in the worker thread: each call adds the new audio and
    classifies the newest window (newest wins: windows that passed while the model was busy are
    not classified). Returns a `LiveLabels`, or None while less than `hop_s` of new audio has
    arrived since the last window: the history then holds one entry per hop whatever the
    machine's speed, and a fast model does not classify nearly the same second twenty times."""

    def __init__(
        self, rate: int, window_s: float = 1.0, top_k: int = 5, history_size: int = 12, hop_s: float = 0.25
    ) -> None:
        self.rate = rate
        self.window_s = window_s
        self.top_k = top_k
        self.history_size = history_size
        self.hop = max(1, int(hop_s * rate))
        self.fed = 0
        self._classified_at = 0  # `fed` when the newest window was classified
        self._classifier: Any = None

    def _get(self, task: Any) -> Any:
        if self._classifier is None:
            from engine.tasks.audio_classification import RollingClassifier

            self._classifier = RollingClassifier(
                task, window_s=self.window_s, sample_rate=self.rate, top_k=self.top_k, history_size=self.history_size
            )
        return self._classifier

    def feed(self, samples: np.ndarray, task: Any, hooks: Any) -> LiveLabels | None:
        rolling = self._get(task)
        rolling.feed(samples)
        self.fed += len(samples)
        if self.fed - self._classified_at < self.hop and self._classified_at:
            return None
        return self._classify(rolling)

    def finish(self, samples: np.ndarray, task: Any, hooks: Any) -> LiveLabels:
        rolling = self._get(task)
        rolling.feed(samples)
        self.fed += len(samples)
        return self._classify(rolling)

    def _classify(self, rolling: Any) -> LiveLabels:
        result = rolling.classify()
        heard = self.fed / self.rate
        if result is None:  # not yet one frame of audio
            return LiveLabels([], [dict(h) for h in rolling.history], heard)
        self._classified_at = self.fed
        return LiveLabels(result.to_json(), [dict(h) for h in rolling.history], heard,
                          scores=rolling.last_scores, label_names=tuple(rolling.task.labels))


class LiveFeeder(QObject):
    """One live session: input → ring buffer → (this, on a timer) → worker → signals.

    Signals: `level(rms, peak)` per drained block (linear, 0..1); `updated(value)` for each
    result (unless None) or partial result of `session.feed`; `finished(outcome)` once `session.finish`
    has answered (an `Outcome`); `failed(message)` when the input or the engine failed (the
    feeder still finishes with the audio it had, when the input was at fault)."""

    level = Signal(float, float)
    updated = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        engine: Engine,
        spec: ModelSpec,
        source: AudioSource,
        session: Any,
        *,
        record: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.spec = spec
        self.source = source
        self.session = session
        self.captured = 0  # frames taken from the input
        self.sent = 0  # frames sent to the worker
        self._pending: list[np.ndarray] = []
        self._job: int | None = None  # the feed job in flight
        self._finish_job: int | None = None
        self._stopping = False
        self.done = False
        self._recording_dir: tempfile.TemporaryDirectory | None = None
        self._writer: Any = None
        self.recording: Path | None = None
        self._record = record
        self._timer = QTimer(self)
        self._timer.setInterval(PUMP_MS)
        self._timer.timeout.connect(self._pump)
        engine.result.connect(self._on_result)
        engine.partial.connect(self._on_partial)
        engine.failed.connect(self._on_failed)
        engine.cancelled.connect(self._on_cancelled)

    @property
    def rate(self) -> int:
        return self.source.rate

    @property
    def seconds(self) -> float:
        return self.captured / self.rate

    @property
    def behind_s(self) -> float:
        """Audio captured but not yet answered by the worker, in seconds."""
        waiting = sum(len(p) for p in self._pending)
        return waiting / self.rate

    def is_running(self) -> bool:
        return not self.done and not self._stopping

    def start(self) -> None:
        """Open the input (raises `AudioUnavailable`) and start draining it."""
        if self._record:
            from engine.audio import WavWriter  # numpy and soundfile only: no torch here

            self._recording_dir = tempfile.TemporaryDirectory(prefix="task-studio-rec-")
            self.recording = Path(self._recording_dir.name) / "recording.wav"
            self._writer = WavWriter(self.recording, self.rate)
        self.source.start()
        self._timer.start()

    def stop(self) -> None:
        """Stop listening; what was heard is still transcribed, then `finished` fires."""
        if self._stopping or self.done:
            return
        self._stopping = True
        self._timer.stop()
        self.source.stop()
        self._take(self.source.read())
        self._close_recording()
        samples = self._drain()
        self._finish_job = self.engine.call(self.spec, functools.partial(self.session.finish, samples), live="audio")

    def release(self) -> None:
        """Forget the recording's temporary folder (call when the recording is no longer needed)."""
        self._close_recording()
        if self._recording_dir is not None:
            self._recording_dir.cleanup()
            self._recording_dir = None
            self.recording = None

    # ---- the pump -------------------------------------------------------------------------

    @Slot()
    def _pump(self) -> None:
        self._take(self.source.read())
        if self.source.error:
            message = self.source.error
            self.stop()
            self.failed.emit(message)
            return
        if self.source.ended:
            self.stop()
            return
        self._send()

    def _take(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        mono = frames.mean(axis=1, dtype=np.float32) if frames.ndim == 2 else frames.astype(np.float32)
        self.captured += len(mono)
        if self._writer is not None:
            self._writer.write(mono)
        self._pending.append(mono)
        self.level.emit(float(np.sqrt(np.mean(np.square(mono)))), float(np.max(np.abs(mono))))

    def _drain(self) -> np.ndarray:
        samples = np.concatenate(self._pending) if self._pending else np.zeros(0, dtype=np.float32)
        self._pending = []
        self.sent += len(samples)
        return samples

    def _send(self) -> None:
        if self._job is not None or not self._pending or self._stopping:
            return
        samples = self._drain()
        self._job = self.engine.call(self.spec, functools.partial(self.session.feed, samples), live="audio")

    def _close_recording(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ---- worker answers --------------------------------------------------------------------

    @Slot(int, object)
    def _on_result(self, job_id: int, outcome: Outcome) -> None:
        if job_id == self._job:
            self._job = None
            if outcome.result is not None:  # None: the session had nothing new to show
                self.updated.emit(outcome.result)
            self._send()
        elif job_id == self._finish_job:
            self._finish_job = None
            self.done = True
            self.finished.emit(outcome)

    @Slot(int, object)
    def _on_partial(self, job_id: int, value: Any) -> None:
        if job_id == self._job:
            self.updated.emit(value)

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, _kind: str, message: str) -> None:
        if job_id not in (self._job, self._finish_job):
            return
        self._job = self._finish_job = None
        if not self._stopping:
            self._stopping = True
            self._timer.stop()
            self.source.stop()
            self._close_recording()
        self.done = True
        self.failed.emit(message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id in (self._job, self._finish_job):  # the engine is shutting down
            self._on_failed(job_id, "Cancelled", "live input stopped: the engine was shut down")
