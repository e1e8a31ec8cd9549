"""Audio in and out: any file libsndfile reads (WAV, FLAC, OGG, MP3, ...) at any rate, bit depth
and channel count becomes mono float32 at the model's rate; recordings go back out as WAV.

Files are read in blocks and resampled with a streaming soxr resampler (its "HQ" quality), so a
long file never needs to sit in memory whole: `iter_audio` yields it piece by piece, and
`load_audio` is simply all of those pieces joined.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError

#: The rate every Wav2Vec2-family checkpoint was trained at.
MODEL_RATE = 16_000

#: The largest sample magnitude taken. Float audio lies within -1..1 (a mix may overshoot a
#: little); 16-bit integer samples handed over as they are (as transformers' pipelines take
#: them) reach 32768. Far beyond that there is no sound, only a corrupt or mis-typed file
#: (float samples of 1e20 or 3e38), and squaring such values to normalise them overflows
#: float32 into infinity and NaN. Below it, an hour of samples squares to at most 2.5e17.
MAX_SAMPLE = 65_536.0
_QUALITY = "HQ"


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, before any sample is decoded."""

    rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    """The header of an audio file, or an `InputError` saying why it cannot be read."""
    with _open(path) as f:
        return AudioInfo(f.samplerate, f.channels, f.frames, f.format, f.subtype)


def iter_audio(
    path: str | Path, rate: int = MODEL_RATE, block_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Mono float32 blocks of about `block_seconds` at `rate`; memory stays at one block."""
    with _open(path) as f:
        if f.frames == 0:
            raise InputError(f"{Path(path).name} holds no audio (0 samples)")
        block = max(1, int(block_seconds * f.samplerate))
        stream = StreamResampler(f.samplerate, rate)
        produced = 0
        while True:
            try:
                frames = f.read(block, dtype="float32", always_2d=True)
            except Exception as exc:  # libsndfile fails mid-file on damaged data
                raise InputError(f"{Path(path).name} is damaged: {exc}") from None
            if len(frames) == 0:
                break
            out = stream.push(to_mono(check_samples(frames, Path(path).name)))
            produced += len(out)
            if len(out):
                yield out
        tail = stream.finish()
        produced += len(tail)
        if len(tail):
            yield tail
        if produced == 0:
            raise InputError(f"{Path(path).name} holds no audio (0 samples)")


def load_audio(path: str | Path, rate: int = MODEL_RATE) -> np.ndarray:
    """The whole file as one mono float32 array at `rate`."""
    return np.concatenate(list(iter_audio(path, rate)))


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Channels-last frames (samples, channels) to float32 mono by the mean of the channels."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 1:
        return frames
    if frames.ndim != 2:
        raise InputError(f"audio must be (samples,) or (samples, channels), got shape {frames.shape}")
    if frames.shape[1] == 1:
        return frames[:, 0]
    return frames.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = MODEL_RATE) -> np.ndarray:
    """One array to another rate (band-limited, soxr HQ); unchanged when the rates agree."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    _check_rate(from_rate)
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality=_QUALITY).astype(np.float32, copy=False)


class StreamResampler:
    """Resamples a stream block by block (a file being read, a microphone): the output of all
    pushes plus `finish()` is the whole signal resampled, with no seams between blocks."""

    def __init__(self, from_rate: int, to_rate: int = MODEL_RATE) -> None:
        _check_rate(from_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = None
        if from_rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality=_QUALITY)

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block)

    def finish(self) -> np.ndarray:
        """What the resampler still holds back (its filter delay); call once, at the end."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def save_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write mono (or channels-last) float samples as 16-bit PCM WAV, clipped to [-1, 1]."""
    with WavWriter(path, rate, channels=1 if np.ndim(samples) == 1 else np.shape(samples)[1]) as out:
        out.write(samples)


class WavWriter:
    """A 16-bit WAV file written block by block, so a long recording is never held in memory.
    Use as a context manager, or call `close()`."""

    def __init__(self, path: str | Path, rate: int, channels: int = 1) -> None:
        soundfile = _soundfile()
        _check_rate(rate)
        try:
            self._file = soundfile.SoundFile(
                str(path), "w", samplerate=int(rate), channels=channels, format="WAV", subtype="PCM_16"
            )
        except Exception as exc:
            raise InputError(f"cannot write {path}: {exc}") from None
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        block = np.clip(np.asarray(block, dtype=np.float32), -1.0, 1.0)
        self._file.write(block)
        self.frames += len(block)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(path: str | Path):
    """A `soundfile.SoundFile` for reading, with every failure turned into an `InputError`."""
    soundfile = _soundfile()
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        f = soundfile.SoundFile(str(path))
    except Exception as exc:  # LibsndfileError for corrupt and non-audio files
        raise InputError(f"{path.name} is not an audio file that can be read ({_reason(exc)})") from None
    if f.samplerate <= 0:
        f.close()
        raise InputError(f"{path.name} declares a sample rate of {f.samplerate} Hz")
    return f


def _soundfile() -> Any:
    """The soundfile module, or an `InputError` when libsndfile cannot be loaded (its wheels
    bundle it; elsewhere it is a system library)."""
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # soundfile raises OSError when libsndfile is missing
        raise InputError(
            f"audio files cannot be read on this machine: libsndfile is missing ({exc}); "
            "on Debian and Ubuntu: sudo apt install libsndfile1"
        ) from None
    return soundfile


def _reason(exc: Exception) -> str:
    text = str(exc)
    # soundfile repeats the path in front of libsndfile's own words
    return text.split(": ", 1)[-1] if ": " in text else text


def check_samples(samples: np.ndarray, what: str = "the audio") -> np.ndarray:
    """`samples` themselves, or an `InputError` when any is not a number or beyond
    `MAX_SAMPLE` in magnitude."""
    if not np.isfinite(samples).all():
        raise InputError(f"{what} contains samples that are not numbers (NaN or infinity)")
    peak = max(-float(samples.min()), float(samples.max())) if samples.size else 0.0  # abs() wraps -2**15
    if peak > MAX_SAMPLE:
        raise InputError(
            f"{what} has samples as large as {peak:.3g}: sound lies within -1..1 (or ±32768 as "
            "16-bit integers), so this is not audio that can be read; scale it to -1..1 first"
        )
    return samples


def _check_rate(rate: int) -> None:
    if not rate or rate <= 0:
        raise InputError(f"a sample rate must be positive, got {rate}")
