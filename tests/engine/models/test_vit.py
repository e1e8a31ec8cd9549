"""ViT against transformers on tiny random checkpoints saved by transformers itself."""

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import ViTConfig, ViTForImageClassification, ViTModel

from engine import probe
from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError, InputError
from engine.models import vit

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, num_labels=5)


def load(folder):
    config = vit.ViTConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: vit.ViTForImageClassification(config), folder, adapt=vit.adapt)


def save_tiny(folder, **overrides):
    torch.manual_seed(0)
    reference = ViTForImageClassification(ViTConfig(**{**TINY, **overrides})).eval()
    reference.save_pretrained(folder)
    return reference


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    return folder, save_tiny(folder, image_size=32, patch_size=8)


def test_logits_match_transformers(tiny):
    folder, reference = tiny
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load(folder)(pixels), reference(pixel_values=pixels).logits, rtol=0, atol=1e-5)


def test_features_are_the_final_hidden_states_and_the_head_reads_cls(tiny):
    folder, reference = tiny
    model = load(folder)
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_features(pixels)
        expected = reference.vit(pixel_values=pixels).last_hidden_state
        torch.testing.assert_close(features, expected, rtol=0, atol=1e-5)
        assert features.shape == (1, 1 + 16, 32)
        torch.testing.assert_close(model.forward_head(features), model(pixels), rtol=0, atol=0)


@pytest.mark.parametrize(
    "overrides, size",
    [
        (dict(image_size=[32, 48], patch_size=16, qkv_bias=False), (32, 48)),
        (dict(image_size=24, patch_size=4, hidden_act="gelu_new", layer_norm_eps=1e-6), (24, 24)),
    ],
)
def test_config_variants_match_transformers(tmp_path, overrides, size):
    reference = save_tiny(tmp_path, **overrides)
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).logits, rtol=0, atol=1e-5)


def test_hub_file_with_a_pooler_loads(tiny, tmp_path):
    """Some Hub files carry `vit.pooler.*` from a bare ViTModel; classification ignores it."""
    folder, reference = tiny
    state = load_file(folder / "model.safetensors")
    state["vit.pooler.dense.weight"] = torch.zeros(32, 32)
    state["vit.pooler.dense.bias"] = torch.zeros(32)
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).logits, rtol=0, atol=1e-5)


def test_a_bare_backbone_is_not_a_classifier(tmp_path):
    ViTModel(ViTConfig(**{**TINY, "image_size": 32, "patch_size": 8})).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="classifier"):
        load(tmp_path)


def test_the_wrong_image_size_is_a_clear_error(tiny):
    folder, _ = tiny
    with pytest.raises(InputError, match="32×32 pixels, not 48×32"):
        load(folder)(torch.randn(1, 3, 48, 32))


def test_bad_configs_are_checkpoint_errors():
    with pytest.raises(CheckpointError, match="not a multiple"):
        vit.ViTConfig.from_json({**TINY, "num_attention_heads": 5})
    with pytest.raises(CheckpointError, match="hidden_act"):
        vit.ViTConfig.from_json({**TINY, "hidden_act": "mish"})
    with pytest.raises(CheckpointError, match="hidden_size"):
        vit.ViTConfig.from_json({"num_hidden_layers": 2})


def test_describe_gives_the_architecture():
    config = vit.ViTConfig.from_json({**TINY, "image_size": 32, "patch_size": [8, 4]})
    assert vit.describe(config) == {
        "architecture": "ViT",
        "image_size": [32, 32],
        "patch_size": [8, 4],
        "patches": 32,
        "layers": 2,
        "hidden_size": 32,
        "heads": 4,
        "mlp_size": 37,
    }


def test_watched_attention_equals_transformers_output_attentions(tiny):
    """With a probe, every layer's weights (batch, heads, tokens, tokens) are transformers'
    `output_attentions`, and the logits stay those of the fused path."""
    folder, _ = tiny
    reference = ViTForImageClassification.from_pretrained(folder, attn_implementation="eager").eval()
    model = load(folder)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_attentions=True)
        fused = model(pixels)
        with probe.watching(model) as seen:
            watched = model(pixels)
    names = [f"vit.encoder.layer.{i}.attention.attention" for i in range(2)]
    assert list(seen.records) == names
    for name, attention in zip(names, expected.attentions):
        torch.testing.assert_close(seen.records[name], attention, rtol=0, atol=1e-6)
    torch.testing.assert_close(watched, fused, rtol=0, atol=1e-5)
