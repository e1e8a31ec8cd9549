"""The bad-input catalogue, part one: inputs that used to give a wrong answer without a word.
Deep pictures clipped, a checkpoint of the wrong head run anyway, absurd audio samples turned
into NaN or silence, pictures without pixels classified, and option values quietly rounded.
Each case runs through the Python API, and a representative few through the CLI."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from PIL import Image

from engine import tasks
from engine.errors import CheckpointError, InputError
from engine.tasks.audio_classification import AudioClassification
from engine.tasks.image_classification import ImageClassification
from engine.tasks.object_detection import ObjectDetection
from engine.tasks.question_answering import QuestionAnswering
from engine.tasks.speech_recognition import SpeechRecognition
from engine.tasks.text_classification import TextClassification
from engine.tasks.token_classification import TokenClassification
from tests.engine.bad_inputs import CliCase, assert_answered, assert_refused, edited, run_cli
from tests.engine.bad_inputs import models, pictures, sounds  # noqa: F401 (fixtures)
from tests.engine.models.tiny_wav2vec2 import speech_like


@pytest.fixture(scope="module")
def cli(models, pictures, sounds):
    """This module's CLI cases, run together (see `run_cli`)."""
    return run_cli({
        "deep pictures": CliCase(["image-classification", str(pictures["grey16.png"]), str(pictures["grey8.png"]),
                                  "--model", str(models["vit"]), "--top-k", "7"]),
        "other head": CliCase(["token-classification", "hello", "--model", str(models["bert-sst"])]),
        "absurd audio": CliCase(["audio-classification", str(sounds["huge-3e38.wav"]), "--model", str(models["keywords"])]),
        "float top-k": CliCase(["image-classification", str(pictures["photo.png"]), "--model", str(models["vit"]),
                                "--top-k", "1.7"]),
    })  # fmt: skip


@pytest.fixture(scope="module")
def loaded(models):
    """The tasks that most cases run, each loaded once."""
    return {
        "vit": ImageClassification.load(models["vit"], device="cpu"),
        "detr": ObjectDetection.load(models["detr"], device="cpu"),
        "ctc": SpeechRecognition.load(models["ctc"], device="cpu"),
        "keywords": AudioClassification.load(models["keywords"], device="cpu"),
    }


# ---- 16-bit and float pictures are scaled to 8 bits, not clipped --------------------------------


@pytest.mark.parametrize("name", ["grey16.png", "grey16.tif", "float.tif"])
def test_deep_pictures_score_as_the_same_photo_in_8_bits(loaded, pictures, name):
    task = loaded["vit"]
    as_8_bit = task.run(pictures["grey8.png"], top_k=7).to_json()
    deep = task.run(pictures[name], top_k=7)
    assert deep.to_json() == as_8_bit  # clipped, 16-bit was all white and float all black
    assert len(deep.warnings) == 1 and "scaled to 8 bits" in deep.warnings[0]
    # a deep picture handed over as a PIL image is scaled the same way
    assert task.run(Image.open(pictures[name]), top_k=7).to_json() == as_8_bit


def test_deep_pictures_through_the_cli(cli):
    out, said = assert_answered(cli["deep pictures"])
    assert out[0] == out[1]
    assert said == [
        "grey16.png has 16-bit values; they were scaled to 8 bits (0..65535 to 0..255) as an image viewer shows it"
    ]


# ---- a checkpoint trained for another head is refused, both ways --------------------------------

OTHER_HEAD = [
    (TokenClassification, "bert-sst", "BertForSequenceClassification"),  # same keys once the pooler is dropped
    (TokenClassification, "sst", "DistilBertForSequenceClassification"),
    (TextClassification, "ner", "BertForTokenClassification"),
    (QuestionAnswering, "bert-sst", "BertForSequenceClassification"),
    (SpeechRecognition, "keywords", "Wav2Vec2ForSequenceClassification"),
    (AudioClassification, "ctc", "Wav2Vec2ForCTC"),
    (ImageClassification, "detr", "DetrForObjectDetection"),
    (ObjectDetection, "vit", "ViTForImageClassification"),
]


@pytest.mark.parametrize("task, model, trained_as", OTHER_HEAD, ids=lambda v: getattr(v, "name", v))
def test_a_checkpoint_of_another_head_is_refused(models, task, model, trained_as):
    with pytest.raises(CheckpointError, match=trained_as):
        task.load(models[model], device="cpu")


def test_a_headless_or_pretraining_architecture_is_refused(models, tmp_path):
    masked = edited(models["vit"], tmp_path / "vit-mim", architectures=["ViTForMaskedImageModeling"])
    with pytest.raises(CheckpointError, match="ViTForMaskedImageModeling; image classification needs .*ForImageClassification"):
        ImageClassification.load(masked, device="cpu")
    # without `architectures` the weights decide: a sentence classifier's extra layer is named
    bare = edited(models["sst"], tmp_path / "sst-bare", architectures=None)
    with pytest.raises(CheckpointError, match="pre_classifier"):
        TokenClassification.load(bare, device="cpu")


def test_a_checkpoint_of_another_head_through_the_cli(cli):
    assert_refused(cli["other head"], "BertForSequenceClassification", "ForTokenClassification")


# ---- absurd audio samples are refused, not turned into NaN or silence -------------------------

HUGE_ARRAYS = {
    "1e20": np.full(16_000, 1e20, np.float32),
    "3e38": np.full(16_000, 3e38, np.float32),
    "1e300 float64": np.full(16_000, 1e300),
    "int64 extreme": np.full(16_000, np.iinfo(np.int64).min),
    "nan": np.full(16_000, np.nan, np.float32),
}


@pytest.mark.parametrize("kind", HUGE_ARRAYS)
@pytest.mark.parametrize("task", ["ctc", "keywords"])
def test_absurd_sample_arrays_are_refused(loaded, task, kind):
    samples = HUGE_ARRAYS[kind].copy()
    samples[::7] *= -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warnings on the way
        with pytest.raises(InputError, match="as large as|not numbers"):
            loaded[task].run(samples)


@pytest.mark.parametrize("name", ["huge-1e20.wav", "huge-3e38.wav"])
@pytest.mark.parametrize("task", ["ctc", "keywords"])
def test_absurd_sample_files_are_refused(loaded, sounds, task, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=f"{name} has samples as large as"):
            loaded[task].run(sounds[name])


def test_audio_within_the_bound_still_works(loaded, sounds):
    speech = speech_like(1.0)
    as_16_bit = np.round(speech * 32767).astype(np.int16)  # integer samples, as transformers takes them
    assert loaded["keywords"].run(as_16_bit).labels
    assert loaded["keywords"].run(sounds["speech.wav"]).labels


def test_absurd_audio_through_the_cli(cli):
    assert_refused(cli["absurd audio"], "huge-3e38.wav has samples as large as 3e+38")


# ---- pictures without a pixel ----------------------------------------------------------------

EMPTY_PICTURES = {
    "0x0 array": np.zeros((0, 0, 3), np.uint8),
    "0x5 array": np.zeros((0, 5), np.uint8),
    "0x0 PIL": Image.new("RGB", (0, 0)),
    "7x0 PIL 16-bit": Image.new("I;16", (7, 0)),
}


@pytest.mark.parametrize("kind", EMPTY_PICTURES)
@pytest.mark.parametrize("task", ["vit", "detr"])
def test_a_picture_without_pixels_is_refused(loaded, task, kind):
    with pytest.raises(InputError, match="has no pixels"):
        loaded[task].run(EMPTY_PICTURES[kind])


# ---- options: no float read as an int, no bool as a number, no NaN ----------------------------


def every_option():
    for name in tasks.available():
        task = tasks.get(name)
        for option in task.options:
            yield task, option


WRONG_VALUES = {
    int: [1.7, 2.0, np.float32(2.0), True, np.bool_(True), "1.7", [3]],
    float: [True, math.nan, math.inf, -math.inf, "nan", np.float64(math.inf), [0.5]],
    bool: ["yes", 1],
}


@pytest.mark.parametrize("task, option", list(every_option()), ids=lambda v: getattr(v, "name", None))
def test_every_option_refuses_values_of_another_type(task, option):
    for value in WRONG_VALUES.get(option.type, []):
        with pytest.raises(InputError, match=option.flag):
            task.resolve_options({option.name: value})


def test_options_still_take_their_own_types_and_their_text(loaded):
    assert ImageClassification.resolve_options({"top_k": "3"})["top_k"] == 3
    assert ImageClassification.resolve_options({"top_k": np.int64(3)})["top_k"] == 3
    assert ObjectDetection.resolve_options({"threshold": 1})["threshold"] == 1.0
    assert SpeechRecognition.resolve_options({"chunk_length_s": np.float32(2.5)})["chunk_length_s"] == 2.5
    with pytest.raises(InputError, match="--top-k must be a whole number, not 1.7"):
        loaded["vit"].run(np.zeros((8, 8, 3), np.uint8), top_k=1.7)
    with pytest.raises(InputError, match="--top-k must be a whole number, not True"):
        loaded["keywords"].run(speech_like(1.0), top_k=True)


def test_a_float_top_k_through_the_cli(cli):
    assert_refused(cli["float top-k"], "--top-k", "1.7")
