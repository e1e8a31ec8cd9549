"""Image segmentation: a picture in, one mask per segment out, with its label (and, for instance
and panoptic segments, its score), as transformers' `pipeline("image-segmentation")` gives them.
SegFormer checkpoints (semantic segmentation) and Mask2Former ones (semantic, instance and
panoptic).

Pre-processing follows the checkpoint's preprocessor_config.json (SegformerImageProcessor: a
512x512 bilinear resize; Mask2FormerImageProcessor: the Hub files' 384x384, sides rounded up to
multiples of 32; both ImageNet mean and std unless it says otherwise), on the model's device
where that is an accelerator (`engine.image_device`). Post-processing is in
`engine.tasks.segments` (per-class score maps) and `engine.tasks.query_segments` (a class and a
mask per query).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import image_device
from engine.config import id2label
from engine.image import ImageSource, load_image
from engine.image_processing import preprocess, resample_name, value_table
from engine.runtime import check_cancel
from engine.tasks.base import Hooks, Option, Task, find_family
from engine.tasks.query_segments import query_postprocess
from engine.tasks.segments import SUBTASKS, THRESHOLDS, Segmentation, check_options, semantic_postprocess
from engine.tasks.vision_common import FAMILIES, read_processor


class ImageSegmentation(Task):
    """Segment an image with a SegFormer checkpoint (Xie et al., 2021), a hierarchical
    transformer encoder and an all-MLP decoder scoring every class at a quarter of the input's
    resolution; or with a Mask2Former one (Cheng et al., 2022), whose queries each predict a
    class and a mask, post-processed into semantic, instance or panoptic segments."""

    name = "image-segmentation"
    title = "Image segmentation"
    modality = "vision"
    input_kind = "image"
    default_model = "nvidia/segformer-b0-finetuned-ade-512-512"
    suggested_models = (
        "nvidia/segformer-b0-finetuned-ade-512-512",
        "nvidia/segformer-b1-finetuned-ade-512-512",
        "nvidia/segformer-b2-finetuned-ade-512-512",
        "nvidia/segformer-b4-finetuned-ade-512-512",
        "nvidia/segformer-b5-finetuned-ade-640-640",
        "nvidia/segformer-b0-finetuned-cityscapes-1024-1024",
        "nvidia/segformer-b2-finetuned-cityscapes-1024-1024",
        "nvidia/segformer-b5-finetuned-cityscapes-1024-1024",
        "facebook/mask2former-swin-tiny-coco-panoptic",
        "facebook/mask2former-swin-tiny-coco-instance",
        "facebook/mask2former-swin-tiny-ade-semantic",
        "facebook/mask2former-swin-small-coco-panoptic",
        "facebook/mask2former-swin-base-coco-panoptic",
        "facebook/mask2former-swin-large-coco-panoptic",
        "facebook/mask2former-swin-large-ade-semantic",
        "facebook/mask2former-swin-large-cityscapes-panoptic",
    )
    extra_files = ("preprocessor_config.json",)
    output_files = "one mask PNG per segment"
    options = (
        Option(
            "subtask",
            str,
            "default",
            "semantic, instance or panoptic, as far as the checkpoint offers it; default: the "
            "first it offers of panoptic, instance, semantic",
            choices=("default", *SUBTASKS),
        ),
        Option("threshold", float, 0.9, "keep segments whose score is above this (instance, panoptic)"),
        Option("mask_threshold", float, 0.5, "a pixel belongs to a mask above this probability (instance, panoptic)"),
        Option(
            "overlap_mask_area_threshold",
            float,
            0.5,
            "drop a segment when less than this share of its mask survives overlaps (panoptic)",
        ),
        Option("explain", bool, False, "keep the model's internals for the inside view"),
    )

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = find_family(self.config, FAMILIES, self.name, self.name)
        self.model_config = self.family.config(self.config)
        self.labels = id2label(self.config)
        self.processor = read_processor(self.folder, self.family)
        self.subtasks: tuple[str, ...] = self.family.processor.subtasks
        self._table = value_table(self.processor)
        self.mask_queries: bool = self.family.processor.mask_queries
        self._postprocess = (query_postprocess if self.mask_queries else semantic_postprocess)(self.labels)
        self.preprocess_on_device = image_device.use_device_path(device)
        self.model = self.family.load(self.name, self.folder, self.model_config, device, dtype)

    def offered_options(self) -> tuple[Option, ...]:
        """The options that change this checkpoint's answer: `subtask` only where it offers
        more than one, the thresholds only where it makes instance or panoptic segments."""
        wanted = set()
        if len(self.subtasks) > 1:
            wanted.add("subtask")
        if set(self.subtasks) - {"semantic"}:
            wanted.update(THRESHOLDS)
        return tuple(option for option in self.options if option.name in wanted)

    def run(self, input: ImageSource, *, hooks: Hooks | None = None, **options: Any) -> Segmentation:
        """Segment one image: a path, file bytes, a PIL image or an HxWx3 uint8 array."""
        hooks = hooks or Hooks()
        opts = check_options(self.resolve_options(options), self.subtasks)
        notes: list[str] = []
        started = time.perf_counter()
        image = load_image(input, notes=notes)
        if self.preprocess_on_device:
            pixel_values = image_device.preprocess(image, self.processor, self.device, self.dtype)
        else:
            pixel_values = preprocess(image, self.processor, self._table).to(self.device, self.dtype)
        prepared = time.perf_counter()
        check_cancel(hooks.cancel)
        layers: tuple[list[np.ndarray], np.ndarray] | None = None
        with torch.inference_mode():
            if self.mask_queries:
                predicted = self.model(pixel_values, every_layer=opts["explain"])
                # (queries, num_labels + 1) and (queries, H/4, W/4)
                outputs = {"class_logits": predicted.class_logits[0].float(),
                           "mask_logits": predicted.mask_logits[0].float()}
                if opts["explain"]:
                    layers = _layer_predictions(predicted.layer_class_logits, predicted.layer_mask_logits)
            else:
                outputs = {"logits": self.model(pixel_values)[0].float()}  # (num_labels, H/4, W/4)
            modelled = time.perf_counter()  # on an accelerator the model may still be running
            segmentation, segments = self._postprocess(outputs, (image.height, image.width), opts)
        finished = time.perf_counter()
        return Segmentation(
            segments=segments,
            segmentation=segmentation,
            options=opts,
            subtasks=self.subtasks,
            outputs={name: value.cpu() for name, value in outputs.items()},
            image_size=image.size,
            model_input_size=(pixel_values.shape[-1], pixel_values.shape[-2]),
            postprocess=self._postprocess,
            timings={"preprocess": prepared - started, "model": modelled - prepared, "postprocess": finished - modelled},
            warnings=notes,
            query_layers=layers[0] if layers else None,
            query_layer_logits=layers[1] if layers else None,
            internals={"query_masks": np.stack(layers[0]), "query_logits": layers[1]} if layers else {},
        )

    def info(self) -> dict[str, Any]:
        processor = self.processor
        size = processor.size
        resize = f"{size.height}×{size.width}" if size.height else f"short side to {size.shortest_edge}"
        return {
            "model_type": self.config.get("model_type"),
            **self.family.describe(self.model_config),
            "labels": self.model_config.num_labels,
            "subtasks": list(self.subtasks),
            "parameters": self.parameter_count(),
            "preprocessing": f"{resize}, {resample_name(processor.resample)}" if processor.do_resize
            else "none (original size)",
            **self.runtime_facts(),
        }


def _layer_predictions(
    class_logits: list[torch.Tensor] | None, mask_logits: list[torch.Tensor] | None
) -> tuple[list[np.ndarray], np.ndarray]:
    """The first image's predictions after every decoder layer, as `Segmentation` keeps them:
    each layer's (queries, H/4, W/4) mask probabilities in float16, and the (layers, queries,
    num_labels + 1) class logits in float32."""
    if class_logits is None or mask_logits is None:
        raise ValueError("the model gave no per-layer predictions")
    masks = [m[0].float().sigmoid().half().cpu().numpy() for m in mask_logits]
    return masks, torch.stack([c[0].float() for c in class_logits]).cpu().numpy()
