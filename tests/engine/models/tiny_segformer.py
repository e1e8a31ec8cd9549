"""Tiny random SegFormer checkpoints written by transformers, shared by the model, task and CLI
tests."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.engine.models.random_values import spread_values

#: Two shapes of encoder: MiT-b0's layout shrunk, and one with other depths, reduction ratios,
#: patch sizes and MLP ratios.
CONFIGS = {
    "b0-like": dict(
        hidden_sizes=[8, 16, 24, 32], depths=[1, 2, 1, 1], num_attention_heads=[1, 2, 3, 4],
        sr_ratios=[8, 4, 2, 1], decoder_hidden_size=16,
    ),
    "other": dict(
        hidden_sizes=[16, 16, 32, 48], depths=[2, 1, 1, 2], num_attention_heads=[2, 1, 4, 2],
        sr_ratios=[4, 2, 1, 1], patch_sizes=[5, 3, 3, 3], mlp_ratios=[2, 4, 3, 2], decoder_hidden_size=24,
    ),
}


def save_tiny_segformer(
    folder: Path,
    *,
    shape: str = "b0-like",
    num_labels: int = 6,
    seed: int = 0,
    processor: dict | None = None,
) -> torch.nn.Module:
    """Save a SegFormer of `shape` (see CONFIGS) with `num_labels` classes and, unless
    `processor` is None, a PIL-backend SegformerImageProcessor built with those arguments, to
    `folder`; return the transformers model (the oracle)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

    torch.manual_seed(seed)
    names = {i: f"class{i}" for i in range(num_labels)}
    config = SegformerConfig(**CONFIGS[shape], id2label=names, label2id={v: k for k, v in names.items()})
    model = SegformerForSemanticSegmentation(config).eval()
    spread_values(model)
    model.save_pretrained(folder)
    if processor is not None:
        SegformerImageProcessorPil(**processor).save_pretrained(folder)
    return model
