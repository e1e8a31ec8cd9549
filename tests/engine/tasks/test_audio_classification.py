"""The audio-classification task against transformers' pipeline, and the rolling live window."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from engine import audio
from engine.errors import Cancelled, CheckpointError, InputError
from engine.tasks import get
from engine.tasks.audio_classification import AudioClassification, RollingClassifier, SlidingWindows, window_count
from engine.tasks.base import Hooks
from tests.engine.models.tiny_wav2vec2 import LABELS, checkpoint, speech_like
from tests.engine.models.tiny_wav2vec2 import single_thread  # noqa: F401 (a fixture, used below)
from tests.optional import import_or_skip

soundfile = import_or_skip("soundfile")  # libsndfile: bundled in its wheels, a system library elsewhere

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-wav2vec2"


@pytest.fixture(scope="module", params=["cls-weighted", "cls-stable-weighted", "cls-last", "hubert-cls"])
def pair(request, root):
    from transformers import pipeline

    folder = checkpoint(request.param, root)
    return AudioClassification.load(folder, device="cpu"), pipeline("audio-classification", model=str(folder), device="cpu")


def _same(got: list[dict], expected: list[dict]) -> None:
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    np.testing.assert_allclose([g["score"] for g in got], [e["score"] for e in expected], atol=1e-6)


@pytest.mark.parametrize("top_k", [5, 1, None, 100])
def test_labels_and_scores_equal_the_pipeline(pair, top_k):
    ours, pipe = pair
    samples = speech_like(1.2, seed=21)
    got = ours.run(samples, top_k=top_k).to_json()
    _same(got, pipe(samples.copy(), top_k=top_k))
    assert len(got) == min(top_k or len(LABELS), len(LABELS))
    assert got[0]["score"] >= got[-1]["score"]


def test_silence_and_a_file(root, tmp_path):
    task = AudioClassification.load(checkpoint("cls-weighted", root), device="cpu")
    assert len(task.run(np.zeros(16_000, dtype=np.float32)).labels) == 5
    path = tmp_path / "clip.wav"
    soundfile.write(path, speech_like(1.0, seed=3, rate=8_000), 8_000, subtype="PCM_24")
    _same(task.run(path).to_json(), task.run(audio.load_audio(path)).to_json())


def test_multi_label_heads_use_sigmoids(root, tmp_path):
    import shutil

    from transformers import pipeline

    folder = tmp_path / "multi-label"
    shutil.copytree(checkpoint("cls-last", root), folder)
    data = json.loads((folder / "config.json").read_text())
    data["problem_type"] = "multi_label_classification"
    (folder / "config.json").write_text(json.dumps(data))
    samples = speech_like(1.0, seed=5)
    got = AudioClassification.load(folder, device="cpu").run(samples, top_k=None).to_json()
    _same(got, pipeline("audio-classification", model=str(folder), device="cpu")(samples.copy(), top_k=None))
    assert sum(g["score"] for g in got) != pytest.approx(1.0)


def test_rolling_window_classifies_the_last_second(root):
    task = AudioClassification.load(checkpoint("cls-weighted", root), device="cpu")
    live = RollingClassifier(task, window_s=1.0, history_size=3)
    stream = speech_like(3.3, seed=6)
    assert live.classify() is None  # nothing heard yet
    results = []
    for i in range(0, len(stream), 4_000):
        live.feed(stream[i : i + 4_000])
        results.append(live.classify())
    _same(results[-1].to_json(), task.run(stream[-16_000:]).to_json())
    assert len(live.history) == 3 and live.history[-1] == results[-1].labels[0]


def test_rolling_window_resamples_a_microphone(root):
    task = AudioClassification.load(checkpoint("cls-weighted", root), device="cpu")
    live = RollingClassifier(task, window_s=0.5, sample_rate=48_000)
    live.feed(np.stack([speech_like(2.0, rate=48_000)] * 2, axis=1))  # stereo at 48 kHz
    assert live.ready and len(live._buffer) == 8_000
    assert live.classify().labels


def test_refusals_and_info(root):
    task = AudioClassification.load(checkpoint("cls-weighted", root), device="cpu")
    with pytest.raises(InputError, match="top-k"):
        task.run(speech_like(0.5), top_k=0)
    with pytest.raises(InputError, match="too short"):
        task.run(np.zeros(100, dtype=np.float32))
    with pytest.raises(CheckpointError, match="ForCTC"):
        AudioClassification.load(checkpoint("ctc-group", root), device="cpu")
    assert get("audio-classification") is AudioClassification
    info = task.info()
    assert info["labels"] == LABELS and info["frames_per_second"] == 50.0 and info["normalize_input"] is False


# ---- long audio: windows, their mean, progress and cancel ------------------------------------


@pytest.fixture(scope="module")
def keywords(root):
    return AudioClassification.load(checkpoint("cls-weighted", root), device="cpu")


@pytest.mark.parametrize("seconds, size, step", [(0.3, 8_000, 6_000), (2.0, 8_000, 6_000), (2.0, 8_000, 8_000),
                                                  (1.75, 8_000, 3_000), (0.5, 8_000, 2_000)])
def test_sliding_windows_cover_the_stream_and_end_at_its_end(seconds, size, step):
    stream = np.arange(int(seconds * 16_000), dtype=np.float32)
    windows = SlidingWindows(size, step)
    got = [w for block in np.array_split(stream, 7) for w in windows.push(block)] + windows.finish()
    assert len(got) == window_count(len(stream), size, step)
    for start, samples in got:
        np.testing.assert_array_equal(samples, stream[start : start + size])
    assert got[0][0] == 0 and got[-1][0] + len(got[-1][1]) == len(stream)
    assert all(b[0] - a[0] <= step for a, b in zip(got, got[1:]))


def test_a_clip_within_one_window_gets_the_pipelines_answer(keywords):
    samples = speech_like(1.2, seed=21)
    whole = keywords.classify(samples, None).to_json()
    result = keywords.run(samples, top_k=None, chunk_length_s=2.0)
    _same(result.to_json(), whole)
    assert result.window_times == [(0.0, 1.2)] and len(result.window_scores) == 1


def test_a_long_file_is_the_mean_of_its_windows(keywords, tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, speech_like(5.0, seed=8), 16_000, subtype="FLOAT")
    seen = []
    hooks = Hooks(on_progress=lambda done, total, message: seen.append((done, total, message)))
    result = keywords.run(path, top_k=None, chunk_length_s=1.0, stride_length_s=0.25, hooks=hooks)
    samples = audio.load_audio(path)
    starts = [0, 12_000, 24_000, 36_000, 48_000, 60_000, 64_000]  # every 0.75 s; the last ends at 5 s
    assert [round(t[0] * 16_000) for t in result.window_times] == starts
    assert len(result.window_scores) == window_count(80_000, 16_000, 12_000) == 7
    by_window = [keywords.classify(samples[s : s + 16_000], None) for s in starts]
    for row, alone in zip(result.window_scores, by_window):
        expected = dict((e["label"], e["score"]) for e in alone.to_json())
        np.testing.assert_allclose(row, [expected[label] for label in result.labels_order], atol=1e-6)
    mean = np.mean(result.window_scores, axis=0)
    got = {e["label"]: e["score"] for e in result.to_json()}
    np.testing.assert_allclose([got[label] for label in result.labels_order], mean, atol=1e-6)
    assert [s[0] for s in seen] == [1.0, 1.75, 2.5, 3.25, 4.0, 4.75, 5.0] and {s[1] for s in seen} == {5.0}


def test_a_long_file_is_cancelled_between_windows(keywords):
    cancel = threading.Event()
    calls = []

    def progress(done, total, message):
        calls.append(done)
        if len(calls) == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        keywords.run(speech_like(4.0, seed=2), chunk_length_s=0.5, hooks=Hooks(on_progress=progress, cancel=cancel))
    assert len(calls) == 2  # the third window never ran


def test_one_pass_over_a_long_file_is_warned_about(keywords, monkeypatch):
    import engine.tasks.audio_classification as module

    monkeypatch.setattr(module, "LONG_ONE_PASS_S", 1.0)
    result = keywords.run(speech_like(1.5, seed=4), chunk_length_s=0)
    assert len(result.window_scores) == 1 and "one window" in result.warnings[0]
    assert not keywords.run(speech_like(1.5, seed=4)).warnings


@pytest.mark.parametrize("options, message", [
    ({"chunk_length_s": -1}, "negative"), ({"chunk_length_s": 0.001}, "smallest input"),
    ({"chunk_length_s": 1, "stride_length_s": 1}, "stride must be shorter"),
    ({"chunk_length_s": float("nan")}, "finite"),
])
def test_impossible_windows_are_refused(keywords, options, message):
    with pytest.raises(InputError, match=message):
        keywords.run(speech_like(0.5), **options)
