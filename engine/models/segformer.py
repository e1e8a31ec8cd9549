"""SegFormer for semantic segmentation (nvidia/segformer-b0-finetuned-ade-512-512 up to b5, and
the Cityscapes fine-tunes): the Mix Transformer encoder and an all-MLP decode head.

The module tree mirrors the checkpoint's keys (`segformer.encoder...`,
`decode_head.{linear_c.i.proj, linear_fuse, batch_norm, classifier}`), so
`engine.checkpoint.load_model` assigns the tensors as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict, drop_keys
from engine.config import from_dict, id2label
from engine.errors import CheckpointError
from engine.models import mix_transformer
from engine.models.mix_transformer import MixTransformerConfig, MixTransformerEncoder
from engine.models.resnet import FrozenBatchNorm2d


class SegformerModel(nn.Module):
    """The backbone: the checkpoint nests the encoder one level down (`segformer.encoder`)."""

    def __init__(self, config: SegformerConfig) -> None:
        super().__init__()
        self.encoder = MixTransformerEncoder(config.encoder)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(pixel_values)


class MLP(nn.Module):
    """One stage's projection to the decoder's width (a linear layer over channels). It has no
    forward of its own: `DecodeHead` merges it with the fusing convolution."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, out_features)


class DecodeHead(nn.Module):
    """Project every stage's map to `decoder_hidden_size` channels, upsample them to the first
    stage's resolution (1/4 of the input), concatenate (last stage first), fuse with a 1x1
    convolution, BatchNorm and ReLU, and classify each position with a 1x1 convolution.

    Projection, upsampling and the fusing convolution are all linear, and bilinear upsampling
    acts on each channel alone, so the forward pass reorders them without changing the maths:
    each stage's projection is merged with its slice of `linear_fuse` (and the BatchNorm's
    scale) into one small matrix applied at the stage's own resolution, and the upsampled
    results are summed. That skips the concatenated (4 x width)-channel map at 1/4 resolution
    and most of the head's arithmetic (for b0 at 512x512, 0.2 instead of 4.5 GMACs); the
    logits agree with the literal order to float32 rounding.
    """

    # the forward pass reads these layers' weights to merge them (`stage_projections`), so
    # int8 quantisation (engine.precision.quantize) leaves them in floating point
    keep_float = ("linear_c",)

    def __init__(self, config: SegformerConfig) -> None:
        super().__init__()
        width = config.decoder_hidden_size
        stages = config.encoder.num_stages
        self.linear_c = nn.ModuleList(MLP(size, width) for size in config.encoder.hidden_sizes)
        self.linear_fuse = nn.Conv2d(stages * width, width, kernel_size=1, bias=False)
        self.batch_norm = FrozenBatchNorm2d(width)
        self.classifier = nn.Conv2d(width, config.num_labels, kernel_size=1)

    def stage_projections(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per stage, (weight (D, C_i), bias (D,)) taking its map straight to its share of the
        normalised fused map; the BatchNorm's shift rides on the first stage's bias. Computed
        in float32 and returned in the weights' dtype."""
        norm = self.batch_norm
        scale = norm.weight.float() * (norm.running_var.float() + norm.eps).rsqrt()  # (D,)
        shift = norm.bias.float() - norm.running_mean.float() * scale
        fuse = self.linear_fuse.weight.float().flatten(1)  # (D, stages * D)
        width, stages = fuse.shape[0], len(self.linear_c)
        out = []
        for stage, mlp in enumerate(self.linear_c):
            proj = cast(nn.Linear, mlp.proj)
            block = stages - 1 - stage  # the concatenation puts the last stage first
            share = fuse[:, block * width : (block + 1) * width] * scale[:, None]  # (D, D)
            weight = share @ proj.weight.float()  # (D, C_i)
            bias = share @ proj.bias.float() + (shift if stage == 0 else 0)
            out.append((weight.to(proj.weight.dtype), bias.to(proj.weight.dtype)))
        return out

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Every stage's (B, C_i, h_i, w_i) map -> (B, num_labels, h_0, w_0) logits, channels
        last in memory (as the encoder's maps are): torch upsamples that layout many times
        faster on the CPU."""
        size = maps[0].shape[-2:]
        projections = self.stage_projections()
        fused = _project(maps[0], *projections[0], size)
        for hidden, (weight, bias) in zip(maps[1:], projections[1:]):
            fused.add_(_project(hidden, weight, bias, size))
        fused = torch.relu_(fused)
        classifier = self.classifier
        # (B, D, h, w) -> (B, h, w, D) -> (B, h, w, L) -> (B, L, h, w)
        return F.linear(fused.permute(0, 2, 3, 1), classifier.weight.flatten(1), classifier.bias).permute(0, 3, 1, 2)


def _project(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """(B, C, h, w) -> (B, D, *size): a 1x1 projection at the map's own resolution, then
    bilinear upsampling (align_corners=False, as the reference head)."""
    # (B, C, h, w) -> (B, h, w, C) -> (B, h, w, D) -> (B, D, h, w), channels last in memory
    projected = F.linear(hidden.permute(0, 2, 3, 1), weight, bias).permute(0, 3, 1, 2)
    if projected.shape[-2:] == size:
        return projected
    return F.interpolate(projected, size=size, mode="bilinear", align_corners=False)


class SegformerForSemanticSegmentation(nn.Module):
    """SegFormer: a hierarchical transformer encoder and a light all-MLP decoder, giving class
    logits at a quarter of the input's resolution.

    Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with
    Transformers", NeurIPS 2021.
    """

    def __init__(self, config: SegformerConfig) -> None:
        super().__init__()
        self.config = config
        self.segformer = SegformerModel(config)
        self.decode_head = DecodeHead(config)

    def forward_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised pixels -> every encoder stage's map, (B, C_i, h_i, w_i)."""
        return self.segformer(pixel_values)

    def forward_head(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The stages' maps -> (B, num_labels, H/4, W/4) logits."""
        return self.decode_head(maps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(pixel_values))


@dataclass(frozen=True)
class SegformerConfig:
    """The fields of a SegFormer config.json that the model reads."""

    encoder: MixTransformerConfig
    decoder_hidden_size: int = 256
    num_labels: int = 2

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegformerConfig:
        return from_dict(
            cls,
            data,
            encoder=MixTransformerConfig.from_json(data),
            num_labels=len(id2label(data)) or int(data.get("num_labels", 2)),
        )


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The decode head's BatchNorm count is a training statistic, present in some files and not
    others; an image classifier's file (nvidia/mit-b0) is refused by name."""
    if not any(key.startswith("decode_head.") for key in state) and "classifier.weight" in state:
        raise CheckpointError(
            "this is a SegFormer image classifier (SegformerForImageClassification); image "
            "segmentation needs a SegformerForSemanticSegmentation checkpoint"
        )
    return drop_keys(state, ["num_batches_tracked"])


def describe(config: SegformerConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "architecture": "SegFormer",
        **mix_transformer.describe(config.encoder),
        "decoder_hidden_size": config.decoder_hidden_size,
        "output_stride": config.encoder.reductions[0],
    }
