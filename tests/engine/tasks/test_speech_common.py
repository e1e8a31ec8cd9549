"""Model input and the chunk grid against transformers: the feature extractor's values, the
pipeline's chunk windows and its frame arithmetic, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.tasks.speech_common import FeatureSettings, StridedChunker, as_samples, chunk_sizes, feature_settings, kept_frames, normalize
from tests.engine.models.tiny_wav2vec2 import speech_like

SIGNALS = {
    "speech": speech_like(1.3, seed=4),
    "silence": np.zeros(8_000, dtype=np.float32),
    "loud": 40 * speech_like(0.7, seed=5),
    "dc": np.full(4_000, 0.25, dtype=np.float32),
    "one-sample": np.array([0.5], dtype=np.float32),
}


@pytest.mark.parametrize("do_normalize", [True, False])
@pytest.mark.parametrize("signal", list(SIGNALS))
def test_input_values_equal_the_feature_extractor(tmp_path, signal, do_normalize):
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(do_normalize=do_normalize, return_attention_mask=True).save_pretrained(tmp_path)
    oracle = Wav2Vec2FeatureExtractor.from_pretrained(tmp_path)
    settings = feature_settings(tmp_path)
    assert settings == FeatureSettings(16_000, do_normalize)
    expected = oracle(SIGNALS[signal], sampling_rate=16_000, return_tensors="np").input_values[0]
    got = normalize(SIGNALS[signal], settings)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_missing_preprocessor_config_means_the_extractor_defaults(tmp_path):
    assert feature_settings(tmp_path) == FeatureSettings(16_000, True)


def _pipeline_windows(inputs: np.ndarray, chunk: int, left: int, right: int):
    """transformers' own chunk iterator, with a stand-in feature extractor that passes samples."""
    from transformers.pipelines.automatic_speech_recognition import chunk_iter

    class Passthrough:
        sampling_rate = 16_000

        def __call__(self, x, **_):
            return {"input_values": x}

    windows = chunk_iter(inputs, Passthrough(), chunk, left, right)
    return [(item["input_values"], item["stride"], item["is_last"]) for item in windows]


def _our_windows(inputs: np.ndarray, chunk: int, left: int, right: int, block: int):
    chunker = StridedChunker(chunk, left, right)
    windows = []
    for i in range(0, len(inputs), block):
        windows += chunker.push(inputs[i : i + block])
    windows += chunker.finish()
    return [(w.samples, (len(w.samples), w.left, w.right), w.is_last) for w in windows]


@pytest.mark.parametrize("length", [1, 999, 1_000, 1_001, 1_600, 1_601, 3_000, 3_001, 7_777, 12_345])
@pytest.mark.parametrize("block", [1, 160, 1_000, 100_000])
def test_chunk_windows_equal_the_pipelines(length, block):
    inputs = np.arange(length, dtype=np.float32)
    chunk, left, right = 1_000, 200, 200  # a step of 600
    expected = _pipeline_windows(inputs, chunk, left, right)
    got = _our_windows(inputs, chunk, left, right, block)
    assert [(s, last) for _, s, last in got] == [(s, last) for _, s, last in expected]
    for (ours, *_), (theirs, *_) in zip(got, expected):
        np.testing.assert_array_equal(ours, theirs)


def test_chunker_keeps_about_one_window():
    chunker = StridedChunker(1_000, 200, 200)
    for _ in range(100):
        chunker.push(np.ones(170, dtype=np.float32))
        assert len(chunker._buffer) <= 1_000 + 170
    samples, start, left = chunker.pending()
    assert start + len(samples) == chunker.received == 17_000 and left == 200


@pytest.mark.parametrize("n", [320, 1_000, 16_000, 95_999, 160_000, 480_000])
@pytest.mark.parametrize("left, right", [(0, 0), (0, 16_000), (16_000, 16_000), (16_000, 0), (32_000, 48_000)])
def test_kept_frames_equal_rescale_stride(n, left, right):
    from transformers.pipelines.automatic_speech_recognition import rescale_stride

    if left + right >= n:
        return
    frames, first, last = rescale_stride([(n, left, right)], 1 / 320)[0]
    assert kept_frames(n, left, right, 320) == (first, frames - last)


def test_chunk_sizes_round_to_frames_as_the_pipeline_does():
    assert chunk_sizes(30, None, 16_000, 320) == (480_000, 80_000, 80_000)
    assert chunk_sizes(10, 2.01, 16_000, 320) == (160_000, 32_000, 32_000)
    assert chunk_sizes(1.0001, 0, 16_000, 320) == (16_000, 0, 0)
    with pytest.raises(InputError, match="twice the stride"):
        chunk_sizes(4, 2, 16_000, 320)
    with pytest.raises(InputError, match="negative"):
        chunk_sizes(-1, None, 16_000, 320)


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros((2, 100)), "mono"),
        (np.zeros(0), "no samples"),
        (np.array(["a"]), "numbers"),
        (np.array([0.0, np.inf]), "not numbers"),
        ([0.1, 0.2], "array"),
    ],
)
def test_array_inputs_are_checked(value, message):
    with pytest.raises(InputError, match=message):
        as_samples(value)


def test_integer_and_double_arrays_become_float32():
    assert as_samples(np.array([1, 2], dtype=np.int16)).dtype == np.float32
    assert as_samples(np.array([0.5])).dtype == np.float32
