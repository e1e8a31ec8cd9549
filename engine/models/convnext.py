"""ConvNeXT for image classification (facebook/convnext-tiny-224 and its siblings).

The module tree mirrors the Hub checkpoint's keys (`convnext.embeddings...`,
`convnext.encoder.stages.S...`, `convnext.layernorm`, `classifier`), so
`engine.checkpoint.load_model` assigns the tensors as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict, id2label
from engine.errors import CheckpointError
from engine.models.common import activation

# The LayerNorms inside the network use this eps whatever config.json says; only the final
# one, after pooling, reads `layer_norm_eps`.
_INNER_EPS = 1e-6


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class Embeddings(nn.Module):
    """The stem: a patch_size x patch_size convolution with the same stride, then LayerNorm."""

    def __init__(self, config: ConvNextConfig) -> None:
        super().__init__()
        self.patch_embeddings = nn.Conv2d(
            config.num_channels, config.hidden_sizes[0], kernel_size=config.patch_size, stride=config.patch_size
        )
        self.layernorm = ChannelsFirstLayerNorm(config.hidden_sizes[0], eps=_INNER_EPS)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layernorm(self.patch_embeddings(pixel_values))


class Block(nn.Module):
    """7x7 depthwise conv -> LayerNorm -> 1x1 expand (x4) -> activation -> 1x1 project, scaled
    per channel when the checkpoint has a layer scale, added to the input. The 1x1 convs are
    linear layers over channels-last maps, as the checkpoint stores them."""

    def __init__(self, config: ConvNextConfig, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.layernorm = nn.LayerNorm(dim, eps=_INNER_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.activation = activation(config.hidden_act)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        if config.layer_scale_init_value > 0:
            self.layer_scale_parameter: nn.Parameter | None = nn.Parameter(torch.empty(dim))
        else:  # trained without layer scale: the checkpoint has no such key
            self.layer_scale_parameter = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.pwconv2(self.activation(self.pwconv1(self.layernorm(y))))
        if self.layer_scale_parameter is not None:
            y = self.layer_scale_parameter * y
        return x + y.permute(0, 3, 1, 2)  # (B, C, H, W)


class Stage(nn.Module):
    """Blocks at one resolution; every stage but the first halves it first with a 2x2
    stride-2 convolution after a LayerNorm."""

    def __init__(self, config: ConvNextConfig, in_dim: int, out_dim: int, depth: int, downsample: bool) -> None:
        super().__init__()
        self.downsampling_layer = nn.ModuleList()
        if downsample:
            self.downsampling_layer.append(ChannelsFirstLayerNorm(in_dim, eps=_INNER_EPS))
            self.downsampling_layer.append(nn.Conv2d(in_dim, out_dim, kernel_size=2, stride=2))
        self.layers = nn.ModuleList(Block(config, out_dim) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in (*self.downsampling_layer, *self.layers):
            x = module(x)
        return x


class Encoder(nn.Module):
    """The stages, each at half the resolution of the one before."""

    def __init__(self, config: ConvNextConfig) -> None:
        super().__init__()
        dims = config.hidden_sizes
        self.stages = nn.ModuleList(
            Stage(config, dims[max(i - 1, 0)], dims[i], config.depths[i], downsample=i > 0)
            for i in range(len(config.depths))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


class ConvNextModel(nn.Module):
    """The ConvNeXT backbone: stem, stages, and the LayerNorm applied after global pooling."""

    def __init__(self, config: ConvNextConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_sizes[-1], eps=config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embeddings(pixel_values))


class ConvNextForImageClassification(nn.Module):
    """ConvNeXT with a linear head on the pooled, normalised features.

    Liu et al., "A ConvNet for the 2020s", CVPR 2022.
    """

    def __init__(self, config: ConvNextConfig) -> None:
        super().__init__()
        self.config = config
        self.convnext = ConvNextModel(config)
        self.classifier = nn.Linear(config.hidden_sizes[-1], config.num_labels)

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, C, H/32, W/32) last-stage feature map."""
        return self.convnext(pixel_values)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, num_labels): global average pool, LayerNorm, linear."""
        pooled = self.convnext.layernorm(features.mean(dim=(-2, -1)))  # (B, C)
        return self.classifier(pooled)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(pixel_values))

    def class_activation_maps(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) last-stage features, (k,) class ids -> (B, k, h, w): where in the map
        each class's logit comes from (CAM: Zhou et al., "Learning Deep Features for
        Discriminative Localization", CVPR 2016).

        CAM is exact for global average pooling followed by a linear layer, and ConvNeXT puts a
        LayerNorm between the two. A LayerNorm is affine once its mean and variance are fixed,
        so every position is normalised with the statistics of the pooled vector, the ones the
        head really used: the map at p is w_c · (γ ⊙ (f_p − μ̄) / σ̄ + β), and its mean over the
        positions is exactly logit_c − bias_c. Only the linear part is exact in this sense:
        normalising each position with its own statistics would give maps that no longer add
        up to the logit."""
        norm = self.convnext.layernorm
        pooled = features.mean(dim=(-2, -1))  # (B, C)
        mean = pooled.mean(-1)[:, None, None, None]  # (B, 1, 1, 1)
        variance = pooled.var(-1, unbiased=False)[:, None, None, None]
        normed = (features - mean) * torch.rsqrt(variance + norm.eps)
        normed = normed * norm.weight[:, None, None] + norm.bias[:, None, None]  # (B, C, h, w)
        weight = self.classifier.weight
        if callable(weight):  # int8: a dynamically quantised layer hands out its weight by a call
            weight = weight().dequantize()
        return torch.einsum("kc,bchw->bkhw", weight[classes].to(normed.dtype), normed)


@dataclass(frozen=True)
class ConvNextConfig:
    """The fields of a ConvNeXT config.json that the model reads."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset({"hidden_sizes", "num_channels", "patch_size", "num_labels"})

    hidden_sizes: tuple[int, ...] = (96, 192, 384, 768)
    depths: tuple[int, ...] = (3, 3, 9, 3)
    num_channels: int = 3
    patch_size: int = 4
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    layer_scale_init_value: float = 1e-6
    num_labels: int = 2
    num_stages: int | None = None  # when given, must agree with `depths`

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConvNextConfig:
        """From a ConvNeXT config.json; `num_stages`, when present, must agree with `depths`."""
        config = from_dict(cls, data, num_labels=len(id2label(data)) or data.get("num_labels", 2))
        stages = len(config.depths) if config.num_stages is None else config.num_stages
        if not (stages == len(config.depths) == len(config.hidden_sizes)):
            raise CheckpointError(
                f"config.json gives {stages} stages, {len(config.depths)} depths and "
                f"{len(config.hidden_sizes)} hidden sizes: they must agree"
            )
        activation(config.hidden_act)  # fail at load time, not on the first input
        return config


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Hub ConvNeXT files need no renames: the state as it is."""
    return state


def describe(config: ConvNextConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "architecture": "ConvNeXT",
        "stages": len(config.depths),
        "depths": list(config.depths),
        "hidden_sizes": list(config.hidden_sizes),
        "layers": sum(config.depths),
        "patch_size": config.patch_size,
        "layer_scale": config.layer_scale_init_value > 0,
    }
