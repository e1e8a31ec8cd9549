"""Tiny random GLPN checkpoints written by transformers, shared by the model, task and app tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.engine.models.random_values import spread_values

#: Two encoder shapes: MiT-b0's layout shrunk (the last stage as wide as the decoder, so that
#: stage has no 1x1 convolution, as in the Hub files), and one with other depths and ratios.
CONFIGS = {
    "b0-like": dict(hidden_sizes=[8, 16, 24, 16], depths=[1, 1, 2, 1], num_attention_heads=[1, 2, 2, 4],
                    sr_ratios=[8, 4, 2, 1], decoder_hidden_size=8),
    "other": dict(hidden_sizes=[16, 16, 32, 48], depths=[2, 1, 1, 1], num_attention_heads=[2, 1, 4, 2],
                  sr_ratios=[4, 2, 1, 1], patch_sizes=[5, 3, 3, 3], mlp_ratios=[2, 4, 3, 2],
                  decoder_hidden_size=12),
}


def save_tiny_glpn(folder: Path, *, shape: str = "b0-like", seed: int = 0, processor: dict | None = None,
                   **overrides: Any) -> torch.nn.Module:
    """Save a GLPNForDepthEstimation of `shape` (see CONFIGS; `overrides` change config fields
    such as max_depth) and, unless `processor` is None, a PIL-backend GLPNImageProcessor built
    with those arguments, to `folder`; return the transformers model (the oracle)."""
    from transformers import GLPNConfig, GLPNForDepthEstimation, GLPNImageProcessorPil

    torch.manual_seed(seed)
    model = GLPNForDepthEstimation(GLPNConfig(**{**CONFIGS[shape], **overrides})).eval()
    spread_values(model)
    model.save_pretrained(folder)
    if processor is not None:
        GLPNImageProcessorPil(**processor).save_pretrained(folder)
    return model
