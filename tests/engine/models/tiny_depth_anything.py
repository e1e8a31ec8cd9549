"""Tiny random Depth Anything checkpoints written by transformers, shared by the model and task
tests: a 4-layer DINOv2 with 7-pixel patches under a narrow DPT neck."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

PATCH = 7
BACKBONE = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, mlp_ratio=2, image_size=28,
                patch_size=PATCH, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
NECK = dict(patch_size=PATCH, reassemble_hidden_size=32, neck_hidden_sizes=[8, 12, 16, 32], fusion_hidden_size=16,
            head_hidden_size=8)


def save_tiny_depth_anything(folder: Path, *, seed: int = 0, backbone: dict[str, Any] | None = None,
                             **overrides: Any) -> torch.nn.Module:
    """Save a tiny DepthAnythingForDepthEstimation to `folder` and return it (the oracle).
    `backbone` overrides DINOv2 fields, `overrides` Depth Anything ones (depth_estimation_type,
    max_depth, reassemble_factors, ...)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(seed)
    config = DepthAnythingConfig(backbone_config=Dinov2Config(**{**BACKBONE, **(backbone or {})}),
                                 **{**NECK, **overrides})
    model = DepthAnythingForDepthEstimation(config).eval()
    randomize(model)
    model.save_pretrained(folder)
    return model


def randomize(model: torch.nn.Module) -> None:
    """Weights at a scale that keeps activations near one through every layer, biases and
    norms and layer scales spread out: with transformers' init (std 0.02, zero biases) the
    depth head's ReLU turns almost every pixel to 0, and a mixed-up tensor could go unseen."""
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if tensor.dim() >= 2 and "embeddings" not in name:
                tensor.uniform_(-1, 1).mul_(math.sqrt(3 / tensor[0].numel()))  # variance 1 / fan-in
            elif name.endswith("lambda1"):
                tensor.uniform_(0.3, 1.0)
            elif "norm" in name and name.endswith("weight"):
                tensor.normal_(1.0, 0.2)
            else:
                tensor.normal_(0.0, 0.3)
