"""The Mix Transformer (MiT) encoder that SegFormer and GLPN share.

Four stages, each an overlapping patch embedding (a strided convolution) followed by
transformer blocks whose attention reads keys and values from a spatially reduced copy of the
map, and whose MLP carries a 3x3 depthwise convolution instead of position embeddings. Every
stage's output map is kept: the decoders fuse all four.

The module tree mirrors the checkpoints' keys under `segformer.encoder.` or `glpn.encoder.`
(`patch_embeddings.i`, `block.i.j`, `layer_norm.i`), so the weights load as they are. All
LayerNorms use eps 1e-5, whatever config.json's `layer_norm_eps` says: the reference
implementation never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import from_dict
from engine.errors import CheckpointError, InputError
from engine.models.common import SelfOutput, activation


def conv_channels_last(conv: nn.Conv2d, grid: torch.Tensor) -> torch.Tensor:
    """`conv` applied with input, weights and output all channels-last in memory, the layout
    the tokens already have: (B, N, C) tokens seen as (B, C, h, w) are channels-last, and a
    channels-last output flattens back to tokens without a copy. With the checkpoint's
    (channels-first) weights the convolution would copy its input to channels-first first,
    and the depthwise one runs many times slower there on the CPU."""
    channels_last = torch.channels_last
    # `to`, not `contiguous`: a depthwise weight (C, 1, k, k) counts as both layouts, and only
    # `to` restrides it so the convolution sees channels last (a small copy per call)
    weight = conv.weight.to(memory_format=channels_last)
    return F.conv2d(grid.contiguous(memory_format=channels_last), weight, conv.bias,
                    conv.stride, conv.padding, conv.dilation, conv.groups)


class OverlapPatchEmbeddings(nn.Module):
    """A strided convolution whose windows overlap (padding patch_size // 2), then LayerNorm
    over the channels of each position."""

    def __init__(self, patch_size: int, stride: int, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=stride, padding=patch_size // 2)
        self.layer_norm = nn.LayerNorm(hidden_size)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(B, C_in, H, W) -> ((B, h*w, C) tokens in row-major order, h, w)."""
        grid = conv_channels_last(self.proj, pixels)  # (B, C, h, w), channels last in memory
        height, width = grid.shape[-2:]
        return self.layer_norm(grid.flatten(2).transpose(1, 2)), height, width


class EfficientSelfAttention(nn.Module):
    """Multi-head attention whose keys and values come from the map shrunk `sr_ratio` times
    per side by a strided convolution (and a LayerNorm), so the cost is N * N / sr_ratio²
    instead of N * N (Wang et al., "Pyramid Vision Transformer", ICCV 2021)."""

    def __init__(self, hidden_size: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(hidden_size, hidden_size, kernel_size=sr_ratio, stride=sr_ratio)
            self.layer_norm = nn.LayerNorm(hidden_size)

    def forward(self, hidden: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, length, dim = hidden.shape
        context = hidden
        if self.sr_ratio > 1:
            grid = hidden.transpose(1, 2).reshape(batch, dim, height, width)  # (B, C, h, w)
            reduced = conv_channels_last(self.sr, grid).flatten(2).transpose(1, 2)  # (B, h*w / r², C)
            context = self.layer_norm(reduced)

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, self.num_heads, dim // self.num_heads).transpose(1, 2)  # (B, h, L, d)

        attended = F.scaled_dot_product_attention(
            heads(self.query(hidden)), heads(self.key(context)), heads(self.value(context))
        )
        return attended.transpose(1, 2).reshape(batch, length, dim)  # (B, N, C)


class Attention(nn.Module):
    """Efficient self-attention followed by its output projection."""

    def __init__(self, hidden_size: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        self.self = EfficientSelfAttention(hidden_size, num_heads, sr_ratio)
        self.output = SelfOutput(hidden_size)

    def forward(self, hidden: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.output(self.self(hidden, height, width))


class DepthWiseConv(nn.Module):
    """A 3x3 convolution per channel over the token grid: what tells the MLP where a token is."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)

    def forward(self, hidden: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, _, channels = hidden.shape
        grid = hidden.transpose(1, 2).view(batch, channels, height, width)  # (B, C, h, w), channels last in memory
        return conv_channels_last(self.dwconv, grid).flatten(2).transpose(1, 2)  # (B, h*w, C)


class MixFFN(nn.Module):
    """Expand, depthwise 3x3 convolution, activation, project back."""

    def __init__(self, hidden_size: int, inner_size: int, hidden_act: str) -> None:
        super().__init__()
        self.dense1 = nn.Linear(hidden_size, inner_size)
        self.dwconv = DepthWiseConv(inner_size)
        self.activation = activation(hidden_act)
        self.dense2 = nn.Linear(inner_size, hidden_size)

    def forward(self, hidden: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.dense2(self.activation(self.dwconv(self.dense1(hidden), height, width)))


class Layer(nn.Module):
    """One pre-LayerNorm block: x + attn(LN(x)), then x + MixFFN(LN(x))."""

    def __init__(self, config: MixTransformerConfig, stage: int) -> None:
        super().__init__()
        size = config.hidden_sizes[stage]
        self.layer_norm_1 = nn.LayerNorm(size)
        self.attention = Attention(size, config.num_attention_heads[stage], config.sr_ratios[stage])
        self.layer_norm_2 = nn.LayerNorm(size)
        self.mlp = MixFFN(size, int(size * config.mlp_ratios[stage]), config.hidden_act)

    def forward(self, hidden: torch.Tensor, height: int, width: int) -> torch.Tensor:
        hidden = hidden + self.attention(self.layer_norm_1(hidden), height, width)
        return hidden + self.mlp(self.layer_norm_2(hidden), height, width)


class MixTransformerEncoder(nn.Module):
    """The hierarchical encoder: stage i works at 1 / (strides[0] * ... * strides[i]) of the
    input's resolution (4, 8, 16 and 32 with the usual strides).

    Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with
    Transformers", NeurIPS 2021.
    """

    def __init__(self, config: MixTransformerConfig) -> None:
        super().__init__()
        self.config = config
        stages = range(config.num_stages)
        self.patch_embeddings = nn.ModuleList(
            OverlapPatchEmbeddings(
                config.patch_sizes[i],
                config.strides[i],
                config.num_channels if i == 0 else config.hidden_sizes[i - 1],
                config.hidden_sizes[i],
            )
            for i in stages
        )
        self.block = nn.ModuleList(
            nn.ModuleList(Layer(config, i) for _ in range(config.depths[i])) for i in stages
        )
        self.layer_norm = nn.ModuleList(nn.LayerNorm(config.hidden_sizes[i]) for i in stages)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, H, W) normalised pixels -> every stage's (B, hidden_sizes[i], h_i, w_i) map."""
        maps = []
        hidden = pixel_values
        for stage, (embed, layers, norm) in enumerate(zip(self.patch_embeddings, self.block, self.layer_norm)):
            tokens, height, width = embed(hidden)
            reduction = self.config.sr_ratios[stage]
            if min(height, width) < reduction:
                raise InputError(
                    f"the picture is too small for this model: stage {stage + 1} sees {height}×{width} "
                    f"positions and shrinks them {reduction} times per side"
                )
            for layer in cast(nn.ModuleList, layers):
                tokens = layer(tokens, height, width)
            tokens = norm(tokens)
            # (B, h*w, C) -> (B, C, h, w)
            hidden = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
            maps.append(hidden)
        return maps


@dataclass(frozen=True)
class MixTransformerConfig:
    """The encoder's fields of a SegFormer or GLPN config.json, one entry per stage; the
    defaults are MiT-b0's, as transformers' configs have them."""

    depths: tuple[int, ...] = (2, 2, 2, 2)
    hidden_sizes: tuple[int, ...] = (32, 64, 160, 256)
    num_attention_heads: tuple[int, ...] = (1, 2, 5, 8)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
    patch_sizes: tuple[int, ...] = (7, 3, 3, 3)
    strides: tuple[int, ...] = (4, 2, 2, 2)
    mlp_ratios: tuple[float, ...] = (4, 4, 4, 4)
    num_channels: int = 3
    hidden_act: str = "gelu"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MixTransformerConfig:
        """From a SegFormer or GLPN config.json; every per-stage list must have
        `num_encoder_blocks` entries."""
        per_stage = ("depths", "hidden_sizes", "num_attention_heads", "sr_ratios", "patch_sizes", "strides")
        lists: dict[str, Any] = {key: tuple(int(v) for v in data.get(key, getattr(cls, key))) for key in per_stage}
        lists["mlp_ratios"] = tuple(data.get("mlp_ratios", cls.mlp_ratios))
        config = from_dict(cls, data, **lists)
        stages = int(data.get("num_encoder_blocks", 4))  # transformers' default, whatever the lists say
        uneven = {key: len(value) for key, value in lists.items() if len(value) != stages}
        if uneven:
            wrong = ", ".join(f"{key} has {count}" for key, count in uneven.items())
            raise CheckpointError(f"config.json has {stages} encoder blocks but {wrong}")
        for size, heads in zip(config.hidden_sizes, config.num_attention_heads):
            if size % heads:
                raise CheckpointError(f"hidden size {size} is not a multiple of {heads} heads")
        activation(config.hidden_act)  # fail at load time, not on the first input
        return config

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def reductions(self) -> tuple[int, ...]:
        """How many input pixels per side one position of each stage's map covers."""
        total, out = 1, []
        for stride in self.strides:
            total *= stride
            out.append(total)
        return tuple(out)


def describe(config: MixTransformerConfig) -> dict[str, Any]:
    """The encoder's numbers, for the app's "How it works" panel."""
    return {
        "encoder": "Mix Transformer",
        "stages": config.num_stages,
        "depths": list(config.depths),
        "hidden_sizes": list(config.hidden_sizes),
        "heads": list(config.num_attention_heads),
        "reduction_ratios": list(config.sr_ratios),
        "strides": list(config.reductions),
        "layers": sum(config.depths),
    }
