"""Mask2Former against transformers' Mask2FormerForUniversalSegmentation on tiny random
checkpoints saved by transformers itself, in both forms of the Swin backbone's weights: the
queries' class and mask logits, and the predictions after every decoder layer."""

import json

import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError
from engine.models import mask2former
from tests.engine.models.tiny_mask2former import DECODER, SWIN, save_tiny_mask2former


def load(folder):
    config = mask2former.Mask2FormerConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: mask2former.Mask2FormerForUniversalSegmentation(config), folder, adapt=mask2former.adapt)


@pytest.fixture(scope="module", params=["saved by 5.x", "hub form"])
def tiny(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mask2former")
    reference = save_tiny_mask2former(folder, seed=2, hub_form=request.param == "hub form", class_scale=8, mask_scale=30)
    return folder, reference


def assert_same_predictions(model, reference, pixels):
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_auxiliary_logits=True)
        ours = model(pixels, every_layer=True)
    torch.testing.assert_close(ours.class_logits, expected.class_queries_logits, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours.mask_logits, expected.masks_queries_logits, rtol=1e-5, atol=1e-4)
    earlier = expected.auxiliary_logits  # every layer's but the last
    assert len(ours.layer_class_logits) == len(ours.layer_mask_logits) == len(earlier) + 1
    for layer, theirs in enumerate(earlier):
        torch.testing.assert_close(ours.layer_class_logits[layer], theirs["class_queries_logits"], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(ours.layer_mask_logits[layer], theirs["masks_queries_logits"], rtol=1e-5, atol=1e-4)
    assert torch.equal(ours.layer_class_logits[-1], ours.class_logits)


def test_logits_match_transformers(tiny):
    """70x100: padding at the patches, the windows and the patch merging; a batch of two."""
    folder, reference = tiny
    assert_same_predictions(load(folder), reference, torch.randn(2, 3, 70, 100))


def test_the_last_layer_alone_by_default(tiny):
    folder, _ = tiny
    model = load(folder)
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain, explained = model(pixels), model(pixels, every_layer=True)
    assert plain.layer_class_logits is None and plain.layer_mask_logits is None
    assert torch.equal(plain.class_logits, explained.class_logits)
    assert torch.equal(plain.mask_logits, explained.mask_logits)
    assert plain.mask_logits.shape == (1, DECODER["num_queries"], 16, 16)


def test_pre_norm_projections_and_gelu(tmp_path):
    """The other layouts a config can ask for: pre-LayerNorm decoder layers, a projection
    before the decoder (feature_size != hidden_dim), another activation."""
    reference = save_tiny_mask2former(tmp_path, seed=3, pre_norm=True, decoder_layers=3, feature_size=64, activation_function="gelu")
    keys = load_file(tmp_path / "model.safetensors")
    assert "model.transformer_module.input_projections.0.weight" in keys
    assert_same_predictions(load(tmp_path), reference, torch.randn(1, 3, 64, 96))


def test_adapt_drops_the_loss_weights_and_both_swin_forms(tiny):
    folder, _ = tiny
    state = load_file(folder / "model.safetensors")
    assert "criterion.empty_weight" in state
    adapted = mask2former.adapt(state, set())
    assert "criterion.empty_weight" not in adapted
    assert not any(k.endswith("relative_position_index") or ".swin.layernorm." in k for k in adapted)


def test_config_reads_the_nested_backbone(tiny):
    folder, _ = tiny
    config = mask2former.Mask2FormerConfig.from_json(read_json(folder / "config.json"))
    assert config.backbone.embed_dim == SWIN["embed_dim"] and config.backbone.depths == tuple(SWIN["depths"])
    assert config.backbone.out_features == ("stage1", "stage2", "stage3", "stage4")
    assert config.num_labels == 70 and config.num_queries == DECODER["num_queries"]


def test_bad_configs_are_checkpoint_errors(tiny):
    folder, _ = tiny
    data = read_json(folder / "config.json")
    with pytest.raises(CheckpointError, match="backbone_config"):
        mask2former.Mask2FormerConfig.from_json({k: v for k, v in data.items() if k != "backbone_config"})
    with pytest.raises(CheckpointError, match="only Swin"):
        mask2former.Mask2FormerConfig.from_json({**data, "backbone_config": {"model_type": "resnet"}})
    with pytest.raises(CheckpointError, match="multiple of 32"):
        mask2former.Mask2FormerConfig.from_json({**data, "hidden_dim": 48})
    with pytest.raises(CheckpointError, match="activation_function"):
        mask2former.Mask2FormerConfig.from_json({**data, "activation_function": "tanhh"})
    with pytest.raises(CheckpointError, match="four are needed"):
        backbone = {**data["backbone_config"], "out_features": ["stage3", "stage4"]}
        mask2former.Mask2FormerConfig.from_json({**data, "backbone_config": backbone})
    json.dumps(mask2former.describe(mask2former.Mask2FormerConfig.from_json(data)))


def test_describe_gives_the_numbers(tiny):
    folder, _ = tiny
    described = mask2former.describe(mask2former.Mask2FormerConfig.from_json(read_json(folder / "config.json")))
    assert described["architecture"] == "Mask2Former" and described["backbone"] == "Swin Transformer"
    assert described["queries"] == 12 and described["decoder_layers"] == 3 and described["pixel_decoder_layers"] == 2
    assert described["widths"] == [16, 32, 64, 128] and described["mask_stride"] == 4
