"""Image classification: a picture in, the most likely labels with their scores out, as
transformers' `pipeline("image-classification")` gives them. ViT and ConvNeXT checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import image_device, probe
from engine.config import id2label
from engine.errors import CheckpointError, InputError
from engine.image import ImageSource, load_image
from engine.image_processing import input_region, preprocess, resample_name, value_table
from engine.models.convnext import ConvNextForImageClassification
from engine.models.vit import ViTForImageClassification
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, Hooks, Option, Task, find_family
from engine.tasks.classification_inside import inside_of
from engine.tasks.labels import LabelScore, ScoredLabels, apply_function, default_function, label_name
from engine.tasks.vision_common import FAMILIES, read_processor

@dataclass
class ImageClassificationResult(ScoredLabels):
    """The top labels, best first."""

    image_size: tuple[int, int] = (0, 0)  # (width, height) of the upright input


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
        EXPLAIN,
    )

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = find_family(self.config, FAMILIES, self.name, self.title.lower())
        self.model_config = self.family.config(self.config)
        self.labels = id2label(self.config)
        self.processor = read_processor(self.folder, self.family)
        self._check_input_size()
        self._table = value_table(self.processor)
        self.preprocess_on_device = image_device.use_device_path(device)
        model = self.family.load(self.name, self.folder, self.model_config, device, dtype)
        if not isinstance(model, (ViTForImageClassification, ConvNextForImageClassification)):
            raise TypeError(f"image classification expects ViT or ConvNeXT, not {type(model).__name__}")
        self.model = model

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
        inside = inside_of(self.model)
        with torch.inference_mode(), probe.maybe_watching(opts["explain"], self.model, inside.keep,
                                                          taps=inside.taps) as watched:
            features = self.model.forward_features(pixel_values)
            batch_logits = self.model.forward_head(features)
        logits = batch_logits[0].float().cpu()  # (num_labels,)
        function = opts["function_to_apply"]
        if function == "default":
            function = default_function(self.config.get("problem_type"), self.model_config.num_labels)
        scores = apply_function(logits, function).tolist()
        ranked = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        top = ranked[: min(opts["top_k"], len(ranked))]
        internals = {}
        if watched is not None:
            with torch.inference_mode():
                internals = inside.internals(watched.records, features, batch_logits, top)
            region = input_region(image.height, image.width, self.processor)
            internals["map_region"] = np.array(region, dtype=np.float32)
        return ImageClassificationResult(
            labels=[LabelScore(label=label_name(self.labels, i), score=scores[i]) for i in top],
            image_size=image.size,
            warnings=notes,
            internals=internals,
        )

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
            "parameters": self.parameter_count(),
            "preprocessing": f"{resize}, {resample_name(processor.resample)}",
            **self.runtime_facts(),
        }
