"""ResNet as a frozen backbone, in timm's key layout (`conv1`, `bn1`, `layerL.B.conv1..3`).

He et al., "Deep Residual Learning for Image Recognition" (2015). Detection models such as DETR
reuse an ImageNet ResNet with its batch norms frozen, so every BatchNorm here is a fixed
per-channel affine map. Checkpoints written through transformers' own ResNet use other names
(`embedder.embedder.convolution`, `encoder.stages.S.layers.B.layer.I`); `rename_hf_keys` maps
them onto this layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict
from engine.errors import CheckpointError

class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine terms: all four tensors are buffers, so
    nothing here trains and the module is a per-channel scale and shift."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        # (C,) -> (1, C, 1, 1) to broadcast over batch and space
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions around a residual (ResNet-18/34)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn1 = FrozenBatchNorm2d(cout)
        self.conv2 = _conv(cout, cout, 3)
        self.bn2 = FrozenBatchNorm2d(cout)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + skip)


class Bottleneck(nn.Module):
    """1×1 narrow, 3×3 (strided here, as in torchvision's "ResNet v1.5"), 1×1 widen."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = _conv(cin, mid, 1)
        self.bn1 = FrozenBatchNorm2d(mid)
        self.conv2 = _conv(mid, mid, 3, stride)
        self.bn2 = FrozenBatchNorm2d(mid)
        self.conv3 = _conv(mid, cout, 1)
        self.bn3 = FrozenBatchNorm2d(cout)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + skip)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """A projection when the block changes width or resolution; keys `downsample.0/1`."""
    if cin == cout and stride == 1:
        return None
    return nn.Sequential(_conv(cin, cout, 1, stride), FrozenBatchNorm2d(cout))


class ResNet(nn.Module):
    """ResNet (He et al., 2015) without the classifier: a 7×7 stem, max-pool, four stages.

    `forward(x, stages)` returns the feature maps of the stages asked for: 0 is the stem
    (stride 2), 1..4 are `layer1..layer4` (strides 4, 8, 16, 32). It stops after the deepest
    one asked for.
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        self.channels_last = False  # set by `fuse_for_inference`
        self.conv1 = nn.Conv2d(config.num_channels, config.embedding_size, 7, 2, 3, bias=False)
        self.bn1 = FrozenBatchNorm2d(config.embedding_size)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        block = Bottleneck if config.layer_type == "bottleneck" else BasicBlock
        cin = config.embedding_size
        for index, (depth, cout) in enumerate(zip(config.depths, config.hidden_sizes)):
            stride = 1 if index == 0 else 2  # the max-pool already halved the stem's output
            blocks = [block(cin, cout, stride)] + [block(cout, cout, 1) for _ in range(depth - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            cin = cout

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of stage 0 (stem) and of each layer."""
        return (self.config.embedding_size, *self.config.hidden_sizes)

    def forward(self, x: torch.Tensor, stages: Sequence[int] = (4,)) -> list[torch.Tensor]:
        last = len(self.config.depths)
        if not stages or any(not 0 <= s <= last for s in stages):
            raise ValueError(f"stages must lie in 0..{last}, got {list(stages)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = torch.relu(self.bn1(self.conv1(x)))
        maps = [x] if 0 in stages else []
        x = self.maxpool(x)
        for index in range(1, max(stages) + 1):
            x = getattr(self, f"layer{index}")(x)
            if index in stages:
                maps.append(x)
        return maps

    @torch.no_grad()
    def fuse_for_inference(self) -> None:
        """Fold each frozen norm into the convolution before it (the convolution gains a
        bias, the norm becomes an identity) and keep activations channels-last, which
        oneDNN and cuDNN convolve faster: about a quarter less CPU time for ResNet-50 at
        800×1066, equal outputs up to float rounding. Afterwards the state dict no longer
        has the checkpoint's keys, so call it once the weights are loaded."""
        pairs: list[tuple[nn.Module, str, str]] = [(self, "conv1", "bn1")]
        for module in self.modules():
            if isinstance(module, (Bottleneck, BasicBlock)):
                count = 3 if isinstance(module, Bottleneck) else 2
                pairs += [(module, f"conv{i}", f"bn{i}") for i in range(1, count + 1)]
                if module.downsample is not None:
                    pairs.append((module.downsample, "0", "1"))
        for owner, conv_name, norm_name in pairs:
            _fold(getattr(owner, conv_name), getattr(owner, norm_name))
            setattr(owner, norm_name, nn.Identity())
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit this keyword
        self.channels_last = True


def _fold(conv: nn.Conv2d, norm: FrozenBatchNorm2d) -> None:
    """conv then norm == one conv with scaled weights and a bias; computed in float32 so a
    half-precision model loses nothing extra."""
    dtype = conv.weight.dtype
    scale = norm.weight.float() * (norm.running_var.float() + norm.eps).rsqrt()
    # (C_out,) -> (C_out, 1, 1, 1): one scale per output channel
    weight = conv.weight.float() * scale[:, None, None, None]
    bias = norm.bias.float() - norm.running_mean.float() * scale
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.to(dtype), requires_grad=False)


# timm model names -> (block kind, blocks per stage); widths are the standard 64..512
NAMED_DEPTHS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


@dataclass(frozen=True)
class ResNetConfig:
    """Stage depths and output widths. `hidden_sizes` are each stage's output channels
    (256..2048 for ResNet-50); a bottleneck narrows to a quarter of that inside."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset({"depths", "hidden_sizes", "embedding_size", "num_channels"})

    depths: tuple[int, ...] = (3, 4, 6, 3)
    hidden_sizes: tuple[int, ...] = (256, 512, 1024, 2048)
    embedding_size: int = 64
    layer_type: str = "bottleneck"  # or "basic"
    num_channels: int = 3
    name: str = ""  # the timm name ("resnet50") when the config named one

    @classmethod
    def named(cls, name: str, num_channels: Any = 3) -> ResNetConfig:
        """The standard torchvision/timm ResNet called `name` ("resnet50")."""
        if name not in NAMED_DEPTHS:
            known = ", ".join(NAMED_DEPTHS)
            raise CheckpointError(f"backbone {name!r} is not supported; known ResNets: {known}")
        kind, depths = NAMED_DEPTHS[name]
        expansion = 4 if kind == "bottleneck" else 1
        widths = tuple(64 * 2**i * expansion for i in range(4))
        fields = {"depths": depths, "hidden_sizes": widths, "layer_type": kind, "num_channels": num_channels}
        return from_dict(cls, fields, name=name)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResNetConfig:
        """From transformers' ResNet config.json (DETR's `backbone_config`); only the variant
        built here is accepted: ReLU, downsampling in the 3×3 convolution."""
        if data.get("downsample_in_first_stage") or data.get("downsample_in_bottleneck"):
            raise CheckpointError("ResNet backbones that downsample outside the 3×3 conv are not supported")
        if data.get("hidden_act", "relu") != "relu":
            raise CheckpointError(f"ResNet backbone activation {data.get('hidden_act')!r} is not supported")
        return from_dict(cls, data, name="")

    def __post_init__(self) -> None:
        if self.layer_type not in ("bottleneck", "basic"):
            raise CheckpointError(f"unknown ResNet layer type {self.layer_type!r}")
        if len(self.depths) != len(self.hidden_sizes):
            raise CheckpointError("the ResNet config gives a different number of depths and widths")


# transformers' own ResNet names -> timm names; applied to keys below a prefix
_HF_TO_TIMM = (
    (re.compile(r"^embedder\.embedder\.convolution\."), "conv1."),
    (re.compile(r"^embedder\.embedder\.normalization\."), "bn1."),
    (re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\."), "conv"),
    (re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\."), "bn"),
    (re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\."), "downsample.0."),
    (re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\."), "downsample.1."),
)


def _timm_name(rest: str) -> str:
    for pattern, target in _HF_TO_TIMM:
        found = pattern.match(rest)
        if found is None:
            continue
        tail = rest[found.end():]
        if found.re.groups == 0:
            return target + tail
        stage, block = int(found.group(1)) + 1, found.group(2)
        if found.re.groups == 3:  # convN / bnN count from 1 in timm, layer.I from 0 here
            return f"layer{stage}.{block}.{target}{int(found.group(3)) + 1}.{tail}"
        return f"layer{stage}.{block}.{target}{tail}"
    return rest


def rename_hf_keys(state: StateDict, prefix: str) -> StateDict:
    """Keys of a transformers-layout ResNet below `prefix` renamed to the timm layout; other
    keys pass through. Batch-norm step counters (`num_batches_tracked`) are dropped."""
    renamed: StateDict = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.startswith(prefix):
            key = prefix + _timm_name(key[len(prefix):])
        renamed[key] = value
    return renamed


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """A bare ResNet checkpoint's keys (no prefix) in this module's names: `rename_hf_keys`
    at the root. DETR applies it below its own prefix instead."""
    return rename_hf_keys(state, "")
