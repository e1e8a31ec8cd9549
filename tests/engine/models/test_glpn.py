"""GLPN against transformers on tiny random checkpoints saved by transformers itself: the
decoder's four outputs and the depth, for two encoder shapes and inputs of several sizes; the
config's checks, `adapt` and `describe`."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError, InputError
from engine.models import glpn
from tests.engine.models.tiny_glpn import CONFIGS, save_tiny_glpn


def load(folder, dtype=torch.float32):
    config = glpn.GLPNConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: glpn.GLPNForDepthEstimation(config), folder, adapt=glpn.adapt, dtype=dtype)


@pytest.fixture(scope="module", params=list(CONFIGS))
def tiny(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    return folder, save_tiny_glpn(folder, shape=request.param, max_depth=80 if request.param == "other" else 10)


def decoder_outputs(reference, pixels):
    """transformers' decoder outputs (the head reads the last), from its own modules."""
    hidden = reference.glpn(pixel_values=pixels, output_hidden_states=True).hidden_states
    return reference.decoder(hidden)


@pytest.mark.parametrize("size", [(64, 64), (96, 160), (224, 96)])
def test_decoder_outputs_and_depth_match_transformers(tiny, size):
    folder, reference = tiny
    model = load(folder)
    pixels = torch.rand(2, 3, *size)
    with torch.no_grad():
        expected = decoder_outputs(reference, pixels)
        features = model.forward_features(pixels)
        height, width = size
        assert [f.shape[-2:] for f in features] == [
            (height // 16, width // 16), (height // 8, width // 8), (height // 4, width // 4), (height, width)
        ]
        for ours, theirs in zip(features, expected, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        depth = model.forward_head(features, height, width)
        assert depth.shape == (2, height, width)
        torch.testing.assert_close(depth, reference(pixel_values=pixels).predicted_depth, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model(pixels), depth, rtol=0, atol=0)


def test_channels_last_inference_gives_the_same_depth(tiny):
    folder, _ = tiny
    model, fused = load(folder), load(folder)
    fused.fuse_for_inference()
    pixels = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(fused(pixels), model(pixels), rtol=1e-5, atol=1e-5)


def test_sides_that_do_not_halve_evenly_are_refused(tiny):
    folder, _ = tiny
    with pytest.raises(InputError, match="multiples of 32 pixels, not 80×64"):
        load(folder)(torch.rand(1, 3, 64, 80))


def test_a_file_without_the_batch_norm_counts_loads(tiny, tmp_path):
    folder, reference = tiny
    state = {k: v for k, v in load_file(folder / "model.safetensors").items() if not k.endswith("num_batches_tracked")}
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).predicted_depth,
                                   rtol=1e-5, atol=1e-5)


def test_a_bare_encoder_is_refused_by_name(tmp_path):
    from transformers import GLPNConfig, GLPNModel

    GLPNModel(GLPNConfig(**CONFIGS["b0-like"])).save_pretrained(tmp_path)  # keys `encoder.*`
    with pytest.raises(CheckpointError, match="without the depth decoder and head"):
        load(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    save_file({f"glpn.{k}": v for k, v in state.items()}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="without the depth decoder and head"):
        load(tmp_path)


def test_half_precision_runs(tiny):
    folder, reference = tiny
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        depth = load(folder, dtype=torch.bfloat16)(pixels.bfloat16()).float()
        expected = reference(pixel_values=pixels).predicted_depth
    assert depth.shape == expected.shape and torch.isfinite(depth).all()
    assert (depth - expected).abs().max() < 0.1 * reference.config.max_depth, (depth - expected).abs().max()


def test_config_checks():
    data = {**CONFIGS["b0-like"], "max_depth": 10}
    assert glpn.GLPNConfig.from_json(data).kind == "metric"
    with pytest.raises(CheckpointError, match="max_depth"):
        glpn.GLPNConfig.from_json({**data, "max_depth": 0})
    with pytest.raises(CheckpointError, match="head_in_index 4"):
        glpn.GLPNConfig.from_json({**data, "head_in_index": 4})
    with pytest.raises(CheckpointError, match="4 encoder blocks but depths has 3"):
        glpn.GLPNConfig.from_json({**data, "depths": [1, 1, 1]})


def test_describe_names_the_parts():
    described = glpn.describe(glpn.GLPNConfig.from_json({**CONFIGS["other"], "max_depth": 80}))
    assert described["architecture"] == "GLPN" and described["encoder"] == "Mix Transformer"
    assert described["max_depth"] == 80.0 and described["decoder_hidden_size"] == 12
    assert described["strides"] == [4, 8, 16, 32] and described["depth"] == "metric"
