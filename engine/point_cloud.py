"""A depth map lifted into 3D: each kept pixel becomes a point coloured by the photo, placed by a
pinhole camera, and written as a PLY point cloud.

The camera sits at the origin and looks along +z; x runs right and y down, as the picture's
columns and rows do. Its focal length comes from a horizontal field of view (60° unless the
caller says otherwise: a phone's main camera is near 65°, a webcam's near 60°); pixels are
square and the principal point is the picture's centre. A pixel's centre (u + 0.5, v + 0.5) at
distance z lies at x = (u + 0.5 - W/2) * z / f, y = (v + 0.5 - H/2) * z / f.

What z is depends on the model:
- metric depth (metres) is used as it is: the distance along the camera's axis;
- relative depth is an inverse depth with an unknown scale and shift (larger is nearer). It is
  min-max normalised to n in 0..1 and turned into z = 1.1 / (n + 0.1), so the nearest point
  lies at 1 and the farthest at 11, in units of the nearest distance. The 0.1 stands in for the
  unknown shift: it keeps the far end (sky, n near 0) at a finite, plausible 11 times the
  nearest, where 1 / n would throw it to infinity. Shapes are only roughly right, as they can
  only be from relative depth.

Pixels whose value is not finite (and, for metric depth, not above zero) are skipped.

No Qt, no torch: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError

DEFAULT_FIELD_OF_VIEW = 60.0  # degrees, horizontal
RELATIVE_FLOOR = 0.1  # added to normalised inverse depth before inverting (see the module's docstring)


@dataclass(frozen=True)
class PointCloud:
    """Points in the camera's frame (x right, y down, z forward) with their photo colours."""

    points: np.ndarray  # (N, 3) float32
    colours: np.ndarray  # (N, 3) uint8
    pixels: np.ndarray  # (N, 2) int64: the (row, column) each point comes from
    unit: str  # "m" for metric depth, "relative" otherwise

    def __len__(self) -> int:
        return len(self.points)


def focal_length(width: int, field_of_view: float = DEFAULT_FIELD_OF_VIEW) -> float:
    """The focal length in pixels of a camera `width` pixels wide seeing `field_of_view`
    degrees across."""
    if not 0 < field_of_view < 180:
        raise InputError(f"the field of view must be between 0 and 180 degrees, not {field_of_view}")
    return width / 2 / math.tan(math.radians(field_of_view) / 2)


def distances(depth: np.ndarray, kind: str) -> np.ndarray:
    """(H, W) model output -> (H, W) float32 distance along the camera's axis, NaN where the
    value cannot be used: metres as they are for metric depth, the relative conversion (see the
    module's docstring) otherwise."""
    depth = np.asarray(depth, dtype=np.float32)
    if kind == "metric":
        return np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan))
    finite = np.isfinite(depth)
    if not finite.any():
        return np.full(depth.shape, np.nan, dtype=np.float32)
    low, high = float(depth[finite].min()), float(depth[finite].max())
    spread = high - low
    normalised = (depth - low) / spread if spread > 0 else np.ones_like(depth)
    z = (1 + RELATIVE_FLOOR) / (normalised + RELATIVE_FLOOR)
    return np.where(finite, z, np.float32(np.nan)).astype(np.float32)


def back_project(
    depth: np.ndarray,
    kind: str,
    photo: np.ndarray,
    *,
    field_of_view: float = DEFAULT_FIELD_OF_VIEW,
    step: int = 1,
) -> PointCloud:
    """One point per kept pixel: every `step`-th row and column of (H, W) `depth` whose value
    is usable, coloured by (H, W, 3) uint8 `photo` at the same pixel."""
    height, width = depth.shape
    if photo.shape != (height, width, 3) or photo.dtype != np.uint8:
        raise InputError(f"the photo ({photo.shape}, {photo.dtype}) must be {height}×{width}×3 uint8, as the depth")
    if step < 1:
        raise InputError(f"the subsampling step must be 1 or more, not {step}")
    focal = focal_length(width, field_of_view)
    rows, columns = np.mgrid[0:height:step, 0:width:step]  # (h, w) each
    z = distances(depth[::step, ::step], kind)
    kept = np.isfinite(z)
    rows, columns, z = rows[kept], columns[kept], z[kept]  # (N,) each
    x = (columns + 0.5 - width / 2) * z / focal
    y = (rows + 0.5 - height / 2) * z / focal
    return PointCloud(
        points=np.stack([x, y, z], axis=1).astype(np.float32),
        colours=photo[rows, columns],
        pixels=np.stack([rows, columns], axis=1),
        unit="m" if kind == "metric" else "relative",
    )


def step_for(height: int, width: int, most: int) -> int:
    """The smallest subsampling step that keeps at most `most` pixels of an image."""
    step = 1
    while -(-height // step) * -(-width // step) > most:
        step += 1
    return step


# ----- PLY -----------------------------------------------------------------------------------

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(path: Path, cloud: PointCloud, *, binary: bool = True, comments: tuple[str, ...] = ()) -> Path:
    """Write `cloud` as a PLY file (binary little-endian unless `binary` is False): one vertex
    per point with float x, y, z and uchar red, green, blue. Viewers (MeshLab, Blender, Open3D)
    take y as up and look along -z, so the file flips y and z of the camera's frame: the cloud
    opens the right way up, seen from where the photo was taken."""
    path = Path(path)
    vertices = np.empty(len(cloud), dtype=_VERTEX)
    vertices["x"] = cloud.points[:, 0]
    vertices["y"] = -cloud.points[:, 1]
    vertices["z"] = -cloud.points[:, 2]
    for index, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = cloud.colours[:, index]
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
              *(f"comment {line}" for line in comments), f"comment units: {cloud.unit}",
              f"element vertex {len(cloud)}",
              *(f"property {'float' if vertices.dtype[name].kind == 'f' else 'uchar'} {name}"
                for name in vertices.dtype.names or ()),
              "end_header"]
    with path.open("wb") as file:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            vertices.tofile(file)
        else:
            table = np.column_stack([vertices[name].astype(np.float64) for name in vertices.dtype.names or ()])
            np.savetxt(file, table, fmt="%.9g %.9g %.9g %d %d %d")  # 9 digits: float32 exactly
    return path
