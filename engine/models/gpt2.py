"""GPT-2 (gpt2, distilgpt2, gpt2-medium, gpt2-large): a decoder-only language model.

Module names follow the checkpoints (`transformer.wte`, `transformer.h.N.attn.c_attn`, ...), so
their tensors load unchanged; the linear layers keep GPT-2's Conv1D layout, weights stored
(in, out). The head is the token embedding itself unless config.json unties it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.checkpoint import StateDict, drop_keys, match_prefix
from engine.config import from_dict
from engine.errors import CheckpointError, InputError
from engine.generation.cache import KVCache
from engine.models.common import activation, attend

# --------------------------------------------------------------------------- building blocks


class Conv1D(nn.Module):
    """GPT-2's linear layer: y = x W + b with W stored (in, out)."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(inputs, outputs))
        self.bias = nn.Parameter(torch.empty(outputs))

    def forward(self, x: Tensor) -> Tensor:
        # (..., in) -> (..., out)
        flat = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return flat.view(*x.shape[:-1], -1)

    def as_linear(self) -> nn.Linear:
        """The same map as an `nn.Linear` (weight stored (out, in)), which int8 quantisation
        replaces (`engine.precision.quantize`)."""
        inputs, outputs = self.weight.shape
        linear = nn.Linear(inputs, outputs, device="meta")
        linear.weight = nn.Parameter(self.weight.detach().t(), requires_grad=False)
        linear.bias = self.bias
        return linear


class Attention(nn.Module):
    """Causal self-attention. Scores are scaled by 1/√head_dim (unless `scale_attn_weights` is
    off) and, with `scale_attn_by_inverse_layer_idx`, also by 1/(layer + 1);
    `reorder_and_upcast_attn` computes them in float32 when the model runs in half precision."""

    def __init__(self, config: GPT2Config, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.heads = config.n_head
        self.c_attn = Conv1D(config.n_embd, 3 * config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.scale = config.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= float(layer + 1)
        self.upcast = config.reorder_and_upcast_attn

    def forward(self, x: Tensor, mask: Tensor | None, cache: KVCache | None) -> Tensor:
        batch, seq, dim = x.shape
        # (batch, seq, 3·dim) -> three (batch, heads, seq, head_dim)
        q, k, v = (t.view(batch, seq, self.heads, -1).transpose(1, 2) for t in self.c_attn(x).split(dim, dim=2))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        if self.upcast:
            q, k, v = q.float(), k.float(), v.float()
        out = attend(self, q, k, v, mask, self.scale).to(x.dtype)
        # (batch, heads, seq, head_dim) -> (batch, seq, dim)
        return self.c_proj(out.transpose(1, 2).reshape(batch, seq, dim))


class MLP(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.c_fc = Conv1D(config.n_embd, config.inner_size)
        self.c_proj = Conv1D(config.inner_size, config.n_embd)
        self.act = activation(config.activation_function, "activation_function")

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LN: each sub-layer reads a normalised copy and adds to the residual stream."""

    def __init__(self, config: GPT2Config, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = Attention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, mask: Tensor | None, cache: KVCache | None) -> Tensor:
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.mlp(self.ln_2(x))


# --------------------------------------------------------------------------- models


class GPT2Model(nn.Module):
    """The GPT-2 transformer (Radford et al., 2019, "Language Models are Unsupervised Multitask
    Learners"): token and learned position embeddings, pre-LN blocks, a final LayerNorm."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        causal = torch.empty(config.n_positions, config.n_positions, dtype=torch.bool)
        self.register_buffer("causal", causal, persistent=False)  # filled in init_buffers

    def init_buffers(self, device: torch.device) -> None:
        n = self.config.n_positions
        self.causal = torch.ones(n, n, dtype=torch.bool, device=device).tril()

    def forward(self, input_ids: Tensor, cache: KVCache | None = None) -> Tensor:
        """(batch, seq) ids, after the `cache.length` positions the cache holds ->
        (batch, seq, n_embd) final hidden states."""
        start = cache.length if cache is not None else 0
        seq = input_ids.shape[1]
        if start + seq > self.config.n_positions:
            raise InputError(f"GPT-2 reads at most {self.config.n_positions} tokens; asked for {start + seq}")
        positions = torch.arange(start, start + seq, device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        # one new token sees every cached one: no mask needed
        mask = self.causal[start : start + seq, : start + seq] if seq > 1 else None
        for block in self.h:
            x = block(x, mask, cache)
        if cache is not None:
            cache.advance(seq)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    """GPT-2 with its language-modelling head: next-token logits for every position."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, input_ids: Tensor, cache: KVCache | None = None, last_only: bool = False) -> Tensor:
        """(batch, seq) ids -> (batch, seq, vocab) logits, or (batch, vocab) for the last
        position only with `last_only`."""
        hidden = self.transformer(input_ids, cache)
        if last_only:
            hidden = hidden[:, -1]
        if self.config.tie_word_embeddings:
            return F.linear(hidden, self.transformer.wte.weight)
        return self.lm_head(hidden)  # called, not read: int8 replaces the module

    def attention_names(self) -> list[str]:
        """The blocks' self-attention modules, first layer first (for a probe)."""
        return [f"transformer.h.{i}.attn" for i in range(len(self.transformer.h))]

    def make_cache(self, rows: int, capacity: int) -> KVCache:
        """An empty cache for `rows` sequences of up to `capacity` tokens."""
        c = self.config
        weight = self.transformer.wte.weight
        return KVCache(c.n_layer, rows, c.n_head, c.head_dim, capacity, dtype=weight.dtype, device=weight.device)


HEADS: dict[str, type[nn.Module]] = {"causal-lm": GPT2LMHeadModel}


# --------------------------------------------------------------------------- config and loading


@dataclass(frozen=True)
class GPT2Config:
    """The fields of a GPT-2 config.json that the model reads."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int | None = None  # None: 4 × n_embd
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    tie_word_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def inner_size(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GPT2Config:
        config = from_dict(cls, data)
        if config.n_embd % config.n_head:
            raise CheckpointError(f"n_embd {config.n_embd} is not a multiple of n_head {config.n_head}")
        activation(config.activation_function, "activation_function")  # fail at load time
        return config


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Add or strip the `transformer.` prefix (the Hub's gpt2 file has none), drop the attention
    mask buffers old files carry, and a head that only copies the tied embedding."""
    state = drop_keys(state, (".attn.bias", ".attn.masked_bias"))  # not c_attn.bias
    if "lm_head.weight" not in expected:
        state.pop("lm_head.weight", None)
    return match_prefix(state, expected, "transformer.")


def describe(config: GPT2Config) -> dict[str, Any]:
    """The architecture's sizes, for the app's "How it works" panel."""
    return {
        "layers": config.n_layer,
        "hidden_size": config.n_embd,
        "attention_heads": config.n_head,
        "feed_forward_size": config.inner_size,
        "vocabulary_size": config.vocab_size,
        "max_positions": config.n_positions,
    }
