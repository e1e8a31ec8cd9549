"""Segments as pictures: a colour for each segment, the map of which segment covers each pixel
(at a size fit for the screen, or the original's), and the translucent layer the segmentation
tab lays over the photo, with outlines, the mouse's segment lit, one segment isolated, or the
label map alone.

Everything here is numpy on arrays the engine already made (`Segmentation.segmentation` read as
numpy); it imports Qt and numpy, never torch. The same functions paint the screen's layer and
the full-size export, so both look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtGui import QColor, QImage

from app.widgets.overlays import PALETTE

LAYER_SIDE = 1024  # longest side of the on-screen layer: sharp enough, and quick to redraw on hover
ANCHOR_SIDE = 160  # longest side of the grid on which label places are found
NO_SEGMENT_GREY = (118, 118, 118)  # the label map alone: pixels no segment covers


def segment_colours(segments: Sequence[Any]) -> np.ndarray:
    """(N, 3) uint8: one colour per segment. A class keeps its colour from picture to picture
    (the palette by class id, lighter or darker for ids past the palette's length); further
    segments of one class (instances) are told apart by lighter and darker shades of it."""
    seen: dict[int, int] = {}
    colours = np.zeros((len(segments), 3), dtype=np.uint8)
    for row, segment in enumerate(segments):
        instance = seen.get(segment.label_id, 0)
        seen[segment.label_id] = instance + 1
        colours[row] = _shade(_class_rgb(segment.label_id), instance)
    return colours


def _class_rgb(label_id: int) -> np.ndarray:
    base = QColor(PALETTE[label_id % len(PALETTE)])
    rgb = np.array([base.red(), base.green(), base.blue()], dtype=np.float64)
    return _shade(rgb, label_id // len(PALETTE)).astype(np.float64)


def _shade(rgb: np.ndarray, step: int) -> np.ndarray:
    """Step 0: `rgb`; then alternately lighter and darker, a little further each time."""
    if step == 0:
        return rgb.astype(np.uint8)
    amount = min(0.6, 0.28 * ((step + 1) // 2))
    towards = 255.0 if step % 2 else 0.0
    return np.rint(rgb + (towards - rgb) * amount).astype(np.uint8)


def segment_text(segment: Any) -> str:
    """What a segment's label on the picture says: its class, and its score when it has one."""
    return segment.label if segment.score is None else f"{segment.label} {100 * segment.score:.0f}%"


def top_segment(segments: list[Any]) -> int:
    """The position of the best segment: the highest score, else the largest area; -1 for none."""
    if not segments:
        return -1
    return max(range(len(segments)), key=lambda i: (segments[i].score or 0.0, segments[i].area))


def hex_colour(rgb: np.ndarray) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb))


@dataclass(frozen=True)
class IndexMap:
    """Which segment covers each pixel: `indices` (h, w) int16 holds positions in the result's
    list of segments, -1 where none; each of its pixels stands for `step`×`step` pixels of the
    original, whose size is `size` (width, height)."""

    indices: np.ndarray
    step: int
    size: tuple[int, int]

    def at(self, x: float, y: float) -> int:
        """The segment at pixel (x, y) of the original, -1 for none or off the picture."""
        row, column = int(y) // self.step, int(x) // self.step
        if 0 <= row < self.indices.shape[0] and 0 <= column < self.indices.shape[1]:
            return int(self.indices[row, column])
        return -1


def index_map(segmentation: Any, segments: Sequence[Any], longest: int | None = LAYER_SIDE) -> IndexMap:
    """The result's map of segment ids (a (H, W) array or tensor; ids need not be
    consecutive, and may be negative where nothing is) as segment positions, every n-th pixel
    kept so that the longer side is at most `longest` (None: all of them)."""
    ids = np.asarray(segmentation)
    height, width = ids.shape
    step = 1 if longest is None else max(1, -(-max(height, width) // longest))  # ceiling division
    ids = ids[::step, ::step]
    low = min(int(ids.min()), min((s.id for s in segments), default=0))
    high = max(int(ids.max()), max((s.id for s in segments), default=0))
    lookup = np.full(high - low + 1, -1, dtype=np.int16)
    for position, segment in enumerate(segments):
        lookup[segment.id - low] = position
    return IndexMap(lookup[ids - low], step, (width, height))


def layer(
    indices: np.ndarray,
    colours: np.ndarray,
    *,
    opacity: float,
    highlight: int = -1,
    isolate: int = -1,
    alone: bool = False,
    outline: int = 1,
    edge: np.ndarray | None = None,
) -> np.ndarray:
    """(h, w, 4) uint8 RGBA to lay over the photo: each segment in its colour at `opacity`, its
    outline (`outline` pixels wide, 0 for none) nearly opaque. With `highlight` that segment is
    brighter and the others fade; with `isolate` only that segment shows and the rest of the
    photo is veiled. `alone`: the label map by itself, opaque, grey where no segment is.
    `edge`: `boundary(indices, outline)` when the caller keeps it from one call to the next."""
    count = len(colours)
    fills = np.zeros((count + 1, 4), dtype=np.float64)  # row 0: no segment; row i + 1: segment i
    fills[1:, :3] = colours
    fills[1:, 3] = 1.0 if alone else opacity
    if alone:
        fills[0] = (*NO_SEGMENT_GREY, 1.0)
    edges = fills.copy()
    edges[1:, 3] = 1.0 if alone else 0.9
    edges[0, 3] = fills[0, 3]
    if 0 <= highlight < count and isolate < 0 and not alone:
        fills[1:, 3] *= 0.35
        edges[1:, 3] *= 0.4
        fills[highlight + 1, 3] = min(1.0, opacity + 0.3)
        edges[highlight + 1, 3] = 1.0
    if 0 <= isolate < count:
        hidden = np.ones(count + 1, dtype=bool)
        hidden[isolate + 1] = False
        veil = (*NO_SEGMENT_GREY, 1.0) if alone else (0.0, 0.0, 0.0, 0.65)
        fills[hidden] = veil
        edges[hidden] = veil
        fills[isolate + 1, 3] = 1.0 if alone else max(opacity, 0.45)
    fills[:, 3] *= 255
    edges[:, 3] *= 255
    rows = indices.astype(np.intp) + 1
    # one 32-bit lookup per pixel rather than four 8-bit ones
    rgba = _packed(fills)[rows]
    if outline > 0:
        edge = boundary(indices, outline) if edge is None else edge
        rgba[edge] = _packed(edges)[rows[edge]]
    return rgba.view(np.uint8).reshape(*indices.shape, 4)


def _packed(table: np.ndarray) -> np.ndarray:
    """(N, 4) RGBA values 0..255 as N 32-bit words whose bytes in memory are R, G, B, A."""
    return np.ascontiguousarray(np.rint(table).astype(np.uint8)).view(np.uint32)[:, 0]


def boundary(indices: np.ndarray, width: int = 1) -> np.ndarray:
    """(h, w) bool: pixels beside a pixel of another segment (or of none), widened to about
    `width` pixels."""
    edge = np.zeros(indices.shape, dtype=bool)
    across = indices[:, 1:] != indices[:, :-1]
    down = indices[1:, :] != indices[:-1, :]
    edge[:, 1:] |= across
    edge[:, :-1] |= across
    edge[1:, :] |= down
    edge[:-1, :] |= down
    for _ in range(max(0, width // 2 - 1)):  # each pass widens both sides by one pixel
        grown = edge.copy()
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        edge = grown
    return edge


def anchors(mapped: IndexMap, segments: Sequence[Any]) -> list[tuple[float, float]]:
    """Where each segment's label goes, in the original's pixels: its centre of mass when that
    lies on the segment, else the segment's pixel nearest to it (a ring, a crescent), found on a
    coarse grid; the middle of its box for a segment too small for the grid."""
    every = max(1, -(-max(mapped.indices.shape) // ANCHOR_SIDE))
    grid = mapped.indices[::every, ::every].astype(np.intp)
    cell = mapped.step * every  # original pixels per grid pixel
    count = len(segments)
    ys, xs = np.indices(grid.shape)
    inside = grid >= 0
    owners = grid[inside]
    areas = np.bincount(owners, minlength=count)
    sum_x = np.bincount(owners, weights=xs[inside], minlength=count)
    sum_y = np.bincount(owners, weights=ys[inside], minlength=count)
    places = []
    for position, segment in enumerate(segments):
        if areas[position] == 0:
            x0, y0, x1, y1 = segment.bbox
            places.append(((x0 + x1) / 2, (y0 + y1) / 2))
            continue
        cx, cy = sum_x[position] / areas[position], sum_y[position] / areas[position]
        row, column = int(round(cy)), int(round(cx))
        if grid[min(row, grid.shape[0] - 1), min(column, grid.shape[1] - 1)] != position:
            rows, columns = np.nonzero(grid == position)
            nearest = int(np.argmin((rows - cy) ** 2 + (columns - cx) ** 2))
            row, column = int(rows[nearest]), int(columns[nearest])
        places.append(((column + 0.5) * cell, (row + 0.5) * cell))
    return places


def rgba_image(rgba: np.ndarray) -> QImage:
    """(h, w, 4) uint8 -> an RGBA8888 QImage that owns its pixels."""
    rgba = np.ascontiguousarray(rgba)
    height, width = rgba.shape[:2]
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def heat_image(values: np.ndarray, table: np.ndarray) -> QImage:
    """(h, w) values in 0..1 through a (256, 3) colour table, as an RGB QImage."""
    levels = np.clip(np.rint(np.asarray(values, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(table[levels])
    height, width = levels.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
