"""The vision families: how each image architecture is built, and what its image processor does
when preprocessor_config.json leaves a key out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine import image_processing as processing
from engine.models import convnext, depth_anything, detr, glpn, mask2former, segformer, vit
from engine.tasks.base import Family


@dataclass(frozen=True)
class VisionProcessor:
    """What differs between the families' image processors."""

    defaults: dict[str, Any]  # the processor class's own defaults, under preprocessor_config.json
    default_to_square: bool  # how the processor reads a bare int `size`
    uses_crop_pct: bool = False
    uses_multiples: bool = False  # DPT's keep_aspect_ratio, ensure_multiple_of, size_divisor
    rounds_down: bool = False  # GLPN's size_divisor: resize each side down to a multiple of it
    # the segmentation post-processing the processor offers ("panoptic", "instance",
    # "semantic"), in the pipeline's order of preference
    subtasks: tuple[str, ...] = ()
    # the model predicts a class and a mask per query (Mask2Former), which
    # `engine.tasks.query_segments` turns into segments; else one score map per class
    mask_queries: bool = False
    # Mask2Former's `size_divisor`: the resized sides are rounded up to multiples of it
    rounds_up_to_divisor: bool = False


_IMAGENET_STANDARD = (0.5, 0.5, 0.5)
_IMAGENET_DEFAULT = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

FAMILIES: dict[str, Family] = {
    "vit": Family(
        "ViT",
        vit.ViTConfig.from_json,
        {"image-classification": vit.ViTForImageClassification},
        vit.adapt,
        vit.describe,
        VisionProcessor(
            {
                "size": {"height": 224, "width": 224},
                "resample": processing.BILINEAR,
                "image_mean": _IMAGENET_STANDARD,
                "image_std": _IMAGENET_STANDARD,
            },
            default_to_square=True,
        ),
    ),
    "convnext": Family(
        "ConvNeXT",
        convnext.ConvNextConfig.from_json,
        {"image-classification": convnext.ConvNextForImageClassification},
        convnext.adapt,
        convnext.describe,
        VisionProcessor(
            {
                "size": {"shortest_edge": 384},
                "crop_pct": 224 / 256,
                "resample": processing.BICUBIC,
                "image_mean": _IMAGENET_STANDARD,
                "image_std": _IMAGENET_STANDARD,
            },
            default_to_square=False,
            uses_crop_pct=True,
        ),
    ),
    "detr": Family(
        "DETR",
        detr.DetrConfig.from_json,
        {"object-detection": detr.DetrForObjectDetection},
        detr.adapt,
        detr.describe,
        VisionProcessor(
            {
                "size": {"shortest_edge": 800, "longest_edge": 1333},
                "max_size": 1333,  # an int `size` without `max_size` is capped at 1333, as transformers does
                "resample": processing.BILINEAR,
                "image_mean": _IMAGENET_DEFAULT[0],
                "image_std": _IMAGENET_DEFAULT[1],
                "do_pad": True,
            },
            default_to_square=False,
        ),
    ),
    "depth_anything": Family(
        "Depth Anything",
        depth_anything.DepthAnythingConfig.from_json,
        {"depth-estimation": depth_anything.DepthAnythingForDepthEstimation},
        depth_anything.adapt,
        depth_anything.describe,
        VisionProcessor(  # DPTImageProcessor's; the Hub files ask for 518, multiples of 14, ImageNet's
            {
                "size": {"height": 384, "width": 384},
                "resample": processing.BICUBIC,
                "image_mean": _IMAGENET_STANDARD,
                "image_std": _IMAGENET_STANDARD,
                "keep_aspect_ratio": False,
                "ensure_multiple_of": 1,
                "do_pad": False,
            },
            default_to_square=True,
            uses_multiples=True,
        ),
    ),
    "glpn": Family(
        "GLPN",
        glpn.GLPNConfig.from_json,
        {"depth-estimation": glpn.GLPNForDepthEstimation},
        glpn.adapt,
        glpn.describe,
        VisionProcessor(  # GLPNImageProcessor's: no size, no mean or std, rescale only
            {"size_divisor": 32, "resample": processing.BILINEAR, "do_normalize": False},
            default_to_square=True,
            rounds_down=True,
        ),
    ),
    "segformer": Family(
        "SegFormer",
        segformer.SegformerConfig.from_json,
        {"image-segmentation": segformer.SegformerForSemanticSegmentation},
        segformer.adapt,
        segformer.describe,
        VisionProcessor(
            {
                "size": {"height": 512, "width": 512},
                "resample": processing.BILINEAR,
                "image_mean": _IMAGENET_DEFAULT[0],
                "image_std": _IMAGENET_DEFAULT[1],
            },
            default_to_square=True,
            subtasks=("semantic",),
        ),
    ),
    "mask2former": Family(
        "Mask2Former",
        mask2former.Mask2FormerConfig.from_json,
        {"image-segmentation": mask2former.Mask2FormerForUniversalSegmentation},
        mask2former.adapt,
        mask2former.describe,
        VisionProcessor(  # Mask2FormerImageProcessor's; the Hub files ask for 384x384
            {
                "size": {"shortest_edge": 800, "longest_edge": 1333},
                "resample": processing.BILINEAR,
                "image_mean": _IMAGENET_DEFAULT[0],
                "image_std": _IMAGENET_DEFAULT[1],
                "size_divisor": 32,
            },
            default_to_square=False,
            # the pipeline's order; any checkpoint can be post-processed all three ways
            subtasks=("panoptic", "instance", "semantic"),
            mask_queries=True,
            rounds_up_to_divisor=True,
        ),
    ),
}


def read_processor(folder: Any, family: Family) -> processing.ImageProcessorConfig:
    """preprocessor_config.json of `folder` over the family's processor defaults."""
    settings: VisionProcessor = family.processor
    config = processing.read_processor_config(
        folder, defaults=settings.defaults, default_to_square=settings.default_to_square
    )
    if not settings.uses_crop_pct:
        config = config.replace(crop_pct=None)
    if settings.rounds_up_to_divisor:
        config = config.replace(round_up_to=config.size_divisor, size_divisor=None)
    if settings.rounds_down:
        config = config.replace(round_down_to=config.size_divisor, size_divisor=None, do_pad=False)
    if not settings.uses_multiples:
        config = config.replace(keep_aspect_ratio=False, ensure_multiple_of=1, size_divisor=None)
    return config
