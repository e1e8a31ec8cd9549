"""The Swin Transformer backbone: the feature pyramid Mask2Former reads
(facebook/mask2former-swin-tiny-coco-panoptic and its siblings keep it under
`model.pixel_level_module.encoder.`).

The module tree mirrors a SwinBackbone file's keys (`embeddings.{patch_embeddings.projection,
norm}`, `encoder.layers.L.{blocks.B..., downsample.{reduction, norm}}`,
`hidden_states_norms.stageK`), so the weights load as they are. Each attention's
`relative_position_index` follows from the window size alone: it is a non-persistent buffer
filled in `init_buffers`, and `adapt` drops the copy that Hub (transformers 4.x) files hold;
files saved by transformers 5.x omit it and carry an unused final `swin.layernorm`, dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict
from engine.errors import CheckpointError
from engine.models.common import SelfOutput, activation

#: What the shift's attention mask adds between positions that the roll brought together from
#: opposite sides of the picture (the reference value).
_APART = -100.0


class PatchEmbeddings(nn.Module):
    """Non-overlapping patches, each projected to `embed_dim`; the picture is padded with zeros
    at the right and bottom to whole patches."""

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.projection = nn.Conv2d(
            config.num_channels, config.embed_dim, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        height, width = pixels.shape[-2:]
        size = self.patch_size
        pixels = F.pad(pixels, (0, -width % size, 0, -height % size))
        return self.projection(pixels)  # (B, C, h, w)


class Embeddings(nn.Module):
    """Patch embeddings and their LayerNorm."""

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.patch_embeddings = PatchEmbeddings(config)
        self.norm = nn.LayerNorm(config.embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, h, w, C) patch features, channels last."""
        return self.norm(self.patch_embeddings(pixels).permute(0, 2, 3, 1))


class SelfAttention(nn.Module):
    """Multi-head attention within each window, with a learned bias per head for each relative
    offset between two positions of a window."""

    relative_position_index: torch.Tensor

    def __init__(self, config: SwinConfig, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window = config.window_size
        self.query = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.key = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.value = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", torch.empty(window**2, window**2, dtype=torch.long),
                             persistent=False)

    def init_buffers(self, device: torch.device) -> None:
        """The table row of each pair of window positions: their offset (dy, dx), both in
        -(w-1)..w-1, numbered row by row."""
        window = self.window_size
        rows, columns = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        rows, columns = rows.flatten(), columns.flatten()  # (w²,) each
        dy = rows[:, None] - rows[None, :] + window - 1  # (w², w²), 0..2w-2
        dx = columns[:, None] - columns[None, :] + window - 1
        self.relative_position_index = (dy * (2 * window - 1) + dx).to(device)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, n, N, C) tokens of n windows of N positions each; `mask` (n, N, N) or None."""
        batch, count, length, dim = windows.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            # (B, n, N, C) -> (B*n, heads, N, d): four dimensions, which torch's fused CPU
            # attention needs (it falls back to the unfused path for five)
            return x.view(batch * count, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

        # (N*N, heads) -> (heads, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        bias = bias.view(length, length, -1).permute(2, 0, 1)
        if mask is not None:
            # (n, heads, N, N), the same for every picture of the batch
            bias = (bias[None] + mask[:, None]).repeat(batch, 1, 1, 1)
        attended = F.scaled_dot_product_attention(
            heads(self.query(windows)), heads(self.key(windows)), heads(self.value(windows)), attn_mask=bias.to(windows.dtype)
        )
        return attended.transpose(1, 2).reshape(batch, count, length, dim)


class Attention(nn.Module):
    """Window attention followed by its output projection."""

    def __init__(self, config: SwinConfig, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self = SelfAttention(config, dim, num_heads)
        self.output = SelfOutput(dim)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(windows, mask))


class Intermediate(nn.Module):
    """The MLP's expansion by `mlp_ratio`, with its activation."""

    def __init__(self, config: SwinConfig, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, int(config.mlp_ratio * dim))
        self.activation = activation(config.hidden_act)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden))


class Output(nn.Module):
    """The MLP's projection back to the stage's width."""

    def __init__(self, config: SwinConfig, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(int(config.mlp_ratio * dim), dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden)


class Layer(nn.Module):
    """One block: attention within windows (every second block shifted by half a window, so
    windows straddle the previous block's borders), then the MLP; pre-LayerNorm, residual."""

    def __init__(self, config: SwinConfig, dim: int, num_heads: int, shift: int) -> None:
        super().__init__()
        self.window_size = config.window_size
        self.shift = shift
        self.layernorm_before = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attention = Attention(config, dim, num_heads)
        self.layernorm_after = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.intermediate = Intermediate(config, dim)
        self.output = Output(config, dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, h, w, C) -> (B, h, w, C)."""
        batch, height, width, dim = hidden.shape
        window, shift = self.window_size, self.shift
        # zeros at the right and bottom up to whole windows, after the norm as the reference does
        grid = F.pad(self.layernorm_before(hidden), (0, 0, 0, -width % window, 0, -height % window))
        padded_height, padded_width = grid.shape[1:3]
        if shift:
            grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
        rows, columns = padded_height // window, padded_width // window
        # (B, H, W, C) -> (B, rows, w, columns, w, C) -> (B, rows*columns, w*w, C)
        windows = grid.view(batch, rows, window, columns, window, dim).transpose(2, 3)
        windows = windows.reshape(batch, rows * columns, window * window, dim)
        mask = _shift_mask(padded_height, padded_width, window, shift, hidden.device) if shift else None
        attended = self.attention(windows, mask)
        # back: (B, rows*columns, w*w, C) -> (B, rows, columns, w, w, C) -> (B, H, W, C)
        grid = attended.view(batch, rows, columns, window, window, dim).transpose(2, 3)
        grid = grid.reshape(batch, padded_height, padded_width, dim)
        if shift:
            grid = torch.roll(grid, shifts=(shift, shift), dims=(1, 2))
        hidden = hidden + grid[:, :height, :width]
        return hidden + self.output(self.intermediate(self.layernorm_after(hidden)))


def _shift_mask(height: int, width: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """(windows, w*w, w*w): 0 between positions of the same region of the rolled picture and
    `_APART` between positions the roll brought together from opposite edges. Along each axis
    the regions are [0, size - w), [size - w, size - shift) and [size - shift, size)."""

    def regions(size: int) -> torch.Tensor:
        index = torch.arange(size, device=device)
        return (index >= size - window).long() + (index >= size - shift).long()

    labels = regions(height)[:, None] * 3 + regions(width)[None, :]  # (H, W)
    # (H, W) -> (rows, w, columns, w) -> (rows*columns, w*w)
    labels = labels.view(height // window, window, width // window, window).transpose(1, 2)
    labels = labels.reshape(-1, window * window)
    different = labels[:, :, None] != labels[:, None, :]
    return torch.zeros(different.shape, device=device).masked_fill_(different, _APART)


class PatchMerging(nn.Module):
    """Halve the resolution: each 2x2 group of positions (padded with zeros to even sizes)
    becomes one, its four feature vectors concatenated, normalised and projected to twice the
    width."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, h, w, C) -> (B, ceil(h/2), ceil(w/2), 2C)."""
        height, width = hidden.shape[1:3]
        hidden = F.pad(hidden, (0, 0, 0, width % 2, 0, height % 2))
        # the reference's order: top-left, bottom-left, top-right, bottom-right
        quarters = [hidden[:, row::2, column::2] for column in range(2) for row in range(2)]
        return self.reduction(self.norm(torch.cat(quarters, dim=-1)))


class Stage(nn.Module):
    """A stage's blocks, then (except in the last stage) the patch merging."""

    def __init__(self, config: SwinConfig, index: int) -> None:
        super().__init__()
        dim = config.embed_dim * 2**index
        self.blocks = nn.ModuleList(
            Layer(config, dim, config.num_heads[index], 0 if b % 2 == 0 else config.window_size // 2)
            for b in range(config.depths[index])
        )
        self.downsample = PatchMerging(dim) if index < len(config.depths) - 1 else None


class Encoder(nn.Module):
    """The stages; the checkpoint calls them layers."""

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Stage(config, index) for index in range(len(config.depths)))


class SwinBackbone(nn.Module):
    """Swin's feature maps at the stages `out_features` names, each after its own LayerNorm.

    Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
    ICCV 2021.
    """

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.hidden_states_norms = nn.ModuleDict(
            {stage: nn.LayerNorm(config.channels[stage]) for stage in config.out_features}
        )

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised pixels -> one (B, C_k, h_k, w_k) map per stage in
        `out_features`, in stage order."""
        hidden = self.embeddings(pixel_values)  # (B, h, w, C)
        stages = {"stem": hidden}
        for index, stage in enumerate(cast(list[Stage], self.encoder.layers), start=1):
            for block in stage.blocks:
                hidden = block(hidden)
            stages[f"stage{index}"] = hidden
            if stage.downsample is not None:
                hidden = stage.downsample(hidden)
        # (B, h, w, C) -> normalised -> (B, C, h, w)
        return [self.hidden_states_norms[name](stages[name]).permute(0, 3, 1, 2) for name in self.config.out_features]


@dataclass(frozen=True)
class SwinConfig:
    """The fields of a Swin config.json that the backbone reads; the defaults are
    transformers' (Swin-T)."""

    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    patch_size: int = 4
    num_channels: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    out_features: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SwinConfig:
        """From a Swin config.json (or the `backbone_config` inside a Mask2Former one); without
        `out_features` (or `out_indices`) only the last stage is given, as transformers does."""
        depths = tuple(int(d) for d in data.get("depths", cls.depths))
        names = ["stem", *(f"stage{i}" for i in range(1, len(depths) + 1))]
        if data.get("out_features"):
            wanted = [str(name) for name in data["out_features"]]
        elif data.get("out_indices"):
            wanted = [names[int(i)] for i in data["out_indices"]]
        else:
            wanted = [names[-1]]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise CheckpointError(f"config.json asks for Swin stages {unknown}; this one has {names}")
        if data.get("use_absolute_embeddings"):
            raise CheckpointError("Swin with absolute position embeddings is not supported")
        config = from_dict(
            cls,
            data,
            depths=depths,
            num_heads=tuple(int(h) for h in data.get("num_heads", cls.num_heads)),
            patch_size=_single(data.get("patch_size", cls.patch_size), "patch_size"),
            out_features=tuple(name for name in names if name in wanted),
        )
        if len(config.num_heads) != len(depths):
            raise CheckpointError(f"config.json gives {len(depths)} depths but {len(config.num_heads)} head counts")
        for index, heads in enumerate(config.num_heads):
            if (config.embed_dim * 2**index) % heads:
                raise CheckpointError(f"stage {index + 1}'s width {config.embed_dim * 2**index} is not a multiple of {heads} heads")
        activation(config.hidden_act)  # fail at load time, not on the first input
        return config

    @property
    def channels(self) -> dict[str, int]:
        """The width of each stage's output, the stem's included."""
        return {"stem": self.embed_dim, **{f"stage{i + 1}": self.embed_dim * 2**i for i in range(len(self.depths))}}


def _single(value: Any, key: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise CheckpointError(f"a non-square Swin {key} {list(value)} is not supported")
        value = value[0]
    return int(value)


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Hub files hold each attention's relative_position_index (computed here instead); files
    saved by transformers 5.x carry the unused final norm of the full Swin model."""
    return {
        key: value
        for key, value in state.items()
        if not key.endswith(".relative_position_index") and ".swin.layernorm." not in "." + key
    }


def describe(config: SwinConfig) -> dict[str, Any]:
    """The backbone's numbers, for the app's "How it works" panel."""
    return {
        "backbone": "Swin Transformer",
        "patch_size": config.patch_size,
        "window_size": config.window_size,
        "depths": list(config.depths),
        "heads": list(config.num_heads),
        "widths": [config.channels[f"stage{i + 1}"] for i in range(len(config.depths))],
        "outputs": list(config.out_features),
    }
