"""ViT for image classification (google/vit-base-patch16-224 and its fine-tunes).

The module tree mirrors the Hub checkpoint's keys (`vit.embeddings...`, `vit.encoder.layer.N...`,
`vit.layernorm`, `classifier`), so `engine.checkpoint.load_model` assigns the tensors as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict, id2label
from engine.errors import CheckpointError, InputError
from engine.models.common import SelfOutput, activation, attend


class PatchEmbeddings(nn.Module):
    """Cuts the image into non-overlapping patches and projects each to the hidden size."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.projection(pixel_values)  # (B, D, H/p, W/p)
        return patches.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order


class Embeddings(nn.Module):
    """[CLS] followed by the patch embeddings, plus learned positions."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.patch_embeddings = PatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.empty(1, config.num_patches + 1, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        if (height, width) != self.config.image_size:
            # The learned positions cover exactly one grid of patches.
            raise InputError(
                f"this ViT takes {self.config.image_size[0]}×{self.config.image_size[1]} pixels, "
                f"not {height}×{width}"
            )
        patches = self.patch_embeddings(pixel_values)  # (B, N, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # (B, 1, D)
        return torch.cat([cls, patches], dim=1) + self.position_embeddings  # (B, 1+N, D)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over all tokens (no mask: every patch sees every
    patch)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.key = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.value = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, dim = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)  # (B, h, L, d)

        context = attend(self, heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden)))
        return context.transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)


class Attention(nn.Module):
    """Attention followed by its output projection."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.output = SelfOutput(config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(hidden))


class Intermediate(nn.Module):
    """The MLP's expansion to `intermediate_size`, with its activation."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = activation(config.hidden_act)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden))


class Output(nn.Module):
    """The MLP's projection back to the hidden size."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden)


class Layer(nn.Module):
    """One pre-LayerNorm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = Attention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = Intermediate(config)
        self.output = Output(config)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.attention(self.layernorm_before(hidden))
        return hidden + self.output(self.intermediate(self.layernorm_after(hidden)))


class Encoder(nn.Module):
    """The stack of transformer layers."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            hidden = layer(hidden)
        return hidden


class ViTModel(nn.Module):
    """The ViT backbone: embeddings, the encoder and the final LayerNorm."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layernorm(self.encoder(self.embeddings(pixel_values)))


class ViTForImageClassification(nn.Module):
    """Vision Transformer with a linear head on the [CLS] token.

    Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
    Scale", ICLR 2021.
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.vit = ViTModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, 1 + N, D) final hidden states."""
        return self.vit(pixel_values)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, D) -> (B, num_labels) logits, read off the [CLS] token."""
        return self.classifier(features[:, 0])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(pixel_values))


@dataclass(frozen=True)
class ViTConfig:
    """The fields of a ViT config.json that the model reads."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset(
        {"hidden_size", "num_attention_heads", "intermediate_size", "image_size", "patch_size", "num_channels",
         "num_labels"}
    )  # fmt: skip
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    image_size: tuple[int, int] = (224, 224)
    patch_size: tuple[int, int] = (16, 16)
    num_channels: int = 3
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    num_labels: int = 2

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ViTConfig:
        """From a ViT config.json; sizes may be one int or an (height, width) pair."""
        config = from_dict(
            cls,
            data,
            image_size=_pair(data.get("image_size", 224)),
            patch_size=_pair(data.get("patch_size", 16)),
            num_labels=len(id2label(data)) or data.get("num_labels", 2),
        )
        if config.hidden_size % config.num_attention_heads:
            raise CheckpointError(
                f"config.json: hidden_size {config.hidden_size} is not a multiple of {config.num_attention_heads} heads"
            )
        activation(config.hidden_act)  # fail at load time, not on the first input
        return config

    @property
    def num_patches(self) -> int:
        return math.prod(i // p for i, p in zip(self.image_size, self.patch_size))


def _pair(value: Any) -> Any:
    """One int as (int, int); anything else as it is, for `from_dict` to check."""
    return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The pooler of a bare ViTModel (in some Hub files) is not used for classification."""
    return {k: v for k, v in state.items() if not k.startswith("vit.pooler.")}


def describe(config: ViTConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "architecture": "ViT",
        "image_size": list(config.image_size),
        "patch_size": list(config.patch_size),
        "patches": config.num_patches,
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "heads": config.num_attention_heads,
        "mlp_size": config.intermediate_size,
    }
