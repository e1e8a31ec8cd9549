"""Segments: what image segmentation returns, and the post-processing that makes them from a
model's raw outputs, equal to transformers' `post_process_semantic_segmentation` and its
image-segmentation pipeline.

A result keeps the model's raw outputs, so other options re-run only the post-processing
(`Segmentation.with_options`), and one map of segment ids at the original size, from which each
segment's mask is cut when it is asked for (`Segmentation.mask`), not before.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.errors import InputError
from engine.tasks.base import Result
from engine.tasks.class_map import class_map
from engine.tasks.labels import label_name

SUBTASKS = ("panoptic", "instance", "semantic")  # the pipeline's order of preference
THRESHOLDS = ("threshold", "mask_threshold", "overlap_mask_area_threshold")


@dataclass(frozen=True)
class Segment:
    """One segment. `id` is its value in the result's segmentation map; `bbox` is
    (x0, y0, x1, y1) in the original image's pixels, x1 and y1 one past the last pixel (as
    PIL's `getbbox`); `score` is None for semantic segments, as the pipeline has it; `query`
    is the index of the query that made it (Mask2Former's instance and panoptic segments; the
    first of a fused panoptic segment's queries), None elsewhere."""

    id: int
    label_id: int
    label: str
    score: float | None
    area: int
    bbox: tuple[int, int, int, int]
    query: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "label": self.label, "area": self.area, "bbox": list(self.bbox)}


#: (the model's outputs, (height, width) of the original, options (`check_options`)) ->
#: (segmentation map on the CPU, segments)
Postprocess = Callable[[Mapping[str, torch.Tensor], tuple[int, int], Mapping[str, Any]],
                       tuple[torch.Tensor, list[Segment]]]


def check_options(options: Mapping[str, Any], subtasks: Sequence[str]) -> dict[str, Any]:
    """The post-processing options with `subtask` resolved ("default" or None: the first of
    `subtasks`, the ones the checkpoint offers, as the pipeline picks) and each threshold
    checked to lie within 0..1; `InputError` otherwise."""
    checked = dict(options)
    subtask = checked.get("subtask") or "default"
    if subtask == "default":
        subtask = subtasks[0]
    elif subtask not in subtasks:
        offered = " and ".join(subtasks)
        raise InputError(f"this checkpoint does {offered} segmentation only, not {subtask}")
    checked["subtask"] = subtask
    for name in THRESHOLDS:
        value = checked.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise InputError(f"--{name.replace('_', '-')} must lie between 0 and 1")
    return checked


@dataclass
class Segmentation(Result):
    """The segments of one image, in the pipeline's order, and what made them.

    `segmentation` is the (height, width) int32 map of segment ids at the original size;
    `outputs` the model's raw outputs for this image on the CPU, which `with_options`
    post-processes again and `score_maps` reads: SegFormer's `logits`, the (num_labels, H/4,
    W/4) class scores before the softmax; Mask2Former's `class_logits` (queries,
    num_labels + 1, the last "no object") and `mask_logits` (queries, H/4, W/4).

    With the run option `explain` (Mask2Former), the predictions after every decoder layer are
    kept for the app's inside view: `query_layers`, per layer (the first before any layer) each
    query's mask probabilities at the masks' resolution, (queries, H/4, W/4) float16; and
    `query_layer_logits`, (layers, queries, num_labels + 1) float32 class logits. Both are None
    otherwise."""

    segments: list[Segment]
    segmentation: torch.Tensor
    options: dict[str, Any]  # what these segments were made with (see `check_options`)
    subtasks: tuple[str, ...]  # what the checkpoint offers
    outputs: dict[str, torch.Tensor]
    image_size: tuple[int, int]  # (width, height) of the original image
    model_input_size: tuple[int, int]  # (width, height) the model saw
    postprocess: Postprocess = field(repr=False, compare=False)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    query_layers: list[np.ndarray] | None = field(default=None, repr=False, compare=False)
    query_layer_logits: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def subtask(self) -> str:
        return self.options["subtask"]

    def to_json(self) -> list[dict[str, Any]]:
        return [segment.to_json() for segment in self.segments]

    def gist(self) -> Any:
        """The classes found, in order: areas and boxes move by a few pixels with precision."""
        return [segment.label for segment in self.segments]

    def mask(self, segment: Segment) -> np.ndarray:
        """(height, width) bool: the pixels of `segment`."""
        return (self.segmentation == segment.id).numpy()

    def mask_image(self, segment: Segment) -> Image.Image:
        """The pipeline's mask: an 8-bit greyscale image of the original size, 255 on the
        segment and 0 elsewhere."""
        return Image.fromarray(self.mask(segment).astype(np.uint8) * 255, mode="L")

    def write_files(self, folder: Path, stem: str) -> list[dict[str, Any]]:
        """Each segment's mask as `STEM-NN-LABEL.png` in `folder`; the JSON with a `mask` key
        holding each file's path."""
        entries = []
        for index, segment in enumerate(self.segments):
            path = Path(folder) / f"{stem}-{index:02d}-{_file_name(segment.label)}.png"
            self.mask_image(segment).save(path)
            entries.append({**segment.to_json(), "mask": str(path)})
        return entries

    def score_maps(self) -> torch.Tensor:
        """(num_labels, H/4, W/4): each class's probability at each position of the model's
        output grid, what the model saw before upsampling: a softmax over the classes
        (SegFormer), or the sum over queries of class times mask probability (Mask2Former)."""
        if "logits" in self.outputs:
            return self.outputs["logits"].softmax(0)
        classes = self.outputs["class_logits"].softmax(-1)[:, :-1]  # without "no object"
        return torch.einsum("qc,qhw->chw", classes, self.outputs["mask_logits"].sigmoid())

    def with_options(self, **changes: Any) -> Segmentation:
        """These outputs post-processed with other options (`subtask`, `threshold`,
        `mask_threshold`, `overlap_mask_area_threshold`); the model does not run again, so
        `explain` cannot change."""
        if "explain" in changes and changes["explain"] != self.options.get("explain", False):
            raise InputError("explain keeps the model's internals during a run: run the model again for it")
        options = check_options({**self.options, **changes}, self.subtasks)
        if options == self.options or options["subtask"] == self.subtask == "semantic":
            return dataclasses.replace(self, options=options)  # a semantic map reads no threshold
        height, width = self.image_size[1], self.image_size[0]
        segmentation, segments = self.postprocess(self.outputs, (height, width), options)
        return dataclasses.replace(self, segments=segments, segmentation=segmentation, options=options)


def _file_name(label: str) -> str:
    """A label made safe for a file name: runs of anything but letters and digits become _."""
    return re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_") or "segment"


# ------------------------------------------------------------------------------ semantic


def semantic_postprocess(labels: Mapping[int, str]) -> Postprocess:
    """The post-processing of a model with per-class score maps (SegFormer): every class
    present in the upsampled argmax map is one segment, in class order."""

    def postprocess(
        outputs: Mapping[str, torch.Tensor], size: tuple[int, int], options: Mapping[str, Any]
    ) -> tuple[torch.Tensor, list[Segment]]:
        classes = class_map(outputs["logits"], size)
        return classes.cpu(), segments_of(classes, labels)

    return postprocess


def segments_of(classes: torch.Tensor, labels: Mapping[int, str]) -> list[Segment]:
    """One semantic segment per class present in the (height, width) class map, in class
    order, with its area and bounding box."""
    areas, boxes = extents(classes)
    present = torch.nonzero(areas).flatten().tolist()
    areas_list, boxes_list = areas.tolist(), boxes.tolist()
    return [
        Segment(id=c, label_id=c, label=label_name(labels, c), score=None,
                area=areas_list[c], bbox=tuple(boxes_list[c]))
        for c in present
    ]


def extents(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a (height, width) map of non-negative ids: (areas (N,), boxes (N, 4) as x0, y0,
    x1, y1 with x1 and y1 exclusive; zeros for absent ids), N = the largest id + 1. A few
    passes over the map for all ids together, on the map's device; returned on the CPU."""
    height, width = ids.shape
    ids = ids.long()
    count = int(ids.max()) + 1
    areas = torch.bincount(ids.flatten(), minlength=count)
    # which ids each row and each column holds: (height, N) and (width, N)
    in_row = torch.zeros(height, count, dtype=torch.bool, device=ids.device).scatter_(1, ids, True)
    in_column = torch.zeros(width, count, dtype=torch.bool, device=ids.device).scatter_(1, ids.t(), True)
    y0, y1 = _first_and_last(in_row.t())
    x0, x1 = _first_and_last(in_column.t())
    boxes = torch.stack((x0, y0, x1, y1), dim=1) * (areas > 0)[:, None]
    return areas.cpu(), boxes.cpu()


def _first_and_last(present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For (N, L) bool: per row, the first True index and one past the last (0, 0 if none)."""
    length = present.shape[1]
    first = present.int().argmax(1)  # argmax returns the first of the maxima
    last = length - present.flip(1).int().argmax(1)
    return first, last
