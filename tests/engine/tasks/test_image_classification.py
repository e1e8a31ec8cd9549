"""The image-classification task against transformers' pipeline on tiny ViT and ConvNeXT
checkpoints saved with their PIL image processors: same labels in the same order, same scores."""

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessorPil,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessorPil,
    pipeline,
)

from engine import cli, tasks
from engine.errors import Cancelled, CheckpointError, InputError
from engine.tasks.base import Hooks
from engine.tasks.image_classification import ImageClassification
from tests.engine.image_samples import write_samples

ANIMALS = ["cat", "dog", "fox", "owl", "eel", "yak", "emu"]
LABELS = {i: name for i, name in enumerate(ANIMALS)}
IMAGES = ("rgb_640x480.jpg", "rgba_480x640.png", "exif_rotated_480x640.jpg", "cmyk_640x480.jpg", "one_pixel.png")


def save_vit(folder, **config):
    torch.manual_seed(0)
    model_config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                             image_size=32, patch_size=8, id2label=LABELS, **config)
    ViTForImageClassification(model_config).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def save_convnext(folder):
    torch.manual_seed(0)
    config = ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1], id2label=LABELS)
    ConvNextForImageClassification(config).save_pretrained(folder)
    ConvNextImageProcessorPil(
        size={"shortest_edge": 64}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    ).save_pretrained(folder)
    return folder


PROCESSOR_CLASSES = {"vit": ViTImageProcessorPil, "convnext": ConvNextImageProcessorPil}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module", params=["vit", "convnext"])
def checkpoint(request, tmp_path_factory):
    """(ours, transformers' pipeline) on the same saved files."""
    folder = tmp_path_factory.mktemp(request.param)
    (save_vit if request.param == "vit" else save_convnext)(folder)
    reference = pipeline(
        "image-classification",
        model=str(folder),
        image_processor=PROCESSOR_CLASSES[request.param].from_pretrained(folder),
    )
    return ImageClassification.load(folder, device="cpu"), reference


def assert_same_ranking(ours, theirs):
    assert [entry["label"] for entry in ours] == [entry["label"] for entry in theirs]
    np.testing.assert_allclose([e["score"] for e in ours], [e["score"] for e in theirs], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", IMAGES)
def test_top_k_equals_the_pipeline(checkpoint, samples, name):
    task, reference = checkpoint
    result = task.run(samples[name])
    assert len(result.labels) == 5
    assert_same_ranking(result.to_json(), reference(str(samples[name])))


@pytest.mark.parametrize("function", ["sigmoid", "none", "softmax"])
def test_score_functions_equal_the_pipeline(checkpoint, samples, function):
    task, reference = checkpoint
    path = samples["rgb_640x480.jpg"]
    ours = task.run(path, function_to_apply=function, top_k=3).to_json()
    assert_same_ranking(ours, reference(str(path), function_to_apply=function, top_k=3))


def test_top_k_beyond_the_labels_gives_every_label(checkpoint, samples):
    task, reference = checkpoint
    path = samples["grey_500x300.png"]
    ours = task.run(path, top_k=100).to_json()
    assert len(ours) == len(ANIMALS)
    assert_same_ranking(ours, reference(str(path), top_k=100))


def test_every_input_kind_gives_the_same_answer(checkpoint, samples):
    task, _ = checkpoint
    path = samples["rgb_640x480.jpg"]
    expected = task.run(path).to_json()
    picture = Image.open(path)
    for source in (str(path), path.read_bytes(), picture, np.asarray(picture.convert("RGB"))):
        assert task.run(source).to_json() == expected


def test_the_result_knows_the_upright_size(checkpoint, samples):
    task, _ = checkpoint
    assert task.run(samples["exif_rotated_480x640.jpg"]).image_size == (480, 640)


def test_multi_label_checkpoints_default_to_sigmoid(tmp_path, samples):
    folder = save_vit(tmp_path, problem_type="multi_label_classification")
    reference = pipeline("image-classification", model=str(folder),
                         image_processor=ViTImageProcessorPil.from_pretrained(folder))
    path = samples["rgb_640x480.jpg"]
    ours = ImageClassification.load(folder, device="cpu").run(path).to_json()
    assert sum(entry["score"] for entry in ours) > 1.5  # independent sigmoids, not a distribution
    assert_same_ranking(ours, reference(str(path)))


def test_info_reports_the_real_numbers(checkpoint):
    task, _ = checkpoint
    info = task.info()
    assert info["labels"] == 7 and info["parameters"] > 0 and info["precision"] == "fp32"
    if info["model_type"] == "vit":
        assert (info["patch_size"], info["image_size"], info["layers"], info["hidden_size"], info["heads"]) == (
            [8, 8], [32, 32], 2, 32, 4)
        assert info["patches"] == 16 and info["preprocessing"] == "32×32, bilinear"
    else:
        assert info["depths"] == [1, 1, 2, 1] and info["hidden_sizes"] == [8, 16, 24, 32]
        assert info["preprocessing"] == "short side to 73, centre crop 64, bicubic"


def test_bad_options_and_inputs_are_input_errors(checkpoint, samples, tmp_path):
    task, _ = checkpoint
    with pytest.raises(InputError, match="at least 1"):
        task.run(samples["one_pixel.png"], top_k=0)
    with pytest.raises(InputError, match="must be one of"):
        task.run(samples["one_pixel.png"], function_to_apply="argmax")
    with pytest.raises(InputError, match="no option"):
        task.run(samples["one_pixel.png"], threshold=0.5)
    text = tmp_path / "photo.jpg"
    text.write_text("not a photo")
    with pytest.raises(InputError, match="not an image"):
        task.run(text)


def test_a_set_cancel_flag_stops_the_run(checkpoint, samples):
    task, _ = checkpoint
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        task.run(samples["one_pixel.png"], hooks=Hooks(cancel=cancel))


def test_half_precision_runs(tmp_path, samples):
    task = ImageClassification.load(save_vit(tmp_path), device="cpu", dtype="bf16")
    result = task.run(samples["rgb_640x480.jpg"], top_k=7)
    assert sorted(entry["label"] for entry in result.labels) == sorted(ANIMALS)
    assert abs(sum(entry["score"] for entry in result.labels) - 1) < 1e-3


def test_other_architectures_are_refused_by_name(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(CheckpointError, match="needs one of: convnext, vit"):
        ImageClassification.load(tmp_path, device="cpu")


def test_a_processor_that_does_not_fit_the_model_is_refused(tmp_path):
    save_vit(tmp_path)
    ViTImageProcessorPil(size={"height": 48, "width": 48}).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="resizes to 48×48 but the model takes 32×32"):
        ImageClassification.load(tmp_path, device="cpu")


def test_the_catalogue_and_the_cli_offer_the_task(tmp_path, samples, capsys):
    assert tasks.get("image-classification") is ImageClassification
    folder = save_vit(tmp_path)
    code = cli.main(["image-classification", str(samples["rgb_640x480.jpg"]), "--model", str(folder),
                     "--device", "cpu", "--top-k", "2"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [set(entry) for entry in printed] == [{"label", "score"}] * 2
