"""The depth tab's 3D view, as arithmetic: a point cloud turned about its middle, seen through a
perspective camera, and drawn as z-buffered square splats into an RGB array.

Rendering is done here in numpy rather than with OpenGL, so the view works wherever the app
does (offscreen CI, remote desktops, machines without a GL driver). Everything is vectorised:
one matrix product places the points, and a z-buffer on the points' ranks by distance (an
unbuffered minimum per pixel) keeps the nearest at each pixel. No Qt: the widget (app/widgets/depth_scene.py) turns the array into a QImage.

Coordinates are the camera's of `engine.point_cloud` (x right, y down, z forward). The orbit
turns the cloud about a centre on the camera's axis, at the cloud's median distance; the viewer
stands on that axis at the photo camera's own distance divided by the zoom, so at yaw 0, pitch 0
and zoom 1 the view is the photo as it was taken (with the same field of view), and turning
shows its relief.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

PITCH_LIMIT = 89.0  # degrees: past straight up or down the drag would flip the picture
ZOOM_RANGE = (0.25, 8.0)
MAX_SPLAT = 12  # pixels: the largest square a point is drawn as
TYPICAL_SPLAT = 5  # pixels: when most squares would be wider, the view is drawn coarser
BACKGROUND = (24, 24, 28)


@dataclass(frozen=True)
class Orbit:
    """How the cloud is turned and how near the viewer stands: `yaw` about the vertical axis
    and `pitch` about the horizontal one, in degrees, and `zoom` (2 = twice as near)."""

    yaw: float = 0.0
    pitch: float = 0.0
    zoom: float = 1.0

    def turned(self, yaw: float, pitch: float) -> Orbit:
        """Turned by `yaw` and `pitch` more degrees; the pitch stops short of straight up or down."""
        return replace(self, yaw=(self.yaw + yaw + 180) % 360 - 180,
                       pitch=min(max(self.pitch + pitch, -PITCH_LIMIT), PITCH_LIMIT))

    def zoomed(self, factor: float) -> Orbit:
        low, high = ZOOM_RANGE
        return replace(self, zoom=min(max(self.zoom * factor, low), high))


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """(3, 3): turn by `yaw` degrees about the y axis (down), then by `pitch` about the x axis
    (right). With y down, a positive yaw takes +x toward -z (the right side comes toward the
    viewer) and a positive pitch takes +z toward -y (the far side rises)."""
    a, b = math.radians(yaw), math.radians(pitch)
    about_y = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    about_x = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return about_x @ about_y


@dataclass(frozen=True)
class Scene:
    """A point cloud ready to view: points in the camera's frame, their colours, the photo's
    size and focal length (pixels), and `spacing`, the photo pixels between neighbouring points."""

    points: np.ndarray  # (N, 3) float32
    colours: np.ndarray  # (N, 3) uint8
    image_size: tuple[int, int]  # (width, height) of the photo
    focal: float
    spacing: int = 1
    # (N, 2): the (row, column) of the photo each point comes from, on a grid `spacing` apart;
    # None for a cloud without one (its squares are then sized by distance alone)
    pixels: np.ndarray | None = None

    @property
    def centre(self) -> np.ndarray:
        """(3,): the point the orbit turns about, on the camera's axis at the median distance."""
        z = float(np.median(self.points[:, 2])) if len(self.points) else 1.0
        return np.array([0.0, 0.0, z], dtype=np.float64)

    @functools.cached_property
    def neighbours(self) -> np.ndarray | None:
        """(N, 2): each point's neighbour one grid step right and one down (`grid_neighbours`)."""
        return None if self.pixels is None else grid_neighbours(self.pixels, self.spacing)

    def thinned(self, most: int) -> Scene:
        """At most `most` points, for drawing while the mouse drags: every n-th row and column
        of the grid (so the squares still find their neighbours), or every n-th point of a
        cloud without one."""
        every = max(1, -(-len(self.points) // max(most, 1)))
        if every == 1:
            return self
        factor = int(math.ceil(math.sqrt(every)))
        if self.pixels is None:
            return replace(self, points=self.points[::every], colours=self.colours[::every],
                           spacing=self.spacing * factor)
        keep = ((self.pixels // self.spacing) % factor == 0).all(axis=1)
        return replace(self, points=self.points[keep], colours=self.colours[keep], pixels=self.pixels[keep],
                       spacing=self.spacing * factor)


def grid_neighbours(pixels: np.ndarray, step: int) -> np.ndarray:
    """(N, 2) int64: for points taken every `step`-th row and column at (N, 2) (row, column)
    `pixels`, the index of the point `step` columns to the right and of the one `step` rows
    down, -1 where that pixel was not kept (off the photo, or no usable depth)."""
    cells = pixels // step
    height, width = (int(cells[:, 0].max()) + 2, int(cells[:, 1].max()) + 2) if len(cells) else (1, 1)
    index = np.full((height, width), -1, dtype=np.int64)  # one spare row and column: no one there
    index[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    return np.stack([index[cells[:, 0], cells[:, 1] + 1], index[cells[:, 0] + 1, cells[:, 1]]], axis=1)


@dataclass(frozen=True)
class Projection:
    """Where the points land in a `width` x `height` view: pixel coordinates (x right, y down)
    and distance from the viewer, for the points in front of it (`kept` indexes the scene's)."""

    x: np.ndarray  # (M,) float
    y: np.ndarray  # (M,) float
    depth: np.ndarray  # (M,) float, > 0
    kept: np.ndarray  # (M,) int: the scene's point of each
    scale: float  # view pixels per photo pixel at the centre's distance
    zoom: float = 1.0
    focal_ratio: float = 1.0  # the view's focal length over the photo's, before fitting
    size: tuple[int, int] = (0, 0)  # (width, height) of the view it was made for


def project(scene: Scene, orbit: Orbit, width: int, height: int) -> Projection:
    """Turn the cloud about its centre by `orbit`, stand the viewer on the axis at the photo
    camera's distance over the zoom, and project with the photo's focal length scaled so that
    the photo fits the view."""
    centre = scene.centre
    turned = (scene.points.astype(np.float64) - centre) @ rotation(orbit.yaw, orbit.pitch).T  # (N, 3)
    distance = float(centre[2]) / orbit.zoom
    depth = turned[:, 2] + distance
    in_front = np.flatnonzero(depth > 0.02 * distance)
    photo_width, photo_height = scene.image_size
    fit = min(width / photo_width, height / photo_height)
    focal = scene.focal * fit
    depth = depth[in_front]
    x = width / 2 + focal * turned[in_front, 0] / depth
    y = height / 2 + focal * turned[in_front, 1] / depth
    return Projection(x, y, depth, in_front, scale=fit * orbit.zoom, zoom=orbit.zoom, size=(width, height))


#: A neighbour further than this fraction of a point's distance, per grid step, is across an
#: edge (a person before a wall), not on the same surface: the gap between them is real
EDGE = 0.25


def spreads(scene: Scene, projection: Projection) -> np.ndarray:
    """(M,) float: how far apart in view pixels each point and its neighbours land, so that its
    square covers the way to them. Without a grid, from distance alone (nearer points spread
    wider); with one, also where the right and lower neighbours on the same surface actually
    land, which is further on a surface seen at a slant (a floor, a receding wall)."""
    original = scene.points[projection.kept, 2].astype(np.float64)  # the photo camera's distance
    fit = projection.scale / max(projection.zoom, 1e-9)
    spread = fit * scene.spacing * projection.focal_ratio * original / projection.depth
    if scene.neighbours is None:
        return spread
    where = np.full(len(scene.points), -1, dtype=np.int64)  # scene point -> projection row
    where[projection.kept] = np.arange(len(projection.kept))
    across = np.zeros(len(spread))
    down = np.zeros(len(spread))
    for column, extent in ((0, across), (1, down)):
        other = scene.neighbours[projection.kept, column]
        row = np.where(other >= 0, where[np.maximum(other, 0)], -1)
        ok = np.flatnonzero(row >= 0)
        near = np.abs(scene.points[other[ok], 2] - original[ok]) <= EDGE * scene.spacing * original[ok]
        ok, row = ok[near], row[ok[near]]
        dx, dy = projection.x[row] - projection.x[ok], projection.y[row] - projection.y[ok]
        extent[ok] = np.maximum(np.abs(dx), np.abs(dy))
    return np.maximum(spread, np.maximum(across, down))


def render(scene: Scene, orbit: Orbit, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: the cloud seen through `orbit`, each point a square splat,
    the nearest point winning each pixel, on a dark background; single-pixel cracks between
    splats (surfaces seen edge-on) are filled from a neighbour.

    Zoomed in close, neighbouring points land further apart than `TYPICAL_SPLAT` pixels. Rather
    than draw ever larger squares (slower, and still cracked where the cap bites), the view is
    then drawn `coarse` times smaller and each of its pixels shown as a coarse × coarse block:
    the points become visible tiles, as pixels do in a magnified photo, and the surface stays
    closed."""
    projection = project(scene, orbit, width, height)
    spread = spreads(scene, projection)
    seen = _on_screen(projection)
    coarse = math.ceil(float(np.percentile(spread[seen], 75)) / TYPICAL_SPLAT) if seen.any() else 1
    if coarse > 1:  # the same view, drawn small: every spread shrinks by the same factor
        small = project(scene, orbit, -(-width // coarse), -(-height // coarse))
        image = _draw(scene, small, spreads(scene, small))
        return np.repeat(np.repeat(image, coarse, axis=0), coarse, axis=1)[:height, :width]
    return _draw(scene, projection, spread)


def _on_screen(projection: Projection, margin: float = 0.0) -> np.ndarray:
    """Which points land in the view (or within `margin` pixels of it)."""
    (width, height), x, y = projection.size, projection.x, projection.y
    return (x >= -margin) & (x < width + margin) & (y >= -margin) & (y < height + margin)


def _draw(scene: Scene, projection: Projection, spread: np.ndarray) -> np.ndarray:
    """The points of `projection` as squares `spread` wide (rounded up, 1 to `MAX_SPLAT`), into
    a view of the size it was made for."""
    width, height = projection.size
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    near = np.flatnonzero(_on_screen(projection, margin=MAX_SPLAT))
    if not len(near):
        return image
    sides = np.clip(np.ceil(spread[near]), 1, MAX_SPLAT).astype(np.int64)
    nearest_first = np.argsort(projection.depth[near], kind="stable")  # ranks into `near`
    sides = sides[nearest_first]
    x, y = projection.x[near][nearest_first], projection.y[near][nearest_first]
    # z-buffer on ranks: each pixel keeps the smallest rank (the nearest point) that covers it
    nobody = len(nearest_first)
    winner = np.full(height * width, nobody, dtype=np.int64)
    for side in np.unique(sides):
        group = np.flatnonzero(sides == side)  # ranks of the points drawn this size
        left = np.floor(x[group] - (side - 1) / 2).astype(np.int64)
        top = np.floor(y[group] - (side - 1) / 2).astype(np.int64)
        for dy in range(side):
            for dx in range(side):
                row, column = top + dy, left + dx
                inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
                np.minimum.at(winner, row[inside] * width + column[inside], group[inside])
    _fill_cracks(winner.reshape(height, width), nobody)
    covered = np.flatnonzero(winner < nobody)
    colours = scene.colours[projection.kept[near][nearest_first]]  # nearest first
    image.reshape(-1, 3)[covered] = colours[winner[covered]]
    return image


def _fill_cracks(winner: np.ndarray, nobody: int) -> None:
    """In place: an uncovered pixel with covered pixels on both sides (left and right, or above
    and below) takes the nearer of the two; outlines do not grow."""
    for axis in (1, 0):
        before = np.roll(winner, 1, axis=axis)
        after = np.roll(winner, -1, axis=axis)
        crack = (winner == nobody) & (before < nobody) & (after < nobody)
        if axis == 1:
            crack[:, [0, -1]] = False
        else:
            crack[[0, -1], :] = False
        winner[crack] = np.minimum(before, after)[crack]
