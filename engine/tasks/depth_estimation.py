"""Depth estimation: a picture in, one depth value per pixel of it out, as transformers'
depth-estimation pipeline gives them (`predicted_depth` at the original size and `depth`, its
8-bit picture). Depth Anything (V1 and V2) and GLPN checkpoints.

Pre-processing follows each family's image processor (PIL backend). DPTImageProcessor (Depth
Anything): scaled toward `size` by the one factor nearer 1 (`keep_aspect_ratio`), each side
rounded to a multiple of `ensure_multiple_of` (14, a patch), bicubic, ImageNet mean and std; with
`do_pad` and `size_divisor`, centre-padded to multiples of it. GLPNImageProcessor: each side
rounded down to a multiple of `size_divisor` (32), resampled as the file says (bilinear), rescaled
to 0..1 and not normalised. Post-processing follows `post_process_depth_estimation` (bicubic to the
original size) and the pipeline's picture (min-max scaled to 0..255, truncated).

What the numbers mean depends on the checkpoint (`depth_estimation_type`): a metric model gives
metres (at most `max_depth`); a relative one gives an unscaled inverse depth, where larger
means nearer and only ratios within one picture carry meaning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine import image_device
from engine import image_processing as processing
from engine.errors import InputError
from engine.image import ImageSource, load_image
from engine.point_cloud import DEFAULT_FIELD_OF_VIEW, PointCloud, back_project, write_ply
from engine.runtime import check_cancel
from engine.tasks.base import Hooks, Result, Task, find_family
from engine.tasks.vision_common import FAMILIES, read_processor

UNITS = {"metric": "metres", "relative": "relative inverse depth (larger is nearer)"}


@dataclass
class DepthResult(Result):
    """One picture's depth. `predicted_depth` is (height, width) float32 at the original size;
    `depth` the pipeline's 8-bit picture of it (nearest white, for relative depth; farthest
    white, for metric); `decoder_levels` the mean over channels of each map the decoder hands
    on toward the head (the DPT neck's four fused maps, GLPN's four decoder stages), coarsest
    first, each at its own resolution (what "inside the model" shows)."""

    predicted_depth: np.ndarray
    depth: np.ndarray
    kind: str  # "metric" or "relative"
    image_size: tuple[int, int]  # (width, height) of the upright input
    model_input_size: tuple[int, int]  # (width, height) the model saw
    decoder_levels: list[np.ndarray] = field(default_factory=list)
    photo: np.ndarray | None = None  # (height, width, 3) uint8: the upright input, for the point cloud
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "min": float(self.predicted_depth.min()), "max": float(self.predicted_depth.max())}

    def gist(self) -> Any:
        """Where the picture is nearest and farthest, on a 4×4 grid of its mean depths: the
        values themselves move a little with precision."""
        rows, columns = (np.array_split(np.arange(n), 4) for n in self.predicted_depth.shape)
        means = np.array([[self.predicted_depth[np.ix_(r, c)].mean() for c in columns] for r in rows])
        return self.kind, int(means.argmax()), int(means.argmin())

    def write_files(self, folder: Path, stem: str = "") -> dict[str, Any]:
        """The JSON with the paths of the depth files `save_depth` writes and of the point
        cloud `save_ply` writes (`depth.ply` or `STEM-depth.ply`; the CLI's `--output-dir`)."""
        written = self.save_depth(folder, stem)
        cloud = self.save_ply(Path(folder) / (f"{stem}-depth.ply" if stem else "depth.ply"))
        return {**self.to_json(), **written, "point_cloud": str(cloud)}

    def point_cloud(self, *, field_of_view: float = DEFAULT_FIELD_OF_VIEW, step: int = 1) -> PointCloud:
        """The photo lifted by its depth (see `engine.point_cloud`): one point per kept pixel,
        every `step`-th row and column, through a pinhole camera seeing `field_of_view` degrees
        across."""
        if self.photo is None:
            raise InputError("this depth result has no photo to colour a point cloud with")
        return back_project(self.predicted_depth, self.kind, self.photo, field_of_view=field_of_view, step=step)

    def save_ply(self, path: Path, *, field_of_view: float = DEFAULT_FIELD_OF_VIEW, step: int = 1,
                 binary: bool = True) -> Path:
        """Write `point_cloud(...)` as a PLY file at `path` (its folder made if missing)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cloud = self.point_cloud(field_of_view=field_of_view, step=step)
        what = "metres" if self.kind == "metric" else "relative depth as 1.1 / (normalised inverse depth + 0.1)"
        return write_ply(path, cloud, binary=binary, comments=(
            f"depth: {what}", f"horizontal field of view: {field_of_view:g} degrees",
            f"every {step} pixel(s) of a {self.image_size[0]}x{self.image_size[1]} photo"))

    def save_depth(self, folder: Path, stem: str = "") -> dict[str, str]:
        """Write `depth.npy` (float32, the original size) and `depth.png` (the 8-bit picture),
        or `STEM-depth.npy` and `STEM-depth.png`, into `folder`, made if missing; returns their
        paths under the pipeline's keys."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{stem}-depth" if stem else "depth"
        array, picture = folder / f"{name}.npy", folder / f"{name}.png"
        np.save(array, self.predicted_depth.astype(np.float32, copy=False))
        Image.fromarray(self.depth).save(picture)  # uint8 (H, W): mode L
        return {"predicted_depth": str(array), "depth": str(picture)}


class DepthModel(Protocol):
    """What the task asks of a depth family's model (Depth Anything's and GLPN's)."""

    def fuse_for_inference(self) -> None:
        """Rearrange the loaded weights for speed."""

    def forward_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> the maps the head reads, coarsest first."""

    def forward_head(self, features: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """Those maps, for an input of `height` x `width` pixels -> (B, h, w) depth."""


# --------------------------------------------------------------------------- pre-processing


def pad_to_multiple(pixels: torch.Tensor, divisor: int) -> torch.Tensor:
    """(B, C, H, W) zero-padded to multiples of `divisor` on both sides, the odd pixel at the
    bottom and right, as DPTImageProcessor's `do_pad` does after normalising."""
    height, width = pixels.shape[-2:]
    extra_height, extra_width = -height % divisor, -width % divisor
    top, left = extra_height // 2, extra_width // 2
    return F.pad(pixels, (left, extra_width - left, top, extra_height - top))


# -------------------------------------------------------------------------- post-processing


def resize_depth(depth: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(h, w) depth -> (height, width) float32, bicubic, as `post_process_depth_estimation`."""
    return F.interpolate(depth.float()[None, None], size=(height, width), mode="bicubic", align_corners=False)[0, 0]


def depth_picture(depth: np.ndarray) -> np.ndarray:
    """The pipeline's 8-bit picture of (H, W) float32 depth: min-max scaled to 0..1 in float32,
    times 255, truncated. A constant map (where the pipeline divides by zero) is all black."""
    low, high = depth.min(), depth.max()
    if high == low:
        return np.zeros(depth.shape, dtype=np.uint8)
    return ((depth - low) / (high - low) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------- the task


class DepthEstimation(Task):
    """Estimate depth with Depth Anything (Yang et al., 2024): DINOv2 features reassembled and
    fused by a DPT neck into a per-pixel depth map; or with GLPN (Kim et al., 2022): a Mix
    Transformer encoder and a light decoder giving metres."""

    name = "depth-estimation"
    title = "Depth estimation"
    modality = "vision"
    input_kind = "image"
    default_model = "depth-anything/Depth-Anything-V2-Small-hf"
    suggested_models = (
        "depth-anything/Depth-Anything-V2-Small-hf",
        "depth-anything/Depth-Anything-V2-Base-hf",
        "depth-anything/Depth-Anything-V2-Large-hf",
        "vinvino02/glpn-nyu",
        "vinvino02/glpn-kitti",
    )
    extra_files = ("preprocessor_config.json",)
    output_files = ("the depth as .npy (float32) and as the pipeline's 8-bit PNG, and a .ply point cloud "
                    "coloured by the photo (60° field of view)")

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = find_family(self.config, FAMILIES, self.name, self.name)
        self.model_config = self.family.config(self.config)
        self.processor = read_processor(self.folder, self.family)
        self._table = processing.value_table(self.processor)
        self.preprocess_on_device = image_device.use_device_path(device)
        self.model = self.family.load(self.name, self.folder, self.model_config, device, dtype)
        cast(DepthModel, self.model).fuse_for_inference()  # every family's depth-estimation head has it

    @property
    def kind(self) -> str:
        """"metric" (metres) or "relative" (unscaled inverse depth), from config.json."""
        return str(self.model_config.kind)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """(1, 3, H, W) pixel values on the model's device for one upright RGB image."""
        if self.preprocess_on_device:
            pixels = image_device.preprocess(image, self.processor, self.device, self.dtype)
        else:
            pixels = processing.preprocess(image, self.processor, self._table).to(self.device, self.dtype)
        if self.processor.do_pad and self.processor.size_divisor:
            pixels = pad_to_multiple(pixels, self.processor.size_divisor)
        return pixels

    def run(self, input: ImageSource, *, hooks: Hooks | None = None, **options: Any) -> DepthResult:
        """Depth of one image: a path, file bytes, a PIL image or an HxWx3 uint8 array."""
        hooks = hooks or Hooks()
        self.resolve_options(options)
        notes: list[str] = []
        started = time.perf_counter()
        image = load_image(input, notes=notes)
        pixels = self.preprocess(image)
        prepared = time.perf_counter()
        check_cancel(hooks.cancel)
        height, width = pixels.shape[-2:]
        model = cast(DepthModel, self.model)
        with torch.inference_mode():
            fused = model.forward_features(pixels)
            depth = model.forward_head(fused, height, width)
            levels = [level[0].float().mean(dim=0).cpu().numpy() for level in fused]
            resized = resize_depth(depth[0], image.height, image.width).cpu().numpy()
        predicted = time.perf_counter()
        picture = depth_picture(resized)
        return DepthResult(
            predicted_depth=resized,
            depth=picture,
            kind=self.kind,
            image_size=image.size,
            model_input_size=(width, height),
            decoder_levels=levels,
            photo=np.asarray(image),
            timings={"preprocess": prepared - started, "model": predicted - prepared,
                     "picture": time.perf_counter() - predicted},
            warnings=notes,
        )

    def info(self) -> dict[str, Any]:
        processor = self.processor
        size = processor.size
        if processor.round_down_to is not None:
            resize = (f"sides cut down to multiples of {processor.round_down_to}, "
                      f"{processing.resample_name(processor.resample)}, rescaled to 0..1 only")
        elif processor.keep_aspect_ratio:
            resize = f"shape kept, scaled toward {size.width}×{size.height}"
        else:
            resize = f"{size.width}×{size.height}"
        if processor.ensure_multiple_of > 1:
            resize += f", sides in multiples of {processor.ensure_multiple_of}"
        return {
            "model_type": self.config.get("model_type"),
            **self.family.describe(self.model_config),
            "output": UNITS[self.kind],
            "parameters": self.parameter_count(),
            "preprocessing": resize,
            **self.runtime_facts(),
        }
