"""The ResNet backbone against transformers' ResNet (renamed to timm names) stage by stage."""

import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError
from engine.models.resnet import ResNet, ResNetConfig, adapt


@pytest.mark.parametrize("layer_type", ["bottleneck", "basic"])
def test_stages_match_transformers_resnet(tmp_path, layer_type):
    from transformers import ResNetConfig as HFConfig
    from transformers import ResNetModel

    torch.manual_seed(0)
    widths = (8, 16, 24, 32) if layer_type == "bottleneck" else (4, 8, 12, 16)
    reference = ResNetModel(HFConfig(embedding_size=8, hidden_sizes=list(widths), depths=[2, 1, 2, 1],
                                     layer_type=layer_type)).eval()
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.3)
    reference.save_pretrained(tmp_path)
    assert any(k.endswith("num_batches_tracked") for k in load_file(tmp_path / "model.safetensors"))

    config = ResNetConfig(depths=(2, 1, 2, 1), hidden_sizes=widths, embedding_size=8, layer_type=layer_type)
    model = load_model(lambda: ResNet(config), tmp_path, adapt=adapt)
    pixels = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = reference(pixels, output_hidden_states=True).hidden_states[1:]
        maps = model(pixels, stages=(1, 2, 3, 4))
    assert [m.shape[-1] for m in maps] == [24, 12, 6, 3]  # strides 4, 8, 16, 32
    for ours, theirs in zip(maps, expected):
        # eval-mode BatchNorm2d rounds differently from a folded scale and shift, and the
        # features of an unnormalised random ResNet reach the tens: allow 1e-6 relative
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-5)
    with torch.no_grad():
        stem, last = model(pixels, stages=(0, 4))
    assert stem.shape == (1, 8, 32, 48)
    torch.testing.assert_close(last, maps[-1], rtol=0, atol=0)

    # folded norms and channels-last: the same maps up to float32 rounding, which a
    # different summation order lifts to a few parts in a million
    model.fuse_for_inference()
    with torch.no_grad():
        fused = model(pixels, stages=(1, 2, 3, 4))
    for ours, theirs in zip(fused, expected):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_named_resnet50_has_the_timm_key_set():
    with torch.device("meta"):
        model = ResNet(ResNetConfig.named("resnet50"))
    keys = set(model.state_dict())
    assert len(keys) == 265  # 53 frozen norms × 4 buffers + 53 convolutions
    assert {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight",
            "layer4.2.conv3.weight", "layer3.5.bn2.bias"} <= keys
    assert "layer1.1.downsample.0.weight" not in keys
    assert model.channels == (64, 256, 512, 1024, 2048)


def test_unknown_names_and_stages_are_refused():
    with pytest.raises(CheckpointError, match="resnet26d"):
        ResNetConfig.named("resnet26d")
    with torch.device("meta"):
        model = ResNet(ResNetConfig.named("resnet18"))
    with pytest.raises(ValueError, match="0..4"):
        model(torch.zeros(1, 3, 32, 32, device="meta"), stages=(5,))


def test_config_from_transformers_resnet_json():
    from transformers import ResNetConfig as HFConfig

    data = HFConfig(embedding_size=8, hidden_sizes=[4, 8, 12, 16], depths=[2, 1, 2, 1], layer_type="basic").to_dict()
    config = ResNetConfig.from_json(data)
    assert config == ResNetConfig(depths=(2, 1, 2, 1), hidden_sizes=(4, 8, 12, 16), embedding_size=8,
                                  layer_type="basic")
    with pytest.raises(CheckpointError, match="downsample"):
        ResNetConfig.from_json({**data, "downsample_in_bottleneck": True})
    with pytest.raises(CheckpointError, match="'gelu'"):
        ResNetConfig.from_json({**data, "hidden_act": "gelu"})
