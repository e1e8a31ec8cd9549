"""Depth as pictures and files: colour maps for the engine's 8-bit depth picture, the depth
saved as a 16-bit PNG, a .npy array and JSON, and the photo lifted by it saved as a PLY point
cloud.

The colour maps are lookup tables of 256 colours, each interpolated from a handful of anchor
colours read off the published maps (grey, and the perceptually ordered inferno, viridis and
turbo), so the app needs no plotting library. Saving runs in the exporter's thread (it only
touches numpy, PIL and QImage), and reports as `app.annotate.Exported`.

This module imports Qt and numpy (PIL lazily, when saving), never torch.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage

from app.annotate import Exported, save_png

# anchor colours from low to high, evenly spaced
_ANCHORS: dict[str, tuple[str, ...]] = {
    "Inferno": ("#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60", "#cf4446", "#ed6925", "#fb9b06",
                "#f7d13d", "#fcffa4"),
    "Viridis": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30",
                "#fde725"),
    "Turbo": ("#30123b", "#4145ab", "#4675ed", "#39a2fc", "#1bcfd4", "#24eca6", "#61fc6c", "#a4fc3b",
              "#d1e834", "#f3c63a", "#fe9b2d", "#f36315", "#d93806", "#b11901", "#7a0403"),
    "Grey": ("#000000", "#ffffff"),
}
COLOUR_MAPS = tuple(_ANCHORS)  # the first is the default
MAX_MILLIMETRES = 65535  # the most a 16-bit PNG holds: 65.535 m


@cache
def lookup_table(name: str) -> np.ndarray:
    """(256, 3) uint8: the colour of each value of an 8-bit depth picture under map `name`."""
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _ANCHORS[name]], dtype=np.float64)
    where = np.linspace(0.0, 1.0, len(anchors))
    steps = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(steps, where, anchors[:, channel]) for channel in range(3)], axis=1)
    table = np.rint(table).astype(np.uint8)
    table.flags.writeable = False  # shared by every caller through the cache
    return table


def colourise(picture: np.ndarray, name: str, longest: int | None = None) -> np.ndarray:
    """(H, W) uint8 depth picture -> (H, W, 3) uint8 colours; with `longest`, every n-th pixel
    is kept so that the longer side is at most that (a picture for the screen, not a file)."""
    if longest is not None:
        step = max(1, -(-max(picture.shape) // longest))  # ceiling division
        picture = picture[::step, ::step]
    return lookup_table(name)[picture]


def to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> an RGB888 QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def colour_bar(name: str, length: int) -> QImage:
    """A vertical strip of map `name`, highest value at the top, `length` pixels tall."""
    values = np.linspace(255, 0, max(2, length)).round().astype(np.uint8)[:, None]  # (length, 1)
    return to_qimage(lookup_table(name)[np.repeat(values, 12, axis=1)])


# ----- files -------------------------------------------------------------------------------------


def sixteen_bit(depth: np.ndarray, kind: str) -> tuple[np.ndarray, float, float, int]:
    """(H, W) float32 depth -> (stored uint16, scale, offset, clipped count) with
    depth ≈ stored / scale + offset. Metric depth is stored in millimetres (scale 1000, offset 0;
    beyond 65.535 m it is clipped); relative depth is stretched from its minimum to its maximum
    over the whole 16-bit range."""
    depth = depth.astype(np.float64)
    if kind == "metric":
        scale, offset = 1000.0, 0.0
    else:
        low, high = float(depth.min()), float(depth.max())
        scale, offset = (MAX_MILLIMETRES / (high - low) if high > low else 1.0), low
    stored = np.rint((depth - offset) * scale)
    clipped = int(np.count_nonzero((stored > MAX_MILLIMETRES) | (stored < 0)))
    return np.clip(stored, 0, MAX_MILLIMETRES).astype(np.uint16), scale, offset, clipped


def depth_from_png(path: Path) -> np.ndarray:
    """The float depth a 16-bit PNG of `save_depth` stands for, read back with its scale."""
    from PIL import Image

    with Image.open(path) as image:
        scale, offset = float(image.text["depth_scale"]), float(image.text["depth_offset"])
        stored = np.asarray(image, dtype=np.float64)
    return stored / scale + offset


def save_depth(result: Any, path: Path) -> Exported:
    """Write `result`'s depth as `path` (a 16-bit grey PNG), `path`.npy (float32, as the model
    gave it) and `path`.json (what the numbers mean). Never raises: failures become `error`."""
    from PIL import Image, PngImagePlugin

    path = Path(path).with_suffix(".png")
    depth = result.predicted_depth
    height, width = depth.shape
    stored, scale, offset, clipped = sixteen_bit(depth, result.kind)
    meaning = "millimetres" if result.kind == "metric" else "relative inverse depth, min..max over 0..65535"
    text = {"depth_kind": result.kind, "depth_unit": result.unit, "depth_scale": repr(scale),
            "depth_offset": repr(offset), "depth_formula": "depth = stored / depth_scale + depth_offset",
            "depth_stored_as": meaning}
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    summary = {**result.to_json(), "unit": result.unit, "width": width, "height": height,
               "png": {"file": path.name, "scale": scale, "offset": offset, "stored_as": meaning},
               "npy": path.with_suffix(".npy").name}
    try:
        Image.fromarray(stored).save(path, pnginfo=info)  # uint16 (H, W): mode I;16
        np.save(path.with_suffix(".npy"), depth.astype(np.float32, copy=False))
        path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        return Exported(path, QSize(), error=f"Could not save {path}: {exc.strerror or exc}")
    note = f"{clipped:,} pixels beyond {MAX_MILLIMETRES / 1000:.3f} m were clipped" if clipped else ""
    return Exported(path, QSize(width, height), note=note)


def save_coloured(picture: np.ndarray, name: str, path: Path) -> Exported:
    """The depth picture in colour map `name` at its full size, as PNG."""
    image = to_qimage(colourise(picture, name))
    error = save_png(image, Path(path))
    if error:
        return Exported(Path(path), QSize(), error=f"Could not save {path}: {error}")
    return Exported(Path(path), image.size())


def save_point_cloud(result: Any, path: Path, field_of_view: float) -> Exported:
    """`result`'s photo lifted by its depth as a binary PLY point cloud, one vertex per pixel
    with a usable depth (see `engine.point_cloud`). Never raises: failures become `error`."""
    path = Path(path).with_suffix(".ply")
    try:
        result.save_ply(path, field_of_view=field_of_view)
    except OSError as exc:
        return Exported(path, QSize(), error=f"Could not save {path}: {exc.strerror or exc}")
    width, height = result.image_size
    return Exported(path, QSize(width, height))
