"""Live audio input: a microphone through `sounddevice`, or a recorded file played at the pace of
a device, both behind one small interface so the tabs (and the tests) drive them the same way.

A capture thread (PortAudio's callback, or the file player's thread) only copies each block into
a `RingBuffer`. The UI drains the buffer on a timer, which never waits for the model, so audio
keeps flowing into the buffer however long an inference takes.

`sounddevice` is imported only when live input is first asked for: loading PortAudio costs time
at start-up, and a machine without it must still open the app and transcribe files.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

BLOCK_S = 0.05  # what the device hands over at a time; small blocks keep the level meter lively
BUFFER_S = 60.0  # the UI drains the buffer every ~0.1 s; this covers a UI frozen for a minute
STALL_S = 2.0  # a running device that sends nothing for this long has failed


class AudioUnavailable(Exception):
    """Live input cannot start (no PortAudio, no microphone, device busy); the message is for
    people and says what to do."""


@dataclass(frozen=True)
class InputDevice:
    """One input a person can pick: `key` is what the backend opens it by."""

    key: Any
    name: str
    rate: int
    channels: int
    is_default: bool = False


class AudioSource(Protocol):
    """What the tabs need from a live input. `read()` returns every frame captured since the
    last call (float32, shape (frames, channels)); `error` is set when the input failed;
    `ended` is true once a finite source (a file) has delivered everything."""

    rate: int
    channels: int

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self) -> np.ndarray: ...

    @property
    def error(self) -> str | None: ...

    @property
    def ended(self) -> bool: ...

    @property
    def dropped(self) -> int: ...


class RingBuffer:
    """A fixed-size buffer of float32 frames: one thread writes, another reads everything new.

    Writes never block for long and never allocate (a device callback must return quickly).
    Should the reader fall more than `capacity` frames behind, the oldest frames are
    overwritten and counted in `dropped`, so a loss is reported rather than silent."""

    def __init__(self, capacity: int, channels: int) -> None:
        self._data = np.zeros((capacity, channels), dtype=np.float32)
        self._lock = threading.Lock()
        self._write = 0  # frames written since the start (a position in the endless stream)
        self._read = 0
        self.dropped = 0

    @property
    def capacity(self) -> int:
        return len(self._data)

    def write(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames, dtype=np.float32).reshape(len(frames), -1)  # (frames, channels)
        with self._lock:
            if len(frames) > self.capacity:  # only the newest part can be kept; counted below
                self._write += len(frames) - self.capacity
                frames = frames[-self.capacity :]
            at = self._write % self.capacity
            first = min(len(frames), self.capacity - at)
            self._data[at : at + first] = frames[:first]
            self._data[: len(frames) - first] = frames[first:]
            self._write += len(frames)
            behind = self._write - self._read - self.capacity
            if behind > 0:
                self.dropped += behind
                self._read += behind

    def read(self) -> np.ndarray:
        with self._lock:
            n = self._write - self._read
            at = self._read % self.capacity
            first = min(n, self.capacity - at)
            out = np.concatenate([self._data[at : at + first], self._data[: n - first]])
            self._read = self._write
        return out

    def __len__(self) -> int:
        with self._lock:
            return self._write - self._read


class _Capture:
    """What both sources share: the buffer, the error, and the state of the stream."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = int(rate)
        self.channels = int(channels)
        self._buffer = RingBuffer(max(1, int(BUFFER_S * self.rate)), self.channels)
        self._error: str | None = None
        self._ended = False

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    def read(self) -> np.ndarray:
        return self._buffer.read()

    def _deliver(self, frames: np.ndarray) -> None:
        """The capture thread's only work: copy a block into the buffer."""
        self._buffer.write(frames)


class MicrophoneStream(_Capture):
    """A `sounddevice.InputStream` whose callback copies into the ring buffer.

    A device that fails mid-stream shows up in `error`: PortAudio ends the stream, or the
    stream stays open but stops delivering (an unplugged USB microphone often does that)."""

    def __init__(self, sd: Any, device: InputDevice, block_s: float = BLOCK_S) -> None:
        super().__init__(device.rate, min(device.channels, 2) or 1)
        self._sd = sd
        self.device = device
        self._block = max(1, int(block_s * self.rate))
        self._stream: Any = None
        self._stopping = False
        self._last_block = 0.0

    def start(self) -> None:
        try:
            self._stream = self._sd.InputStream(
                device=self.device.key,
                samplerate=self.rate,
                channels=self.channels,
                dtype="float32",
                blocksize=self._block,
                callback=self._callback,
                finished_callback=self._finished,
            )
            self._last_block = time.monotonic()
            self._stream.start()
        except Exception as exc:  # sounddevice.PortAudioError and friends
            self._stream = None
            raise AudioUnavailable(f"Could not open {self.device.name}: {exc}") from None

    def stop(self) -> None:
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # a device already gone cannot be stopped; nothing is lost
                pass

    def read(self) -> np.ndarray:
        frames = super().read()
        if self._stream is not None and self._error is None:
            if len(frames):
                self._last_block = time.monotonic()
            elif time.monotonic() - self._last_block > STALL_S:
                self._error = f"{self.device.name} stopped sending audio (unplugged?)"
        return frames

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._deliver(indata)  # sounddevice reuses indata's memory: the buffer copies it

    def _finished(self) -> None:
        if not self._stopping:
            self._error = f"{self.device.name} stopped working (disconnected, or taken by another program)"


class FileInputStream(_Capture):
    """A recorded file played into the ring buffer in device-sized blocks, at the pace of a real
    device (`speed` times faster when asked): live input without a microphone.

    Blocks are timed against the clock from the start, so the pace does not drift, and `stop()`
    interrupts the wait at once."""

    def __init__(self, path: str | Path, block_s: float = BLOCK_S, speed: float = 1.0) -> None:
        import soundfile

        try:
            self._file = soundfile.SoundFile(str(path))
        except Exception as exc:
            raise AudioUnavailable(f"Cannot play {Path(path).name} as live input: {exc}") from None
        super().__init__(self._file.samplerate, self._file.channels)
        self.path = Path(path)
        self._block = max(1, int(block_s * self.rate))
        self._speed = float(speed)
        self._halt = threading.Event()
        self._player: threading.Thread | None = None
        self.delivered = 0  # frames handed to the buffer so far

    def start(self) -> None:
        self._player = threading.Thread(target=self._play, name=f"play {self.path.name}", daemon=True)
        self._player.start()

    def stop(self) -> None:
        self._halt.set()
        if self._player is not None and self._player is not threading.current_thread():
            self._player.join()
        self._file.close()

    def next_block(self) -> np.ndarray:
        """The next block of the file (empty at its end); a subclass may stand for a device
        that misbehaves by raising here."""
        return self._file.read(self._block, dtype="float32", always_2d=True)

    def _play(self) -> None:
        began = time.monotonic()
        try:
            while not self._halt.is_set():
                block = self.next_block()
                if len(block) == 0:
                    break
                self._deliver(block)
                self.delivered += len(block)
                due = began + self.delivered / self.rate / self._speed
                self._halt.wait(max(0.0, due - time.monotonic()))
        except Exception as exc:
            self._error = f"{self.path.name} stopped playing: {exc}"
        self._ended = True


class AudioBackend(Protocol):
    """Lists the inputs a person can choose from and opens one."""

    def input_devices(self) -> list[InputDevice]: ...

    def open(self, device: InputDevice) -> AudioSource: ...


def _import_sounddevice() -> Any:
    return importlib.import_module("sounddevice")


class SoundDeviceBackend:
    """The machine's microphones, through PortAudio. `importer` loads the sounddevice module
    (tests hand in one that fails the way a machine without PortAudio fails)."""

    def __init__(self, importer: Callable[[], Any] = _import_sounddevice) -> None:
        self._importer = importer
        self._sd: Any = None

    def _module(self) -> Any:
        if self._sd is None:
            try:
                self._sd = self._importer()
            except OSError as exc:  # sounddevice raises OSError when PortAudio is missing
                raise AudioUnavailable(
                    "Live input needs the PortAudio library, which this machine lacks "
                    f"({exc}). Install it (on Debian and Ubuntu: sudo apt install libportaudio2) "
                    "and restart the app. Audio files still work."
                ) from None
            except ImportError as exc:
                if isinstance(exc, ModuleNotFoundError) or "No module named" in str(exc):
                    raise AudioUnavailable(
                        "Live input needs the sounddevice package: pip install sounddevice. "
                        "Audio files still work."
                    ) from None
                raise AudioUnavailable(  # the package is there, a shared library it loads is not
                    f"Live input cannot load a system library it needs ({exc}). Install it (for "
                    "PortAudio on Debian and Ubuntu: sudo apt install libportaudio2) and restart "
                    "the app. Audio files still work."
                ) from None
        return self._sd

    def input_devices(self) -> list[InputDevice]:
        sd = self._module()
        try:
            devices = sd.query_devices()
            default = sd.default.device  # an (input, output) pair, or one index for both
            default = default[0] if hasattr(default, "__getitem__") and not isinstance(default, str) else default
        except Exception as exc:
            raise AudioUnavailable(f"Cannot list the audio devices: {exc}") from None
        found = [
            InputDevice(i, str(d["name"]), int(d["default_samplerate"]), int(d["max_input_channels"]), i == default)
            for i, d in enumerate(devices)
            if d["max_input_channels"] > 0
        ]
        if not found:
            raise AudioUnavailable(
                "No microphone found. Plug one in (or allow this app to use it) and press "
                "Refresh. Audio files still work."
            )
        return sorted(found, key=lambda d: not d.is_default)

    def open(self, device: InputDevice) -> MicrophoneStream:
        return MicrophoneStream(self._module(), device)


class FileBackend:
    """Recorded files offered as if each were a microphone."""

    def __init__(
        self, paths: list[str | Path], speed: float = 1.0, stream: type[FileInputStream] = FileInputStream
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.speed = speed
        self._stream = stream

    def input_devices(self) -> list[InputDevice]:
        import soundfile

        if not self.paths:
            raise AudioUnavailable("No recording to play as live input.")
        devices = []
        for i, path in enumerate(self.paths):
            info = soundfile.info(str(path))
            name = f"{path.name} (played as live input)"
            devices.append(InputDevice(str(path), name, info.samplerate, info.channels, i == 0))
        return devices

    def open(self, device: InputDevice) -> FileInputStream:
        return self._stream(device.key, speed=self.speed)
