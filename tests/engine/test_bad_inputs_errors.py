"""The bad-input catalogue, part two: inputs that used to end in an internal error, a crash or
a screenful of someone else's text, where one clear line belongs. Unbounded text inputs,
folders, pictures one pixel thin, impossible config.json values, non-finite chunk lengths,
refused .bin files, PIL's own warnings, a checkpoint whose answer is NaN, and a machine
without libsndfile. Python API first, then a representative few through the CLI."""

from __future__ import annotations

import datetime
import math
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import text
from engine.errors import CheckpointError, InputError
from engine.tasks.audio_classification import AudioClassification
from engine.tasks.base import read_text_argument
from engine.tasks.image_classification import ImageClassification
from engine.tasks.live_transcription import LiveTranscriber
from engine.tasks.object_detection import ObjectDetection
from engine.tasks.speech_recognition import SpeechRecognition
from engine.tasks.text_classification import TextClassification
from tests.engine.bad_inputs import CliCase, assert_answered, assert_refused, edited, run_cli
from tests.engine.bad_inputs import models, pictures, sounds  # noqa: F401 (fixtures)
from tests.engine.models.tiny_wav2vec2 import speech_like


@pytest.fixture(scope="module")
def cli(models, pictures, sounds, pickled, nan_answer, tmp_path_factory):
    """This module's CLI cases, run together (see `run_cli`)."""
    impossible = edited(models["bert-sst"], tmp_path_factory.mktemp("config") / "checkpoint", num_attention_heads=0)
    sst, photo = str(models["sst"]), str(pictures["photo.png"])
    return run_cli({
        "/dev/zero": CliCase(["text-classification", "@/dev/zero", "--model", sst]),
        "folder": CliCase(["text-classification", f"@{pictures['photo.png'].parent}", "--model", sst]),
        "stdin not UTF-8": CliCase(["text-classification", "-", "--model", sst], stdin=b"\xff\xfe\x00bad"),
        "thin picture": CliCase(["object-detection", str(pictures["wide.png"]), "--model", str(models["detr"])]),
        "impossible config": CliCase(["text-classification", "hello", "--model", str(impossible)]),
        "nan chunk": CliCase(["automatic-speech-recognition", str(sounds["speech.wav"]), "--model", str(models["ctc"]),
                              "--chunk-length-s", "nan"]),
        "refused bin": CliCase(["text-classification", "hello", "--model", str(pickled)]),
        "PIL warning": CliCase(["image-classification", photo, "--model", str(models["vit"])],
                               before="from PIL import Image; limit = Image.MAX_IMAGE_PIXELS; Image.MAX_IMAGE_PIXELS = 3000",
                               after="Image.MAX_IMAGE_PIXELS = limit"),
        "NaN answer": CliCase(["text-classification", "hello", "--model", str(nan_answer)]),
        "no libsndfile": CliCase(["audio-classification", str(sounds["speech.wav"]), "--model", str(models["keywords"])],
                                 before="saved = sys.modules.pop('soundfile', None); sys.modules['soundfile'] = None",
                                 after="sys.modules['soundfile'] = saved"),
    })  # fmt: skip


# ---- text inputs have a size bound; folders are not files -----------------------------------


def test_text_inputs_are_read_with_a_bound(tmp_path):
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(text.MAX_TEXT_BYTES + 1)  # sparse: no disk used
    with pytest.raises(InputError, match="more than 10 MB"):
        read_text_argument(f"@{huge}")
    if Path("/dev/zero").exists():  # endless: this used to fill 24 GB
        with pytest.raises(InputError, match="/dev/zero holds more than 10 MB"):
            read_text_argument("@/dev/zero")
    at_the_bound = tmp_path / "long.txt"
    at_the_bound.write_bytes(b"a" * text.MAX_TEXT_BYTES)
    assert len(read_text_argument(f"@{at_the_bound}")) == text.MAX_TEXT_BYTES


@pytest.mark.parametrize("task", [TextClassification, ImageClassification, SpeechRecognition])
def test_a_folder_is_not_an_input_file(task, tmp_path):
    given = f"@{tmp_path}" if task.input_kind == "text" else str(tmp_path)
    with pytest.raises(InputError, match="is a folder"):
        task.read_input(given)


def test_unbounded_and_folder_text_through_the_cli(cli):
    if Path("/dev/zero").exists():
        assert_refused(cli["/dev/zero"], "/dev/zero", "10 MB")
    assert_refused(cli["folder"], "holds no text files")  # @folder names its text files: none there
    assert_refused(cli["stdin not UTF-8"], "the standard input is not UTF-8")


# ---- pictures one pixel thin go through detection as through classification -----------------


@pytest.mark.parametrize("name", ["wide.png", "tall.png"])
def test_thin_pictures_are_detected(models, pictures, name):
    detector = ObjectDetection.load(models["detr"], device="cpu")
    result = detector.run(pictures[name], threshold=0.0)
    width, height = result.model_input_size
    assert min(width, height) == 1 and max(width, height) == 128  # the 0 the size rule gave is 1
    assert all(math.isfinite(d.score) for d in result.candidates)


def test_thin_picture_through_the_cli(cli):
    out, _ = assert_answered(cli["thin picture"])
    assert isinstance(out, list)


# ---- config.json values are checked when read, and named -----------------------------------

BAD_CONFIGS = [
    (TextClassification, "bert-sst", {"hidden_size": "abc"}, 'hidden_size must be a whole number, not "abc"'),
    (TextClassification, "bert-sst", {"hidden_size": None}, "hidden_size must be a whole number, not null"),
    (TextClassification, "bert-sst", {"num_attention_heads": 0}, "num_attention_heads must be above zero, not 0"),
    (TextClassification, "bert-sst", {"vocab_size": -1}, "vocab_size must be above zero, not -1"),
    (TextClassification, "bert-sst", {"max_position_embeddings": True}, "max_position_embeddings must be a whole number"),
    (TextClassification, "bert-sst", {"layer_norm_eps": "small"}, "layer_norm_eps must be a finite number"),
    (TextClassification, "bert-sst", {"num_attention_heads": 5}, "not a multiple of num_attention_heads 5"),
    (TextClassification, "sst", {"dim": 32.5}, "dim must be a whole number, not 32.5"),
    (TextClassification, "sst", {"n_heads": 0}, "n_heads must be above zero"),
    (TextClassification, "sst", {"id2label": ["NEGATIVE", "POSITIVE"]}, "id2label must map label ids to names"),
    (TextClassification, "sst", {"id2label": {"first": "NEGATIVE"}}, "id2label has a key that is not a whole number"),
    (ImageClassification, "vit", {"image_size": "large"}, "image_size must be a list of 2 whole numbers"),
    (ImageClassification, "vit", {"patch_size": 0}, "patch_size must hold numbers above zero"),
    (ImageClassification, "vit", {"qkv_bias": "yes"}, "qkv_bias must be true or false"),
    (ObjectDetection, "detr", {"d_model": 0}, "d_model must be above zero"),
    (ObjectDetection, "detr", {"num_queries": "100"}, "num_queries must be a whole number"),
    (ObjectDetection, "detr", {"backbone_config": {"model_type": "resnet", "depths": [1, "two"]}}, "depths must be a list"),
    (ObjectDetection, "detr", {"backbone_config": "resnet50"}, "backbone_config must be an object"),
    (SpeechRecognition, "ctc", {"conv_stride": [5, 2, 2, 0, 2, 2, 2]}, "conv_stride must hold numbers above zero"),
    (SpeechRecognition, "ctc", {"vocab_size": -1}, "vocab_size must be above zero"),
    (AudioClassification, "keywords", {"num_attention_heads": 3}, "hidden_size 32 is not a multiple of num_attention_heads 3"),
    (AudioClassification, "keywords", {"num_conv_pos_embedding_groups": 5}, "num_conv_pos_embedding_groups 5"),
    (AudioClassification, "keywords", {"layer_norm_eps": math.nan}, "layer_norm_eps must be a finite number, not NaN"),
]


@pytest.mark.parametrize("task, model, change, message", BAD_CONFIGS, ids=lambda v: str(v)[:40] if isinstance(v, dict) else None)
def test_impossible_config_values_are_named(models, tmp_path, task, model, change, message):
    folder = edited(models[model], tmp_path / "checkpoint", **change)
    with pytest.raises(CheckpointError, match=f"^config.json: .*{re.escape(message)}"):
        task.load(folder, device="cpu")


def test_preprocessor_config_values_are_named(models, tmp_path):
    folder = edited(models["keywords"], tmp_path / "checkpoint")
    (folder / "preprocessor_config.json").write_text('{"sampling_rate": 0}')
    with pytest.raises(CheckpointError, match="preprocessor_config.json: sampling_rate must be above zero"):
        AudioClassification.load(folder, device="cpu")


def test_an_impossible_config_through_the_cli(cli):
    assert_refused(cli["impossible config"], "config.json: num_attention_heads must be above zero")


# ---- chunk lengths: finite, and no shorter than the model's smallest window -------------------


@pytest.mark.parametrize(
    "options",
    [{"chunk_length_s": math.nan}, {"chunk_length_s": math.inf}, {"stride_length_s": math.nan}, {"stride_length_s": -math.inf}],
)
def test_chunk_lengths_must_be_finite(models, options):
    task = SpeechRecognition.load(models["ctc"], device="cpu")
    with pytest.raises(InputError, match="must be a finite number"):
        task.run(speech_like(1.0), **options)
    with pytest.raises(InputError, match="finite"):
        LiveTranscriber(task, **options)


def test_a_chunk_shorter_than_the_smallest_window_names_the_window(models):
    task = SpeechRecognition.load(models["ctc"], device="cpu")
    with pytest.raises(InputError, match=r"one frame takes 25 ms .* at least 0.04 s") as info:
        task.run(speech_like(1.0), chunk_length_s=0.001, stride_length_s=0)
    assert "stride" not in str(info.value)
    assert task.run(speech_like(0.2), chunk_length_s=0.04, stride_length_s=0).text is not None  # the shortest allowed


def test_non_finite_chunks_through_the_cli(cli):
    assert_refused(cli["nan chunk"], "--chunk-length-s must be a finite number")


# ---- a .bin the weights-only reader refuses is one line ---------------------------------------


@pytest.fixture(scope="module")
def pickled(models, tmp_path_factory):
    """The sentence classifier saved as pytorch_model.bin with a date in it (not a tensor)."""
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("pickled")
    shutil.copytree(models["sst"], folder, dirs_exist_ok=True)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save({**state, "saved_on": datetime.date(2024, 1, 1)}, folder / "pytorch_model.bin")
    return folder


def test_a_refused_bin_is_one_line_without_torchs_advice(pickled):
    with pytest.raises(CheckpointError) as info:
        TextClassification.load(pickled, device="cpu")
    message = str(info.value)
    assert message.startswith("pytorch_model.bin was refused by the weights-only reader (Unsupported global")
    assert "datetime.date" in message and "\n" not in message and "\x1b" not in message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message


def test_a_refused_bin_through_the_cli(cli):
    assert_refused(cli["refused bin"], "pytorch_model.bin was refused", "datetime.date")


# ---- PIL's decompression-bomb warning becomes the result's own -------------------------------


def test_pils_large_picture_warning_becomes_a_note(models, pictures, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # the 64×48 photo is then "large" to PIL
    task = ImageClassification.load(models["vit"], device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = task.run(pictures["photo.png"])
    assert result.warnings == ["photo.png is 64×48 (0 megapixels), a very large picture: it takes a lot of memory and time"]


def test_pils_warning_through_the_cli(cli):
    _, said = assert_answered(cli["PIL warning"])
    assert len(said) == 1 and "very large picture" in said[0]  # and no DecompressionBombWarning


# ---- whatever a checkpoint answers, the CLI prints strict JSON --------------------------------


@pytest.fixture(scope="module")
def nan_answer(models, tmp_path_factory):
    """The sentence classifier with NaN in its classifier: it answers NaN for every text."""
    from safetensors.torch import load_file, save_file

    folder = edited(models["sst"], tmp_path_factory.mktemp("nan") / "checkpoint")
    state = load_file(str(folder / "model.safetensors"))
    state["classifier.weight"] = torch.full_like(state["classifier.weight"], math.nan)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_a_nan_answer_is_an_error_not_invalid_json(cli, nan_answer):
    scores = [item["score"] for item in TextClassification.load(nan_answer, device="cpu").run("hello").to_json()]
    assert all(math.isnan(score) for score in scores)  # what the Python API hands back as it is
    assert_refused(cli["NaN answer"], "not finite")


# ---- a machine without libsndfile ------------------------------------------------------------


def test_without_libsndfile_audio_files_are_refused_with_the_reason(models, sounds, monkeypatch):
    task = AudioClassification.load(models["keywords"], device="cpu")
    monkeypatch.setitem(sys.modules, "soundfile", None)  # as when libsndfile is missing
    with pytest.raises(InputError, match="libsndfile is missing"):
        task.run(sounds["speech.wav"])
    assert task.run(np.asarray(speech_like(1.0))).labels  # samples need no libsndfile


def test_without_libsndfile_through_the_cli(cli):
    assert_refused(cli["no libsndfile"], "libsndfile is missing", "libsndfile1")
