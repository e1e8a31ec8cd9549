"""T5 (t5-small, t5-base) and T5 v1.1 / FLAN-T5 (google/flan-t5-small, -base): an
encoder-decoder with relative position buckets instead of position embeddings.

Module names follow the checkpoints (`shared`, `encoder.block.N.layer.0.SelfAttention.q`,
`decoder.block.N.layer.1.EncDecAttention.k`, `...layer.-1.DenseReluDense.wi`), so their tensors
load unchanged. v1.1 and FLAN differ from the original in a gated-GELU feed-forward
(`wi_0`, `wi_1`) and an untied head without the d_model^-0.5 rescale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.checkpoint import StateDict
from engine.config import from_dict
from engine.errors import CheckpointError
from engine.generation.cache import KVCache, attend_shared
from engine.models.common import activation, attend

# --------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    """T5's LayerNorm: scale only, no mean subtracted, the mean square taken in float32."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        return self.weight * x.to(self.weight.dtype)


class DenseReluDense(nn.Module):
    """The feed-forward: act(wi x) in T5, act(wi_0 x) · wi_1 x (gated) in v1.1 and FLAN."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.gated = config.gated
        if self.gated:
            self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
            self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        else:
            self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.act = activation(config.act_name, "feed_forward_proj")

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.act(self.wi_0(x)) * self.wi_1(x) if self.gated else self.act(self.wi(x))
        return self.wo(hidden)


class Attention(nn.Module):
    """Multi-head attention without the 1/√d scaling (folded into T5's initialisation). The
    first block's self-attention owns the table of relative position biases."""

    def __init__(self, config: T5Config, layer: int, relative_bias: bool = False) -> None:
        super().__init__()
        self.layer = layer
        self.heads = config.num_heads
        inner = config.num_heads * config.d_kv
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if relative_bias:
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)

    def forward(self, x: Tensor, bias: Tensor, cache: KVCache | None = None) -> Tensor:
        """Self-attention with `bias` (1, heads, seq, keys) added to the scores."""
        k, v = self._split(self.k(x)), self._split(self.v(x))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        return self._attend(self._split(self.q(x)), k, v, bias)

    def cross(self, x: Tensor, memory: Tensor, cache: KVCache | None = None) -> Tensor:
        """Attention over the encoder's output `memory`, whose keys and values the cache keeps."""
        def keys_values() -> tuple[Tensor, Tensor]:
            return self._split(self.k(memory)), self._split(self.v(memory))

        q = self._split(self.q(x))
        if cache is None:
            return self._attend(q, *keys_values(), None)
        out = attend_shared(self, q, *cache.cross_attention(self.layer, keys_values), scale=1.0)
        return self._merge(out)

    def _split(self, x: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.heads, -1).transpose(1, 2)  # (batch, heads, seq, d_kv)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
        return self._merge(attend(self, q, k, v, bias, 1.0))

    def _merge(self, heads_out: Tensor) -> Tensor:
        batch, heads, seq, d_kv = heads_out.shape
        # (batch, heads, seq, d_kv) -> (batch, seq, heads·d_kv)
        return self.o(heads_out.transpose(1, 2).reshape(batch, seq, heads * d_kv))


class LayerSelfAttention(nn.Module):
    def __init__(self, config: T5Config, layer: int) -> None:
        super().__init__()
        self.SelfAttention = Attention(config, layer, relative_bias=layer == 0)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: Tensor, bias: Tensor, cache: KVCache | None) -> Tensor:
        return x + self.SelfAttention(self.layer_norm(x), bias, cache)


class LayerCrossAttention(nn.Module):
    def __init__(self, config: T5Config, layer: int) -> None:
        super().__init__()
        self.EncDecAttention = Attention(config, layer)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: Tensor, memory: Tensor, cache: KVCache | None) -> Tensor:
        return x + self.EncDecAttention.cross(self.layer_norm(x), memory, cache)


class LayerFF(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.DenseReluDense = DenseReluDense(config)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class Block(nn.Module):
    """Pre-norm: self-attention, (decoder) cross-attention, feed-forward, each added back."""

    def __init__(self, config: T5Config, layer: int, decoder: bool) -> None:
        super().__init__()
        parts: list[nn.Module] = [LayerSelfAttention(config, layer)]
        if decoder:
            parts.append(LayerCrossAttention(config, layer))
        parts.append(LayerFF(config))
        self.layer = nn.ModuleList(parts)

    def forward(self, x: Tensor, bias: Tensor, memory: Tensor | None, cache: KVCache | None) -> Tensor:
        x = self.layer[0](x, bias, cache)
        if memory is not None:
            x = self.layer[1](x, memory, cache)
        return self.layer[-1](x)


def relative_buckets(relative: Tensor, bidirectional: bool, buckets: int, max_distance: int) -> Tensor:
    """T5's bucket for each relative position (key − query): one bucket per distance below
    half the buckets, then logarithmically wider ones up to `max_distance`. Bidirectional (the
    encoder) gives keys after the query their own half of the buckets; the decoder looks back
    only."""
    found = torch.zeros_like(relative)
    if bidirectional:
        buckets //= 2
        found += (relative > 0).long() * buckets
        distance = relative.abs()
    else:
        distance = (-relative).clamp(min=0)
    exact = buckets // 2
    # log(0) for the small distances is -inf: those take the exact branch below
    far = exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact) * (buckets - exact)).long()
    return found + torch.where(distance < exact, distance, far.clamp(max=buckets - 1))


class Stack(nn.Module):
    """The encoder or the decoder: blocks sharing the first block's position biases, then a
    final norm. The decoder masks future positions and attends to the encoder's output."""

    def __init__(self, config: T5Config, layers: int, decoder: bool) -> None:
        super().__init__()
        self.config = config
        self.decoder = decoder
        self.block = nn.ModuleList(Block(config, i, decoder) for i in range(layers))
        self.final_layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)

    def position_bias(self, start: int, queries: int, keys: int, device: torch.device) -> Tensor:
        """(1, heads, queries, keys) biases for queries at positions start, start + 1, ..."""
        query = torch.arange(start, start + queries, device=device)[:, None]
        key = torch.arange(keys, device=device)[None, :]
        c = self.config
        buckets = relative_buckets(key - query, not self.decoder, c.relative_attention_num_buckets, c.relative_attention_max_distance)
        first = cast(LayerSelfAttention, cast(Block, self.block[0]).layer[0])
        table = first.SelfAttention.relative_attention_bias
        return table(buckets).permute(2, 0, 1)[None].contiguous()  # (queries, keys, heads) -> (1, heads, queries, keys)

    def forward(self, x: Tensor, memory: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        """(batch, seq, d_model) embedded tokens -> (batch, seq, d_model)."""
        start = cache.length if cache is not None else 0
        seq = x.shape[1]
        bias = self.position_bias(start, seq, start + seq, x.device)
        if self.decoder and seq > 1:
            future = torch.ones(seq, start + seq, dtype=torch.bool, device=x.device).triu(start + 1)
            bias = bias.masked_fill(future, -math.inf)
        for block in self.block:
            x = block(x, bias.to(x.dtype), memory, cache)
        if cache is not None:
            cache.advance(seq)
        return self.final_layer_norm(x)


# --------------------------------------------------------------------------- model


class T5ForConditionalGeneration(nn.Module):
    """T5 (Raffel et al., 2020, "Exploring the Limits of Transfer Learning with a Unified
    Text-to-Text Transformer"): `encode` the input once, then `decode` the output a token at a
    time over a cache."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = Stack(config, config.num_layers, decoder=False)
        self.decoder = Stack(config, config.decoder_layers, decoder=True)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def encode(self, input_ids: Tensor) -> Tensor:
        """(batch, source) ids -> (batch, source, d_model)."""
        return self.encoder(self.shared(input_ids))

    def decode(self, input_ids: Tensor, memory: Tensor, cache: KVCache | None = None, last_only: bool = False) -> Tensor:
        """(batch, seq) decoder ids after the cache's positions -> (batch, seq, vocab) logits,
        or (batch, vocab) for the last position with `last_only`."""
        hidden = self.decoder(self.shared(input_ids), memory, cache)
        if last_only:
            hidden = hidden[:, -1]
        if self.config.scales_output:
            hidden = hidden * self.config.d_model**-0.5
        if self.config.tie_word_embeddings:
            return F.linear(hidden, self.shared.weight)
        return self.lm_head(hidden)  # called, not read: int8 replaces the module

    def forward(self, input_ids: Tensor, decoder_input_ids: Tensor) -> Tensor:
        return self.decode(decoder_input_ids, self.encode(input_ids))

    def cross_attention_names(self) -> list[str]:
        """The decoder's attention modules over the encoder's output, first layer first."""
        return [f"decoder.block.{i}.layer.1.EncDecAttention" for i in range(len(self.decoder.block))]

    def make_cache(self, rows: int, capacity: int) -> KVCache:
        """An empty decoder cache for `rows` sequences of up to `capacity` tokens."""
        c = self.config
        weight = self.shared.weight
        return KVCache(c.decoder_layers, rows, c.num_heads, c.d_kv, capacity, dtype=weight.dtype, device=weight.device)


HEADS: dict[str, type[nn.Module]] = {"seq2seq-lm": T5ForConditionalGeneration}


# --------------------------------------------------------------------------- config and loading


@dataclass(frozen=True)
class T5Config:
    """The fields of a T5 config.json that the model reads."""

    vocab_size: int
    d_model: int
    d_kv: int
    d_ff: int
    num_layers: int
    num_heads: int
    num_decoder_layers: int | None = None  # None: as many as the encoder
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"
    tie_word_embeddings: bool = True
    # written by transformers 5, which always ties the head and keeps v1.1's "no rescale" here
    scale_decoder_outputs: bool | None = None

    @property
    def decoder_layers(self) -> int:
        return self.num_decoder_layers if self.num_decoder_layers is not None else self.num_layers

    @property
    def gated(self) -> bool:
        return self.feed_forward_proj.startswith("gated-")

    @property
    def act_name(self) -> str:
        # "gated-gelu" has always meant the tanh approximation
        return "gelu_new" if self.feed_forward_proj == "gated-gelu" else self.feed_forward_proj.removeprefix("gated-")

    @property
    def scales_output(self) -> bool:
        """The original T5 scales the decoder's output by d_model^-0.5 before its tied head."""
        return self.scale_decoder_outputs if self.scale_decoder_outputs is not None else self.tie_word_embeddings

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> T5Config:
        config = from_dict(cls, data)
        if "-" in config.act_name:
            raise CheckpointError(f"feed_forward_proj {config.feed_forward_proj!r} is neither ACT nor gated-ACT")
        activation(config.act_name, "feed_forward_proj")  # fail at load time
        return config


_EMBEDDING_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Keep one embedding (`shared`): drop the encoder's and decoder's copies of it, a head that
    only copies it, and the unused position table some files give the first cross-attention."""
    if "shared.weight" not in state:
        found = [key for key in _EMBEDDING_COPIES if key in state]
        if found:
            state["shared.weight"] = state[found[0]]
    unused = {*_EMBEDDING_COPIES, "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"}
    if "lm_head.weight" not in expected:
        unused.add("lm_head.weight")
    return {key: value for key, value in state.items() if key not in unused}


def describe(config: T5Config) -> dict[str, Any]:
    """The architecture's sizes, for the app's "How it works" panel."""
    return {
        "encoder_layers": config.num_layers,
        "decoder_layers": config.decoder_layers,
        "hidden_size": config.d_model,
        "attention_heads": config.num_heads,
        "feed_forward_size": config.d_ff,
        "feed_forward": config.feed_forward_proj,
        "vocabulary_size": config.vocab_size,
        "position_buckets": config.relative_attention_num_buckets,
    }
