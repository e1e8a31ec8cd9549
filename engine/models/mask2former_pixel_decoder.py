"""Mask2Former's pixel decoder: the backbone's three coarsest maps refined together by
multi-scale deformable attention, then a feature-pyramid step up to stride 4, where the mask
features live. Written in plain PyTorch: deformable attention samples with `F.grid_sample`.

The module tree mirrors the checkpoint's keys under `model.pixel_level_module.decoder.`
(`input_projections.i.{0, 1}`, `level_embed`, `encoder.layers.N.{self_attn.{sampling_offsets,
attention_weights, value_proj, output_proj}, self_attn_layer_norm, fc1, fc2, final_layer_norm}`,
`adapter_K`, `layer_K`, `mask_projection`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from engine.models.mask2former import Mask2FormerConfig

#: The number of backbone maps (the coarsest) that deformable attention reads, and the points it
#: samples per head and map; fixed in the architecture.
LEVELS = 3
POINTS = 4


def sine_positions(height: int, width: int, features: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(2 * features, height, width): DETR's sine position embedding with normalised
    coordinates (scale 2π, temperature 10000), y's `features` channels first, then x's; within
    each, sines at even channels and cosines at odd ones."""
    rows = torch.arange(1, height + 1, dtype=dtype, device=device)
    columns = torch.arange(1, width + 1, dtype=dtype, device=device)
    rows = rows / (rows[-1:] + 1e-6) * (2 * math.pi)
    columns = columns / (columns[-1:] + 1e-6) * (2 * math.pi)
    steps = torch.arange(features, dtype=torch.int64, device=device).to(dtype)
    periods = 10000 ** (2 * torch.div(steps, 2, rounding_mode="floor") / features)  # (features,)

    def encode(coordinate: torch.Tensor) -> torch.Tensor:
        angles = coordinate[:, None] / periods  # (n, features)
        # sin of the even channels and cos of the odd ones, interleaved again
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    y = encode(rows).t()[:, :, None].expand(features, height, width)
    x = encode(columns).t()[:, None, :].expand(features, height, width)
    return torch.cat((y, x), dim=0)


class MultiscaleDeformableAttention(nn.Module):
    """Each position attends to a few points per head on every level, placed by learned offsets
    around its own location and weighted by a softmax over all the points of all levels.

    Zhu et al., "Deformable DETR: Deformable Transformers for End-to-End Object Detection",
    ICLR 2021.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.sampling_offsets = nn.Linear(dim, num_heads * LEVELS * POINTS * 2)
        self.attention_weights = nn.Linear(dim, num_heads * LEVELS * POINTS)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def forward(
        self, hidden: torch.Tensor, positions: torch.Tensor, reference: torch.Tensor, shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        """`hidden` and `positions` (B, N, C) over all levels' positions, `reference` (N, 2) each
        position's (x, y) in 0..1, `shapes` each level's (height, width) -> (B, N, C)."""
        batch, length, dim = hidden.shape
        heads, head_dim = self.num_heads, dim // self.num_heads
        query = hidden + positions
        # (B, N, heads, levels, points, 2) offsets in pixels of each level
        offsets = self.sampling_offsets(query).view(batch, length, heads, LEVELS, POINTS, 2)
        weights = self.attention_weights(query).view(batch, length, heads, LEVELS * POINTS).softmax(-1)
        sizes = torch.tensor([[w, h] for h, w in shapes], dtype=hidden.dtype, device=hidden.device)  # (levels, 2)
        locations = reference[None, :, None, None, None, :] + offsets / sizes[None, None, None, :, None, :]
        grids = 2 * locations - 1  # grid_sample's -1..1
        value = self.value_proj(hidden)
        # (B, N, heads, levels*points) -> (B*heads, 1, N, levels*points)
        weights = weights.transpose(1, 2).reshape(batch * heads, 1, length, LEVELS * POINTS)
        attended = torch.zeros(batch * heads, head_dim, length, dtype=hidden.dtype, device=hidden.device)
        start = 0
        for level, (height, width) in enumerate(shapes):
            # (B, h*w, C) -> (B*heads, d, h, w)
            plane = value[:, start : start + height * width].transpose(1, 2).reshape(batch * heads, head_dim, height, width)
            start += height * width
            # (B, N, heads, points, 2) -> (B*heads, N, points, 2)
            grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
            sampled = F.grid_sample(plane, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            # (B*heads, d, N, points) weighted by this level's (B*heads, 1, N, points), summed per
            # level rather than over all points at once: no stacked copy of every level's samples
            attended += (sampled * weights[..., level * POINTS : (level + 1) * POINTS]).sum(-1)
        # (B*heads, d, N) -> (B, C, N) -> (B, N, C)
        return self.output_proj(attended.view(batch, dim, length).transpose(1, 2))


class EncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then the MLP; post-LayerNorm, residual."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        dim = config.feature_size
        self.self_attn = MultiscaleDeformableAttention(dim, config.num_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.encoder_feedforward_dim)
        self.fc2 = nn.Linear(config.encoder_feedforward_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(
        self, hidden: torch.Tensor, positions: torch.Tensor, reference: torch.Tensor, shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        hidden = self.self_attn_layer_norm(hidden + self.self_attn(hidden, positions, reference, shapes))
        return self.final_layer_norm(hidden + self.fc2(F.relu(self.fc1(hidden))))


class Encoder(nn.Module):
    """The deformable-attention layers."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))


def _reference_points(shapes: list[tuple[int, int]], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(N, 2): the (x, y) centre of every position of every level, in 0..1 of its level."""
    points = []
    for height, width in shapes:
        y, x = torch.meshgrid(
            torch.linspace(0.5, height - 0.5, height, dtype=dtype, device=device),
            torch.linspace(0.5, width - 0.5, width, dtype=dtype, device=device),
            indexing="ij",
        )
        points.append(torch.stack((x.reshape(-1) / width, y.reshape(-1) / height), dim=-1))
    return torch.cat(points)


def _projection(in_channels: int, dim: int, kernel: int = 1, bias: bool = True) -> nn.Sequential:
    """A convolution and its GroupNorm (32 groups), as the checkpoint nests them (`.0`, `.1`)."""
    return nn.Sequential(nn.Conv2d(in_channels, dim, kernel_size=kernel, padding=kernel // 2, bias=bias), nn.GroupNorm(32, dim))


class PixelDecoder(nn.Module):
    """Backbone maps (strides 4, 8, 16, 32) -> (mask features at stride 4, the three refined maps
    at strides 32, 16, 8 that the transformer decoder attends to)."""

    def __init__(self, config: Mask2FormerConfig, channels: list[int]) -> None:
        super().__init__()
        dim = config.feature_size
        self.feature_size = dim
        # coarsest first, as the maps are read
        self.input_projections = nn.ModuleList(_projection(c, dim) for c in channels[-LEVELS:][::-1])
        self.level_embed = nn.Parameter(torch.empty(LEVELS, dim))
        self.encoder = Encoder(config)
        self.mask_projection = nn.Conv2d(dim, config.mask_feature_size, kernel_size=1)
        # one pyramid step per halving from the finest attended stride down to `common_stride`
        finest = config.feature_strides[-LEVELS]
        self.pyramid_levels = max(0, int(math.log2(finest) - math.log2(config.common_stride)))
        for index in range(self.pyramid_levels):
            self.add_module(f"adapter_{index + 1}", _projection(channels[index], dim, bias=False))
            self.add_module(f"layer_{index + 1}", nn.Sequential(*_projection(dim, dim, kernel=3, bias=False), nn.ReLU()))

    def forward(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        coarse = maps[::-1][:LEVELS]  # strides 32, 16, 8
        shapes = [(m.shape[2], m.shape[3]) for m in coarse]
        batch, device, dtype = coarse[0].shape[0], coarse[0].device, coarse[0].dtype
        # (B, C, h, w) -> (B, h*w, C), every level one after the other
        hidden = torch.cat(
            [proj(m).flatten(2).transpose(1, 2) for proj, m in zip(self.input_projections, coarse)], dim=1
        )
        positions = torch.cat(
            [
                sine_positions(h, w, self.feature_size // 2, device, dtype).flatten(1).t() + self.level_embed[level]
                for level, (h, w) in enumerate(shapes)
            ]
        )[None]  # (1, N, C)
        reference = _reference_points(shapes, device, dtype)
        for layer in self.encoder.layers:
            hidden = layer(hidden, positions, reference, shapes)
        outputs = []
        start = 0
        for height, width in shapes:
            # (B, h*w, C) -> (B, C, h, w)
            outputs.append(hidden[:, start : start + height * width].transpose(1, 2).reshape(batch, -1, height, width))
            start += height * width
        for index in reversed(range(self.pyramid_levels)):
            lateral = cast(nn.Module, getattr(self, f"adapter_{index + 1}"))(maps[index])
            upsampled = F.interpolate(outputs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            outputs.append(cast(nn.Module, getattr(self, f"layer_{index + 1}"))(lateral + upsampled))
        return self.mask_projection(outputs[-1]), outputs[:LEVELS]
