"""DINOv2: a ViT whose learned positions are resized to any input's grid of patches.

Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision", TMLR 2024. The
module tree mirrors the keys of facebook/dinov2-* and of the `backbone.` part of the Depth
Anything checkpoints (`embeddings.{cls_token, position_embeddings, patch_embeddings.projection}`,
`encoder.layer.N.{norm1, attention.attention.{query,key,value}, attention.output.dense,
layer_scale1.lambda1, norm2, mlp.{fc1,fc2}, layer_scale2.lambda1}`, `layernorm`). transformers
5.x names the attention `{q,k,v,o}_proj` in memory but still writes these names to the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.checkpoint import StateDict
from engine.config import from_dict
from engine.errors import CheckpointError
from engine.models.common import activation


class PatchEmbeddings(nn.Module):
    """Cuts the image into non-overlapping patches and projects each to the hidden size; rows
    and columns left over at the bottom and right are dropped, as the strided convolution does."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.projection(pixel_values)  # (B, D, H/p, W/p)
        return patches.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order


class Embeddings(nn.Module):
    """[CLS] followed by the patch embeddings, plus learned positions resized to the grid.

    The checkpoint's positions cover a square grid (37×37 for 518 pixels at patch 14); another
    grid gets them resized bicubically in float32, as a picture of `hidden_size` channels."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.config = config
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.patch_embeddings = PatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.empty(1, config.position_grid**2 + 1, config.hidden_size))

    def positions(self, height: int, width: int) -> torch.Tensor:
        """(1, 1 + h*w, D) positions for an input of `height` x `width` pixels: [CLS]'s own,
        then the patch grid's resized to h x w patches. Kept as they are only for a square
        input of the trained grid, which is when transformers keeps them too."""
        grid = self.config.position_grid
        rows, columns = height // self.config.patch_size, width // self.config.patch_size
        if rows * columns == grid * grid and height == width:
            return self.position_embeddings
        dim = self.position_embeddings.shape[-1]
        # (1, g*g, D) -> (1, D, g, g): the positions as a D-channel picture
        table = self.position_embeddings[:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
        resized = F.interpolate(table.float(), size=(rows, columns), mode="bicubic", align_corners=False)
        # (1, D, h, w) -> (1, h*w, D)
        patches = resized.to(table.dtype).permute(0, 2, 3, 1).reshape(1, rows * columns, dim)
        return torch.cat([self.position_embeddings[:, :1], patches], dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        patches = self.patch_embeddings(pixel_values.to(self.cls_token.dtype))  # (B, N, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # (B, 1, D)
        return torch.cat([cls, patches], dim=1) + self.positions(height, width)  # (B, 1+N, D)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over all tokens. After `fuse_for_inference` the
    three projections run as one (`qkv`), a single larger matrix product."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        dim = config.hidden_size
        self.query = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.key = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.value = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.qkv: nn.Linear | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, dim = hidden.shape
        if self.qkv is not None:
            # (B, L, 3D) -> (3, B, h, L, d): views of one tensor
            q, k, v = self.qkv(hidden).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        else:
            # (B, L, D) -> (B, h, L, d)
            q, k, v = (p(hidden).view(batch, length, self.num_heads, -1).transpose(1, 2)
                       for p in (self.query, self.key, self.value))
        context = F.scaled_dot_product_attention(q, k, v)
        return context.transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)

    @torch.no_grad()
    def fuse_for_inference(self) -> None:
        """Concatenate the query, key and value projections into `qkv`; the three keep their
        names as views into it, so the weights are held once."""
        if self.qkv is not None:
            return
        parts = (self.query, self.key, self.value)
        dim = self.query.weight.shape[0]
        self.qkv = nn.Linear(dim, 3 * dim, bias=self.query.bias is not None,
                             device=self.query.weight.device, dtype=self.query.weight.dtype)
        self.qkv.weight.copy_(torch.cat([p.weight for p in parts]))  # (3D, D): query rows first
        for index, part in enumerate(parts):
            part.weight = nn.Parameter(self.qkv.weight[index * dim : (index + 1) * dim], requires_grad=False)
        if self.qkv.bias is not None:
            self.qkv.bias.copy_(torch.cat([p.bias for p in parts]))
            for index, part in enumerate(parts):
                part.bias = nn.Parameter(self.qkv.bias[index * dim : (index + 1) * dim], requires_grad=False)


class SelfOutput(nn.Module):
    """The projection after attention; the checkpoint keeps it in its own module."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden)


class Attention(nn.Module):
    """Attention followed by its output projection."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.output = SelfOutput(config)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(hidden))


class LayerScale(nn.Module):
    """A learned per-channel gain on a residual branch (Touvron et al., CaiT, 2021)."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.empty(config.hidden_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden * self.lambda1

    @torch.no_grad()
    def fold_into(self, linear: nn.Linear) -> None:
        """Scale the outputs of `linear`, the branch's last projection, by the gains, so this
        module can be dropped: (W x + b) * s == (s W) x + s b."""
        linear.weight.mul_(self.lambda1[:, None])  # (out,) -> (out, 1): one gain per output
        if linear.bias is not None:
            linear.bias.mul_(self.lambda1)


class MLP(nn.Module):
    """fc1, the activation, fc2; the inner width is `mlp_ratio` times the hidden size."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.mlp_size)
        self.fc2 = nn.Linear(config.mlp_size, config.hidden_size)
        self.activation = activation(config.hidden_act)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden)))


class SwiGLU(nn.Module):
    """The gated MLP of the giant models (Shazeer, 2020): one projection gives the gate and
    the value side by side, SiLU(gate) * value goes back to the hidden size."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.weights_in = nn.Linear(config.hidden_size, 2 * config.mlp_size)
        self.weights_out = nn.Linear(config.mlp_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        gate, value = self.weights_in(hidden).chunk(2, dim=-1)  # (B, L, 2F) -> 2 x (B, L, F)
        return self.weights_out(F.silu(gate) * value)


class Layer(nn.Module):
    """One pre-LayerNorm block with layer scale: x + s1·attn(LN(x)), then x + s2·MLP(LN(x))."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = Attention(config)
        self.layer_scale1: nn.Module = LayerScale(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp: MLP | SwiGLU = SwiGLU(config) if config.use_swiglu_ffn else MLP(config)
        self.layer_scale2: nn.Module = LayerScale(config)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.layer_scale1(self.attention(self.norm1(hidden)))
        return hidden + self.layer_scale2(self.mlp(self.norm2(hidden)))

    def fuse_for_inference(self) -> None:
        """One projection for query, key and value; the layer scales folded into the output
        projection and the MLP's last layer."""
        self.attention.attention.fuse_for_inference()
        last = self.mlp.weights_out if isinstance(self.mlp, SwiGLU) else self.mlp.fc2
        for name, linear in (("layer_scale1", self.attention.output.dense), ("layer_scale2", last)):
            scale = getattr(self, name)
            if isinstance(scale, LayerScale):
                scale.fold_into(linear)
                setattr(self, name, nn.Identity())


class Encoder(nn.Module):
    """The stack of transformer layers."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Dinov2Model(nn.Module):
    """The DINOv2 backbone: embeddings, the encoder and the final LayerNorm.

    `forward` gives the normalised last hidden states; `hidden_states` every layer's output as
    transformers lists them; `features` the normalised outputs of the layers `out_indices`
    names, which is what a dense-prediction head (Depth Anything's DPT neck) reads."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def hidden_states(self, pixel_values: torch.Tensor, last: int | None = None) -> list[torch.Tensor]:
        """[the embeddings, layer 1's output, ..., layer `last`'s] (all layers by default), each
        (B, 1 + N, D) and not normalised; index i is transformers' `hidden_states[i]`."""
        hidden = self.embeddings(pixel_values)
        states = [hidden]
        for layer in self.encoder.layer[: self.config.num_hidden_layers if last is None else last]:
            hidden = layer(hidden)
            states.append(hidden)
        return states

    def features(self, pixel_values: torch.Tensor, indices: Sequence[int] | None = None) -> list[torch.Tensor]:
        """The hidden states at `indices` (default: the config's `out_indices`; 0 is the
        embeddings, i is layer i's output), each (B, 1 + N, D) and normalised by `layernorm`
        when `apply_layernorm`. Layers past the deepest index asked for are not run."""
        indices = self.config.out_indices if indices is None else tuple(indices)
        states = self.hidden_states(pixel_values, last=max(indices))
        if self.config.apply_layernorm:
            return [self.layernorm(states[i]) for i in indices]
        return [states[i] for i in indices]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, 1 + N, D) final hidden states, normalised."""
        return self.layernorm(self.hidden_states(pixel_values)[-1])

    def fuse_for_inference(self) -> None:
        """Fewer, larger matrix products and no separate layer-scale passes: about 6 % less
        CPU time for ViT-S at 518×784, equal outputs up to float rounding. Afterwards the state
        dict no longer has the checkpoint's keys, so call it once the weights are loaded."""
        for layer in self.encoder.modules():
            if isinstance(layer, Layer):
                layer.fuse_for_inference()


@dataclass(frozen=True)
class Dinov2Config:
    """The fields of a DINOv2 config.json (or a Depth Anything `backbone_config`) that the
    model reads. `out_indices` are the layers a backbone hands on (0 = the embeddings)."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_ratio: float = 4.0
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    qkv_bias: bool = True
    use_swiglu_ffn: bool = False
    out_indices: tuple[int, ...] = (12,)
    apply_layernorm: bool = True

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dinov2Config:
        """From a DINOv2 config.json; `out_indices` from `out_indices` or `out_features`
        ("stage9" is layer 9), the last layer when neither is given."""
        layers = int(data.get("num_hidden_layers", 12))
        config = from_dict(
            cls,
            data,
            image_size=_square(data.get("image_size", 224), "image_size"),
            patch_size=_square(data.get("patch_size", 14), "patch_size"),
            mlp_ratio=float(data.get("mlp_ratio", 4.0)),
            out_indices=_out_indices(data, layers),
        )
        if config.hidden_size % config.num_attention_heads:
            raise CheckpointError(
                f"hidden_size {config.hidden_size} is not a multiple of {config.num_attention_heads} heads"
            )
        activation(config.hidden_act)  # fail at load time, not on the first input
        return config

    @property
    def position_grid(self) -> int:
        """Patches per side of the square grid the learned positions cover."""
        return self.image_size // self.patch_size

    @property
    def mlp_size(self) -> int:
        """The MLP's inner width; SwiGLU keeps two thirds of it, rounded up to a multiple of 8."""
        size = int(self.hidden_size * self.mlp_ratio)
        return (int(size * 2 / 3) + 7) // 8 * 8 if self.use_swiglu_ffn else size


def _square(value: Any, key: str) -> int:
    """One side of a square `image_size` or `patch_size`, given as an int or a pair: the
    positions are stored as a square grid of square patches."""
    height, width = (value[0], value[1]) if isinstance(value, (list, tuple)) else (value, value)
    if height != width:
        raise CheckpointError(f"DINOv2 with a non-square {key} {value} is not supported")
    return int(height)


def _out_indices(data: dict[str, Any], layers: int) -> tuple[int, ...]:
    """Layer numbers from `out_indices`, else from `out_features` names; negative numbers count
    from the end of [embeddings, layer 1, ..., layer N] as transformers reads them."""
    if data.get("out_indices"):
        indices = [int(i) for i in data["out_indices"]]
    elif data.get("out_features"):
        try:
            indices = [0 if name == "stem" else int(str(name).removeprefix("stage")) for name in data["out_features"]]
        except ValueError:
            raise CheckpointError(f"config.json has out_features this app cannot read: {data['out_features']}") from None
    else:
        indices = [layers]
    resolved = tuple(i + layers + 1 if i < 0 else i for i in indices)
    if any(not 0 <= i <= layers for i in resolved):
        raise CheckpointError(f"out_indices {indices} name layers outside 0..{layers}")
    return resolved


def adapt(state: StateDict, expected: set[str]) -> StateDict:
    """The mask token (for masked-image pre-training) and the pooler of some files are never
    read at inference: they are dropped, wherever the backbone sits in the file."""
    unused = ("embeddings.mask_token", "pooler.dense.weight", "pooler.dense.bias")
    return {k: v for k, v in state.items() if not (k.endswith(unused) and k not in expected)}


def describe(config: Dinov2Config) -> dict[str, Any]:
    """The architecture's numbers, for the app's "How it works" panel."""
    return {
        "architecture": "DINOv2",
        "patch_size": config.patch_size,
        "trained_grid": [config.position_grid, config.position_grid],
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "heads": config.num_attention_heads,
        "mlp_size": config.mlp_size,
        "mlp": "SwiGLU" if config.use_swiglu_ffn else config.hidden_act,
    }
