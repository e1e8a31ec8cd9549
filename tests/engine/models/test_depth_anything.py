"""Depth Anything against transformers' DepthAnythingForDepthEstimation on tiny random
checkpoints saved by transformers: relative and metric heads, inputs of several shapes."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError
from engine.models import depth_anything as da
from tests.engine.models.tiny_depth_anything import BACKBONE, NECK, save_tiny_depth_anything


def load(folder):
    config = da.DepthAnythingConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: da.DepthAnythingForDepthEstimation(config), folder, adapt=da.adapt)


@pytest.fixture(scope="module", params=["relative", "metric"])
def tiny(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    extra = {"depth_estimation_type": "metric", "max_depth": 20} if request.param == "metric" else {}
    reference = save_tiny_depth_anything(folder, **extra)
    return load(folder), reference


# (height, width): the trained 4x4 grid, landscape, portrait, one patch, sizes that are not
# whole patches (the model sees them rounded down), a long thin strip
SIZES = [(28, 28), (35, 49), (63, 28), (7, 7), (30, 45), (14, 98)]


@pytest.mark.parametrize("size", SIZES)
def test_depth_matches_transformers(tiny, size):
    ours, reference = tiny
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected = reference(pixel_values=pixels).predicted_depth
        got = ours(pixels)
    assert got.shape == expected.shape == (2, size[0] // 7 * 7, size[1] // 7 * 7)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert expected.std() > 0.05  # the random weights give a picture, not a constant


@pytest.mark.parametrize("size", [(35, 49), (63, 28)])
def test_fused_for_inference_still_matches_transformers(tiny, size):
    _, reference = tiny
    ours = copy.deepcopy(tiny[0])
    ours.fuse_for_inference()
    assert ours.head.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(ours(pixels), reference(pixel_values=pixels).predicted_depth, rtol=1e-5, atol=1e-5)


def test_metric_depth_lies_within_max_depth_and_relative_is_not_negative(tiny):
    ours, _ = tiny
    with torch.no_grad():
        depth = ours(torch.randn(1, 3, 35, 35))
    assert depth.min() >= 0
    if ours.config.kind == "metric":
        assert depth.max() <= 20


def test_fused_maps_are_what_the_head_reads_coarse_to_fine(tiny):
    ours, _ = tiny
    pixels = torch.randn(1, 3, 35, 49)  # a 5 x 7 grid of patches
    with torch.no_grad():
        fused = ours.forward_features(pixels)
        depth = ours.forward_head(fused, 35, 49)
        torch.testing.assert_close(depth, ours(pixels), rtol=0, atol=0)
    # reassembled at 4x, 2x, 1x, 1/2x the grid; each fused map has the next finer size
    assert [tuple(level.shape[-2:]) for level in fused] == [(5, 7), (10, 14), (20, 28), (40, 56)]
    assert all(level.shape[1] == 16 for level in fused)


def test_other_neck_shapes_match_transformers(tmp_path):
    reference = save_tiny_depth_anything(
        tmp_path, reassemble_factors=[2, 1, 0.5, 0.25], head_in_index=2,
        backbone=dict(out_indices=[0, 1, 3, 4], use_swiglu_ffn=True),
    )
    pixels = torch.randn(1, 3, 42, 56)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).predicted_depth,
                                   rtol=1e-5, atol=1e-5)


def test_a_file_without_the_mask_token_loads(tmp_path):
    reference = save_tiny_depth_anything(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["backbone.embeddings.mask_token"]
    save_file(state, tmp_path / "model.safetensors")
    pixels = torch.randn(1, 3, 28, 42)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).predicted_depth,
                                   rtol=1e-5, atol=1e-5)


def config_json(**changes):
    data = {"model_type": "depth_anything", **NECK, "backbone_config": {"model_type": "dinov2", **BACKBONE}}
    return json.loads(json.dumps({**data, **changes}))


def test_config_reads_kind_and_max_depth():
    relative = da.DepthAnythingConfig.from_json(config_json())
    assert (relative.kind, relative.max_depth, relative.backbone.out_indices) == ("relative", 1.0, (1, 2, 3, 4))
    metric = da.DepthAnythingConfig.from_json(config_json(depth_estimation_type="metric", max_depth=80))
    assert (metric.kind, metric.max_depth) == ("metric", 80.0)
    assert da.DepthAnythingConfig.from_json(config_json(max_depth=None)).max_depth == 1.0


def test_a_config_without_backbone_config_gets_transformers_defaults():
    config = da.DepthAnythingConfig.from_json({"model_type": "depth_anything"})
    backbone = config.backbone
    assert (backbone.hidden_size, backbone.image_size, backbone.patch_size, backbone.out_indices) == (
        384, 518, 14, (9, 10, 11, 12))


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(depth_estimation_type="absolute"), "relative or metric"),
        (dict(depth_estimation_type="metric", max_depth=None), "max_depth"),
        (dict(neck_hidden_sizes=[8, 12, 16]), "must agree"),
        (dict(reassemble_factors=[4, 2, 1, 0.3]), "neither"),
        (dict(head_in_index=4), "head_in_index"),
        (dict(patch_size=14), "differs from the backbone's 7"),
        (dict(backbone_config={"model_type": "convnext"}), "convnext backbone"),
        (dict(backbone_config={**BACKBONE, "reshape_hidden_states": True}), "reshape_hidden_states"),
    ],
)
def test_bad_configs_are_checkpoint_errors(changes, message):
    with pytest.raises(CheckpointError, match=message):
        da.DepthAnythingConfig.from_json(config_json(**changes))


def test_describe_gives_the_architecture():
    description = da.describe(da.DepthAnythingConfig.from_json(config_json(depth_estimation_type="metric", max_depth=20)))
    assert description["backbone"]["layers"] == 4 and description["backbone_layers_used"] == [1, 2, 3, 4]
    assert description["reassemble_factors"] == [4, 2, 1, 0.5]
    assert (description["depth"], description["max_depth"], description["fusion_size"]) == ("metric", 20.0, 16)
