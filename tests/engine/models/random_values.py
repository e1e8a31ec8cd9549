"""Random values with a spread, for tiny checkpoints: transformers' own init leaves biases and
norms at 0 and 1, weights at std 0.02 and batch-norm statistics at mean 0 and var 1, which
makes outputs nearly constant and lets a swapped or mis-normalised tensor go unnoticed."""

from __future__ import annotations

import torch


def spread_values(model: torch.nn.Module, unit_normal: tuple[str, ...] = ()) -> None:
    """Redraw every floating-point parameter and buffer of `model` in place: weights so that
    each output has unit scale, norm weights around 1, running variances between 0.5 and 2,
    everything else small; tensors whose names end with one of `unit_normal` from N(0, 1)."""
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(unit_normal):
                tensor.normal_(0.0, 1.0)
            elif tensor.dim() >= 2:  # linear and conv weights: unit-scale outputs
                tensor.normal_(0.0, tensor[0].numel() ** -0.5)
            elif "norm" in name and name.endswith("weight") or ".bn" in name and name.endswith("weight"):
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.normal_(0.0, 0.05)
