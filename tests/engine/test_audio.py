"""Audio files in every shape people have them, to mono float32 at 16 kHz; and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from engine import audio
from engine.errors import InputError
from tests.optional import import_or_skip

soundfile = import_or_skip("soundfile")  # libsndfile: bundled in its wheels, a system library elsewhere


def _tone(seconds: float, rate: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(
    "fmt, subtype, tolerance",
    [
        ("WAV", "PCM_U8", 1 / 64),  # 8-bit WAV is unsigned
        ("WAV", "PCM_16", 1e-4),
        ("WAV", "PCM_24", 1e-6),
        ("WAV", "PCM_32", 1e-6),
        ("WAV", "FLOAT", 0),
        ("FLAC", "PCM_16", 1e-4),
        ("OGG", "VORBIS", None),
        ("MP3", "MPEG_LAYER_III", None),
    ],
)
def test_formats_and_bit_depths_read_as_float32_at_16k(tmp_path, fmt, subtype, tolerance):
    if not soundfile.check_format(fmt, subtype):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}")
    original = _tone(1.0, 16_000)
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(path, original, 16_000, format=fmt, subtype=subtype)
    loaded = audio.load_audio(path)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    if tolerance is None:  # lossy codecs: the tone is still there, at the same pitch
        assert abs(len(loaded) - len(original)) < 16_000 * 0.1
        assert abs(_peak_frequency(loaded, 16_000) - 440) < 5
    else:
        np.testing.assert_allclose(loaded, original, atol=tolerance + 1e-7, rtol=0)


def test_six_channels_are_averaged(tmp_path):
    channels = np.stack([_tone(0.5, 16_000, 200 * (i + 1), 0.1) for i in range(6)], axis=1)
    path = tmp_path / "surround.wav"
    soundfile.write(path, channels, 16_000, subtype="FLOAT")
    np.testing.assert_allclose(audio.load_audio(path), channels.mean(axis=1), atol=1e-7)
    assert audio.audio_info(path).channels == 6


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_other_rates_are_resampled_with_soxr(tmp_path, rate):
    original = _tone(2.0, rate, frequency=1000.0)
    path = tmp_path / f"at-{rate}.wav"
    soundfile.write(path, original, rate, subtype="FLOAT")
    loaded = audio.load_audio(path)
    assert abs(len(loaded) - 32_000) <= 1
    assert abs(_peak_frequency(loaded, 16_000) - 1000) < 2
    # block-wise streaming gives what one call of the resampler gives
    np.testing.assert_allclose(loaded, soxr.resample(original, rate, 16_000, quality="HQ"), atol=1e-5)


def test_resampling_removes_what_16k_cannot_hold(tmp_path):
    """A 12 kHz tone is above 16 kHz audio's 8 kHz limit: it must vanish, not fold back as a
    4 kHz alias (which naive interpolation would give)."""
    path = tmp_path / "high.wav"
    soundfile.write(path, _tone(1.0, 48_000, frequency=12_000.0), 48_000, subtype="FLOAT")
    steady = audio.load_audio(path)[1_000:-1_000]  # away from the clicks where the tone starts and stops
    assert np.abs(steady).max() < 1e-3


def test_blocks_are_bounded_and_join_to_the_whole(tmp_path):
    rate = 44_100
    path = tmp_path / "long.wav"
    soundfile.write(path, _tone(7.0, rate), rate, subtype="PCM_16")
    blocks = list(audio.iter_audio(path, block_seconds=1.0))
    assert len(blocks) >= 7
    assert max(len(b) for b in blocks) <= 16_000 * 1.05
    np.testing.assert_array_equal(np.concatenate(blocks), audio.load_audio(path))


def test_silence_is_read_as_zeros(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(8_000, dtype=np.float32), 8_000)
    loaded = audio.load_audio(path)
    assert len(loaded) == 16_000 and not loaded.any()


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(InputError, match="no audio"):
        audio.load_audio(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not audio at all\n" * 40, b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200))],
    ids=["zero-bytes", "text", "corrupt-header"],
)
def test_unreadable_files_are_refused(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match="broken.wav"):
        audio.load_audio(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        audio.load_audio(tmp_path / "nowhere.wav")


def test_not_a_number_samples_are_refused(tmp_path):
    samples = _tone(0.1, 16_000)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, samples, 16_000, subtype="FLOAT")
    with pytest.raises(InputError, match="not numbers"):
        audio.load_audio(path)


def test_save_wav_round_trips_at_16_bits_and_clips(tmp_path):
    samples = _tone(0.5, 16_000)
    samples[:10] = 3.0  # out of range: clipped, not wrapped
    path = tmp_path / "out.wav"
    audio.save_wav(path, samples, 16_000)
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    back = audio.load_audio(path)
    np.testing.assert_allclose(back[10:], samples[10:], atol=1 / 2**15)
    assert np.all(back[:10] > 0.999)


def test_wav_writer_appends_blocks(tmp_path):
    path = tmp_path / "recording.wav"
    blocks = [_tone(0.1, 48_000, 300 + 100 * i) for i in range(5)]
    with audio.WavWriter(path, 48_000) as writer:
        for block in blocks:
            writer.write(block)
    assert writer.frames == sum(len(b) for b in blocks)
    back, rate = soundfile.read(path, dtype="float32")
    assert rate == 48_000
    np.testing.assert_allclose(back, np.concatenate(blocks), atol=1 / 2**15)


def test_stream_resampler_has_no_seams():
    signal = _tone(1.5, 48_000, 523.0)
    stream = audio.StreamResampler(48_000)
    pieces = [stream.push(signal[i : i + 4_800]) for i in range(0, len(signal), 4_800)] + [stream.finish()]
    np.testing.assert_allclose(np.concatenate(pieces), audio.resample(signal, 48_000), atol=1e-6)
    assert audio.resample(signal, 16_000, 16_000) is not None
    np.testing.assert_array_equal(audio.StreamResampler(16_000).push(signal[:10]), signal[:10])


def test_to_mono_shapes():
    assert audio.to_mono(np.ones((5, 1))).shape == (5,)
    np.testing.assert_array_equal(audio.to_mono(np.array([[1.0, 3.0], [2.0, 4.0]])), [2.0, 3.0])
    with pytest.raises(InputError, match="shape"):
        audio.to_mono(np.ones((2, 2, 2)))
    with pytest.raises(InputError, match="positive"):
        audio.StreamResampler(0)
