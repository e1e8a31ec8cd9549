"""DETR: a ResNet backbone, a transformer encoder-decoder and set prediction heads.

Carion et al., "End-to-End Object Detection with Transformers" (2020). The module tree mirrors
the keys of facebook/detr-resnet-50 (`model.backbone.conv_encoder.model.*` for the ResNet in
timm naming, `model.encoder.layers.N.*`, `class_labels_classifier`, `bbox_predictor.*`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict, id2label
from engine.errors import CheckpointError
from engine.models.common import activation, attend
from engine.models.resnet import ResNet, ResNetConfig, rename_hf_keys

BACKBONE_PREFIX = "model.backbone.conv_encoder.model."


class DetrAttention(nn.Module):
    """Multi-head attention where positions are added to the queries and keys, never to the
    values: the caller passes the three inputs separately."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise CheckpointError(f"d_model {dim} is not divisible by {heads} attention heads")
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, n_query, dim = query.shape
        n_key = key.shape[1]
        # (B, L, D) -> (B, heads, L, D/heads)
        q = self.q_proj(query).view(batch, n_query, self.heads, -1).transpose(1, 2)
        k = self.k_proj(key).view(batch, n_key, self.heads, -1).transpose(1, 2)
        v = self.v_proj(value).view(batch, n_key, self.heads, -1).transpose(1, 2)
        # key_mask (B, L_key) True = attend -> (B, 1, 1, L_key)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = attend(self, q, k, v, mask)
        # (B, heads, L, D/heads) -> (B, L, D)
        return self.out_proj(out.transpose(1, 2).reshape(batch, n_query, dim))


class DetrEncoderLayer(nn.Module):
    """Post-norm self-attention over the flattened feature map, then the MLP."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, activation_name: str) -> None:
        super().__init__()
        self.self_attn = DetrAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.act = activation(activation_name)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q = x + pos
        x = self.self_attn_layer_norm(x + self.self_attn(q, q, x, mask))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


class DetrDecoderLayer(nn.Module):
    """Self-attention among the object queries, cross-attention to the encoded image, MLP."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, activation_name: str) -> None:
        super().__init__()
        self.self_attn = DetrAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.encoder_attn = DetrAttention(dim, heads)
        self.encoder_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.act = activation(activation_name)

    def forward(
        self,
        x: torch.Tensor,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        memory_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        q = x + query_pos
        x = self.self_attn_layer_norm(x + self.self_attn(q, q, x))
        attended = self.encoder_attn(x + query_pos, memory + memory_pos, memory, memory_mask)
        x = self.encoder_attn_layer_norm(x + attended)
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


class DetrEncoder(nn.Module):
    """The encoder's layers; `DetrModel.forward` runs them (it owns the positions and mask)."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DetrEncoderLayer(config.d_model, config.encoder_attention_heads,
                             config.encoder_ffn_dim, config.activation_function)
            for _ in range(config.encoder_layers)
        )


class DetrDecoder(nn.Module):
    """The decoder's layers and the LayerNorm applied after the last one."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DetrDecoderLayer(config.d_model, config.decoder_attention_heads,
                             config.decoder_ffn_dim, config.activation_function)
            for _ in range(config.decoder_layers)
        )
        self.layernorm = nn.LayerNorm(config.d_model)


class _ConvEncoder(nn.Module):
    """Holds the ResNet as `.model` so its keys read `backbone.conv_encoder.model.*`."""

    def __init__(self, backbone: ResNetConfig) -> None:
        super().__init__()
        self.model = ResNet(backbone)


class _Backbone(nn.Module):
    """Holds `conv_encoder`; the sine positions have no weights, so nothing else lives here."""

    def __init__(self, backbone: ResNetConfig) -> None:
        super().__init__()
        self.conv_encoder = _ConvEncoder(backbone)


def sine_positions(mask: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """2-D sine/cosine positions of the valid pixels: (B, H, W) bool -> (B, H·W, dim).

    Row and column counts run over valid pixels only and are normalised to (0, 2π], so a
    padded image gets the same positions as the unpadded one; dim/2 features per axis,
    frequencies 10000^(2i/(dim/2)), y features first.
    """
    half = dim // 2
    valid = mask.to(dtype)
    y = valid.cumsum(1)
    x = valid.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * (2 * math.pi)
    x = x / (x[:, :, -1:] + 1e-6) * (2 * math.pi)
    steps = torch.arange(half, dtype=torch.int64, device=mask.device).to(dtype)
    freq = 10000 ** (2 * torch.div(steps, 2, rounding_mode="floor") / half)
    # (B, H, W) -> (B, H, W, half): sin on even features, cos on odd ones, interleaved
    px = x[..., None] / freq
    py = y[..., None] / freq
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    # (B, H, W, dim) -> (B, H·W, dim)
    return torch.cat((py, px), dim=3).flatten(1, 2)


class DetrModel(nn.Module):
    """Backbone, 1×1 projection, encoder over the stride-32 map, decoder over the queries."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.backbone = _Backbone(config.backbone)
        channels = config.backbone.hidden_sizes[-1]
        self.input_projection = nn.Conv2d(channels, config.d_model, kernel_size=1)
        self.query_position_embeddings = nn.Embedding(config.num_queries, config.d_model)
        self.encoder = DetrEncoder(config)
        self.decoder = DetrDecoder(config)

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch = pixel_values.shape[0]
        feature = self.backbone.conv_encoder.model(pixel_values)[-1]
        if pixel_mask is None:  # nothing is padding: no attention mask at all
            mask = torch.ones(batch, *feature.shape[-2:], dtype=torch.bool, device=feature.device)
            key_mask = None
        else:
            # the pixel mask follows the feature map down to stride 32 (nearest)
            mask = F.interpolate(pixel_mask[None].float(), size=feature.shape[-2:])[0].bool()
            # (B, h, w) -> (B, h·w) keys to attend to
            key_mask = None if bool(mask.all()) else mask.flatten(1)
        pos = sine_positions(mask, self.input_projection.out_channels, pixel_values.dtype)
        # (B, D, h, w) -> (B, h, w, D) -> (B, h·w, D); a view when the map is channels-last
        memory = self.input_projection(feature).permute(0, 2, 3, 1).flatten(1, 2)
        for layer in self.encoder.layers:
            memory = layer(memory, pos, key_mask)
        query_pos = self.query_position_embeddings.weight[None].expand(batch, -1, -1)
        x = torch.zeros_like(query_pos)
        for layer in self.decoder.layers:
            x = layer(x, query_pos, memory, pos, key_mask)
        return self.decoder.layernorm(x)


class DetrMLPPredictionHead(nn.Module):
    """The box head: three linear layers with ReLU between them."""

    def __init__(self, dim: int, hidden: int, out: int, depth: int = 3) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * (depth - 1) + [out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class DetrForObjectDetection(nn.Module):
    """DETR (Carion et al., 2020) with its class and box heads.

    `forward(pixel_values (B, 3, H, W), pixel_mask (B, H, W) or None)` returns the logits
    (B, queries, labels + 1; the last class is "no object") and the boxes (B, queries, 4) as
    centre x, centre y, width, height relative to the unpadded image.
    """

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.config = config
        self.model = DetrModel(config)
        self.class_labels_classifier = nn.Linear(config.d_model, config.num_labels + 1)
        self.bbox_predictor = DetrMLPPredictionHead(config.d_model, config.d_model, 4)

    def forward(
        self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.model(pixel_values, pixel_mask)
        return self.class_labels_classifier(hidden), self.bbox_predictor(hidden).sigmoid()

    def fuse_for_inference(self) -> None:
        """Speed up the backbone once the weights are loaded (`ResNet.fuse_for_inference`)."""
        self.model.backbone.conv_encoder.model.fuse_for_inference()


@dataclass(frozen=True)
class DetrConfig:
    """The fields of a DETR config.json that the code reads, plus the parsed backbone."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset(
        {"num_labels", "d_model", "num_queries", "encoder_attention_heads", "decoder_attention_heads",
         "encoder_ffn_dim", "decoder_ffn_dim"}
    )  # fmt: skip
    backbone: ResNetConfig
    num_labels: int
    d_model: int = 256
    num_queries: int = 100
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 8
    decoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    decoder_ffn_dim: int = 2048
    activation_function: str = "relu"
    position_embedding_type: str = "sine"
    dilation: bool = False

    def __post_init__(self) -> None:
        if self.position_embedding_type != "sine":
            raise CheckpointError(
                f"DETR with {self.position_embedding_type!r} position embeddings is not supported "
                "(only 'sine', as in facebook/detr-resnet-50)"
            )
        if self.dilation:
            raise CheckpointError("the dilated (DC5) DETR variant is not supported")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetrConfig:
        """From config.json in any of its forms: `use_timm_backbone` with a `backbone` name
        (Hub, transformers 4.x), or a `backbone_config` dict whose model_type is
        "timm_backbone" or "resnet" (transformers 5.x saves)."""
        backbone = _backbone_from_dict(data)
        labels = id2label(data)
        num_labels = len(labels) if labels else data.get("num_labels", 2)
        config = from_dict(cls, data, backbone=backbone, num_labels=num_labels,
                           dilation=bool(data.get("dilation")))
        activation(config.activation_function, "activation_function")  # fail at load time
        return config


def _backbone_from_dict(data: dict[str, Any]) -> ResNetConfig:
    channels = data.get("num_channels", 3)
    sub = data.get("backbone_config")
    if not sub:  # the Hub form: a timm model named by `backbone`
        if data.get("use_timm_backbone", True) is False:
            raise CheckpointError("config.json turns off the timm backbone but gives no backbone_config")
        return ResNetConfig.named(str(data.get("backbone") or "resnet50"), channels)
    if not isinstance(sub, dict):
        raise CheckpointError("config.json: backbone_config must be an object")
    kind = sub.get("model_type")
    if kind == "timm_backbone":
        if sub.get("output_stride") not in (None, 32):
            raise CheckpointError("the dilated (DC5) DETR variant is not supported")
        name = sub.get("backbone") or data.get("backbone") or "resnet50"
        return ResNetConfig.named(str(name), sub.get("num_channels", channels))
    if kind == "resnet":  # transformers' own ResNet, whose keys `adapt` renames
        return ResNetConfig.from_json({"num_channels": channels, **sub})
    raise CheckpointError(f"DETR backbone of type {kind!r} is not supported (only ResNet)")


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """Checkpoint keys onto this module tree: transformers-layout ResNet names become timm
    names, and batch-norm step counters are dropped. Hub files need nothing else."""
    return rename_hf_keys(state, BACKBONE_PREFIX)


def describe(config: DetrConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    backbone = config.backbone
    return {
        "backbone": backbone.name or f"ResNet {'-'.join(map(str, backbone.depths))} ({backbone.layer_type})",
        "backbone_channels": backbone.hidden_sizes[-1],
        "hidden_size": config.d_model,
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "attention_heads": config.encoder_attention_heads,
        "feed_forward_size": config.encoder_ffn_dim,
        "queries": config.num_queries,
    }
