"""The speech-recognition task against transformers' pipeline on tiny checkpoints, files of
every kind, long files in bounded memory with progress and cancel, and bad input."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc

import numpy as np
import pytest

from engine import audio
from engine.errors import Cancelled, InputError
from engine.tasks import get
from engine.tasks.base import Hooks
from engine.tasks.speech_recognition import SpeechRecognition
from tests.engine.models.tiny_wav2vec2 import checkpoint, speech_like
from tests.engine.models.tiny_wav2vec2 import single_thread  # noqa: F401 (a fixture, used below)
from tests.optional import import_or_skip

soundfile = import_or_skip("soundfile")  # libsndfile: bundled in its wheels, a system library elsewhere

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-wav2vec2"


@pytest.fixture(scope="module", params=["ctc-group", "ctc-layer-stable", "hubert-ctc"])
def pair(request, root):
    """(our task, transformers' pipeline) on the same checkpoint folder."""
    from transformers import pipeline

    folder = checkpoint(request.param, root)
    return SpeechRecognition.load(folder, device="cpu"), pipeline("automatic-speech-recognition", model=str(folder), device="cpu")


def _as_pipeline_gives(result) -> dict:
    return json.loads(json.dumps(result))  # tuples to lists, as both would be serialised


@pytest.mark.parametrize(
    "seconds, options, timestamps",
    [
        (2.5, {}, "word"),
        (2.5, {}, "none"),
        (2.5, {"chunk_length_s": 30}, "char"),
        (14.0, {"chunk_length_s": 6, "stride_length_s": 1}, "word"),
        (14.0, {"chunk_length_s": 6, "stride_length_s": 1}, "char"),
        (14.0, {"chunk_length_s": 5}, "word"),
    ],
    ids=["one-pass", "no-timestamps", "short-chunked", "chunked", "chunked-chars", "default-stride"],
)
def test_output_equals_the_pipeline(pair, seconds, options, timestamps):
    ours, pipe = pair
    samples = speech_like(seconds, seed=11)
    kwargs = {} if timestamps == "none" else {"return_timestamps": timestamps}
    expected = pipe(samples.copy(), **options, **kwargs)
    got = ours.run(
        samples,
        chunk_length_s=options.get("chunk_length_s", 0),
        stride_length_s=options.get("stride_length_s"),
        return_timestamps=timestamps,
    )
    assert _as_pipeline_gives(got.to_json()) == _as_pipeline_gives(expected)
    assert len(set(got.text)) > 3  # the tiny model's gibberish varies, so equality means something


def test_a_file_gives_what_its_samples_give(root, tmp_path):
    task = SpeechRecognition.load(checkpoint("ctc-group", root), device="cpu")
    path = tmp_path / "speech.flac"
    soundfile.write(path, speech_like(13.0, seed=3, rate=44_100), 44_100)
    samples = audio.load_audio(path)
    for chunk in (0, 4):
        from_file = task.run(path, chunk_length_s=chunk)
        assert from_file.to_json() == task.run(samples, chunk_length_s=chunk).to_json()
        assert from_file.duration == pytest.approx(13.0, abs=1e-3)


def test_word_times_follow_the_frames(pair):
    ours, _ = pair
    result = ours.run(speech_like(4.0, seed=2))
    times = [c["timestamp"] for c in result.chunks]
    assert all(0 <= start < end <= 4.0 for start, end in times)
    assert all(a[1] <= b[0] for a, b in zip(times, times[1:]))
    assert all(round(t / 0.02, 6).is_integer() for pair_ in times for t in pair_)  # 20 ms frames


def test_silence_transcribes_without_error(root):
    task = SpeechRecognition.load(checkpoint("ctc-group", root), device="cpu")
    result = task.run(np.zeros(16_000, dtype=np.float32))
    assert isinstance(result.text, str) and result.duration == 1.0


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24"])
@pytest.mark.parametrize("rate, channels", [(8_000, 1), (48_000, 6)])
def test_bit_depths_rates_and_channels(root, tmp_path, subtype, rate, channels):
    task = SpeechRecognition.load(checkpoint("ctc-group", root), device="cpu")
    frames = np.stack([speech_like(1.5, seed=c, rate=rate) for c in range(channels)], axis=1)
    path = tmp_path / "input.wav"
    soundfile.write(path, frames, rate, subtype=subtype)
    result = task.run(path)
    assert result.to_json() == task.run(audio.load_audio(path)).to_json()
    assert result.duration == pytest.approx(1.5, abs=1e-3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: soundfile.write(p, np.zeros(0, dtype=np.float32), 16_000), "no audio"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + os.urandom(300)), "not an audio file"),
        (lambda p: p.write_text("hello"), "not an audio file"),
        (lambda p: soundfile.write(p, np.zeros(100, dtype=np.float32), 16_000), "too short"),
    ],
    ids=["empty", "corrupt", "text", "too-short"],
)
def test_bad_files_are_input_errors(root, tmp_path, make, message):
    task = SpeechRecognition.load(checkpoint("ctc-group", root), device="cpu")
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(InputError, match=message):
        task.run(path)


def test_bad_options_are_input_errors(root):
    task = SpeechRecognition.load(checkpoint("ctc-group", root), device="cpu")
    samples = speech_like(1.0)
    with pytest.raises(InputError, match="twice the stride"):
        task.run(samples, chunk_length_s=2, stride_length_s=1)
    with pytest.raises(InputError, match="return-timestamps"):
        task.run(samples, return_timestamps="sentence")
    with pytest.raises(InputError, match="mono"):
        task.run(np.zeros((2, 16_000), dtype=np.float32))


def _long_file(path, minutes: float, rate: int = 8_000) -> None:
    """Written block by block, so the test itself never holds the whole file either."""
    with soundfile.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for minute in range(int(minutes)):
            f.write(speech_like(60.0, seed=minute, rate=rate))
        if minutes % 1:
            f.write(speech_like(60.0 * (minutes % 1), seed=99, rate=rate))


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "ten-minutes.wav"
    _long_file(path, 10)
    return path


def _peak_bytes(task, path, hooks) -> tuple[int, object]:
    """Peak Python and numpy allocations while transcribing `path` in 30 s windows."""
    tracemalloc.start()
    try:
        result = task.run(path, chunk_length_s=30, hooks=hooks)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_a_long_file_streams_in_bounded_memory_with_progress(root, ten_minutes, tmp_path):
    task = SpeechRecognition.load(checkpoint("ctc-micro", root), device="cpu")
    reports, texts = [], []
    hooks = Hooks(on_progress=lambda *a: reports.append(a), on_partial=texts.append)
    peak, result = _peak_bytes(task, ten_minutes, hooks)
    _long_file(tmp_path / "short.wav", 2.5)
    short_peak, _ = _peak_bytes(task, tmp_path / "short.wav", Hooks())
    whole_file = 600 * 16_000 * 4  # the resampled audio as one float32 array: 38 MB
    # memory is a few windows' worth, the same for 2.5 minutes as for 10
    assert peak < whole_file / 3 and peak < 1.25 * short_peak, f"{peak / 1e6:.1f} MB, {short_peak / 1e6:.1f} MB"
    assert result.duration == pytest.approx(600, abs=0.01)
    assert result.chunks and result.chunks[-1]["timestamp"][1] > 590
    done = [r[0] for r in reports]
    assert done == sorted(done) and done[-1] == 600.0
    assert {r[1] for r in reports} == {600.0} and {r[2] for r in reports} == {"transcribing"}
    assert len(reports) == 30  # 30 s windows with 5 s of context each side start every 20 s
    assert len(texts) == 30 and texts[-1] == result.text  # the text so far, window by window
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))


def test_cancel_stops_between_windows(root, ten_minutes):
    task = SpeechRecognition.load(checkpoint("ctc-micro", root), device="cpu")
    cancel = threading.Event()
    reports = []

    def on_progress(done, total, message):
        reports.append(done)
        if len(reports) == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        task.run(ten_minutes, chunk_length_s=30, hooks=Hooks(on_progress=on_progress, cancel=cancel))
    assert len(reports) == 3


@pytest.mark.skipif(not os.environ.get("TASK_STUDIO_LONG_AUDIO"), reason="set TASK_STUDIO_LONG_AUDIO=1 for the 2-hour file")
def test_a_two_hour_file(root, tmp_path, ten_minutes):
    task = SpeechRecognition.load(checkpoint("ctc-micro", root), device="cpu")
    path = tmp_path / "two-hours.wav"
    _long_file(path, 120)
    reports = []
    peak, result = _peak_bytes(task, path, Hooks(on_progress=lambda *a: reports.append(a[0])))
    ten_minute_peak, _ = _peak_bytes(task, ten_minutes, Hooks())
    # only the transcript grows with the length (frame ids, words: a few MB an hour), never
    # with the audio, which would be 460 MB as one float32 array
    whole_file = 7200 * 16_000 * 4
    assert peak < ten_minute_peak + 0.02 * whole_file, f"{peak / 1e6:.1f} MB against {ten_minute_peak / 1e6:.1f} MB"
    assert result.duration == pytest.approx(7200, abs=0.01) and reports[-1] == 7200.0


def test_catalogue_cli_and_info(root, tmp_path, capsys):
    from engine.cli import main

    folder = checkpoint("ctc-group", root)
    assert get("automatic-speech-recognition") is SpeechRecognition
    path = tmp_path / "clip.wav"
    soundfile.write(path, speech_like(2.0), 16_000)
    assert main(["automatic-speech-recognition", str(path), "--model", str(folder), "--return-timestamps", "none"]) == 0
    expected = SpeechRecognition.load(folder, device="cpu").run(path, return_timestamps="none").to_json()
    assert json.loads(capsys.readouterr().out) == expected
    info = SpeechRecognition.load(folder, device="cpu").info()
    assert info["frame_ms"] == 20.0 and info["layers"] == 2 and info["hidden_size"] == 32
    assert info["vocabulary"] == 32 and "strides [5, 2, 2, 2, 2, 2, 2]" in info["feature_encoder"]
