"""DETR against transformers on tiny random checkpoints: both backbone layouts, both
config.json forms, padding masks, and the errors for variants we do not run."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import probe
from engine.checkpoint import load_model
from engine.config import read_json
from engine.errors import CheckpointError
from engine.models import detr
from engine.models.resnet import FrozenBatchNorm2d
from tests.engine.models.tiny_detr import save_tiny_detr


def load(folder):
    config = detr.DetrConfig.from_json(read_json(folder / "config.json"))
    return load_model(lambda: detr.DetrForObjectDetection(config), folder, adapt=detr.adapt)


def assert_same_outputs(ours, theirs, pixels, mask=None):
    with torch.no_grad():
        expected = theirs(pixel_values=pixels, pixel_mask=mask)
        logits, boxes = ours(pixels, mask)
    torch.testing.assert_close(logits, expected.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(boxes, expected.pred_boxes, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detr")
    return folder, save_tiny_detr(folder)


def test_logits_and_boxes_match_transformers(tiny):
    folder, reference = tiny
    torch.manual_seed(1)
    assert_same_outputs(load(folder), reference, torch.randn(1, 3, 96, 128))


def test_padded_batch_matches_transformers(tiny):
    folder, reference = tiny
    torch.manual_seed(2)
    pixels = torch.randn(2, 3, 128, 160)
    mask = torch.ones(2, 128, 160, dtype=torch.long)
    mask[1, 96:, :] = 0  # the second image is smaller: padded bottom and right
    mask[1, :, 100:] = 0
    assert_same_outputs(load(folder), reference, pixels, mask)


def test_basic_block_backbone_matches(tmp_path):
    reference = save_tiny_detr(tmp_path, layer_type="basic", hidden_sizes=(8, 12, 16, 24), seed=3)
    model = load(tmp_path)
    assert model.config.backbone.layer_type == "basic"
    torch.manual_seed(3)
    assert_same_outputs(model, reference, torch.randn(1, 3, 64, 96))


def test_config_reads_the_saved_fields(tiny):
    folder, _ = tiny
    config = detr.DetrConfig.from_json(read_json(folder / "config.json"))
    # a transformers-layout ResNet (no timm name), whose keys `adapt` maps onto the module tree
    assert config.backbone.name == ""
    saved = load_file(folder / "model.safetensors")
    assert any(k.startswith(detr.BACKBONE_PREFIX + "embedder.embedder.") for k in saved)
    with torch.device("meta"):
        model = detr.DetrForObjectDetection(config)
    assert set(detr.adapt(saved, set())) == set(model.state_dict())
    assert (config.d_model, config.num_queries, config.num_labels) == (32, 12, 5)
    assert (config.encoder_layers, config.decoder_layers, config.decoder_ffn_dim) == (2, 2, 48)
    assert config.backbone.depths == (1, 2, 1, 1)


def timm_name(hf_name: str) -> str:
    """The test's own spelling of the timm ResNet names, written out case by case."""
    parts = hf_name.split(".")
    if parts[:2] == ["embedder", "embedder"]:
        return {"convolution": "conv1", "normalization": "bn1"}[parts[2]] + "." + parts[3]
    _, _, stage, _, block, kind, *rest = parts  # encoder.stages.S.layers.B.(layer|shortcut)...
    head = f"layer{int(stage) + 1}.{block}"
    if kind == "shortcut":
        index = {"convolution": "0", "normalization": "1"}[rest[0]]
        return f"{head}.downsample.{index}.{rest[1]}"
    short = {"convolution": "conv", "normalization": "bn"}[rest[1]]
    return f"{head}.{short}{int(rest[0]) + 1}.{rest[2]}"


def test_hub_layout_resnet50_loads_strictly_and_matches(tmp_path):
    """facebook/detr-resnet-50 as the Hub has it: timm key names (with step counters) and
    `use_timm_backbone: true, backbone: "resnet50"` in config.json. Built from a
    transformers-layout ResNet-50 of the same shape, renamed, then compared."""
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    torch.manual_seed(4)
    backbone = ResNetConfig(out_features=["stage4"])  # ResNet-50's defaults
    reference = DetrForObjectDetection(
        DetrConfig(backbone_config=backbone, use_timm_backbone=False, d_model=32,
                   encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                   decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                   num_queries=5, num_labels=3)
    ).eval()
    with torch.no_grad():
        for name, buffer in reference.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    reference.save_pretrained(tmp_path / "hf")

    hub = tmp_path / "hub"
    hub.mkdir()
    prefix = "model.backbone.conv_encoder.model."
    state = {}
    for key, value in load_file(tmp_path / "hf" / "model.safetensors").items():
        if key.startswith(prefix):
            key = prefix + timm_name(key[len(prefix):])
            if key.endswith("running_var"):
                state[key.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
        state[key] = value
    save_file(state, hub / "model.safetensors")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    del config["backbone_config"]
    config.update(use_timm_backbone=True, backbone="resnet50", use_pretrained_backbone=True,
                  dilation=False, backbone_config=None)
    (hub / "config.json").write_text(json.dumps(config))

    model = load(hub)
    assert model.config.backbone.name == "resnet50"
    assert model.config.backbone.depths == (3, 4, 6, 3)
    hub_keys = {k for k in state if not k.endswith("num_batches_tracked")}
    assert set(model.state_dict()) == hub_keys
    torch.manual_seed(5)
    assert_same_outputs(model, reference, torch.randn(1, 3, 96, 64))


def test_saved_5x_timm_backbone_config_is_understood():
    data = {"model_type": "detr", "id2label": {"0": "a", "1": "b"},
            "backbone_config": {"model_type": "timm_backbone", "backbone": "resnet18",
                                "out_indices": [1, 2, 3, 4], "output_stride": None}}
    config = detr.DetrConfig.from_json(data)
    assert (config.backbone.name, config.backbone.layer_type) == ("resnet18", "basic")
    assert config.backbone.hidden_sizes == (64, 128, 256, 512)
    assert config.num_labels == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"position_embedding_type": "learned"}, "learned"),
        ({"dilation": True}, "DC5"),
        ({"backbone_config": None, "use_timm_backbone": True, "backbone": "resnet26d"}, "resnet26d"),
        ({"backbone_config": {"model_type": "swin"}}, "swin"),
    ],
)
def test_unsupported_variants_are_clear_errors(tiny, change, message):
    folder, _ = tiny
    data = read_json(folder / "config.json")
    data.update(change)
    with pytest.raises(CheckpointError, match=message):
        detr.DetrConfig.from_json(data)


def test_weights_of_another_shape_are_refused(tiny, tmp_path):
    folder, _ = tiny
    shutil.copytree(folder, tmp_path / "bad")
    data = read_json(tmp_path / "bad" / "config.json")
    data["num_queries"] = 7
    (tmp_path / "bad" / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="query_position_embeddings"):
        load(tmp_path / "bad")


def test_fused_backbone_gives_the_same_outputs(tiny):
    folder, _ = tiny
    plain, fused = load(folder), load(folder)
    fused.fuse_for_inference()
    backbone = fused.model.backbone.conv_encoder.model
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())
    assert backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(6)
    pixels = torch.randn(2, 3, 96, 128)
    mask = torch.ones(2, 96, 128, dtype=torch.long)
    mask[0, :, 64:] = 0
    with torch.no_grad():
        for a, b in zip(plain(pixels, mask), fused(pixels, mask)):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


def test_describe_gives_the_architecture(tiny):
    folder, _ = tiny
    config = detr.DetrConfig.from_json(read_json(folder / "config.json"))
    assert detr.describe(config) == {
        "backbone": "ResNet 1-2-1-1 (bottleneck)",
        "backbone_channels": 32,
        "hidden_size": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "attention_heads": 4,
        "feed_forward_size": 64,
        "queries": 12,
    }
    named = detr.DetrConfig.from_json({"id2label": {"0": "a"}, "backbone": "resnet50"})
    assert detr.describe(named)["backbone"] == "resnet50"
    assert detr.describe(named)["backbone_channels"] == 2048


def test_an_unknown_activation_fails_at_load(tiny):
    folder, _ = tiny
    data = read_json(folder / "config.json")
    with pytest.raises(CheckpointError, match="activation_function 'mish'"):
        detr.DetrConfig.from_json({**data, "activation_function": "mish"})


@pytest.mark.parametrize("padded", [False, True], ids=["one-image", "padded-batch"])
def test_watched_attention_equals_transformers_encoder_and_cross_attentions(tiny, padded):
    """Through the probe: the encoder's self-attention weights equal transformers'
    `encoder_attentions`, the decoder's cross-attention weights its `cross_attentions`
    (batch, heads, queries, h·w), padding included; the outputs stay the fused path's."""
    from transformers import DetrForObjectDetection

    folder, _ = tiny
    reference = DetrForObjectDetection.from_pretrained(folder, attn_implementation="eager").eval()
    model = load(folder)
    torch.manual_seed(4)
    pixels = torch.randn(2, 3, 128, 160)
    mask = torch.ones(2, 128, 160, dtype=torch.long)
    if padded:
        mask[1, 96:, :] = 0
        mask[1, :, 100:] = 0
    with torch.no_grad():
        expected = reference(pixel_values=pixels, pixel_mask=mask, output_attentions=True)
        fused = model(pixels, mask)
        with probe.watching(model) as seen:
            watched = model(pixels, mask)
    for i, attention in enumerate(expected.encoder_attentions):
        torch.testing.assert_close(seen.records[f"model.encoder.layers.{i}.self_attn"], attention, rtol=0, atol=1e-6)
    for i, attention in enumerate(expected.cross_attentions):
        torch.testing.assert_close(seen.records[f"model.decoder.layers.{i}.encoder_attn"], attention, rtol=0, atol=1e-6)
    assert seen.records["model.decoder.layers.0.encoder_attn"].shape == (2, 4, 12, 4 * 5)
    for ours, theirs in zip(watched, fused):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
