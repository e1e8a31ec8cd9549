"""What three or more model files share: the activation functions config.json names, attention
that a probe can look into, and the projection after attention that ViT-style checkpoints keep
in a module of its own."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine import probe
from engine.errors import CheckpointError

# config.json's names, as transformers spells them: "gelu" is the exact erf form, "gelu_new"
# and "gelu_pytorch_tanh" the tanh approximation, "swish" another name for SiLU.
_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": partial(F.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name: str, key: str = "hidden_act") -> Callable[[Tensor], Tensor]:
    """The function config.json calls `name`; `key` is the config.json field that named it,
    for the error a config's `from_json` raises on an unknown name."""
    try:
        return _FUNCTIONS[name]
    except KeyError:
        known = ", ".join(sorted(_FUNCTIONS))
        raise CheckpointError(
            f"{key} {name!r} in config.json is not a supported activation (known: {known})"
        ) from None


class SelfOutput(nn.Module):
    """The projection after attention, `dense` (dim -> dim), which ViT, Swin and the Mix
    Transformer's checkpoints keep in its own module (`attention.output.dense`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.dense(hidden)


def attend(
    owner: nn.Module, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """softmax(q·kᵀ·scale + mask)·v over (batch, heads, length, head_dim) tensors, as
    `F.scaled_dot_product_attention` computes it (`scale` defaults to 1/√head_dim; a boolean
    `mask` is True where attending is allowed, a float one is added to the scores).

    When a probe watches `owner` (`engine.probe.watching`), the weights are computed
    explicitly and handed to it; otherwise this is the fused kernel and nothing else."""
    watcher = probe.active()
    if watcher is None or not watcher.watches(owner):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    scores = torch.matmul(q, k.transpose(-2, -1)).mul_(q.shape[-1] ** -0.5 if scale is None else scale)
    if mask is not None:  # in place: the scores are this call's own
        scores = scores.masked_fill_(~mask, float("-inf")) if mask.dtype == torch.bool else scores.add_(mask)
    weights = scores.softmax(dim=-1)
    del scores
    watcher.record(owner, weights)
    return torch.matmul(weights, v)
