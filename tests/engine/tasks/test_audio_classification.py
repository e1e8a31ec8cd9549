"""The audio-classification task against transformers' pipeline, and the rolling live window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import audio
from engine.errors import CheckpointError, InputError
from engine.tasks import get
from engine.tasks.audio_classification import AudioClassification, RollingClassifier
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
