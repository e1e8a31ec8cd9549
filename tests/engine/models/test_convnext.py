"""ConvNeXT against transformers on tiny random checkpoints saved by transformers itself."""

import pytest
import torch
from transformers import ConvNextConfig, ConvNextForImageClassification

from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError
from engine.models import convnext

TINY = dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1], num_labels=4)


def load(folder):
    config = convnext.ConvNextConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: convnext.ConvNextForImageClassification(config), folder)


def save_tiny(folder, **overrides):
    torch.manual_seed(0)
    reference = ConvNextForImageClassification(ConvNextConfig(**{**TINY, **overrides})).eval()
    # Random layer scales, so a missing multiplication could not hide behind 1e-6.
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if name.endswith("layer_scale_parameter"):
                parameter.uniform_(0.5, 1.5)
    reference.save_pretrained(folder)
    return reference


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),  # layer scale present
        dict(layer_scale_init_value=0.0),  # trained without layer scale: no such keys
        dict(hidden_sizes=[8, 12, 16], depths=[2, 1, 1], num_stages=3, patch_size=2, hidden_act="gelu_new",
             layer_norm_eps=1e-6),
    ],
    ids=["layer-scale", "no-layer-scale", "three-stages"],
)
def test_logits_match_transformers(tmp_path, overrides):
    reference = save_tiny(tmp_path, **overrides)
    pixels = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path)(pixels), reference(pixel_values=pixels).logits, rtol=0, atol=1e-5)


def test_features_and_head_split(tmp_path):
    reference = save_tiny(tmp_path)
    model = load(tmp_path)
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(pixels)
        torch.testing.assert_close(
            features, reference.convnext(pixel_values=pixels).last_hidden_state, rtol=0, atol=1e-5
        )
        assert features.shape == (1, 32, 2, 2)
        torch.testing.assert_close(model.forward_head(features), model(pixels), rtol=0, atol=0)


def test_layer_scale_keys_must_match_the_config(tmp_path):
    save_tiny(tmp_path, layer_scale_init_value=0.0)
    config = read_json(tmp_path / "config.json")
    lying = convnext.ConvNextConfig.from_json({**config, "layer_scale_init_value": 1e-6})
    with pytest.raises(CheckpointError, match="missing .* keys .*layer_scale_parameter"):
        load_model(lambda: convnext.ConvNextForImageClassification(lying), tmp_path)


def test_inconsistent_stage_counts_are_checkpoint_errors():
    with pytest.raises(CheckpointError, match="must agree"):
        convnext.ConvNextConfig.from_json({**TINY, "num_stages": 3})
    with pytest.raises(CheckpointError, match="hidden_act"):
        convnext.ConvNextConfig.from_json({**TINY, "hidden_act": "mish"})


def test_describe_gives_the_architecture():
    config = convnext.ConvNextConfig.from_json({**TINY, "patch_size": 2, "layer_scale_init_value": 0.0})
    assert convnext.describe(config) == {
        "architecture": "ConvNeXT",
        "stages": 4,
        "depths": [1, 1, 2, 1],
        "hidden_sizes": [8, 16, 24, 32],
        "layers": 5,
        "patch_size": 2,
        "layer_scale": False,
    }


def test_adapt_leaves_hub_files_as_they_are():
    state = {"classifier.weight": torch.zeros(2, 3)}
    assert convnext.adapt(state, set(state)) == state


def test_class_activation_maps_equal_a_reference_from_transformers_features(tmp_path):
    """The reference, from transformers' last hidden state and classifier: each position's
    features normalised with the pooled vector's statistics, dotted with the class's weights.
    Every map's mean over the positions is the logit minus its bias."""
    reference = save_tiny(tmp_path)
    model = load(tmp_path)
    pixels = torch.randn(2, 3, 96, 64)
    classes = torch.tensor([3, 0, 2])
    with torch.no_grad():
        out = reference(pixel_values=pixels, output_hidden_states=True)
        last = out.hidden_states[-1]  # (B, C, h, w)
        norm, head = reference.convnext.layernorm, reference.classifier
        pooled = last.mean((-2, -1))
        mean, std = pooled.mean(-1), (pooled.var(-1, unbiased=False) + norm.eps).sqrt()
        positions = (last - mean[:, None, None, None]) / std[:, None, None, None]
        positions = positions * norm.weight[:, None, None] + norm.bias[:, None, None]
        expected = torch.stack([(positions * head.weight[c][:, None, None]).sum(1) for c in classes], dim=1)
        maps = model.class_activation_maps(model.forward_features(pixels), classes)
    assert maps.shape == (2, 3, 3, 2)
    torch.testing.assert_close(maps, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(maps.mean((-2, -1)), out.logits[:, classes] - head.bias[classes], rtol=0, atol=1e-5)
