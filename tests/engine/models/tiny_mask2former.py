"""Tiny random Mask2Former checkpoints (Swin backbone) written by transformers, shared by the
model, task and CLI tests, in both forms a file can take: as transformers 5.x saves it (no
relative_position_index, an unused final Swin norm) and as Hub files hold it (the other way
round)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
from safetensors.torch import load_file, save_file

from tests.engine.models.random_values import spread_values

#: A Swin-T layout shrunk: four stages, windows of 4; the decoder's widths are multiples of 32
#: (GroupNorm's groups). 70 classes: transformers' instance post-processing then ranks the
#: candidates with a partial sort, so its order is by score, as with the Hub's 80 and 133.
SWIN = dict(embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], window_size=4)
DECODER = dict(feature_size=32, mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=48,
               dim_feedforward=48, encoder_layers=2, decoder_layers=4, num_attention_heads=2, num_queries=12)
NUM_LABELS = 70


def build_reference(config):
    """transformers' model; its training loss wants scipy at construction, which inference never
    calls, so the check is skipped while it is built."""
    from transformers import Mask2FormerForUniversalSegmentation

    with mock.patch("transformers.models.mask2former.modeling_mask2former.requires_backends"):
        return Mask2FormerForUniversalSegmentation(config).eval()


def save_tiny_mask2former(
    folder: Path,
    *,
    seed: int = 0,
    hub_form: bool = False,
    processor: dict | None = None,
    num_labels: int = NUM_LABELS,
    class_scale: float = 1.0,
    mask_scale: float = 1.0,
    **overrides,
) -> torch.nn.Module:
    """Save a tiny Mask2Former to `folder` and return transformers' model (the oracle). With
    `hub_form`, the weights are rewritten as Hub files hold them. `processor`, unless None, are
    the arguments of a PIL-backend Mask2FormerImageProcessor saved beside it. `class_scale`
    multiplies the class head, so that some queries are confident enough to keep, and
    `mask_scale` the mask embedder's last layer, so that masks are more than a haze."""
    from transformers import Mask2FormerConfig, Mask2FormerImageProcessorPil, SwinConfig

    torch.manual_seed(seed)
    names = {i: f"class{i}" for i in range(num_labels)}
    backbone = SwinConfig(**SWIN, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, **{**DECODER, **overrides}, id2label=names,
                               label2id={v: k for k, v in names.items()})
    model = build_reference(config)
    spread_values(model, unit_normal=("queries_features.weight", "queries_embedder.weight"))
    with torch.no_grad():
        model.class_predictor.weight.mul_(class_scale)
        model.class_predictor.bias.mul_(class_scale)
        last = model.model.transformer_module.decoder.mask_predictor.mask_embedder.layers[2].layers[0]
        last.weight.mul_(mask_scale)
        last.bias.mul_(mask_scale)
    model.save_pretrained(folder)
    if hub_form:
        to_hub_form(folder, model)
    if processor is not None:
        Mask2FormerImageProcessorPil(**processor).save_pretrained(folder)
    return model


def to_hub_form(folder: Path, model: torch.nn.Module) -> None:
    """Rewrite the saved weights as Hub (transformers 4.x) files hold them: each Swin
    attention's relative_position_index present, the final Swin norm absent."""
    state = {k: v for k, v in load_file(folder / "model.safetensors").items() if ".swin.layernorm." not in k}
    for name, buffer in model.named_buffers():
        if name.endswith("relative_position_index"):
            block = name.split(".attention.")[0].replace(".swin.", ".")
            state[f"{block}.attention.self.relative_position_index"] = buffer.reshape(16, 16).clone()
    save_file(state, folder / "model.safetensors")
