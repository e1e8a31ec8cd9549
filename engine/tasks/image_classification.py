"""Image classification: a picture in, the most likely labels with their scores out, as
transformers' `pipeline("image-classification")` gives them. ViT and ConvNeXT checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import image_device
from engine.checkpoint import StateDict, load_model
from engine.config import id2label
from engine.errors import CheckpointError, InputError
from engine.image import (
    BICUBIC,
    BILINEAR,
    ImageSource,
    load_image,
    preprocess,
    read_processor_config,
    value_table,
)
from engine.models import convnext, vit
from engine.runtime import check_cancel
from engine.tasks.base import Hooks, Option, Result, Task, require_architecture

_FILTER_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


@dataclass(frozen=True)
class _Family:
    """What differs between the architectures this task runs."""

    build: Callable[[dict[str, Any]], tuple[Any, Callable[[], nn.Module]]]  # config.json -> (config, build)
    adapt: Callable[[StateDict, set[str]], StateDict] | None
    # The processor class's own defaults, for keys a preprocessor_config.json leaves out.
    processor_defaults: dict[str, Any]
    default_to_square: bool  # how the processor reads a bare int `size`
    uses_crop_pct: bool
    describe: Callable[[Any], dict[str, Any]]


def _build_vit(data: dict[str, Any]) -> tuple[vit.ViTConfig, Callable[[], nn.Module]]:
    config = vit.ViTConfig.from_json(data)
    return config, lambda: vit.ViTForImageClassification(config)


def _build_convnext(data: dict[str, Any]) -> tuple[convnext.ConvNextConfig, Callable[[], nn.Module]]:
    config = convnext.ConvNextConfig.from_json(data)
    return config, lambda: convnext.ConvNextForImageClassification(config)


def _describe_vit(config: vit.ViTConfig) -> dict[str, Any]:
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


def _describe_convnext(config: convnext.ConvNextConfig) -> dict[str, Any]:
    return {
        "architecture": "ConvNeXT",
        "stages": len(config.depths),
        "depths": list(config.depths),
        "hidden_sizes": list(config.hidden_sizes),
        "layers": sum(config.depths),
        "patch_size": config.patch_size,
        "layer_scale": config.layer_scale_init_value > 0,
    }


_IMAGENET_STANDARD = [0.5, 0.5, 0.5]
FAMILIES: dict[str, _Family] = {
    "vit": _Family(
        build=_build_vit,
        adapt=vit.adapt,
        processor_defaults={
            "size": {"height": 224, "width": 224},
            "resample": BILINEAR,
            "image_mean": _IMAGENET_STANDARD,
            "image_std": _IMAGENET_STANDARD,
        },
        default_to_square=True,
        uses_crop_pct=False,
        describe=_describe_vit,
    ),
    "convnext": _Family(
        build=_build_convnext,
        adapt=None,
        processor_defaults={
            "size": {"shortest_edge": 384},
            "crop_pct": 224 / 256,
            "resample": BICUBIC,
            "image_mean": _IMAGENET_STANDARD,
            "image_std": _IMAGENET_STANDARD,
        },
        default_to_square=False,
        uses_crop_pct=True,
        describe=_describe_convnext,
    ),
}


@dataclass
class ImageClassificationResult(Result):
    """The top labels, best first: [{"label": str, "score": float}, ...]."""

    labels: list[dict[str, Any]] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the upright input

    def to_json(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.labels]


class ImageClassification(Task):
    name = "image-classification"
    title = "Image classification"
    modality = "vision"
    input_kind = "image"
    default_model = "google/vit-base-patch16-224"
    suggested_models = (
        "google/vit-base-patch16-224",
        "google/vit-base-patch16-384",
        "facebook/convnext-tiny-224",
        "facebook/convnext-base-224",
    )
    extra_files = ("preprocessor_config.json",)
    options = (
        Option("top_k", int, 5, "how many labels to return"),
        Option(
            "function_to_apply",
            str,
            "default",
            "scores from the logits: softmax, sigmoid or none; default follows the checkpoint "
            "(sigmoid for one label or multi-label, softmax otherwise)",
            choices=("default", "softmax", "sigmoid", "none"),
        ),
    )

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = require_architecture(self.config, FAMILIES, self.name)
        self.model_config, build = self.family.build(self.config)
        self.labels = id2label(self.config)
        self.processor = read_processor_config(
            self.folder, defaults=self.family.processor_defaults, default_to_square=self.family.default_to_square
        )
        if not self.family.uses_crop_pct:
            self.processor = self.processor.replace(crop_pct=None)
        self._check_input_size()
        self._table = value_table(self.processor)
        self.preprocess_on_device = image_device.use_device_path(device)
        self.model = load_model(build, self.folder, adapt=self.family.adapt, device=device, dtype=dtype)

    def _check_input_size(self) -> None:
        """A ViT sees exactly its trained grid of patches: the processor must produce it."""
        size = self.processor.size
        wanted = getattr(self.model_config, "image_size", None)
        if isinstance(wanted, tuple) and self.processor.do_resize and size.height and size.width:
            if (size.height, size.width) != wanted:
                raise CheckpointError(
                    f"preprocessor_config.json resizes to {size.height}×{size.width} but the model "
                    f"takes {wanted[0]}×{wanted[1]}"
                )

    def run(self, input: ImageSource, *, hooks: Hooks | None = None, **options: Any) -> ImageClassificationResult:
        """Classify one image: a path, file bytes, a PIL image or an HxWx3 uint8 array."""
        hooks = hooks or Hooks()
        opts = self.resolve_options(options)
        if opts["top_k"] < 1:
            raise InputError("--top-k must be at least 1")
        notes: list[str] = []
        image = load_image(input, notes=notes)
        if self.preprocess_on_device:
            pixel_values = image_device.preprocess(image, self.processor, self.device, self.dtype)
        else:
            pixel_values = preprocess(image, self.processor, self._table).to(self.device, self.dtype)
        check_cancel(hooks.cancel)
        with torch.inference_mode():
            logits = self.model(pixel_values)[0].float().cpu()  # (num_labels,)
        scores = self._scores(logits, opts["function_to_apply"])
        ranked = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        top = ranked[: min(opts["top_k"], len(ranked))]
        return ImageClassificationResult(
            labels=[{"label": self._label(i), "score": scores[i]} for i in top],
            image_size=image.size,
            warnings=notes,
        )

    def _scores(self, logits: torch.Tensor, function: str) -> list[float]:
        if function == "default":
            function = self._default_function()
        if function == "softmax":
            logits = torch.softmax(logits, dim=-1)
        elif function == "sigmoid":
            logits = torch.sigmoid(logits)
        return logits.tolist()

    def _default_function(self) -> str:
        """The pipeline's choice: raw scores for regression, sigmoid for one label or
        multi-label checkpoints, softmax for single-label ones."""
        problem = self.config.get("problem_type")
        num_labels = self.model_config.num_labels
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or num_labels == 1:
            return "sigmoid"
        return "softmax"

    def _label(self, index: int) -> str:
        return self.labels.get(index, f"LABEL_{index}")

    def info(self) -> dict[str, Any]:
        processor = self.processor
        size = processor.size
        if processor.crop_pct is not None and size.shortest_edge:
            resize = f"short side to {int(size.shortest_edge / processor.crop_pct)}, centre crop {size.shortest_edge}"
        elif size.shortest_edge:
            resize = f"short side to {size.shortest_edge}"
        else:
            resize = f"{size.height}×{size.width}"
        return {
            "model_type": self.config.get("model_type"),
            **self.family.describe(self.model_config),
            "labels": self.model_config.num_labels,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "preprocessing": f"{resize}, {_FILTER_NAMES[processor.resample]}",
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }
