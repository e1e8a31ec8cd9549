"""DINOv2 against transformers' Dinov2Model on tiny random checkpoints saved by transformers,
at input sizes that keep, stretch and shrink the learned grid of positions."""

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Dinov2Config, Dinov2Model

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError
from engine.models import dinov2

TINY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, mlp_ratio=2, image_size=28, patch_size=7)


def load(folder):
    config = dinov2.Dinov2Config.from_json(read_json(folder / "config.json"))
    return load_model(lambda: dinov2.Dinov2Model(config), folder, adapt=dinov2.adapt)


def save_tiny(folder, **overrides):
    torch.manual_seed(0)
    reference = Dinov2Model(Dinov2Config(**{**TINY, **overrides})).eval()
    reference.save_pretrained(folder)
    return reference


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dinov2")
    reference = save_tiny(folder)
    return load(folder), reference


# (height, width) in pixels: the trained 4x4 grid, larger, smaller, portrait, sizes that are not
# whole patches (the leftover rows and columns are dropped), and a non-square 16-patch grid
SIZES = [(28, 28), (42, 42), (14, 14), (35, 21), (30, 47), (7, 7), (14, 56)]


@pytest.mark.parametrize("size", SIZES)
def test_every_hidden_state_matches_transformers(tiny, size):
    ours, reference = tiny
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True)
        states = ours.hidden_states(pixels)
        assert len(states) == len(expected.hidden_states) == 4
        for mine, theirs in zip(states, expected.hidden_states):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours(pixels), expected.last_hidden_state, rtol=0, atol=1e-5)
    assert states[0].shape == (2, 1 + (size[0] // 7) * (size[1] // 7), 32)


@pytest.mark.parametrize("overrides", [{}, dict(use_swiglu_ffn=True, qkv_bias=False, layerscale_value=0.3)])
def test_fused_for_inference_still_matches_transformers(tmp_path, overrides):
    reference = save_tiny(tmp_path, **overrides)
    with torch.no_grad():  # layer scales away from 1, so a wrong fold shows
        for name, tensor in reference.named_parameters():
            if name.endswith("lambda1"):
                tensor.uniform_(0.2, 1.5)
    reference.save_pretrained(tmp_path)
    ours = load(tmp_path)
    ours.fuse_for_inference()
    ours.fuse_for_inference()  # a second call changes nothing
    attention = ours.encoder.layer[0].attention.attention
    assert attention.qkv is not None and isinstance(ours.encoder.layer[0].layer_scale1, torch.nn.Identity)
    # the separate projections remain only as views into the fused one: the weights are held once
    assert attention.key.weight.untyped_storage().data_ptr() == attention.qkv.weight.untyped_storage().data_ptr()
    pixels = torch.randn(2, 3, 35, 21)
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True).hidden_states
        for mine, theirs in zip(ours.hidden_states(pixels), expected):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_features_are_the_normalised_states_transformers_backbone_hands_on(tmp_path):
    from transformers import Dinov2Backbone

    torch.manual_seed(0)
    config = Dinov2Config(**TINY, out_indices=[0, 1, 3], reshape_hidden_states=False)
    reference = Dinov2Backbone(config).eval()
    reference.save_pretrained(tmp_path)
    ours = load(tmp_path)
    assert ours.config.out_indices == (0, 1, 3)
    pixels = torch.randn(1, 3, 35, 49)
    with torch.no_grad():
        expected = reference(pixel_values=pixels).feature_maps
        got = ours.features(pixels)
    assert len(got) == 3
    for mine, theirs in zip(got, expected):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)


def test_features_stop_at_the_deepest_layer_asked_for(tiny):
    ours, _ = tiny
    pixels = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        states = ours.hidden_states(pixels)
        features = ours.features(pixels, indices=[1])
    torch.testing.assert_close(features[0], ours.layernorm(states[1]), rtol=0, atol=0)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(use_swiglu_ffn=True, qkv_bias=False),
        dict(hidden_act="gelu_new", layer_norm_eps=1e-5, layerscale_value=0.1, image_size=[21, 21]),
    ],
)
def test_config_variants_match_transformers(tmp_path, overrides):
    reference = save_tiny(tmp_path, **overrides)
    pixels = torch.randn(1, 3, 35, 28)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).last_hidden_state, rtol=0, atol=1e-5)


def test_files_without_a_mask_token_or_with_a_pooler_load(tiny, tmp_path):
    ours, reference = tiny
    folder = tmp_path / "saved"
    save_tiny(folder)
    state = load_file(folder / "model.safetensors")
    del state["embeddings.mask_token"]
    state["pooler.dense.weight"] = torch.zeros(32, 32)
    state["pooler.dense.bias"] = torch.zeros(32)
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    pixels = torch.randn(1, 3, 21, 28)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).last_hidden_state, rtol=0, atol=1e-5)


def test_out_indices_are_read_in_every_form():
    def read(**fields):
        return dinov2.Dinov2Config.from_json({**TINY, **fields}).out_indices

    assert read() == (3,)
    assert read(out_indices=[1, 3]) == (1, 3)
    assert read(out_features=["stem", "stage2"]) == (0, 2)
    assert read(out_indices=[-1, -2]) == (3, 2)
    with pytest.raises(CheckpointError, match="outside"):
        read(out_indices=[4])
    with pytest.raises(CheckpointError, match="out_features"):
        read(out_features=["layer2"])


def test_bad_configs_are_checkpoint_errors():
    with pytest.raises(CheckpointError, match="not a multiple"):
        dinov2.Dinov2Config.from_json({**TINY, "num_attention_heads": 5})
    with pytest.raises(CheckpointError, match="hidden_act"):
        dinov2.Dinov2Config.from_json({**TINY, "hidden_act": "mish"})
    with pytest.raises(CheckpointError, match="non-square image_size"):
        dinov2.Dinov2Config.from_json({**TINY, "image_size": [28, 42]})


def test_describe_gives_the_architecture():
    config = dinov2.Dinov2Config.from_json({**TINY, "use_swiglu_ffn": True})
    assert dinov2.describe(config) == {
        "architecture": "DINOv2",
        "patch_size": 7,
        "trained_grid": [4, 4],
        "layers": 3,
        "hidden_size": 32,
        "heads": 4,
        "mlp_size": 48,
        "mlp": "SwiGLU",
    }
