"""Depth estimation with GLPN against transformers' depth-estimation pipeline, on tiny random
GLPN checkpoints saved with GLPN's PIL image processor: metres at the original size and the
8-bit picture, on real-size photos of several shapes; pictures below 32 pixels refused as
transformers refuses them; the decoder's four stages for the inside view."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import GLPNImageProcessorPil, SegformerConfig, SegformerForSemanticSegmentation, pipeline

from engine import image_device
from engine.errors import CheckpointError, InputError
from engine.tasks.depth_estimation import DepthEstimation
from tests.engine.models.tiny_glpn import save_tiny_glpn
from tests.engine.tasks.test_depth_estimation import assert_same_depth, write_pictures

# (width, height): odd sides, portrait and landscape, the smallest usable, thin
ODD_SIZES = [(333, 197), (97, 411), (32, 61), (600, 45)]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_pictures(tmp_path_factory.mktemp("images"), ODD_SIZES)


def save(folder, **settings):
    save_tiny_glpn(folder, **settings)
    return folder


def load_both(folder):
    reference = pipeline("depth-estimation", model=str(folder),
                         image_processor=GLPNImageProcessorPil.from_pretrained(folder))
    return DepthEstimation.load(folder, device="cpu"), reference


@pytest.fixture(scope="module")
def nyu(tmp_path_factory):
    """The Hub's processor file as glpn-nyu has it: bilinear, size_divisor 32, rescale only."""
    return load_both(save(tmp_path_factory.mktemp("nyu"), processor={}))


@pytest.mark.parametrize("name", ["rgb_640x480.jpg", "exif_rotated_480x640.jpg", "grey_500x300.png",
                                  "rgba_480x640.png"] + [f"odd_{w}x{h}.png" for w, h in ODD_SIZES])
def test_metres_and_picture_equal_the_pipeline(nyu, images, name):
    task, reference = nyu
    result = task.run(images[name])
    assert_same_depth(result, reference(str(images[name])))
    width, height = result.image_size
    assert result.model_input_size == (width // 32 * 32, height // 32 * 32)
    assert result.kind == "metric" and result.unit == "metres"
    assert 0 < result.predicted_depth.min() and result.predicted_depth.max() < 10 * 1.05


def test_the_resample_filter_and_divisor_are_the_files(tmp_path, images):
    task, reference = load_both(save(tmp_path, shape="other", max_depth=80,
                                               processor={"resample": 3, "size_divisor": 64}))
    result = task.run(images["odd_333x197.png"])
    assert result.model_input_size == (320, 192)
    assert_same_depth(result, reference(str(images["odd_333x197.png"])))
    assert task.info()["preprocessing"] == "sides cut down to multiples of 64, bicubic, rescaled to 0..1 only"


@pytest.mark.parametrize("size", [(31, 64), (64, 20), (1, 1)])
def test_a_picture_below_32_pixels_is_refused_as_transformers_refuses_it(nyu, size):
    task, reference = nyu
    picture = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    with pytest.raises(ValueError):  # transformers asks PIL for a side of 0 pixels
        reference(Image.fromarray(picture))
    with pytest.raises(InputError, match=rf"a {size[0]}×{size[1]} picture is too small .* at least 32 pixels"):
        task.run(picture)


def test_decoder_levels_are_the_four_stages_coarse_to_fine(nyu, images):
    task, _ = nyu
    result = task.run(images["rgb_640x480.jpg"])
    assert [level.shape for level in result.decoder_levels] == [(30, 40), (60, 80), (120, 160), (480, 640)]
    pixels = task.preprocess(Image.open(images["rgb_640x480.jpg"]).convert("RGB"))
    with torch.no_grad():
        stages = task.model.forward_features(pixels)
    for level, expected in zip(result.decoder_levels, stages, strict=True):
        np.testing.assert_allclose(level, expected[0].mean(dim=0).numpy(), rtol=0, atol=1e-6)


def test_the_device_path_cuts_the_same_sides(tmp_path, images, monkeypatch):
    monkeypatch.setenv(image_device.ENVIRONMENT_VARIABLE, "device")
    task = DepthEstimation.load(save(tmp_path, processor={}), device="cpu")
    device = task.run(images["odd_97x411.png"])
    task.preprocess_on_device = False
    pil = task.run(images["odd_97x411.png"])
    assert device.model_input_size == pil.model_input_size == (96, 384)
    np.testing.assert_allclose(device.predicted_depth, pil.predicted_depth, rtol=0, atol=0.05)


def test_info_says_metres(nyu):
    task, _ = nyu
    info = task.info()
    assert info["model_type"] == "glpn" and info["architecture"] == "GLPN" and info["output"] == "metres"
    assert info["preprocessing"] == "sides cut down to multiples of 32, bilinear, rescaled to 0..1 only"
    assert info["max_depth"] == 10.0 and info["parameters"] == task.parameter_count()


def test_a_segmentation_checkpoint_is_refused_by_name(tmp_path):
    SegformerForSemanticSegmentation(SegformerConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                                     num_attention_heads=[1, 2, 2, 4])).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="a segformer .*needs one of: depth_anything, glpn"):
        DepthEstimation.load(tmp_path, device="cpu")


def test_the_point_cloud_has_one_vertex_per_kept_pixel_in_the_photos_colours(nyu, images, tmp_path):
    from tests.engine.test_point_cloud import read_ply

    task, _ = nyu
    result = task.run(images["odd_333x197.png"])
    path = result.save_ply(tmp_path / "cloud" / "odd.ply", field_of_view=75, step=3)
    fmt, comments, vertices = read_ply(path)
    assert fmt == "binary_little_endian" and "horizontal field of view: 75 degrees" in comments
    assert len(vertices) == 66 * 111  # every metric depth is above zero: every 3rd pixel is kept
    photo = np.asarray(Image.open(images["odd_333x197.png"]).convert("RGB"))
    colours = np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1)
    np.testing.assert_array_equal(colours, photo[::3, ::3].reshape(-1, 3))
    np.testing.assert_allclose(-vertices["z"], result.predicted_depth[::3, ::3].ravel(), rtol=1e-6)

    written = result.write_files(tmp_path / "out", "odd")
    assert written["point_cloud"] == str(tmp_path / "out" / "odd-depth.ply")
    assert len(read_ply(tmp_path / "out" / "odd-depth.ply")[2]) == 197 * 333
