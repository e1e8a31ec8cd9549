"""The keys and values a decoder has already computed, kept for the rest of one request.

A `KVCache` belongs to the request, not to the model: the task asks the model for one sized
for the prompt plus every token it may add (`model.make_cache(rows, capacity)`) and passes it
into each forward call. Nothing is allocated after that, whatever the number of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine import probe
from engine.models.common import attend


class KVCache:
    """Self-attention keys and values of every decoder layer, in tensors allocated once for
    `rows` sequences of up to `capacity` positions, and for encoder-decoder models the
    cross-attention keys and values of the encoder's output (computed on the first step, for
    one row, and shared by every row after: `attend_shared`).

    A forward pass writes its new positions with `update` in each layer and then calls
    `advance`. The prompt is run once for one row; `expand` then copies it to every row.
    Beam search calls `reorder` after each step so that row i continues the hypothesis that
    was in row `order[i]`.
    """

    def __init__(
        self,
        layers: int,
        rows: int,
        heads: int,
        head_dim: int,
        capacity: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        shape = (rows, heads, capacity, head_dim)
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.cross: list[tuple[Tensor, Tensor] | None] = [None] * layers
        self.capacity = capacity
        self.length = 0  # positions written and advanced over

    def update(self, layer: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Store the keys and values of the new positions, each (rows, heads, new, head_dim),
        after the cached ones; return all of them so far, (rows, heads, length + new, head_dim)."""
        rows, end = key.shape[0], self.length + key.shape[2]
        if end > self.capacity:
            raise RuntimeError(f"the cache holds {self.capacity} positions; position {end} asked for")
        self.keys[layer][:rows, :, self.length : end] = key
        self.values[layer][:rows, :, self.length : end] = value
        return self.keys[layer][:rows, :, :end], self.values[layer][:rows, :, :end]

    def advance(self, positions: int) -> None:
        """Called by the model once every layer has stored `positions` new ones."""
        self.length += positions

    def cross_attention(self, layer: int, compute: Callable[[], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        """The cross-attention keys and values of `layer`, each (1, heads, source, head_dim):
        computed by `compute()` on the first call and kept. Every row shares them (see
        `attend_shared`)."""
        stored = self.cross[layer]
        if stored is None:
            stored = self.cross[layer] = compute()
        return stored

    def expand(self, rows: int) -> None:
        """Copy row 0, which holds the prompt, to rows 1 .. rows-1."""
        for tensor in (*self.keys, *self.values):
            tensor[1:rows, :, : self.length] = tensor[:1, :, : self.length]

    def reorder(self, order: Tensor) -> None:
        """Row i takes what row `order[i]` held (beam search keeps the best continuations)."""
        if torch.equal(order, torch.arange(len(order), device=order.device)):
            return
        rows = len(order)
        for tensor in (*self.keys, *self.values):
            tensor[:rows, :, : self.length] = tensor[:rows, :, : self.length].index_select(0, order)


def attend_shared(owner: nn.Module, q: Tensor, k: Tensor, v: Tensor, scale: float | None = None) -> Tensor:
    """`owner`'s attention of each row's queries (rows, heads, seq, head_dim) over keys and
    values that every row shares, (1, heads, source, head_dim): the encoder's output under beam
    search (keys and values with a row per query row are each row's own).
    The rows become more queries of one sequence, so the keys are read once per step rather
    than copied for each row; a probe watching `owner` sees each row's weights apart."""
    rows, heads, seq, head_dim = q.shape
    watcher = probe.active()
    if k.shape[0] == rows or (watcher is not None and watcher.watches(owner)):
        size = (rows, -1, -1, -1)  # a view, not a copy
        return attend(owner, q, k.expand(size), v.expand(size), None, scale)
    # (rows, heads, seq, head_dim) -> (1, heads, rows·seq, head_dim)
    folded = q.transpose(0, 1).reshape(1, heads, rows * seq, head_dim)
    out = F.scaled_dot_product_attention(folded, k, v, scale=scale)
    return out.view(heads, rows, seq, head_dim).transpose(0, 1)  # back to (rows, heads, seq, head_dim)
