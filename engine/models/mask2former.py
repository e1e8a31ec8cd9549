"""Mask2Former for universal segmentation (facebook/mask2former-swin-tiny-coco-panoptic and its
Swin siblings): a Swin backbone, the pixel decoder (`mask2former_pixel_decoder`), and a
transformer decoder whose queries each predict a class and a mask, attending only inside the
mask they predicted one layer before.

The module tree mirrors the checkpoint's keys (`model.pixel_level_module.{encoder, decoder}`,
`model.transformer_module.{queries_embedder, queries_features, level_embed, input_projections,
decoder.{layers.N..., layernorm, mask_predictor.mask_embedder.{0,1,2}.0}}`, `class_predictor`),
so `engine.checkpoint.load_model` assigns the tensors as they are. Inference only: the loss and
its `criterion.empty_weight` are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict, drop_keys
from engine.config import from_dict, id2label
from engine.errors import CheckpointError
from engine.models import swin
from engine.models.common import activation
from engine.models.mask2former_pixel_decoder import LEVELS, PixelDecoder, sine_positions
from engine.models.swin import SwinBackbone, SwinConfig


class PixelLevelModule(nn.Module):
    """The backbone (`encoder`) and the pixel decoder (`decoder`)."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        self.encoder = SwinBackbone(config.backbone)
        channels = [config.backbone.channels[name] for name in config.backbone.out_features]
        self.decoder = PixelDecoder(config, channels)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.decoder(self.encoder(pixel_values))


class SelfAttention(nn.Module):
    """Attention among the queries, with their position embeddings added to queries and keys."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        placed = hidden + positions
        query, key, value = self.q_proj(placed), self.k_proj(placed), self.v_proj(hidden)
        return self.out_proj(_attend(query, key, value, self.num_heads, None))


class CrossAttention(nn.Module):
    """Masked attention from the queries to one level of pixel features: each query sees only
    the positions its previous mask covers. The weights keep `nn.MultiheadAttention`'s layout
    (`in_proj_weight` stacking the query, key and value projections)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        weights, biases = self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3)
        query, key, value = (F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))
        return self.out_proj(_attend(query, key, value, self.num_heads, allowed))


def _attend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int, allowed: torch.Tensor | None
) -> torch.Tensor:
    """(B, Q, C) queries over (B, K, C) keys and values, `allowed` (B, 1, Q, K) bool or None ->
    (B, Q, C)."""
    batch, length, dim = query.shape

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, heads, dim // heads).transpose(1, 2)  # (B, heads, n, d)

    attended = F.scaled_dot_product_attention(split(query), split(key), split(value), attn_mask=allowed)
    return attended.transpose(1, 2).reshape(batch, length, dim)


class DecoderLayer(nn.Module):
    """Masked cross-attention to one level, self-attention among the queries, then the MLP;
    post-LayerNorm unless the config asks for `pre_norm`."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        dim = config.hidden_dim
        self.pre_norm = config.pre_norm
        self.cross_attn = CrossAttention(dim, config.num_attention_heads)
        self.cross_attn_layer_norm = nn.LayerNorm(dim)
        self.self_attn = SelfAttention(dim, config.num_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.dim_feedforward)
        self.fc2 = nn.Linear(config.dim_feedforward, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = activation(config.activation_function, "activation_function")

    def forward(
        self,
        hidden: torch.Tensor,
        query_positions: torch.Tensor,
        features: torch.Tensor,
        feature_positions: torch.Tensor,
        allowed: torch.Tensor,
    ) -> torch.Tensor:
        def cross(x: torch.Tensor) -> torch.Tensor:
            return self.cross_attn(x + query_positions, features + feature_positions, features, allowed)

        def mlp(x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.activation(self.fc1(x)))

        if self.pre_norm:
            hidden = hidden + cross(self.cross_attn_layer_norm(hidden))
            hidden = hidden + self.self_attn(self.self_attn_layer_norm(hidden), query_positions)
            return hidden + mlp(self.final_layer_norm(hidden))
        hidden = self.cross_attn_layer_norm(hidden + cross(hidden))
        hidden = self.self_attn_layer_norm(hidden + self.self_attn(hidden, query_positions))
        return self.final_layer_norm(hidden + mlp(hidden))


class PredictionBlock(nn.Module):
    """One layer of the mask embedder; the checkpoint numbers its linear layer `0`."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.add_module("0", nn.Linear(in_dim, out_dim))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return cast(nn.Linear, getattr(self, "0"))(hidden)


class MaskPredictor(nn.Module):
    """A three-layer MLP turns each query into a mask embedding; its dot product with the mask
    features at every position is the query's mask logit there."""

    def __init__(self, dim: int, mask_dim: int) -> None:
        super().__init__()
        self.mask_embedder = nn.ModuleList(
            [PredictionBlock(dim, dim), PredictionBlock(dim, dim), PredictionBlock(dim, mask_dim)]
        )

    def forward(self, queries: torch.Tensor, mask_features: torch.Tensor) -> torch.Tensor:
        """(B, Q, C) normalised queries, (B, D, h, w) mask features -> (B, Q, h, w) logits."""
        embedded = queries
        for index, block in enumerate(self.mask_embedder):
            embedded = block(embedded)
            if index < len(self.mask_embedder) - 1:
                embedded = F.relu(embedded)
        return torch.einsum("bqc,bchw->bqhw", embedded, mask_features)


class Decoder(nn.Module):
    """The masked-attention layers, the LayerNorm every prediction reads, and the mask
    predictor."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers - 1))
        self.layernorm = nn.LayerNorm(config.hidden_dim)
        self.mask_predictor = MaskPredictor(config.hidden_dim, config.mask_feature_size)


class Mask2FormerOutput(NamedTuple):
    """The predictions of every query: `class_logits` (B, Q, num_labels + 1, the last class
    "no object"), `mask_logits` (B, Q, H/4, W/4); and, when asked for, the same after every
    decoder layer (the first before any layer, the last equal to the final ones)."""

    class_logits: torch.Tensor
    mask_logits: torch.Tensor
    layer_class_logits: list[torch.Tensor] | None = None
    layer_mask_logits: list[torch.Tensor] | None = None


class TransformerModule(nn.Module):
    """The learned queries (`queries_features` their content, `queries_embedder` their
    position), the three attended levels' projections and embeddings, and the decoder."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        dim = config.hidden_dim
        self.hidden_dim = dim
        self.queries_embedder = nn.Embedding(config.num_queries, dim)
        self.queries_features = nn.Embedding(config.num_queries, dim)
        project = config.feature_size != dim or config.enforce_input_projection
        self.input_projections = nn.ModuleList(
            nn.Conv2d(config.feature_size, dim, kernel_size=1) if project else nn.Identity() for _ in range(LEVELS)
        )
        self.level_embed = nn.Embedding(LEVELS, dim)
        self.decoder = Decoder(config)

    def forward(
        self, levels: list[torch.Tensor], mask_features: torch.Tensor, predict: nn.Linear, every_layer: bool
    ) -> Mask2FormerOutput:
        """`levels` (B, C, h_i, w_i) at strides 32, 16, 8, `mask_features` (B, D, H/4, W/4),
        `predict` the class head."""
        batch = mask_features.shape[0]
        decoder = self.decoder
        features, positions, sizes = [], [], []
        for index, level in enumerate(levels):
            height, width = int(level.shape[-2]), int(level.shape[-1])
            sizes.append((height, width))
            # (B, C, h, w) -> (B, h*w, C)
            features.append(self.input_projections[index](level).flatten(2).transpose(1, 2) + self.level_embed.weight[index])
            place = sine_positions(height, width, self.hidden_dim // 2, level.device, level.dtype)
            positions.append(place.flatten(1).t()[None])  # (1, h*w, C)
        hidden = self.queries_features.weight[None].expand(batch, -1, -1)
        query_positions = self.queries_embedder.weight[None]
        layers = cast(list[DecoderLayer], decoder.layers)
        class_logits, mask_logits = [], []
        allowed = torch.ones(0, dtype=torch.bool)  # set by the prediction before each layer
        for index in range(len(layers) + 1):
            if index:
                scale = (index - 1) % LEVELS
                hidden = layers[index - 1](hidden, query_positions, features[scale], positions[scale], allowed)
            normalised = decoder.layernorm(hidden)
            masks = decoder.mask_predictor(normalised, mask_features)  # (B, Q, H/4, W/4)
            if every_layer or index == len(layers):
                class_logits.append(predict(normalised))
                mask_logits.append(masks)
            if index < len(layers):
                allowed = _allowed(masks, sizes[index % LEVELS])
        return Mask2FormerOutput(
            class_logits[-1], mask_logits[-1], class_logits if every_layer else None, mask_logits if every_layer else None
        )


def _allowed(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, Q, h*w): where each query may attend at the next level, inside its mask
    (probability at least one half once resized to the level); a query whose mask is empty
    there attends everywhere."""
    resized = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
    allowed = resized.sigmoid().flatten(2) >= 0.5  # (B, Q, h*w)
    allowed |= ~allowed.any(-1, keepdim=True)
    return allowed[:, None]


class Mask2FormerModel(nn.Module):
    """The pixel-level module and the transformer module, as the checkpoint nests them."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        self.pixel_level_module = PixelLevelModule(config)
        self.transformer_module = TransformerModule(config)


class Mask2FormerForUniversalSegmentation(nn.Module):
    """Mask2Former with its class head: every query gives a class distribution (with "no
    object") and a mask, which post-processing turns into semantic, instance or panoptic
    segments.

    Cheng et al., "Masked-attention Mask Transformer for Universal Image Segmentation",
    CVPR 2022.
    """

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Mask2FormerModel(config)
        self.class_predictor = nn.Linear(config.hidden_dim, config.num_labels + 1)

    def forward(self, pixel_values: torch.Tensor, every_layer: bool = False) -> Mask2FormerOutput:
        """(B, 3, H, W) normalised pixels -> the queries' class and mask logits; with
        `every_layer`, those after every decoder layer too."""
        mask_features, levels = self.model.pixel_level_module(pixel_values)
        return self.model.transformer_module(levels, mask_features, self.class_predictor, every_layer)


@dataclass(frozen=True)
class Mask2FormerConfig:
    """The fields of a Mask2Former config.json that the model reads; `backbone` is read from
    its `backbone_config` (a Swin)."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset(
        {"feature_size", "mask_feature_size", "hidden_dim", "encoder_feedforward_dim", "encoder_layers",
         "decoder_layers", "num_attention_heads", "dim_feedforward", "num_queries", "num_labels", "common_stride"}
    )

    backbone: SwinConfig
    num_labels: int
    feature_size: int = 256
    mask_feature_size: int = 256
    hidden_dim: int = 256
    encoder_feedforward_dim: int = 1024
    activation_function: str = "relu"
    encoder_layers: int = 6
    decoder_layers: int = 10
    num_attention_heads: int = 8
    dim_feedforward: int = 2048
    pre_norm: bool = False
    enforce_input_projection: bool = False
    common_stride: int = 4
    num_queries: int = 100
    feature_strides: tuple[int, ...] = (4, 8, 16, 32)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mask2FormerConfig:
        backbone_data = data.get("backbone_config")
        if not isinstance(backbone_data, dict):
            raise CheckpointError("config.json of a Mask2Former names no backbone_config")
        if backbone_data.get("model_type", "swin") != "swin":
            raise CheckpointError(
                f"this Mask2Former's backbone is a {backbone_data.get('model_type')}; only Swin backbones are supported"
            )
        backbone = SwinConfig.from_json(
            {"out_features": ["stage1", "stage2", "stage3", "stage4"], **backbone_data}
        )
        config = from_dict(
            cls,
            data,
            backbone=backbone,
            num_labels=len(id2label(data)) or int(data.get("num_labels", 0)),
        )
        if len(backbone.out_features) != len(config.feature_strides) or len(config.feature_strides) < LEVELS + 1:
            raise CheckpointError(
                f"this Mask2Former reads {len(config.feature_strides)} backbone maps but its backbone gives "
                f"{len(backbone.out_features)}; four are needed"
            )
        for name, value in (("feature_size", config.feature_size), ("hidden_dim", config.hidden_dim)):
            if value % config.num_attention_heads or value % 32:
                raise CheckpointError(f"{name} {value} must be a multiple of 32 and of {config.num_attention_heads} heads")
        activation(config.activation_function, "activation_function")
        return config


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The training loss's class weights are dropped; the backbone's Swin files come in two
    forms (`swin.adapt`)."""
    return swin.adapt(drop_keys(state, ["criterion.empty_weight"]), expected)


def describe(config: Mask2FormerConfig) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "architecture": "Mask2Former",
        **swin.describe(config.backbone),
        "queries": config.num_queries,
        "pixel_decoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers - 1,
        "hidden_size": config.hidden_dim,
        "mask_stride": config.common_stride,
    }
