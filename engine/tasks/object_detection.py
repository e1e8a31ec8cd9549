"""Object detection with DETR: boxes, labels and scores in the original image's pixels, as
transformers' object-detection pipeline reports them.

Pre-processing follows DetrImageProcessor (PIL backend): short side to 800 with the long side
at most 1333, bilinear, ImageNet mean and std, images of a batch padded at the bottom and right
with a pixel mask of valid pixels. Post-processing follows `post_process_object_detection`.
The result keeps every query's best guess, so a threshold can be changed without re-running.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine import image as imaging
from engine import image_processing as processing
from engine import image_device, probe
from engine.annotate import draw_boxes
from engine.config import id2label
from engine.errors import InputError
from engine.models.detr import DetrConfig, DetrForObjectDetection
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, Hooks, Option, Result, Task, find_family
from engine.tasks.labels import label_name
from engine.tasks.vision_common import FAMILIES, read_processor

@dataclass
class Detection:
    """One query's best real class. `box` is (x0, y0, x1, y1) in the original image's pixels,
    unrounded; `to_json` truncates it to ints as the pipeline does."""

    score: float
    label: str
    label_id: int
    box: tuple[float, float, float, float]

    def to_json(self) -> dict[str, Any]:
        x0, y0, x1, y1 = (int(v) for v in self.box)
        return {"score": self.score, "label": self.label,
                "box": {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}}


@dataclass
class Detections(Result):
    """The detections above `threshold` (in query order, as the pipeline lists them), and
    `candidates`: every query's best guess, for re-filtering with `above`."""

    detections: list[Detection]
    candidates: list[Detection]
    threshold: float
    image_size: tuple[int, int]  # (width, height) of the original image
    model_input_size: tuple[int, int]  # (width, height) the model saw
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    photo: Image.Image | None = None  # the upright input, for `write_files` to draw on

    def above(self, threshold: float) -> list[Detection]:
        return [d for d in self.candidates if d.score > threshold]

    def write_files(self, folder: Path, stem: str) -> dict[str, Any]:
        """The picture with its boxes and captions as `STEM-boxes.png` in `folder`; the JSON
        with the detections and that file's path."""
        if self.photo is None:
            raise InputError("this detection result has no picture to draw its boxes on")
        path = Path(folder) / f"{stem}-boxes.png"
        captions = [(d.box, f"{d.label} {100 * d.score:.0f}%", d.label_id) for d in self.detections]
        draw_boxes(self.photo, captions).save(path)
        return {"detections": self.to_json(), "image": str(path)}

    def to_json(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self.detections]

    def gist(self) -> Any:
        """Which objects were found, as labels: boxes may move by a pixel with precision."""
        return sorted(d.label for d in self.detections)


# --------------------------------------------------------------------------- pre-processing


def pad_and_mask(pixels: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (1, 3, h, w) pixel tensors into (B, 3, H, W), zero-padded at the bottom and
    right to the largest height and width, and a (B, H, W) int64 mask with 1 on real pixels."""
    height = max(p.shape[-2] for p in pixels)
    width = max(p.shape[-1] for p in pixels)
    batch = torch.zeros(len(pixels), 3, height, width, dtype=pixels[0].dtype, device=pixels[0].device)
    mask = torch.zeros(len(pixels), height, width, dtype=torch.int64, device=pixels[0].device)
    for index, p in enumerate(pixels):
        h, w = p.shape[-2:]
        batch[index, :, :h, :w] = p[0]
        mask[index, :h, :w] = 1
    return batch, mask


def preprocess(
    images: Sequence[Image.Image],
    config: processing.ImageProcessorConfig,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel_values (B, 3, H, W) float32, pixel_mask (B, H, W) int64) for upright RGB images,
    as DetrImageProcessor makes them. With `device`, every step runs there with torch
    (`engine.image_device`) and the values come out in `dtype`."""
    if device is None:
        table = processing.value_table(config)
        pixels = [processing.preprocess(im, config, table) for im in images]
    else:
        pixels = [image_device.preprocess(im, config, device, dtype) for im in images]
    if not config.do_pad:
        if len({p.shape for p in pixels}) > 1:
            raise InputError("images of different sizes need padding, which this checkpoint turns off")
        batch = torch.cat(pixels)
        return batch, torch.ones(batch.shape[0], *batch.shape[-2:], dtype=torch.int64, device=batch.device)
    return pad_and_mask(pixels)


# -------------------------------------------------------------------------- post-processing


def postprocess(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    sizes: Sequence[tuple[int, int]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per query: the best real class's probability and index, and its box as x0 y0 x1 y1 in
    pixels of the original (height, width) in `sizes`. Shapes (B, Q), (B, Q), (B, Q, 4)."""
    probabilities = logits.float().softmax(-1)
    scores, labels = probabilities[..., :-1].max(-1)  # the last class is "no object"
    cx, cy, w, h = boxes.float().unbind(-1)
    corners = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)
    # (B, 2) as (height, width) -> (B, 1, 4) as (w, h, w, h)
    size = torch.tensor(sizes, dtype=torch.int32, device=corners.device)
    scale = torch.stack((size[:, 1], size[:, 0], size[:, 1], size[:, 0]), dim=1)[:, None, :]
    return scores, labels, corners * scale


# ------------------------------------------------------------------------- inside the model

# The backbone's output stride: one feature (and one attention key) per 32×32 input pixels.
STRIDE = 32


class DetrInside:
    """What a DETR run keeps for the "Inside the model" view (the figures of Carion et al.):

    "cross_attention" (queries, heads, h, w) float16: where each object query looked in the
    decoder's last layer, per head, at the feature map's resolution; "encoder_attention"
    (h·w, h·w) float16: the encoder's last self-attention averaged over its heads (one row per
    position of the map: where that position gathered from); the heads' average is what the
    view shows, and per head it would be eight times as large (11 MB at 800×1066). Every other
    layer's weights are dropped as they are made."""

    taps = ("model.input_projection",)

    def __init__(self, config: DetrConfig) -> None:
        self.encoder_last = f"model.encoder.layers.{config.encoder_layers - 1}.self_attn"
        self.decoder_last = f"model.decoder.layers.{config.decoder_layers - 1}.encoder_attn"
        self.grid = (0, 0)  # (h, w) of the feature map, from the tap before any attention

    def keep(self, name: str, value: torch.Tensor) -> torch.Tensor | None:
        if name == "model.input_projection":
            self.grid = (value.shape[-2], value.shape[-1])
            return None
        if name == self.encoder_last:
            return value[0].mean(0).to(torch.float16)  # (heads, h·w, h·w) -> (h·w, h·w)
        if name == self.decoder_last:
            # (heads, queries, h·w) -> (queries, heads, h, w)
            return value[0].transpose(0, 1).unflatten(-1, self.grid).to(torch.float16)
        return None

    def internals(self, records: dict[str, torch.Tensor], logits: torch.Tensor, input_size: tuple[int, int],
                  image_size: tuple[int, int]) -> dict[str, np.ndarray]:
        """The kept maps by their short names, with "no_object" (queries,): each query's
        probability of "no object", and "map_region": where the feature grid lies on the photo,
        (x0, y0, x1, y1) in its pixels (the last row and column reach past its edges when the
        input is not a multiple of 32); `input_size` and `image_size` are (width, height)."""
        kept = {"no_object": logits[0].float().softmax(-1)[:, -1].cpu().numpy()}
        for key, name in (("cross_attention", self.decoder_last), ("encoder_attention", self.encoder_last)):
            if name in records:
                kept[key] = records[name].cpu().numpy()
        (w_in, h_in), (width, height) = input_size, image_size
        h, w = self.grid
        kept["map_region"] = np.array([0, 0, w * STRIDE * width / w_in, h * STRIDE * height / h_in], dtype=np.float32)
        return kept


# ---------------------------------------------------------------------------------- the task


class ObjectDetection(Task):
    """Detect objects with a DETR checkpoint (Carion et al., 2020): a ResNet backbone, a
    transformer encoder-decoder and one box per object query."""

    name = "object-detection"
    title = "Object detection"
    modality = "vision"
    input_kind = "image"
    default_model = "facebook/detr-resnet-50"
    suggested_models = ("facebook/detr-resnet-50", "facebook/detr-resnet-101")
    extra_files = ("preprocessor_config.json",)
    output_files = "the picture with its boxes drawn (STEM-boxes.png)"
    options = (
        Option("threshold", float, 0.5, "keep boxes whose score is above this (0 to 1)"),
        EXPLAIN,
    )

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = find_family(self.config, FAMILIES, self.name, self.title.lower())
        self.model_config = self.family.config(self.config)
        model = self.family.load(self.name, self.folder, self.model_config, device, dtype)
        if not isinstance(model, DetrForObjectDetection):  # vision_common's only detection head
            raise TypeError(f"object detection expects a DETR model, not {type(model).__name__}")
        self.model = model
        self.model.fuse_for_inference()
        self.processor = read_processor(self.folder, self.family)
        self.labels = id2label(self.config)
        self.preprocess_on_device = image_device.use_device_path(device)

    def label(self, index: int) -> str:
        return label_name(self.labels, index)

    def info(self) -> dict[str, Any]:
        return {
            "architecture": "DetrForObjectDetection",
            "model_type": "detr",
            **self.family.describe(self.model_config),
            "parameters": self.parameter_count(),
            "input_size": _describe_size(self.processor.size),
            "labels": [self.label(i) for i in sorted(self.labels)],
            **self.runtime_facts(),
        }

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Detections:
        hooks = hooks or Hooks()
        opts = self.resolve_options(options)
        threshold = opts["threshold"]
        if not 0.0 <= threshold <= 1.0:
            raise InputError("--threshold must lie between 0 and 1")
        warnings: list[str] = []
        started = time.perf_counter()
        picture = imaging.load_image(input, notes=warnings)
        # one image is never padded, so its pixel mask is all ones and the model needs none
        on_device = self.device if self.preprocess_on_device else None
        pixel_values, _ = preprocess([picture], self.processor, device=on_device, dtype=self.dtype)
        prepared = time.perf_counter()
        check_cancel(hooks.cancel)
        inside = DetrInside(self.model.config)
        with torch.inference_mode():
            with probe.maybe_watching(opts["explain"], self.model, inside.keep, taps=inside.taps) as watched:
                logits, boxes = self.model(pixel_values.to(self.device, self.dtype))
            scores, labels, corners = postprocess(logits, boxes, [(picture.height, picture.width)])
        rows = zip(scores[0].tolist(), labels[0].tolist(), corners[0].tolist())  # the one image's queries
        finished = time.perf_counter()
        candidates = [Detection(s, self.label(i), i, tuple(b)) for s, i, b in rows]
        return Detections(
            detections=[d for d in candidates if d.score > threshold],
            candidates=candidates,
            threshold=threshold,
            image_size=picture.size,
            model_input_size=(pixel_values.shape[-1], pixel_values.shape[-2]),
            timings={"preprocess": prepared - started, "model": finished - prepared},
            photo=picture,
            warnings=warnings,
            internals={} if watched is None else inside.internals(
                watched.records, logits, (pixel_values.shape[-1], pixel_values.shape[-2]), picture.size
            ),
        )


def _describe_size(size: processing.Size) -> str:
    if size.shortest_edge:
        cap = f", long side ≤ {size.longest_edge}" if size.longest_edge else ""
        return f"short side {size.shortest_edge}{cap}"
    if size.height and size.width:
        return f"{size.width}×{size.height}"
    return f"within {size.max_width}×{size.max_height}"
