"""The audio tasks' internals (explain): CTC frame probabilities equal the softmax of
transformers' logits and collapse into the text; audio classification's scores over time (its
own frames through the classifier, window by window) and learned layer weights; with explain
off, the same result and nothing kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.tasks.audio_classification import AudioClassification
from engine.tasks.speech_recognition import SpeechRecognition
from tests.engine.models.tiny_wav2vec2 import LABELS, checkpoint, speech_like
from tests.engine.models.tiny_wav2vec2 import single_thread  # noqa: F401 (a fixture, used below)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "tiny-wav2vec2"


@pytest.fixture(scope="module")
def speech(root):
    return SpeechRecognition.load(checkpoint("ctc-group", root), device="cpu")


def _oracle_logits(folder, samples, class_name="Wav2Vec2ForCTC"):
    import transformers

    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    model = getattr(transformers, class_name).from_pretrained(folder).eval()
    inputs = extractor(samples, sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        return model, model(inputs.input_values).logits[0]


def test_frame_probabilities_equal_the_softmax_of_transformers_logits(speech):
    samples = speech_like(2.5, seed=11)
    result = speech.run(samples, chunk_length_s=0, explain=True)
    _, logits = _oracle_logits(speech.folder, samples)
    best = logits.softmax(-1).topk(3, dim=-1)
    inside = result.internals
    assert inside["frame_top_ids"].shape == (logits.shape[0], 3)
    np.testing.assert_array_equal(inside["frame_top_ids"], best.indices.numpy())
    np.testing.assert_allclose(inside["frame_top_probs"], best.values.numpy(), atol=1e-5)  # float32 rounding
    assert float(inside["frame_seconds"]) == pytest.approx(0.02)
    assert inside["vocabulary"][int(inside["blank_id"])] == "<pad>"


def test_the_frames_collapse_into_the_text(speech):
    samples = speech_like(6.0, seed=5)
    result = speech.run(samples, chunk_length_s=3, stride_length_s=0.5, explain=True)
    inside = result.internals
    frames = len(inside["frame_top_ids"])
    assert abs(frames - len(samples) / 320) <= 1  # every frame once, windows' context cut off
    vocabulary, top = inside["vocabulary"], inside["frame_top_ids"][:, 0]
    for char, (start, end) in zip(inside["chars"], inside["char_frames"]):
        assert 0 <= start < end <= frames
        assert {vocabulary[i].replace("|", " ") for i in top[start:end]} == {char}
    assert inside["words"].tolist() == [c["text"] for c in result.chunks]
    assert [c["timestamp"] for c in result.chunks] == [
        (s * 320 / 16_000, e * 320 / 16_000) for s, e in inside["word_frames"].tolist()
    ]


def test_explain_off_keeps_nothing_and_changes_nothing(speech):
    samples = speech_like(3.0, seed=2)
    plain = speech.run(samples)
    explained = speech.run(samples, explain=True)
    assert plain.internals == {} and explained.internals
    assert plain.to_json() == explained.to_json()


@pytest.mark.parametrize("variant", ["cls-weighted", "cls-last"])
def test_audio_classification_scores_over_time_and_layer_weights(root, variant):
    import transformers

    folder = checkpoint(variant, root)
    task = AudioClassification.load(folder, device="cpu")
    samples = speech_like(2.6, seed=21)
    plain = task.run(samples, top_k=None)
    result = task.run(samples, top_k=None, explain=True)
    assert plain.internals == {}
    assert plain.to_json() == result.to_json()  # explain watches the projector only: bit for bit
    inside = result.internals
    assert inside["labels"].tolist() == LABELS
    # 129 frames of 20 ms: windows of 50 frames every 25, the last one ending with the clip
    np.testing.assert_allclose(
        inside["window_times"], [[0, 1], [0.5, 1.5], [1, 2], [1.5, 2.5], [1.58, 2.58]], atol=1e-6
    )
    # the reference: transformers' projected frames through its classifier, averaged per window
    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    model = transformers.Wav2Vec2ForSequenceClassification.from_pretrained(folder).eval()
    seen = []
    model.projector.register_forward_hook(lambda module, args, output: seen.append(output))
    with torch.no_grad():
        model(extractor(samples, sampling_rate=16_000, return_tensors="pt").input_values)
        frame_logits = model.classifier(seen[0][0])
    expected = [frame_logits[s : s + 50].mean(0).softmax(-1).numpy() for s in (0, 25, 50, 75, 79)]
    np.testing.assert_allclose(inside["window_scores"], np.stack(expected), atol=1e-6)
    if variant == "cls-weighted":
        expected_weights = model.layer_weights.detach().softmax(-1).numpy()
        np.testing.assert_allclose(inside["layer_weights"], expected_weights, atol=1e-7)
    else:
        assert "layer_weights" not in inside


def test_a_short_clip_is_one_window_equal_to_the_result(root):
    task = AudioClassification.load(checkpoint("cls-weighted", root), device="cpu")
    result = task.run(speech_like(0.7, seed=4), top_k=None, explain=True)
    inside = result.internals
    assert inside["window_times"].tolist() == [[0.0, pytest.approx(0.68)]]  # 34 frames
    by_label = dict(zip(inside["labels"].tolist(), inside["window_scores"][0].tolist()))
    assert [by_label[item["label"]] for item in result.to_json()] == pytest.approx(
        [item["score"] for item in result.to_json()], abs=1e-6  # mean of logits vs logits of the mean
    )
