"""The Swin backbone against transformers' SwinBackbone on tiny random checkpoints saved by
transformers itself: every requested stage's feature map, for pictures that fill whole windows
and ones that need padding (and odd sizes at the patch merging), with and without the
relative_position_index that Hub files hold."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError
from engine.models import swin
from tests.engine.models.random_values import spread_values

TINY = dict(embed_dim=16, depths=[2, 2, 2], num_heads=[1, 2, 4], window_size=4, image_size=64)


def load(folder):
    config = swin.SwinConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: swin.SwinBackbone(config), folder, adapt=swin.adapt)


def save_tiny(folder, seed=0, **overrides):
    from transformers import SwinBackbone, SwinConfig

    torch.manual_seed(seed)
    reference = SwinBackbone(SwinConfig(**{**TINY, **overrides})).eval()
    spread_values(reference)
    reference.save_pretrained(folder)
    return reference


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("swin")
    return folder, save_tiny(folder, out_features=["stem", "stage1", "stage2", "stage3"])


def assert_same_maps(model, reference, pixels):
    with torch.no_grad():
        expected = reference(pixel_values=pixels).feature_maps
        maps = model(pixels)
    assert len(maps) == len(expected)
    for ours, theirs in zip(maps, expected):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (50, 70), (36, 100)])
def test_feature_maps_match_transformers(tiny, size):
    """64: whole windows everywhere; 50x70 and 36x100: padding to patches and windows, and odd
    sizes at the patch merging."""
    folder, reference = tiny
    assert_same_maps(load(folder), reference, torch.randn(2, 3, *size))


def test_other_windows_widths_and_stages(tmp_path):
    reference = save_tiny(tmp_path, seed=1, embed_dim=12, depths=[1, 3], num_heads=[3, 2], window_size=3,
                          mlp_ratio=2.0, qkv_bias=False, out_features=["stage2"])
    assert_same_maps(load(tmp_path), reference, torch.randn(1, 3, 45, 38))


def test_without_out_features_the_last_stage_comes_out(tmp_path):
    reference = save_tiny(tmp_path)
    model = load(tmp_path)
    assert model.config.out_features == ("stage3",)
    assert_same_maps(model, reference, torch.randn(1, 3, 64, 48))


def test_hub_files_with_the_position_index_and_without_the_final_norm_load(tiny, tmp_path):
    """Hub (transformers 4.x) files hold each attention's relative_position_index and no
    `swin.layernorm`; files saved by 5.x are the other way round. Both load."""
    folder, reference = tiny
    state = load_file(folder / "model.safetensors")
    assert "swin.layernorm.weight" in state and not any(k.endswith("relative_position_index") for k in state)
    state = {k: v for k, v in state.items() if not k.startswith("swin.layernorm.")}
    for name, buffer in reference.named_buffers():
        if name.endswith("relative_position_index"):  # swin.encoder.layers.L.blocks.B.attention.relative_position_bias.…
            block = name.split(".attention.")[0].removeprefix("swin.")
            state[f"{block}.attention.self.relative_position_index"] = buffer.view(16, 16).clone()
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    assert_same_maps(load(tmp_path), reference, torch.randn(1, 3, 64, 64))


def test_the_position_index_is_computed_not_loaded(tiny):
    folder, reference = tiny
    model = load(folder)
    ours = dict(model.named_buffers())["encoder.layers.0.blocks.0.attention.self.relative_position_index"]
    theirs = dict(reference.named_buffers())[
        "swin.encoder.layers.0.blocks.0.attention.relative_position_bias.relative_position_index"]
    assert torch.equal(ours.flatten(), theirs)
    assert not any(k.endswith("relative_position_index") for k in model.state_dict())


def test_bad_configs_are_checkpoint_errors():
    with pytest.raises(CheckpointError, match="stage5"):
        swin.SwinConfig.from_json({**TINY, "out_features": ["stage5"]})
    with pytest.raises(CheckpointError, match="not a multiple of 3 heads"):
        swin.SwinConfig.from_json({**TINY, "num_heads": [3, 2, 4]})
    with pytest.raises(CheckpointError, match="head counts"):
        swin.SwinConfig.from_json({**TINY, "num_heads": [1, 2]})
    with pytest.raises(CheckpointError, match="absolute"):
        swin.SwinConfig.from_json({**TINY, "use_absolute_embeddings": True})
    assert swin.SwinConfig.from_json({**TINY, "out_indices": [0, 2]}).out_features == ("stem", "stage2")


def test_describe_gives_the_backbone():
    config = swin.SwinConfig.from_json({**TINY, "out_features": ["stage1", "stage3"]})
    assert swin.describe(config) == {
        "backbone": "Swin Transformer",
        "patch_size": 4,
        "window_size": 4,
        "depths": [2, 2, 2],
        "heads": [1, 2, 4],
        "widths": [16, 32, 64],
        "outputs": ["stage1", "stage3"],
    }
