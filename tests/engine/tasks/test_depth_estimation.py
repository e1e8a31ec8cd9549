"""Depth estimation against transformers' depth-estimation pipeline on tiny random Depth
Anything checkpoints saved with DPT's PIL image processor: the depth at the original size and
the 8-bit picture, on pictures of many shapes and modes, relative and metric heads."""

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import DPTImageProcessorPil, pipeline

from engine import image_device, tasks
from engine.errors import Cancelled, CheckpointError, InputError
from engine.tasks.base import Hooks
from engine.tasks.depth_estimation import DepthEstimation, depth_picture, pad_to_multiple
from tests.engine.image_samples import photo, write_samples
from tests.engine.models.tiny_depth_anything import PATCH, save_tiny_depth_anything

IMAGENET = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
# the Hub files' processor (518, multiples of 14) at the tiny model's scale: 56, multiples of 7
PROCESSOR = dict(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=PATCH,
                 resample=3, **IMAGENET)
SAMPLES = ("rgb_640x480.jpg", "rgba_480x640.png", "grey_500x300.png", "palette_520x360.gif",
           "cmyk_640x480.jpg", "exif_rotated_480x640.jpg")
# (width, height) of photos with odd sides, portrait and landscape, and thin but still usable
ODD_SIZES = [(333, 197), (97, 411), (59, 61), (600, 45)]


def save_checkpoint(folder, kind="relative", **processor):
    extra = {"depth_estimation_type": "metric", "max_depth": 20} if kind == "metric" else {}
    save_tiny_depth_anything(folder, **extra)
    DPTImageProcessorPil(**{**PROCESSOR, **processor}).save_pretrained(folder)
    return folder


def reference_pipeline(folder):
    return pipeline("depth-estimation", model=str(folder), image_processor=DPTImageProcessorPil.from_pretrained(folder))


def write_pictures(folder, odd_sizes):
    """The samples of every mode, and photos of each (width, height) in `odd_sizes` named
    odd_WxH.png: name -> path."""
    paths = write_samples(folder)
    for width, height in odd_sizes:
        name = f"odd_{width}x{height}.png"
        Image.fromarray(photo(height, width, seed=width)).save(folder / name)
        paths[name] = folder / name
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_pictures(tmp_path_factory.mktemp("images"), ODD_SIZES)


def load_both(folder):
    """(ours, transformers' pipeline) on the same saved files."""
    return DepthEstimation.load(folder, device="cpu"), reference_pipeline(folder)


@pytest.fixture(scope="module")
def relative(tmp_path_factory):
    return load_both(save_checkpoint(tmp_path_factory.mktemp("relative"), "relative"))


@pytest.fixture(scope="module")
def metric(tmp_path_factory):
    return load_both(save_checkpoint(tmp_path_factory.mktemp("metric"), "metric"))


@pytest.fixture(params=["relative", "metric"])
def checkpoint(request):
    return request.getfixturevalue(request.param)


def assert_same_depth(ours, theirs):
    expected = theirs["predicted_depth"].numpy()
    assert ours.predicted_depth.shape == expected.shape and ours.predicted_depth.dtype == np.float32
    np.testing.assert_allclose(ours.predicted_depth, expected, rtol=1e-5, atol=1e-5)
    picture = np.asarray(theirs["depth"])
    assert ours.depth.dtype == np.uint8 and ours.depth.shape == picture.shape
    assert np.abs(ours.depth.astype(int) - picture).max() <= 1  # a value on a level's edge may tip


@pytest.mark.parametrize(
    "kind, name",
    [("relative", name) for name in SAMPLES + tuple(f"odd_{w}x{h}.png" for w, h in ODD_SIZES)]
    + [("metric", name) for name in ("rgb_640x480.jpg", "exif_rotated_480x640.jpg", "odd_333x197.png")],
)
def test_depth_and_picture_equal_the_pipeline(request, images, kind, name):
    task, reference = request.getfixturevalue(kind)
    result = task.run(images[name])
    assert_same_depth(result, reference(str(images[name])))
    width, height = result.image_size
    assert result.predicted_depth.shape == (height, width)
    model_width, model_height = result.model_input_size
    assert model_width % PATCH == 0 and model_height % PATCH == 0


def test_the_result_says_what_the_numbers_mean(checkpoint, images):
    task, _ = checkpoint
    result = task.run(images["rgb_640x480.jpg"])
    printed = result.to_json()
    assert set(printed) == {"kind", "min", "max"} and printed["kind"] == task.kind
    assert printed["min"] == pytest.approx(float(result.predicted_depth.min()))
    assert printed["max"] == pytest.approx(float(result.predicted_depth.max()))
    assert result.unit == {"metric": "metres", "relative": "relative inverse depth (larger is nearer)"}[task.kind]
    if task.kind == "metric":
        assert 0 < printed["min"] < printed["max"] < 20 * 1.05  # sigmoid × 20; bicubic may overshoot a little


def test_a_one_pixel_picture_is_handled(checkpoint, images):
    """transformers' pipeline fails here (its post-processing squeezes the 1×1 map to a scalar);
    the depth still equals its processor, model and post-processing run by hand."""
    task, reference = checkpoint
    result = task.run(images["one_pixel.png"])
    inputs = reference.image_processor(Image.open(images["one_pixel.png"]).convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        outputs = reference.model(**inputs)
    expected = reference.image_processor.post_process_depth_estimation(outputs, target_sizes=[(1, 1)])
    assert result.predicted_depth.shape == (1, 1) and result.model_input_size == (56, 56)
    np.testing.assert_allclose(result.predicted_depth[0, 0], expected[0]["predicted_depth"].item(), rtol=1e-5)
    assert result.depth.tolist() == [[0]]  # one value: min equals max


@pytest.mark.parametrize("size", [(1, 1000), (1000, 1), (3, 500)])
def test_a_picture_too_thin_for_the_model_is_refused_by_name(checkpoint, size):
    task, _ = checkpoint
    with pytest.raises(InputError, match=rf"a {size[0]}×{size[1]} picture is too narrow"):
        task.run(np.zeros((size[1], size[0], 3), dtype=np.uint8))


def test_write_files_round_trip(checkpoint, images, tmp_path):
    task, _ = checkpoint
    result = task.run(images["odd_97x411.png"])
    written = result.save_depth(tmp_path / "out")
    assert set(written) == {"predicted_depth", "depth"}
    assert result.write_files(tmp_path / "out", "photo") == {
        **result.to_json(), "predicted_depth": str(tmp_path / "out" / "photo-depth.npy"),
        "depth": str(tmp_path / "out" / "photo-depth.png"),
        "point_cloud": str(tmp_path / "out" / "photo-depth.ply"),
    }
    array = np.load(written["predicted_depth"])
    assert array.dtype == np.float32 and array.shape == (411, 97)
    np.testing.assert_array_equal(array, result.predicted_depth)
    with Image.open(written["depth"]) as picture:
        assert (picture.mode, picture.size, picture.format) == ("L", (97, 411), "PNG")
        np.testing.assert_array_equal(np.asarray(picture), result.depth)


def test_decoder_levels_are_the_necks_fused_maps_channel_means_coarse_to_fine(checkpoint, images):
    task, _ = checkpoint
    result = task.run(images["rgb_640x480.jpg"])  # 56 x 77 in: a 8 x 11 grid of patches
    assert result.model_input_size == (77, 56)
    assert [level.shape for level in result.decoder_levels] == [(8, 11), (16, 22), (32, 44), (64, 88)]
    pixels = task.preprocess(Image.open(images["rgb_640x480.jpg"]).convert("RGB"))
    with torch.no_grad():
        fused = task.model.forward_features(pixels)
    for level, expected in zip(result.decoder_levels, fused):
        np.testing.assert_allclose(level, expected[0].mean(dim=0).numpy(), rtol=0, atol=1e-6)


def test_every_input_kind_gives_the_same_answer(checkpoint, images):
    task, _ = checkpoint
    path = images["rgb_640x480.jpg"]
    expected = task.run(path).predicted_depth
    picture = Image.open(path)
    for source in (str(path), path.read_bytes(), picture, np.asarray(picture.convert("RGB"))):
        np.testing.assert_array_equal(task.run(source).predicted_depth, expected)


def test_padding_to_a_size_divisor_equals_the_pipeline(tmp_path, images):
    task, reference = load_both(save_checkpoint(tmp_path, keep_aspect_ratio=False, ensure_multiple_of=1,
                                                size={"height": 45, "width": 60}, do_pad=True,
                                                size_divisor=PATCH * 2))
    result = task.run(images["rgb_640x480.jpg"])
    assert result.model_input_size == (70, 56)  # 60 x 45, centre-padded to multiples of 14
    assert_same_depth(result, reference(str(images["rgb_640x480.jpg"])))


def test_pad_puts_the_odd_pixel_at_the_bottom_and_right():
    padded = pad_to_multiple(torch.ones(1, 1, 3, 5), 4)
    assert padded.shape == (1, 1, 4, 8)
    assert padded[0, 0].sum(dim=1).tolist() == [5, 5, 5, 0]  # rows: one added below
    assert padded[0, 0].sum(dim=0).tolist() == [0, 3, 3, 3, 3, 3, 0, 0]  # columns: 1 left, 2 right


def test_a_constant_depth_map_is_a_black_picture():
    assert depth_picture(np.full((2, 3), 4.5, dtype=np.float32)).tolist() == [[0] * 3] * 2
    ramp = depth_picture(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    assert ramp.tolist() == [[0, 127, 255]]


def test_the_device_path_agrees_with_the_pil_path(tmp_path, images, monkeypatch):
    monkeypatch.setenv(image_device.ENVIRONMENT_VARIABLE, "device")
    task = DepthEstimation.load(save_checkpoint(tmp_path), device="cpu")
    assert task.preprocess_on_device
    for name in ("rgb_640x480.jpg", "odd_97x411.png"):
        device = task.run(images[name])
        task.preprocess_on_device = False
        pil = task.run(images[name])
        task.preprocess_on_device = True
        assert device.model_input_size == pil.model_input_size
        # a grey level here and there (see test_image_device) moves the depth a little
        spread = float(pil.predicted_depth.max() - pil.predicted_depth.min())
        np.testing.assert_allclose(device.predicted_depth, pil.predicted_depth, rtol=0, atol=0.02 * spread)


def test_info_reports_the_real_numbers(checkpoint):
    task, _ = checkpoint
    info = task.info()
    assert info["model_type"] == "depth_anything" and info["parameters"] == task.parameter_count() > 0
    assert info["backbone"]["layers"] == 4 and info["fusion_size"] == 16
    assert info["preprocessing"] == "shape kept, scaled toward 56×56, sides in multiples of 7"
    assert info["output"].startswith("metres" if task.kind == "metric" else "relative")


def test_bad_options_and_inputs_are_input_errors(checkpoint, images, tmp_path):
    task, _ = checkpoint
    with pytest.raises(InputError, match="no option"):
        task.run(images["one_pixel.png"], threshold=0.5)
    text = tmp_path / "photo.jpg"
    text.write_text("not a photo")
    with pytest.raises(InputError, match="not an image"):
        task.run(text)
    with pytest.raises(InputError, match="no such file"):
        task.run(tmp_path / "absent.png")


def test_a_set_cancel_flag_stops_the_run(checkpoint, images):
    task, _ = checkpoint
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        task.run(images["one_pixel.png"], hooks=Hooks(cancel=cancel))


def test_half_precision_runs(tmp_path, images):
    task = DepthEstimation.load(save_checkpoint(tmp_path), device="cpu", dtype="bf16")
    result = task.run(images["rgb_640x480.jpg"])
    assert result.predicted_depth.dtype == np.float32 and result.predicted_depth.shape == (480, 640)
    assert np.isfinite(result.predicted_depth).all() and result.depth.max() == 255


def test_other_architectures_are_refused_by_name(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTForImageClassification"]}))
    with pytest.raises(CheckpointError, match="a vit .*needs one of: depth_anything"):
        DepthEstimation.load(tmp_path, device="cpu")


def test_the_catalogue_offers_the_task():
    assert tasks.get("depth-estimation") is DepthEstimation
    assert DepthEstimation.default_model == "depth-anything/Depth-Anything-V2-Small-hf"
