"""BART for summarisation (facebook/bart-large-cnn, sshleifer/distilbart-cnn-12-6): a
post-LN encoder-decoder with learned positions and one embedding shared by the encoder, the
decoder and the head.

Module names follow the checkpoints (`model.shared`, `model.encoder.layers.N.self_attn.q_proj`,
`model.decoder.layers.N.encoder_attn.k_proj`, `final_logits_bias`), so their tensors load
unchanged; older files also hold copies of the shared embedding, which `adapt` drops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.checkpoint import StateDict
from engine.config import from_dict
from engine.errors import CheckpointError, InputError
from engine.generation.cache import KVCache, attend_shared
from engine.models.common import activation, attend

# BART's position table starts two rows in (a fairseq convention kept by the checkpoints)
POSITION_OFFSET = 2

# --------------------------------------------------------------------------- building blocks


class Attention(nn.Module):
    """Multi-head attention with biased projections, scores scaled by 1/√head_dim."""

    def __init__(self, dim: int, heads: int, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        """Self-attention; `mask` (seq, keys) is True where a query may look."""
        k, v = self._split(self.k_proj(x)), self._split(self.v_proj(x))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        return self._attend(self._split(self.q_proj(x)), k, v, mask)

    def cross(self, x: Tensor, memory: Tensor, cache: KVCache | None = None) -> Tensor:
        """Attention over the encoder's output `memory`, whose keys and values the cache keeps."""
        def keys_values() -> tuple[Tensor, Tensor]:
            return self._split(self.k_proj(memory)), self._split(self.v_proj(memory))

        q = self._split(self.q_proj(x))
        if cache is None:
            return self._attend(q, *keys_values(), None)
        out = attend_shared(self, q, *cache.cross_attention(self.layer, keys_values), scale=None)
        return self._merge(out)

    def _split(self, x: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.heads, -1).transpose(1, 2)  # (batch, heads, seq, head_dim)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        return self._merge(attend(self, q, k, v, mask))

    def _merge(self, heads_out: Tensor) -> Tensor:
        batch, heads, seq, head_dim = heads_out.shape
        # (batch, heads, seq, head_dim) -> (batch, seq, dim)
        return self.out_proj(heads_out.transpose(1, 2).reshape(batch, seq, heads * head_dim))


class EncoderLayer(nn.Module):
    """Post-LN: each sub-layer adds its residual, then normalises."""

    def __init__(self, config: BartConfig, layer: int) -> None:
        super().__init__()
        self.self_attn = Attention(config.d_model, config.encoder_attention_heads, layer)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.fc1 = nn.Linear(config.d_model, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)
        self.act = activation(config.activation_function, "activation_function")

    def forward(self, x: Tensor) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


class DecoderLayer(nn.Module):
    """Post-LN: masked self-attention, attention over the encoder's output, feed-forward."""

    def __init__(self, config: BartConfig, layer: int) -> None:
        super().__init__()
        self.self_attn = Attention(config.d_model, config.decoder_attention_heads, layer)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.encoder_attn = Attention(config.d_model, config.decoder_attention_heads, layer)
        self.encoder_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.fc1 = nn.Linear(config.d_model, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)
        self.act = activation(config.activation_function, "activation_function")

    def forward(self, x: Tensor, mask: Tensor | None, memory: Tensor, cache: KVCache | None) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x, mask, cache))
        x = self.encoder_attn_layer_norm(x + self.encoder_attn.cross(x, memory, cache))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


class Encoder(nn.Module):
    def __init__(self, config: BartConfig) -> None:
        super().__init__()
        self.embed_positions = nn.Embedding(config.max_position_embeddings + POSITION_OFFSET, config.d_model)
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.encoder_layers))

    def forward(self, tokens: Tensor) -> Tensor:
        """(batch, seq, d_model) embedded tokens -> (batch, seq, d_model)."""
        x = self.layernorm_embedding(tokens + _positions(self.embed_positions, 0, tokens.shape[1]))
        for layer in self.layers:
            x = layer(x)
        return x


class Decoder(nn.Module):
    def __init__(self, config: BartConfig) -> None:
        super().__init__()
        self.embed_positions = nn.Embedding(config.max_position_embeddings + POSITION_OFFSET, config.d_model)
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.decoder_layers))

    def forward(self, tokens: Tensor, memory: Tensor, cache: KVCache | None = None) -> Tensor:
        """(batch, seq, d_model) embedded tokens after the cache's positions -> (batch, seq, d_model)."""
        start = cache.length if cache is not None else 0
        seq = tokens.shape[1]
        x = self.layernorm_embedding(tokens + _positions(self.embed_positions, start, seq))
        # one new token sees every cached one: no mask needed
        mask = torch.ones(seq, start + seq, dtype=torch.bool, device=x.device).tril(start) if seq > 1 else None
        for layer in self.layers:
            x = layer(x, mask, memory, cache)
        if cache is not None:
            cache.advance(seq)
        return x


def _positions(table: nn.Embedding, start: int, length: int) -> Tensor:
    if start + length + POSITION_OFFSET > table.num_embeddings:
        raise InputError(f"BART reads at most {table.num_embeddings - POSITION_OFFSET} tokens; asked for {start + length}")
    return table(torch.arange(start, start + length, device=table.weight.device) + POSITION_OFFSET)


# --------------------------------------------------------------------------- models


class BartModel(nn.Module):
    def __init__(self, config: BartConfig) -> None:
        super().__init__()
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)


class BartForConditionalGeneration(nn.Module):
    """BART (Lewis et al., 2019, "BART: Denoising Sequence-to-Sequence Pre-training for Natural
    Language Generation, Translation, and Comprehension"): `encode` the input once, then
    `decode` the output a token at a time over a cache. The head is the shared embedding plus
    `final_logits_bias`."""

    def __init__(self, config: BartConfig) -> None:
        super().__init__()
        self.config = config
        self.model = BartModel(config)
        self.final_logits_bias: Tensor  # (1, vocab), a buffer the checkpoints hold
        self.register_buffer("final_logits_bias", torch.empty(1, config.vocab_size))
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0

    def encode(self, input_ids: Tensor) -> Tensor:
        """(batch, source) ids -> (batch, source, d_model)."""
        return self.model.encoder(self.model.shared(input_ids) * self.embed_scale)

    def decode(self, input_ids: Tensor, memory: Tensor, cache: KVCache | None = None, last_only: bool = False) -> Tensor:
        """(batch, seq) decoder ids after the cache's positions -> (batch, seq, vocab) logits,
        or (batch, vocab) for the last position with `last_only`."""
        hidden = self.model.decoder(self.model.shared(input_ids) * self.embed_scale, memory, cache)
        if last_only:
            hidden = hidden[:, -1]
        return F.linear(hidden, self.model.shared.weight) + self.final_logits_bias[0]

    def forward(self, input_ids: Tensor, decoder_input_ids: Tensor) -> Tensor:
        return self.decode(decoder_input_ids, self.encode(input_ids))

    def cross_attention_names(self) -> list[str]:
        """The decoder's attention modules over the encoder's output, first layer first."""
        return [f"model.decoder.layers.{i}.encoder_attn" for i in range(len(self.model.decoder.layers))]

    def make_cache(self, rows: int, capacity: int) -> KVCache:
        """An empty decoder cache for `rows` sequences of up to `capacity` tokens."""
        c = self.config
        weight = self.model.shared.weight
        heads = c.decoder_attention_heads
        return KVCache(c.decoder_layers, rows, heads, c.d_model // heads, capacity, dtype=weight.dtype, device=weight.device)


HEADS: dict[str, type[nn.Module]] = {"seq2seq-lm": BartForConditionalGeneration}


# --------------------------------------------------------------------------- config and loading


@dataclass(frozen=True)
class BartConfig:
    """The fields of a BART config.json that the model reads."""

    vocab_size: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_attention_heads: int
    decoder_attention_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    max_position_embeddings: int
    activation_function: str = "gelu"
    scale_embedding: bool = False
    # flags of the mBART-style variants that old BART configs still carry: only BART's values load
    normalize_before: bool = False
    add_final_layer_norm: bool = False
    normalize_embedding: bool = True
    static_position_embeddings: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BartConfig:
        config = from_dict(cls, data)
        if (config.normalize_before or config.add_final_layer_norm or not config.normalize_embedding
                or config.static_position_embeddings):
            raise CheckpointError("this config.json describes an mBART- or Marian-style variant (normalize_before, "
                                  "add_final_layer_norm, static_position_embeddings or no normalize_embedding), not BART")
        for heads in (config.encoder_attention_heads, config.decoder_attention_heads):
            if config.d_model % heads:
                raise CheckpointError(f"d_model {config.d_model} is not a multiple of {heads} attention heads")
        activation(config.activation_function, "activation_function")  # fail at load time
        return config


_COPIES = ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """One embedding: the shared one, taken from a copy where a file lacks it, the copies
    dropped; fairseq's `version` entries dropped; a missing `final_logits_bias` is zeros (as
    transformers reads such files)."""
    if "model.shared.weight" not in state:
        found = [key for key in _COPIES if key in state]
        if found:
            state["model.shared.weight"] = state[found[0]]
    state = {k: v for k, v in state.items() if k not in _COPIES and not k.endswith(".version")}
    if "final_logits_bias" not in state and "model.shared.weight" in state:
        shared = state["model.shared.weight"]
        state["final_logits_bias"] = torch.zeros(1, shared.shape[0], dtype=shared.dtype)
    return state


def describe(config: BartConfig) -> dict[str, Any]:
    """The architecture's sizes, for the app's "How it works" panel."""
    return {
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "hidden_size": config.d_model,
        "attention_heads": config.decoder_attention_heads,
        "feed_forward_size": config.decoder_ffn_dim,
        "vocabulary_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
    }
