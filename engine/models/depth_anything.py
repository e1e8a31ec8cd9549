"""Depth Anything: a DINOv2 backbone under a DPT neck and a small convolutional depth head.

Yang et al., "Depth Anything V2", NeurIPS 2024 (V1: CVPR 2024); the neck is Ranftl et al.'s
DPT, "Vision Transformers for Dense Prediction", ICCV 2021. The module tree mirrors the keys of
depth-anything/Depth-Anything-V2-*-hf: `backbone.*` (engine.models.dinov2),
`neck.reassemble_stage.layers.i.{projection, resize}`, `neck.convs.i`,
`neck.fusion_stage.layers.i.{projection, residual_layer{1,2}.convolution{1,2}}`,
`head.conv{1,2,3}`.

Four backbone layers become four feature maps at 4, 2, 1 and 1/2 times the patch grid
(reassembly); the fusion stage walks them from coarse to fine, each step adding the next finer
map and doubling the resolution; the head reads the finest, upsamples to the input's size and
gives one value per pixel: relative inverse depth (ReLU) or metres (sigmoid × `max_depth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict
from engine.errors import CheckpointError
from engine.models import dinov2

#: What transformers' DepthAnythingConfig fills in for a config.json without `backbone_config`.
DEFAULT_BACKBONE = {
    "model_type": "dinov2",
    "image_size": 518,
    "hidden_size": 384,
    "num_attention_heads": 6,
    "out_indices": [9, 10, 11, 12],
    "reshape_hidden_states": False,
}


class ReassembleLayer(nn.Module):
    """One backbone layer's tokens as a feature map: a 1×1 projection to this level's width,
    then a resize by `factor` (a transposed convolution up, a strided 3×3 convolution down)."""

    def __init__(self, in_channels: int, channels: int, factor: float) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, channels, kernel_size=1)
        self.resize: nn.Module
        if factor > 1:
            self.resize = nn.ConvTranspose2d(channels, channels, kernel_size=int(factor), stride=int(factor))
        elif factor == 1:
            self.resize = nn.Identity()
        else:
            self.resize = nn.Conv2d(channels, channels, kernel_size=3, stride=int(1 / factor), padding=1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.resize(self.projection(hidden))


class ReassembleStage(nn.Module):
    """The reassemble layers, one per backbone layer handed on."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            ReassembleLayer(config.reassemble_hidden_size, channels, factor)
            for channels, factor in zip(config.neck_hidden_sizes, config.reassemble_factors)
        )

    def forward(self, states: list[torch.Tensor], rows: int, columns: int) -> list[torch.Tensor]:
        maps = []
        for layer, hidden in zip(self.layers, states):
            batch, _, dim = hidden.shape
            # (B, 1+N, D) without [CLS] -> (B, D, rows, columns), left channels-last in memory
            grid = hidden[:, 1:].reshape(batch, rows, columns, dim).permute(0, 3, 1, 2)
            maps.append(layer(grid))
        return maps


class PreActResidualLayer(nn.Module):
    """x + conv(ReLU(conv(ReLU(x)))), both 3×3 at the fusion width (DPT's residual conv unit)."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        width = config.fusion_hidden_size
        self.convolution1 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.convolution2 = nn.Conv2d(width, width, kernel_size=3, padding=1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.convolution2(F.relu(self.convolution1(F.relu(hidden)), inplace=True)).add_(hidden)


class FeatureFusionLayer(nn.Module):
    """Adds the finer level's map (through a residual unit) to what came from the coarser
    levels, refines, upsamples bilinearly to `size` (twice the size when None), projects."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(config.fusion_hidden_size, config.fusion_hidden_size, kernel_size=1)
        self.residual_layer1 = PreActResidualLayer(config)
        self.residual_layer2 = PreActResidualLayer(config)

    def forward(
        self, hidden: torch.Tensor, finer: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if finer is not None:
            if finer.shape != hidden.shape:
                finer = F.interpolate(finer, size=hidden.shape[-2:], mode="bilinear", align_corners=False)
            hidden = hidden + self.residual_layer1(finer)
        hidden = self.residual_layer2(hidden)
        if size is None:
            hidden = F.interpolate(hidden, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            hidden = F.interpolate(hidden, size=size, mode="bilinear", align_corners=True)
        return self.projection(hidden)


class FeatureFusionStage(nn.Module):
    """The fusion layers, run from the coarsest level to the finest."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FeatureFusionLayer(config) for _ in config.neck_hidden_sizes)

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Reassembled maps, finest first -> fused maps, coarsest first; each fused map has the
        size of the next finer level, the last twice the finest's."""
        coarse_first = maps[::-1]
        fused: list[torch.Tensor] = []
        for index, (layer, level) in enumerate(zip(self.layers, coarse_first)):
            following = coarse_first[index + 1] if index + 1 < len(coarse_first) else None
            size = None if following is None else (following.shape[-2], following.shape[-1])
            fused.append(layer(level, size=size) if not fused else layer(fused[-1], level, size=size))
        return fused


class Neck(nn.Module):
    """DPT's neck: reassemble, a 3×3 convolution to the fusion width per level, then fuse."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        self.reassemble_stage = ReassembleStage(config)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, config.fusion_hidden_size, kernel_size=3, padding=1, bias=False)
            for channels in config.neck_hidden_sizes
        )
        self.fusion_stage = FeatureFusionStage(config)

    def forward(self, states: list[torch.Tensor], rows: int, columns: int) -> list[torch.Tensor]:
        maps = self.reassemble_stage(states, rows, columns)
        return self.fusion_stage([conv(level) for conv, level in zip(self.convs, maps)])


class DepthHead(nn.Module):
    """Halve the channels, upsample to the input's size, two more convolutions to one value
    per pixel, then ReLU (relative) or sigmoid (metric), times `max_depth`."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        width = config.fusion_hidden_size
        self.conv1 = nn.Conv2d(width, width // 2, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(width // 2, config.head_hidden_size, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(config.head_hidden_size, 1, kernel_size=1)
        self.metric = config.depth_estimation_type == "metric"
        self.max_depth = config.max_depth

    def forward(self, features: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, C, h, w) fused features -> (B, height, width) depth."""
        hidden = F.interpolate(self.conv1(features), size=(height, width), mode="bilinear", align_corners=True)
        hidden = self.conv3(F.relu(self.conv2(hidden), inplace=True))
        depth = hidden.sigmoid_() if self.metric else hidden.relu_()
        return depth.mul_(self.max_depth).squeeze(1)  # (B, 1, H, W) -> (B, H, W)


class DepthAnythingForDepthEstimation(nn.Module):
    """Depth Anything (V1 and V2): DINOv2, DPT neck, depth head.

    Yang et al., "Depth Anything V2", NeurIPS 2024."""

    def __init__(self, config: DepthAnythingConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = dinov2.Dinov2Model(config.backbone)
        self.neck = Neck(config)
        self.head = DepthHead(config)

    def forward_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised pixels -> the neck's fused maps, coarsest first, each
        (B, fusion_hidden_size, h_i, w_i)."""
        rows, columns = (side // self.config.patch_size for side in pixel_values.shape[-2:])
        return self.neck(self.backbone.features(pixel_values), rows, columns)

    def forward_head(self, fused: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """The fused maps of a `height` x `width` input -> (B, H', W') depth, H' and W' the
        input's sides rounded down to whole patches."""
        patch = self.config.patch_size
        return self.head(fused[self.config.head_in_index], height // patch * patch, width // patch * patch)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, H', W') depth, H' and W' rounded down to
        whole patches."""
        height, width = pixel_values.shape[-2:]
        return self.forward_head(self.forward_features(pixel_values), height, width)

    def fuse_for_inference(self) -> None:
        """Speed up inference once the weights are loaded: the backbone's fusions
        (`Dinov2Model.fuse_for_inference`), and the neck and head convolve channels-last, as
        oneDNN and cuDNN do fastest (the reassembled maps already lie that way in memory):
        about 40 % less CPU time for the neck and head at 518×784. Outputs equal up to float
        rounding; the state dict no longer has the checkpoint's keys."""
        self.backbone.fuse_for_inference()
        for part in (self.neck, self.head):
            part.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit this keyword


@dataclass(frozen=True)
class DepthAnythingConfig:
    """The fields of a Depth Anything config.json that the code reads, plus the parsed
    backbone. `depth_estimation_type` is "relative" (unscaled inverse depth, larger = nearer)
    or "metric" (metres, up to `max_depth`)."""

    backbone: dinov2.Dinov2Config
    patch_size: int = 14
    reassemble_hidden_size: int = 384
    reassemble_factors: tuple[float, ...] = (4, 2, 1, 0.5)
    neck_hidden_sizes: tuple[int, ...] = (48, 96, 192, 384)
    fusion_hidden_size: int = 64
    head_in_index: int = -1
    head_hidden_size: int = 32
    depth_estimation_type: str = "relative"
    max_depth: float = 1.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DepthAnythingConfig:
        """From a Depth Anything config.json; the backbone from its `backbone_config`."""
        backbone_data = data.get("backbone_config") or DEFAULT_BACKBONE
        if backbone_data.get("model_type", "dinov2") != "dinov2":
            raise CheckpointError(
                f"Depth Anything with a {backbone_data.get('model_type')} backbone is not supported (only DINOv2)"
            )
        if backbone_data.get("reshape_hidden_states", True):
            # the neck reads token sequences ([CLS] first); transformers fails on maps too
            raise CheckpointError("backbone_config.reshape_hidden_states must be false for Depth Anything")
        kind = data.get("depth_estimation_type", "relative")
        if kind not in ("relative", "metric"):
            raise CheckpointError(f"depth_estimation_type must be relative or metric, not {kind!r}")
        max_depth = data.get("max_depth")
        if max_depth is None and kind == "relative":
            max_depth = 1  # a relative head's scale means nothing; transformers' default
        if not isinstance(max_depth, (int, float)) or isinstance(max_depth, bool) or max_depth <= 0:
            raise CheckpointError(f"max_depth must be a positive number, not {max_depth!r}")
        return from_dict(
            cls,
            data,
            backbone=dinov2.Dinov2Config.from_json(backbone_data),
            patch_size=_side(data.get("patch_size", 14)),
            reassemble_factors=tuple(float(f) for f in data.get("reassemble_factors", cls.reassemble_factors)),
            neck_hidden_sizes=tuple(int(n) for n in data.get("neck_hidden_sizes", cls.neck_hidden_sizes)),
            max_depth=float(max_depth),
        )

    def __post_init__(self) -> None:
        if self.patch_size != self.backbone.patch_size:
            raise CheckpointError(
                f"patch_size {self.patch_size} differs from the backbone's {self.backbone.patch_size}"
            )
        levels = len(self.neck_hidden_sizes)
        if not len(self.reassemble_factors) == len(self.backbone.out_indices) == levels:
            raise CheckpointError(
                f"config.json has {levels} neck_hidden_sizes, {len(self.reassemble_factors)} reassemble_factors "
                f"and {len(self.backbone.out_indices)} backbone out_indices: they must agree"
            )
        for factor in self.reassemble_factors:
            if not (factor >= 1 and factor == int(factor)) and not (0 < factor < 1 and 1 / factor == int(1 / factor)):
                raise CheckpointError(f"reassemble factor {factor} is neither a whole number nor 1/n")
        if not -levels <= self.head_in_index < levels:
            raise CheckpointError(f"head_in_index {self.head_in_index} is not one of the {levels} fused levels")

    @property
    def kind(self) -> str:
        return self.depth_estimation_type


def _side(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        if value[0] != value[1]:
            raise CheckpointError(f"a non-square patch_size {value} is not supported")
        value = value[0]
    return int(value)


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The backbone's unused tensors (its mask token) are dropped, as in `dinov2.adapt`."""
    return dinov2.adapt(state, expected)


def describe(config: DepthAnythingConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    backbone = dinov2.describe(config.backbone)
    return {
        "architecture": "Depth Anything (DINOv2 + DPT)",
        "backbone": backbone,
        "backbone_layers_used": list(config.backbone.out_indices),
        "reassemble_factors": [int(f) if f == int(f) else f for f in config.reassemble_factors],
        "neck_sizes": list(config.neck_hidden_sizes),
        "fusion_size": config.fusion_hidden_size,
        "depth": config.depth_estimation_type,
        "max_depth": config.max_depth if config.depth_estimation_type == "metric" else None,
    }
