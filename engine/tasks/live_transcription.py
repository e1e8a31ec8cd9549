"""Live transcription: audio arrives in small blocks (a microphone, 0.1 to 0.5 s at a time) and
text comes back as it is heard, in two parts: `committed` text that will never change, and a
`partial` tail that is redrawn as more audio arrives.

How it stays exact. Wav2Vec2 attends over its whole input and normalises each input by its own
mean and variance, so a frame's logits depend on every sample they were computed with: no
sliding window can reproduce a single pass over a whole file. What the transcriber reproduces
instead is the file task's chunked decoding (engine.tasks.speech_common's strided chunk grid): every
window of the grid is decoded, with the same samples, as soon as a sample past its end has
arrived, and its middle frames become final. Text is committed from final frames only, up to
the last finished word, so it never changes, and after `flush()` it is exactly the text
`SpeechRecognition.run(file, chunk_length_s=..., stride_length_s=...)` gives for the same
audio and settings (a recording shorter than one window: exactly the one-pass text).

Between windows, the newest few seconds (`partial_window_s`, the first second of it as context
only) are decoded provisionally: that is the partial tail, which appears within one short
decode of the words being spoken. Its cost does not grow with the window length, so final
windows can stay long enough for accurate text while partials stay quick.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine import audio
from engine.errors import InputError
from engine.tasks.speech_common import Chunk, StridedChunker, best_ids, chunk_logits, chunk_sizes
from engine.tasks.speech_inside import TOP, FrameTops, frame_tops
from engine.tasks.speech_recognition import FrameIds, SpeechRecognition, Transcript

#: `on_partial(committed, partial)`: the whole committed text and the provisional tail.
PartialFn = Callable[[str, str], None]

# settings for speech as it is spoken: windows start every 4 s, so a word is final within about
# 5 s (a step and the right context); in between, provisional decodes show it at once
LIVE_CHUNK_S = 6.0
LIVE_STRIDE_S = 1.0

#: The newest frames `frames()` describes for the inside view: 10 s of 20 ms frames.
SHOWN_FRAMES = 500


class LiveTranscriber:
    """Feed blocks with `feed()`, read `committed` and `partial` (or get them through
    `on_partial`), and call `flush()` when the audio stops to get the final transcript.

    `sample_rate` is the rate of the blocks fed (a microphone's 44.1 or 48 kHz is resampled
    on the fly); `partial_every_s` is how much new audio triggers a provisional decode. A
    quarter of a second keeps the newest words a decode or so away; where a decode takes longer
    than that, the app's feeder hands over the audio that piled up meanwhile as one block, so the
    decodes run back to back and never queue up.
    One thread owns a transcriber (the app's engine worker): it is not meant to be shared."""

    def __init__(
        self,
        task: SpeechRecognition,
        *,
        chunk_length_s: float = LIVE_CHUNK_S,
        stride_length_s: float | None = LIVE_STRIDE_S,
        sample_rate: int | None = None,
        partial_every_s: float = 0.25,
        partial_window_s: float = 3.0,
        on_partial: PartialFn | None = None,
    ) -> None:
        self.task = task
        self.model = task.model
        self.vocabulary = task.vocabulary
        self.chunk_length_s = chunk_length_s
        self.stride_length_s = stride_length_s
        config = self.model.config
        sizes = chunk_sizes(chunk_length_s, stride_length_s, task.rate, config.samples_per_frame, config.shortest_input)
        self._chunker = StridedChunker(*sizes)
        self._resampler = audio.StreamResampler(sample_rate or task.rate, task.rate)
        self._partial_every = max(1, int(partial_every_s * task.rate))
        self._since_partial = 0
        step = self.model.config.samples_per_frame
        window = max(self.model.config.shortest_input, int(partial_window_s * task.rate))
        self._partial_window = window // step * step
        self._context_frames = min(task.rate, window // 2) // step  # 1 s, or half a short window
        self._final = FrameIds()
        self._final_frames = 0
        self._provisional = np.zeros(0, dtype=np.int32)  # ids of the frames after the final ones
        # each frame's best ids and probabilities, for the inside view: the newest final frames'
        # (up to SHOWN_FRAMES of them) and the provisional ones', row for row with `_provisional`
        width = min(TOP, int(getattr(self.model.config, "vocab_size", 0) or TOP))
        self._final_tops = _no_tops(width)
        self._provisional_tops = _no_tops(width)
        self._peaks = _Peaks(step)  # the sound's loudest sample in each frame, for the same view
        self._cut = 0  # frames whose text is committed
        self.on_partial = on_partial
        self.committed = ""
        self.partial = ""
        self.partial_decodes = 0  # provisional decodes run so far
        self._closed = False

    @property
    def heard_seconds(self) -> float:
        return self._chunker.received / self.task.rate

    @property
    def text(self) -> str:
        """Committed and partial text together, as a display would show them."""
        return " ".join(t for t in (self.committed, self.partial) if t)

    def feed(self, block: np.ndarray) -> None:
        """Take the next block of audio (mono, or channels-last frames) and update the text.
        However much audio a block holds, every finished window is decoded (nothing is
        skipped), then at most one provisional decode runs, over the newest audio."""
        if self._closed:
            raise RuntimeError("feed() after flush(): start a new LiveTranscriber")
        samples = audio.to_mono(block)
        if not np.isfinite(samples).all():
            raise InputError("the audio contains samples that are not numbers (NaN or infinity)")
        samples = self._resampler.push(samples)
        self._peaks.push(samples)
        finished = self._chunker.push(samples)
        for chunk in finished:
            self._add_final(chunk)
        self._since_partial += len(samples)
        changed = bool(finished) and self._commit()
        decode = self._since_partial >= self._partial_every
        if decode:
            self._since_partial = 0
        if decode or finished:  # a finished window only moves text from partial to committed
            changed = self._update_partial(decode) or changed
        if changed:
            self._emit()

    def flush(self) -> Transcript:
        """The audio has ended: decode what is left and commit everything. Returns the final
        transcript with word timings, the same as the file task gives."""
        if self._closed:
            raise RuntimeError("flush() was already called")
        self._closed = True
        rest = self._resampler.finish()
        self._peaks.push(rest)
        for chunk in self._chunker.push(rest) + self._chunker.finish():
            self._add_final(chunk)
        ids = self._final.all()
        result = self.task.transcript(ids, "word", self.heard_seconds)
        if not result.text.startswith(self.committed):  # cannot happen; say so if it does
            result.warnings.append("the live text changed when it was completed")
        self.committed, self.partial = result.text, ""
        self._emit()
        return result

    # ---- internals ----------------------------------------------------------------------

    def _add_final(self, chunk: Chunk) -> None:
        logits = chunk_logits(self.model, chunk)
        if logits is None:  # a sliver at the end, too short for a frame
            return
        ids = best_ids(logits)
        self._final.add(ids)
        self._final_frames += len(ids)
        self._provisional = self._provisional[len(ids) :]  # those frames are final now
        self._final_tops = _last(_joined(self._final_tops, frame_tops(logits)), SHOWN_FRAMES)
        self._provisional_tops = _from(self._provisional_tops, len(ids))

    def frames(self) -> dict[str, np.ndarray]:
        """The newest frames (up to `SHOWN_FRAMES`, final and provisional) as the speech task's
        inside view reads them (`FrameTops.internals`), with `first_frame`, the index of the
        first of them since the audio began, and `frame_peaks`, each one's loudest sample."""
        top_ids, top_probs = _last(_joined(self._final_tops, self._provisional_tops), SHOWN_FRAMES)
        total = self._final_frames + len(self._provisional)
        first = total - len(top_ids)
        final = self._final.all()
        ids = np.concatenate([final[first:], self._provisional[max(0, first - len(final)) :]])  # the newest only
        tops = FrameTops()
        tops.ids, tops.probabilities = [top_ids], [top_probs]
        frame_s = self.model.config.samples_per_frame / self.task.rate
        peaks = self._peaks.between(first, first + len(top_ids))
        internals = tops.internals(self.vocabulary, ids, frame_s)
        return {**internals, "first_frame": np.array(first, dtype=np.int64), "frame_peaks": peaks}

    def _commit(self) -> bool:
        """Commit the final frames up to the last finished word, if that text is certain."""
        ids = self._final.all()
        cut = self._last_word_end(ids)
        if cut <= self._cut:
            return False
        candidate = self.vocabulary.decode(ids[:cut])
        everything = self.vocabulary.decode(ids)
        # lower-casing and space clean-up look a few characters ahead: wait until they are known
        lookahead = 4 if (self.vocabulary.lower_case or self.vocabulary.clean_up_spaces) else 0
        if not everything.startswith(candidate) or len(everything) < len(candidate) + lookahead:
            return False
        if not candidate.startswith(self.committed):
            return False
        self._cut, self.committed = cut, candidate
        return True

    def _last_word_end(self, ids: np.ndarray) -> int:
        """The largest frame count whose last emitted token is the word delimiter, blanks after
        it included (for a vocabulary without a delimiter: up to the last blank); 0 if none."""
        vocab = self.vocabulary
        if vocab.delimiter_id is None:
            if vocab.blank_id is None:
                return 0
            blanks = np.flatnonzero(ids == vocab.blank_id)
            return int(blanks[-1]) + 1 if len(blanks) else 0
        emitted = np.flatnonzero(ids != vocab.blank_id) if vocab.blank_id is not None else np.arange(len(ids))
        delimiters = emitted[ids[emitted] == vocab.delimiter_id]
        if len(delimiters) == 0:
            return 0
        after = emitted[emitted > delimiters[-1]]
        return int(after[0]) if len(after) else len(ids)

    def _update_partial(self, decode: bool) -> bool:
        """Redraw the partial tail: the final frames not yet committed, then the provisional
        ones up to the newest sample, after decoding the newest `partial_window_s` if `decode`."""
        if decode:
            self._decode_newest()
        tail = np.concatenate([self._final.all()[self._cut :], self._provisional])
        partial = self.vocabulary.decode(tail)
        changed = partial != self.partial
        self.partial = partial
        return changed

    def _decode_newest(self) -> None:
        """Provisional ids for the newest audio, kept from where their left context suffices."""
        pending, start, _ = self._chunker.pending()
        step = self.model.config.samples_per_frame
        end = start + len(pending)
        # window starts fall on frame edges (window-grid starts do too), so frames line up
        window_start = max(start, (end - self._partial_window) // step * step)
        window = pending[window_start - start :]
        if len(window) < self.model.config.shortest_input:
            return
        logits = self.model(window)
        ids = best_ids(logits)
        tops = frame_tops(logits)
        self.partial_decodes += 1
        first_frame = window_start // step
        trusted = first_frame + (self._context_frames if window_start > 0 else 0)
        keep_from = max(self._final_frames, trusted)
        offset = keep_from - self._final_frames
        # frames the window no longer reaches (after a backlog) stay as last decoded, or blank
        older = self._provisional[:offset]
        blank = self.vocabulary.blank_id or 0
        gap = np.full(offset - len(older), blank, dtype=np.int32)
        self._provisional = np.concatenate([older, gap, ids[keep_from - first_frame :]])
        width = tops[0].shape[1]
        gap_tops = (np.full((len(gap), width), blank, dtype=np.int32), np.zeros((len(gap), width), dtype=np.float32))
        older_tops = (self._provisional_tops[0][:offset], self._provisional_tops[1][:offset])
        self._provisional_tops = _joined(_joined(older_tops, gap_tops), _from(tops, keep_from - first_frame))

    def _emit(self) -> None:
        if self.on_partial is not None:
            self.on_partial(self.committed, self.partial)


# ---- frames' best ids and probabilities, (frames, k) each, for the inside view -------------

Tops = tuple[np.ndarray, np.ndarray]


def _no_tops(width: int) -> Tops:
    return np.zeros((0, width), dtype=np.int32), np.zeros((0, width), dtype=np.float32)


def _joined(first: Tops, then: Tops) -> Tops:
    return np.concatenate([first[0], then[0]]), np.concatenate([first[1], then[1]])


def _last(tops: Tops, count: int) -> Tops:
    return tops[0][-count:], tops[1][-count:]


def _from(tops: Tops, start: int) -> Tops:
    return tops[0][start:], tops[1][start:]


class _Peaks:
    """The largest absolute sample of every `step` samples of a stream (one per model frame)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self._done: list[np.ndarray] = []
        self._count = 0
        self._rest = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> None:
        joined = np.concatenate([self._rest, np.abs(samples.astype(np.float32, copy=False))])
        whole = len(joined) // self.step * self.step
        if whole:
            self._done.append(joined[:whole].reshape(-1, self.step).max(axis=1))
            self._count += whole // self.step
        self._rest = joined[whole:]

    def between(self, start: int, end: int) -> np.ndarray:
        """Frames [start, end), zeros where the sound has not reached yet."""
        if len(self._done) > 1:
            self._done = [np.concatenate(self._done)]
        every = self._done[0] if self._done else np.zeros(0, dtype=np.float32)
        out = np.zeros(max(0, end - start), dtype=np.float32)
        part = every[start:end]
        out[: len(part)] = part
        return out
