"""Wav2Vec2's waveform encoder: seven strided 1-D convolutions from 16 kHz samples to one
512-channel frame per 20 ms, written as matrix products over time-major frames.

The checkpoint stores plain `Conv1d` weights (`conv_layers.N.conv.weight`, (out, in, kernel)) and
they stay in `nn.Conv1d` modules so that keys and shapes load strictly. The forward pass does not
call the convolution, though. oneDNN's bf16 convolutions spend most of their time reordering
channel-first tensors (the first layer's output alone is 512 × 32,000 values for 10 s), so the
stack here keeps frames as (B, T, C) throughout and computes each layer as matrix products:

- The first layer has one input channel: its frames are a strided view of the samples (B, T, k),
  one product with the (k, C) weight. Base checkpoints group-normalise it per channel over time;
  those statistics follow from the frames' k × k covariance (x·w + b less its mean over time is
  (x - mean(x))·w, its variance wᵀ·cov(x)·w), so the norm folds into one product of the centred
  frames with a rescaled weight, and the (B, T, 512) output is written once.
- A later layer with kernel k and stride s reads s taps as one free reshape of the input, (B, T,
  s·C), and each tap past the stride as a strided view; no window is copied.

In float32 the result equals the convolutions' to float32 rounding (the tests compare with
transformers). On 10 s of audio (2 threads, an AMX CPU) the encoder takes 73 ms in bf16 where
oneDNN's convolutions took 285, and 196 ms in float32 where they took 327.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.common import activation

if TYPE_CHECKING:
    from engine.models.wav2vec2 import Wav2Vec2Config


class FeatureEncoderLayer(nn.Module):
    """One strided convolution of the waveform encoder, with its optional norm.

    `norm` is "group" (a GroupNorm with one group per channel: base models' first layer),
    "layer" (LayerNorm over channels: large/lv60 models' every layer) or None."""

    def __init__(self, config: Wav2Vec2Config, index: int, norm: str | None) -> None:
        super().__init__()
        in_channels = config.conv_dim[index - 1] if index > 0 else 1
        out_channels = config.conv_dim[index]
        self.conv = nn.Conv1d(
            in_channels, out_channels, config.conv_kernel[index], config.conv_stride[index], bias=config.conv_bias
        )
        self.norm = norm
        self.takes_samples = index == 0
        if norm == "group":
            self.layer_norm: nn.GroupNorm | nn.LayerNorm = nn.GroupNorm(out_channels, out_channels)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(out_channels)
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) samples for the first layer, (B, T, C) frames after it; gives (B, T', C')."""
        if self.takes_samples:
            return self.activation(self.first(x))
        y = self.strided(x)
        if self.norm == "layer":
            y = self.layer_norm(y)
        return self.activation(y)

    def first(self, samples: torch.Tensor) -> torch.Tensor:
        """The one-channel convolution and its norm, before the activation."""
        conv = self.conv
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        frames = samples.unfold(1, kernel, stride)  # (B, T, k), a view
        weight = conv.weight.reshape(conv.out_channels, kernel)  # (C, k)
        if self.norm != "group":
            y = F.linear(frames, weight, conv.bias)
            return self.layer_norm(y) if self.norm == "layer" else y
        # the norm's per-utterance statistics from the frames' mean and covariance. Speech is
        # smooth, so adjacent samples correlate and a high-pass filter's wᵀ·cov·w is a small
        # difference of large sums: float64 keeps it exact (MPS has none; float32 there).
        exact = torch.float64 if samples.device.type != "mps" else torch.float32
        x = frames.to(exact)
        centred = x - x.mean(1, keepdim=True)  # (B, T, k): a tenth of the output's size
        covariance = centred.transpose(1, 2) @ centred / x.shape[1]  # (B, k, k)
        w = weight.to(exact)
        variance = ((w @ covariance) * w).sum(-1)  # (B, C): wᵀ·cov·w per channel
        norm = self.layer_norm
        scale = norm.weight.to(exact) * torch.rsqrt(variance + norm.eps)  # (B, C)
        folded = (w * scale[..., None]).transpose(1, 2).to(samples.dtype)  # (B, k, C)
        # with the frames centred the output's mean is already gone: (x - mean(x))·w is
        # y - mean(y), the conv's bias included
        return torch.baddbmm(norm.bias.to(samples.dtype), centred.to(samples.dtype), folded)

    def strided(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution over (B, T, C) frames, as one product for the first `stride` taps
        (a free reshape) and one per tap beyond them (a strided view)."""
        conv = self.conv
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        batch, length, channels = x.shape
        steps = (length - kernel) // stride + 1
        weight = conv.weight.permute(0, 2, 1)  # (out, k, C): tap-major, as the frames lie
        if kernel >= stride:
            taps = stride
            side_by_side = x[:, : steps * stride].reshape(batch, steps, stride * channels)
            y = F.linear(side_by_side, weight[:, :taps].reshape(conv.out_channels, taps * channels), conv.bias)
        else:  # a kernel shorter than its stride (no Hub checkpoint has one) skips samples
            taps = 1
            y = F.linear(x[:, ::stride][:, :steps], weight[:, 0], conv.bias)
        for tap in range(taps, kernel):  # added in place: no second (B, T, out) tensor
            y.baddbmm_(x[:, tap::stride][:, :steps], weight[:, tap].t().expand(batch, -1, -1))
        return y


class FeatureEncoder(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        norms: list[str | None] = ["group"] + [None] * (len(config.conv_dim) - 1)
        if config.feat_extract_norm == "layer":
            norms = ["layer"] * len(config.conv_dim)
        self.conv_layers = nn.ModuleList(FeatureEncoderLayer(config, i, n) for i, n in enumerate(norms))

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """(B, L) samples to (B, T, C) frames."""
        x = samples
        for layer in self.conv_layers:
            x = layer(x)
        return x
