"""GLPN: metric depth from one photo, a Mix Transformer encoder under a light decoder.

Kim et al., "Global-Local Path Networks for Monocular Depth Estimation with Vertical CutDepth",
2022. Checkpoints vinvino02/glpn-nyu (indoor, up to 10 m) and vinvino02/glpn-kitti (driving, up
to 80 m). The module tree mirrors their keys: `glpn.encoder.*` (engine.models.mix_transformer),
`decoder.stages.k.{convolution, fusion.convolutional_layer{1,2,3}}` (stage 0 has no fusion, and
a stage whose input already has the decoder's width has no convolution), `head.head.{0,2}`.

The decoder walks the encoder's four maps from the coarsest (1/32) up: each stage brings its map
to the decoder's width with a 1x1 convolution, blends it with what came from below through
selective feature fusion (two sigmoid weights per pixel choosing between the local and the
global features), and doubles the resolution; the last stage's output is doubled once more, to
the input's full size. The head turns that into one value per pixel: sigmoid × `max_depth`,
metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict, drop_keys
from engine.config import from_dict
from engine.errors import CheckpointError, InputError
from engine.models import mix_transformer
from engine.models.mix_transformer import MixTransformerConfig, MixTransformerEncoder
from engine.models.resnet import FrozenBatchNorm2d


def _upsample(hidden: torch.Tensor) -> torch.Tensor:
    """Twice the size, bilinear (align_corners=False), as every step of the decoder."""
    return F.interpolate(hidden, scale_factor=2, mode="bilinear", align_corners=False)


def _conv_norm_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution, BatchNorm (frozen), ReLU: keys `0.{weight,bias}` and `1.running_*`."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        FrozenBatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SelectiveFeatureFusion(nn.Module):
    """Blend local (this stage's) and global (from below) features with a weight per pixel for
    each, predicted from both by three convolutions and a sigmoid (the paper's section 3.4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convolutional_layer1 = _conv_norm_relu(2 * channels, channels)
        self.convolutional_layer2 = _conv_norm_relu(channels, channels // 2)
        self.convolutional_layer3 = nn.Conv2d(channels // 2, 2, kernel_size=3, padding=1)

    def forward(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        both = torch.cat((local, global_), dim=1)  # (B, 2C, h, w)
        weights = self.convolutional_layer3(self.convolutional_layer2(self.convolutional_layer1(both))).sigmoid()
        # (B, 2, h, w): channel 0 weighs the local features, channel 1 the global ones
        return local * weights[:, 0:1] + global_ * weights[:, 1:2]


class DecoderStage(nn.Module):
    """1x1 convolution to the decoder's width (none when the width already matches), fusion with
    the coarser stage's output (none at the first stage), twice the size."""

    def __init__(self, in_channels: int, channels: int, fuses: bool) -> None:
        super().__init__()
        self.convolution: nn.Module = (
            nn.Identity() if in_channels == channels else nn.Conv2d(in_channels, channels, kernel_size=1)
        )
        self.fusion = SelectiveFeatureFusion(channels) if fuses else None

    def forward(self, hidden: torch.Tensor, coarser: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.convolution(hidden)
        if self.fusion is not None and coarser is not None:
            hidden = self.fusion(hidden, coarser)
        return _upsample(hidden)


class Decoder(nn.Module):
    """The stages, from the encoder's coarsest map to its finest."""

    def __init__(self, config: GLPNConfig) -> None:
        super().__init__()
        sizes = config.encoder.hidden_sizes[::-1]
        self.stages = nn.ModuleList(
            DecoderStage(size, config.decoder_hidden_size, fuses=index > 0) for index, size in enumerate(sizes)
        )

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """The encoder's maps, finest first -> each stage's output, coarsest first; the last is
        doubled once more, so it has the input's size (1/16, 1/8, 1/4 and 1/1 with the usual
        strides)."""
        outputs: list[torch.Tensor] = []
        for stage, hidden in zip(self.stages, maps[::-1]):
            outputs.append(stage(hidden, outputs[-1] if outputs else None))
        outputs[-1] = _upsample(outputs[-1])
        return outputs


class DepthHead(nn.Module):
    """3x3 convolution, ReLU, 3x3 convolution to one channel; sigmoid × `max_depth`."""

    def __init__(self, config: GLPNConfig) -> None:
        super().__init__()
        width = config.decoder_hidden_size
        self.head = nn.Sequential(
            nn.Conv2d(width, width, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, kernel_size=3, padding=1),
        )
        self.max_depth = config.max_depth

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H, W) metres."""
        return self.head(hidden).sigmoid_().mul_(self.max_depth).squeeze(1)


class GLPNModel(nn.Module):
    """The backbone: the checkpoint nests the encoder one level down (`glpn.encoder`)."""

    def __init__(self, config: GLPNConfig) -> None:
        super().__init__()
        self.encoder = MixTransformerEncoder(config.encoder)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(pixel_values)


class GLPNForDepthEstimation(nn.Module):
    """GLPN: Mix Transformer encoder, selective-feature-fusion decoder, depth head (metres).

    Kim et al., "Global-Local Path Networks for Monocular Depth Estimation with Vertical
    CutDepth", 2022."""

    def __init__(self, config: GLPNConfig) -> None:
        super().__init__()
        self.config = config
        self.glpn = GLPNModel(config)
        self.decoder = Decoder(config)
        self.head = DepthHead(config)

    def forward_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) rescaled pixels, sides multiples of the encoder's total stride (32) ->
        the decoder's four outputs, coarsest first, each (B, decoder_hidden_size, h_i, w_i)."""
        stride = self.config.encoder.reductions[-1]
        height, width = pixel_values.shape[-2:]
        if height % stride or width % stride:
            # the decoder adds each stage to the one below it twice as large: the sizes must halve evenly
            raise InputError(f"GLPN needs sides in multiples of {stride} pixels, not {width}×{height}")
        return self.decoder(self.glpn(pixel_values))

    def forward_head(self, features: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """The decoder's outputs -> (B, H, W) depth in metres at the input's size (`height`
        and `width` are the input's, which the chosen output already has)."""
        return self.head(features[self.config.head_in_index])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        return self.forward_head(self.forward_features(pixel_values), height, width)

    def fuse_for_inference(self) -> None:
        """The decoder and head convolve channels-last, as the encoder's maps already lie in
        memory (oneDNN and cuDNN are fastest so): outputs equal up to float rounding."""
        for part in (self.decoder, self.head):
            part.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit this keyword


@dataclass(frozen=True)
class GLPNConfig:
    """The fields of a GLPN config.json that the code reads, with the encoder's. The depth is
    always metric: metres, at most `max_depth`."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset({"decoder_hidden_size", "max_depth"})

    encoder: MixTransformerConfig
    decoder_hidden_size: int = 64
    max_depth: float = 10.0
    head_in_index: int = -1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GLPNConfig:
        config = from_dict(cls, data, encoder=MixTransformerConfig.from_json(data))
        stages = config.encoder.num_stages
        if not -stages <= config.head_in_index < stages:
            raise CheckpointError(f"head_in_index {config.head_in_index} is not one of the {stages} decoder stages")
        return config

    @property
    def kind(self) -> str:
        return "metric"


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The fusion BatchNorms' `num_batches_tracked` (a training count) is dropped; a bare
    encoder (GLPNModel's file, without decoder and head) is refused by name."""
    if not any(key.startswith(("decoder.", "head.")) for key in state):
        raise CheckpointError("this is a bare GLPN encoder (GLPNModel) without the depth decoder and head; "
                              "depth estimation needs a GLPNForDepthEstimation checkpoint")
    return drop_keys(state, ["num_batches_tracked"])


def describe(config: GLPNConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "architecture": "GLPN",
        **mix_transformer.describe(config.encoder),
        "decoder_hidden_size": config.decoder_hidden_size,
        "depth": "metric",
        "max_depth": config.max_depth,
    }
