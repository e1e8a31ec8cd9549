"""The live-input layer on its own: the ring buffer, the file-backed input stream, the microphone
stream's handling of PortAudio's callbacks, and the device backends' messages."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app.audio_input import (
    AudioUnavailable,
    FileBackend,
    FileInputStream,
    InputDevice,
    MicrophoneStream,
    RingBuffer,
    SoundDeviceBackend,
)
from tests.app.tiny_audio import recording
from tests.optional import import_or_skip

soundfile = import_or_skip("soundfile")  # libsndfile: bundled in its wheels, a system library elsewhere


def test_ring_buffer_returns_everything_in_order_across_the_wrap():
    ring = RingBuffer(capacity=10, channels=2)
    stream = np.arange(46, dtype=np.float32).reshape(23, 2)  # (frames, channels)
    out = []
    for start, size in ((0, 7), (7, 6), (13, 10)):
        ring.write(stream[start : start + size])
        assert len(ring) == size
        out.append(ring.read())
    assert np.array_equal(np.concatenate(out), stream)
    assert ring.dropped == 0
    assert ring.read().shape == (0, 2)


def test_ring_buffer_counts_what_it_had_to_overwrite():
    ring = RingBuffer(capacity=10, channels=1)
    ring.write(np.arange(6))
    ring.write(np.arange(6, 13))  # three frames past capacity: the oldest three go
    assert ring.dropped == 3
    assert np.array_equal(ring.read().ravel(), np.arange(3, 13))
    ring.write(np.arange(13, 38))  # a block larger than the buffer keeps its newest part
    assert ring.dropped == 3 + 15
    assert np.array_equal(ring.read().ravel(), np.arange(28, 38))


def test_ring_buffer_keeps_up_with_a_writer_thread():
    ring = RingBuffer(capacity=4096, channels=1)
    blocks = [np.full(256, i, dtype=np.float32) for i in range(400)]
    writer = threading.Thread(target=lambda: [ring.write(b) for b in blocks])
    writer.start()
    got = []
    while writer.is_alive() or len(ring):
        got.append(ring.read())
    writer.join()
    got.append(ring.read())
    total = np.concatenate(got).ravel()
    assert ring.dropped + len(total) == 400 * 256
    assert np.all(np.diff(total) >= 0)  # never out of order


@pytest.fixture(scope="module")
def stereo(tmp_path_factory) -> Path:
    return recording(tmp_path_factory.mktemp("input") / "stereo.wav", 1.0, seed=2, rate=22_050, channels=2)


def test_file_input_plays_the_whole_file_at_the_pace_of_a_device(stereo):
    source = FileInputStream(stereo, block_s=0.05, speed=2.0)
    assert (source.rate, source.channels) == (22_050, 2)
    began = time.monotonic()
    source.start()
    source._player.join()  # the file has been played to its end
    elapsed = time.monotonic() - began
    assert source.ended
    got = source.read()
    source.stop()
    assert np.array_equal(got, soundfile.read(str(stereo), dtype="float32", always_2d=True)[0])
    assert source.error is None and source.dropped == 0
    assert elapsed >= 0.45  # one second of audio at twice real time cannot arrive sooner


def test_file_input_stops_at_once(stereo):
    source = FileInputStream(stereo, speed=0.01)  # a hundred times slower than real time
    source.start()
    began = time.monotonic()
    source.stop()
    assert time.monotonic() - began < 1.0
    assert source.ended


def test_file_backend_offers_each_file_as_a_device(stereo, tmp_path):
    backend = FileBackend([stereo])
    [device] = backend.input_devices()
    assert device.is_default and device.rate == 22_050 and device.channels == 2
    assert "stereo.wav" in device.name
    assert isinstance(backend.open(device), FileInputStream)
    with pytest.raises(AudioUnavailable, match="No recording"):
        FileBackend([]).input_devices()
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    with pytest.raises(AudioUnavailable, match="broken.wav"):
        FileInputStream(broken)


class PortAudioStream:
    """Stands in for `sounddevice.InputStream`: calls back from its own thread with the blocks
    it is given, then ends either as asked (`stop`) or on its own, as PortAudio does when the
    device goes away."""

    def __init__(self, blocks: list[np.ndarray], end_on_its_own: bool, **settings) -> None:
        self.settings = settings
        self._blocks = blocks
        self._end_on_its_own = end_on_its_own
        self._thread = threading.Thread(target=self._run)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        for block in self._blocks:
            self.settings["callback"](block, len(block), None, SimpleNamespace())
        if self._end_on_its_own:
            self.settings["finished_callback"]()

    def stop(self) -> None:
        self._thread.join()

    def close(self) -> None:
        pass


def _sounddevice(blocks: list[np.ndarray], end_on_its_own: bool = False, fail_to_open: bool = False):
    def input_stream(**settings):
        if fail_to_open:
            raise RuntimeError("Device unavailable [PaErrorCode -9985]")
        return PortAudioStream(blocks, end_on_its_own, **settings)

    return SimpleNamespace(InputStream=input_stream)


MIC = InputDevice(3, "USB mic", 48_000, 1, True)


def test_microphone_stream_copies_every_callback_block():
    blocks = [np.full((480, 1), i, dtype=np.float32) for i in range(20)]
    stream = MicrophoneStream(_sounddevice(blocks), MIC)
    stream.start()
    stream._stream._thread.join()
    got = stream.read()
    stream.stop()
    assert np.array_equal(got, np.concatenate(blocks))
    assert stream.error is None


def test_microphone_that_disappears_is_reported():
    stream = MicrophoneStream(_sounddevice([np.zeros((480, 1), np.float32)], end_on_its_own=True), MIC)
    stream.start()
    stream._stream._thread.join()
    assert "USB mic stopped working" in stream.error
    stream.stop()


def test_microphone_that_goes_silent_is_reported():
    stream = MicrophoneStream(_sounddevice([]), MIC)
    stream.start()
    stream._stream._thread.join()
    assert stream.read().shape == (0, 1) and stream.error is None
    stream._last_block -= 10  # as if ten seconds had passed without a block
    stream.read()
    assert "stopped sending audio" in stream.error
    stream.stop()


def test_microphone_that_cannot_open_says_why():
    with pytest.raises(AudioUnavailable, match="Could not open USB mic: Device unavailable"):
        MicrophoneStream(_sounddevice([], fail_to_open=True), MIC).start()


def test_backend_messages_for_missing_portaudio_package_and_devices():
    def no_portaudio():
        raise OSError("PortAudio library not found")

    def no_package():
        raise ImportError("No module named 'sounddevice'")

    with pytest.raises(AudioUnavailable, match="PortAudio library.*libportaudio2.*Audio files still work"):
        SoundDeviceBackend(no_portaudio).input_devices()
    with pytest.raises(AudioUnavailable, match="pip install sounddevice"):
        SoundDeviceBackend(no_package).input_devices()

    def no_shared_library():  # an import that fails inside the package, on a library it loads
        raise ImportError("libportaudio.so.2: cannot open shared object file: No such file or directory")

    with pytest.raises(AudioUnavailable, match="libportaudio.so.2.*libportaudio2.*Audio files still work") as info:
        SoundDeviceBackend(no_shared_library).input_devices()
    assert "pip install" not in str(info.value)
    devices = [
        {"name": "HDMI", "max_input_channels": 0, "default_samplerate": 48000.0},
        {"name": "Built-in mic", "max_input_channels": 2, "default_samplerate": 44100.0},
        {"name": "USB mic", "max_input_channels": 1, "default_samplerate": 48000.0},
    ]
    sd = SimpleNamespace(query_devices=lambda: devices, default=SimpleNamespace(device=[2, 0]))
    found = SoundDeviceBackend(lambda: sd).input_devices()
    assert [(d.key, d.name, d.rate, d.is_default) for d in found] == [
        (2, "USB mic", 48_000, True),
        (1, "Built-in mic", 44_100, False),
    ]
    none = SimpleNamespace(query_devices=lambda: devices[:1], default=SimpleNamespace(device=[-1, 0]))
    with pytest.raises(AudioUnavailable, match="No microphone found"):
        SoundDeviceBackend(lambda: none).input_devices()
