"""Wav2Vec2 and HuBERT encoders with a CTC head (speech recognition) or a pooled classification
head (keyword spotting, emotion, language id), loading the Hub's checkpoints unchanged.

Baevski et al., "wav2vec 2.0: A Framework for Self-Supervised Learning of Speech
Representations" (2020); Hsu et al., "HuBERT" (2021) shares the architecture and differs only
in names and two optional norms. A stack of 1-D convolutions turns 16 kHz samples into one
frame per 320 samples (20 ms), a convolution over time adds relative position, and a
Transformer encoder contextualises the frames. The module tree below mirrors the checkpoint
keys (`wav2vec2.feature_extractor.conv_layers.0.conv.weight`, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict, drop_keys, match_prefix
from engine.config import from_dict, id2label
from engine.errors import CheckpointError
from engine.models.common import activation, attend
from engine.models.wav2vec2_features import FeatureEncoder


class FeatureProjection(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        # HuBERT checkpoints may leave this norm out (feat_proj_layer_norm=false)
        self.layer_norm = None
        if config.feat_proj_layer_norm:
            self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layer_norm(x) if self.layer_norm is not None else x)


class PositionalConvEmbedding(nn.Module):
    """A wide grouped convolution over time whose output is added to the frames: positions
    relative to the neighbours, no absolute table. The checkpoint stores its weight under
    weight norm; `adapt` folds that into the plain weight kept here."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        size, kernel = config.hidden_size, config.num_conv_pos_embeddings
        self.batch_norm = nn.BatchNorm1d(size) if config.conv_pos_batch_norm else None
        self.conv = nn.Conv1d(size, size, kernel, padding=kernel // 2, groups=config.num_conv_pos_embedding_groups)
        # "same" padding of an even kernel gives one frame too many; the last one goes
        self.trim = 1 if kernel % 2 == 0 else 0
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, T, C) -> (B, C, T)
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and self.conv.in_channels // self.conv.groups < 16:
            # oneDNN's bf16 kernel (torch 2.13) returns wrong sums for a kernel this wide over
            # 2 to 8 channels per group: only toy checkpoints have so few (base has 48)
            bias = None if self.conv.bias is None else self.conv.bias.float()
            x = F.conv1d(x.float(), self.conv.weight.float(), bias, padding=self.conv.padding, groups=self.conv.groups)
            x = x.to(torch.bfloat16)
        else:
            x = self.conv(x)
        if self.trim:
            x = x[:, :, : -self.trim]
        return self.activation(x).transpose(1, 2)  # (B, C, T) -> (B, T, C)


class Attention(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        size = config.hidden_size
        self.q_proj = nn.Linear(size, size)
        self.k_proj = nn.Linear(size, size)
        self.v_proj = nn.Linear(size, size)
        self.out_proj = nn.Linear(size, size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, c = x.shape
        split = (b, t, self.heads, c // self.heads)
        q = self.q_proj(x).view(split).transpose(1, 2)  # (B, T, C) -> (B, H, T, D)
        k = self.k_proj(x).view(split).transpose(1, 2)
        v = self.v_proj(x).view(split).transpose(1, 2)
        y = attend(self, q, k, v, mask)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, c))  # (B, H, T, D) -> (B, T, C)


class FeedForward(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(self.activation(self.intermediate_dense(x)))


class LanguageAdapter(nn.Module):
    """A small bottleneck added after each layer by MMS checkpoints (adapter_attn_dim)."""

    def __init__(self, hidden_size: int, adapter_attn_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.linear_1 = nn.Linear(hidden_size, adapter_attn_dim)
        self.linear_2 = nn.Linear(adapter_attn_dim, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.relu(self.linear_1(self.norm(x))))


class EncoderLayer(nn.Module):
    """A Transformer layer, post-LN (base models) or pre-LN (`do_stable_layer_norm`)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.pre_norm = config.do_stable_layer_norm
        self.attention = Attention(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.adapter_layer = (
            LanguageAdapter(config.hidden_size, config.adapter_attn_dim)
            if self.pre_norm and config.adapter_attn_dim
            else None
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if not self.pre_norm:
            x = self.layer_norm(x + self.attention(x, mask))
            return self.final_layer_norm(x + self.feed_forward(x))
        x = x + self.attention(self.layer_norm(x), mask)
        x = x + self.feed_forward(self.final_layer_norm(x))
        if self.adapter_layer is not None:
            x = x + self.adapter_layer(x)
        return x


class Encoder(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.pre_norm = config.do_stable_layer_norm
        self.pos_conv_embed = PositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor | None, all_states: bool = False) -> list[torch.Tensor]:
        """[final output], or with `all_states` every layer's input, the last layer's output,
        then the final output. The num_layers + 1 states before the final one are those
        transformers 5 weighs in its weighted layer sum: for pre-LN stacks, the last of them
        precedes the final LayerNorm (transformers 4 took it after)."""
        attn_mask = None
        if frame_mask is not None:
            x = x * frame_mask[..., None].to(x.dtype)  # padding must not leak into the position conv
            attn_mask = frame_mask[:, None, None, :]  # (B, T) -> (B, 1, 1, T): keys that exist
        x = x + self.pos_conv_embed(x)
        if not self.pre_norm:
            x = self.layer_norm(x)
        states = [x]
        for layer in self.layers:
            x = layer(x, attn_mask)
            if all_states:
                states.append(x)
        final = self.layer_norm(x) if self.pre_norm else x  # pre-LN stacks normalise once, at the end
        return states + [final] if all_states else [final]


class Wav2Vec2Model(nn.Module):
    """The backbone: waveform (B, L) to contextual frames (B, T, hidden)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.config = config
        self.feature_extractor = FeatureEncoder(config)
        self.feature_projection = FeatureProjection(config)
        self.encoder = Encoder(config)

    def forward(
        self, samples: torch.Tensor, attention_mask: torch.Tensor | None = None, all_states: bool = False
    ) -> list[torch.Tensor]:
        """See `Encoder.forward`; `attention_mask` (B, L) marks real samples in a padded batch."""
        features = self.feature_extractor(samples)
        frame_mask = None
        if attention_mask is not None:
            lengths = frame_lengths(attention_mask.sum(-1), self.config)
            frame_mask = torch.arange(features.shape[1], device=features.device) < lengths[:, None]
        return self.encoder(self.feature_projection(features), frame_mask, all_states)


class Wav2Vec2ForCTC(nn.Module):
    """Per-frame logits over the character vocabulary, for greedy CTC decoding."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        if not config.vocab_size:
            raise CheckpointError("config.json has no vocab_size: this is not a CTC checkpoint")
        self.config = config
        self.wav2vec2 = Wav2Vec2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, samples: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.lm_head(self.wav2vec2(samples, attention_mask)[-1])  # (B, T, vocab)


class Wav2Vec2ForSequenceClassification(nn.Module):
    """One label distribution per clip: frames projected, mean-pooled over the real frames,
    classified. With `use_weighted_layer_sum` the frames are a learned softmax-weighted sum of
    every layer's input instead of the last output."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        if config.num_labels < 1:
            raise CheckpointError("config.json has no id2label: this is not a classification checkpoint")
        self.config = config
        self.wav2vec2 = Wav2Vec2Model(config)
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.empty(config.num_hidden_layers + 1))
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)

    def forward(self, samples: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        states = self.wav2vec2(samples, attention_mask, all_states=self.config.use_weighted_layer_sum)
        if self.config.use_weighted_layer_sum:
            weights = self.layer_weights.softmax(-1)
            frames = (torch.stack(states[:-1], dim=1) * weights[:, None, None]).sum(dim=1)  # (B, N, T, C) -> (B, T, C)
        else:
            frames = states[-1]
        frames = self.projector(frames)
        if attention_mask is None:
            return self.classifier(frames.mean(dim=1))
        lengths = frame_lengths(attention_mask.sum(-1), self.config)
        real = (torch.arange(frames.shape[1], device=frames.device) < lengths[:, None]).to(frames.dtype)
        pooled = (frames * real[..., None]).sum(dim=1) / real.sum(dim=1, keepdim=True)
        return self.classifier(pooled)  # (B, labels)


# ---- config ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wav2Vec2Config:
    """The fields of a Wav2Vec2 or HuBERT config.json that the code reads."""

    POSITIVE: ClassVar[frozenset[str]] = frozenset(
        {"hidden_size", "num_attention_heads", "intermediate_size", "conv_dim", "conv_kernel", "conv_stride",
         "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "adapter_attn_dim", "vocab_size",
         "classifier_proj_size"}
    )  # fmt: skip
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    model_type: str = "wav2vec2"
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False
    feat_proj_layer_norm: bool = True
    conv_pos_batch_norm: bool = False
    adapter_attn_dim: int | None = None
    add_adapter: bool = False
    vocab_size: int | None = None
    use_weighted_layer_sum: bool = False
    classifier_proj_size: int = 256
    num_labels: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Wav2Vec2Config:
        """A checked config from config.json; HuBERT's names for the same things are accepted."""
        picked = {**data, "num_labels": len(id2label(data))}
        if data.get("model_type") != "hubert":
            picked.pop("feat_proj_layer_norm", None)  # wav2vec2 always has this norm
        config = from_dict(cls, picked)
        if not len(config.conv_dim) == len(config.conv_kernel) == len(config.conv_stride):
            raise CheckpointError("config.json: conv_dim, conv_kernel and conv_stride differ in length")
        for parts in ("num_attention_heads", "num_conv_pos_embedding_groups"):
            if config.hidden_size % getattr(config, parts):
                raise CheckpointError(
                    f"config.json: hidden_size {config.hidden_size} is not a multiple of "
                    f"{parts} {getattr(config, parts)}"
                )
        if config.feat_extract_norm not in ("group", "layer"):
            raise CheckpointError(f"config.json: unknown feat_extract_norm {config.feat_extract_norm!r}")
        for key in ("feat_extract_activation", "hidden_act"):  # fail at load time, not on the first input
            activation(getattr(config, key), key)
        if config.add_adapter:
            raise CheckpointError("checkpoints with a Wav2Vec2 output adapter (add_adapter) are not supported")
        return config

    @property
    def samples_per_frame(self) -> int:
        """Samples per output frame: the product of the conv strides (320 for base)."""
        return math.prod(self.conv_stride)

    @property
    def receptive_field(self) -> int:
        """The fewest samples that give one frame (400 for base)."""
        size = 1
        for kernel, stride in zip(reversed(self.conv_kernel), reversed(self.conv_stride)):
            size = (size - 1) * stride + kernel
        return size

    @property
    def shortest_input(self) -> int:
        """The fewest samples the model takes: one frame's receptive field, and where the first
        convolution is group-normed, two of its steps (torch normalises no lone value). 400
        for base; the second rule only binds on toy configs with one wide convolution."""
        if self.feat_extract_norm == "group":
            return max(self.receptive_field, self.conv_kernel[0] + self.conv_stride[0])
        return self.receptive_field


def frame_lengths(sample_lengths: torch.Tensor, config: Wav2Vec2Config) -> torch.Tensor:
    """Frames the conv stack makes from each length: floor((L - kernel) / stride) + 1 per layer."""
    lengths = sample_lengths
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths


# ---- loading --------------------------------------------------------------------------------

_WEIGHT_NORM_FORMS = (
    ("weight_g", "weight_v"),  # torch.nn.utils.weight_norm (Hub files of 2021)
    ("parametrizations.weight.original0", "parametrizations.weight.original1"),  # parametrizations
)


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The checkpoint's keys in this module's names: HuBERT's base prefix, the positional conv's
    weight norm folded into a plain weight, and training-only tensors dropped."""
    state = {("wav2vec2." + k[len("hubert."):] if k.startswith("hubert.") else k): v for k, v in state.items()}
    state = drop_keys(state, ("masked_spec_embed",))
    for magnitude_name, direction_name in _WEIGHT_NORM_FORMS:
        for key in [k for k in state if k.endswith("." + magnitude_name)]:
            module = key[: -len(magnitude_name)]
            direction = state.pop(module + direction_name, None)
            if direction is None:
                raise CheckpointError(f"{key} has no matching {module + direction_name} in the checkpoint")
            state[module + "weight"] = fold_weight_norm(state.pop(key), direction)
    state = match_prefix(state, expected, "wav2vec2.")  # after the renames, which it checks against
    for key in expected:  # a counter only training reads; older files lack it
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.tensor(0))
    return state


def fold_weight_norm(magnitude: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """w = g * v / ||v||, the norm taken over every dim the magnitude has size 1 in (dims 0
    and 1 for the positional conv, whose g is (1, 1, K))."""
    dims = [d for d in range(direction.dim()) if magnitude.shape[d] == 1]
    v = direction.float()
    return (v * (magnitude.float() / v.norm(dim=dims, keepdim=True))).to(direction.dtype)


def describe(config: Wav2Vec2Config) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "feature_encoder": f"{len(config.conv_dim)} conv layers, {config.conv_dim[-1]} channels, "
        f"kernels {list(config.conv_kernel)}, strides {list(config.conv_stride)}, "
        f"{config.feat_extract_norm} norm",
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads,
        "ffn_size": config.intermediate_size,
        "layer_norm": "pre-LN (stable)" if config.do_stable_layer_norm else "post-LN",
        "samples_per_frame": config.samples_per_frame,
    }
