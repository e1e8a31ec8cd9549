"""What image classification keeps of a forward pass for the "Inside the model" view and
`--explain DIR`, reduced as each layer runs (see `engine.probe`).

ViT: the [CLS] token's attention over the patches, per layer and head, and the attention
rollout across layers (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL
2020). ConvNeXT: class activation maps for the top classes (`class_activation_maps` in
`engine.models.convnext`), the last stage's feature map and each stage's mean over channels.
Both: every class's logit before softmax, and the window of the photo the model saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine.models.convnext import ConvNextForImageClassification
from engine.models.vit import ViTForImageClassification


class Inside:
    """Reduces the records of one probed pass (`keep`, the taps it needs) and turns them,
    with the features and logits of that pass, into a result's internals."""

    taps: tuple[str, ...] = ()

    def keep(self, name: str, value: Any) -> torch.Tensor | None:
        return None

    def internals(
        self, records: dict[str, torch.Tensor], features: torch.Tensor, logits: torch.Tensor, top: list[int]
    ) -> dict[str, np.ndarray]:
        """`features` and `logits` of the one image (batch of 1); `top` the classes shown."""
        return {"logits": logits[0].float().cpu().numpy()}


class ViTInside(Inside):
    """Keeps "cls_attention" (layers, heads, patches): row 0 ([CLS]) of every head's weights
    without its own column, and "rollout" (patches,): how much of the final [CLS] flows from
    each patch when attention is traced back through every layer. Rollout averages the heads,
    adds the identity for the residual path (half and half, so rows still sum to one) and
    multiplies the layers in order; the running product is one (tokens, tokens) matrix,
    updated as each layer runs, so no layer's full weights are kept. "grid" is (rows, cols)."""

    def __init__(self, model: ViTForImageClassification) -> None:
        config = model.config
        self.grid = [i // p for i, p in zip(config.image_size, config.patch_size)]
        self.flow: torch.Tensor | None = None  # (tokens, tokens), the rollout so far

    def keep(self, name: str, weights: torch.Tensor) -> torch.Tensor:
        heads = weights[0].float()  # (heads, tokens, tokens)
        identity = torch.eye(heads.shape[-1], device=heads.device)
        mixed = 0.5 * heads.mean(0) + 0.5 * identity
        self.flow = mixed if self.flow is None else mixed @ self.flow
        return heads[:, 0, 1:]  # (heads, patches)

    def internals(
        self, records: dict[str, torch.Tensor], features: torch.Tensor, logits: torch.Tensor, top: list[int]
    ) -> dict[str, np.ndarray]:
        kept = super().internals(records, features, logits, top)
        if self.flow is None:
            return kept
        kept["cls_attention"] = torch.stack(list(records.values())).cpu().numpy()  # in layer order
        kept["rollout"] = self.flow[0, 1:].cpu().numpy()
        kept["grid"] = np.array(self.grid, dtype=np.int64)
        return kept


class ConvNextInside(Inside):
    """Keeps "cam" (k, h, w) for the k classes of the result, best first ("cam_classes" their
    ids, "cam_bias" the classifier's bias for each), "features" (C, h, w) float16, the last stage's map the maps come from, and
    "stage_1"… (h_s, w_s): each stage's output averaged over its channels."""

    def __init__(self, model: ConvNextForImageClassification) -> None:
        self.model = model
        self.taps = tuple(f"convnext.encoder.stages.{i}" for i in range(len(model.convnext.encoder.stages)))

    def keep(self, name: str, output: torch.Tensor) -> torch.Tensor:
        return output[0].float().mean(0)  # (C, h, w) -> (h, w)

    def internals(
        self, records: dict[str, torch.Tensor], features: torch.Tensor, logits: torch.Tensor, top: list[int]
    ) -> dict[str, np.ndarray]:
        kept = super().internals(records, features, logits, top)
        classes = torch.tensor(top, dtype=torch.long, device=features.device)
        maps = self.model.class_activation_maps(features.float(), classes)[0]  # (k, h, w)
        kept["cam"] = maps.cpu().numpy()
        kept["cam_classes"] = np.array(top, dtype=np.int64)
        bias = self.model.classifier.bias
        if callable(bias):  # int8: a dynamically quantised layer hands out its bias by a call
            bias = bias()
        kept["cam_bias"] = np.zeros(len(top), np.float32) if bias is None else bias[classes].float().cpu().numpy()
        kept["features"] = features[0].to(torch.float16).cpu().numpy()
        for index, tap in enumerate(self.taps, start=1):
            kept[f"stage_{index}"] = records[tap].cpu().numpy()
        return kept


def inside_of(model: nn.Module) -> Inside:
    """The internals this classifier can show."""
    if isinstance(model, ViTForImageClassification):
        return ViTInside(model)
    if isinstance(model, ConvNextForImageClassification):
        return ConvNextInside(model)
    return Inside()
