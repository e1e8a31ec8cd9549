"""The 3D view's maths without Qt: where known points land, what a turn of 90° does, the zoom,
and the z-buffer keeping the nearest point. Geometry, not pixels of a picture."""

from dataclasses import replace

import numpy as np
import pytest

from app.scene3d import BACKGROUND, Orbit, Scene, grid_neighbours, project, render, rotation, spreads
from engine.point_cloud import back_project, focal_length

WIDTH, HEIGHT = 80, 60


def wall_scene(depth=2.0, width=WIDTH, height=HEIGHT, field_of_view=60.0):
    """A flat wall `depth` ahead filling a `width` x `height` photo, coloured by position."""
    photo = np.zeros((height, width, 3), dtype=np.uint8)
    photo[..., 0] = np.arange(width)[None, :] * 3
    photo[..., 1] = np.arange(height)[:, None] * 4
    cloud = back_project(np.full((height, width), depth, np.float32), "metric", photo, field_of_view=field_of_view)
    return Scene(cloud.points, cloud.colours, (width, height), focal_length(width, field_of_view)), cloud


def test_from_the_photos_viewpoint_every_point_lands_on_its_own_pixel():
    scene, cloud = wall_scene()
    projection = project(scene, Orbit(), WIDTH, HEIGHT)
    assert len(projection.kept) == len(cloud)
    rows, columns = cloud.pixels[projection.kept].T
    np.testing.assert_allclose(projection.x, columns + 0.5, atol=1e-4)  # float32 points
    np.testing.assert_allclose(projection.y, rows + 0.5, atol=1e-4)
    np.testing.assert_allclose(projection.depth, 2.0, atol=1e-9)


def test_a_view_twice_as_large_scales_the_plane_about_the_centre():
    scene, cloud = wall_scene()
    projection = project(scene, Orbit(), 2 * WIDTH, 2 * HEIGHT)
    rows, columns = cloud.pixels[projection.kept].T
    np.testing.assert_allclose(projection.x, 2 * (columns + 0.5), atol=1e-4)
    np.testing.assert_allclose(projection.y, 2 * (rows + 0.5), atol=1e-4)


def test_rotation_by_90_degrees_moves_the_axes_as_documented():
    right, down, forward = np.eye(3)
    np.testing.assert_allclose(rotation(90, 0) @ right, -forward, atol=1e-12)  # the right side comes near
    np.testing.assert_allclose(rotation(90, 0) @ forward, right, atol=1e-12)
    np.testing.assert_allclose(rotation(0, 90) @ forward, -down, atol=1e-12)  # the far side rises
    np.testing.assert_allclose(rotation(0, 90) @ down, forward, atol=1e-12)
    turn = rotation(33, -20)
    np.testing.assert_allclose(turn @ turn.T, np.eye(3), atol=1e-12)


def test_a_wall_turned_90_degrees_is_seen_edge_on():
    """Turned a quarter about the vertical axis, the wall through the centre lines up with the
    line of sight: every point lands in the middle column, its depth spread along the wall."""
    scene, cloud = wall_scene()
    projection = project(scene, Orbit(yaw=90), WIDTH, HEIGHT)
    np.testing.assert_allclose(projection.x, WIDTH / 2, atol=1e-6)
    spread = cloud.points[:, 0]  # the wall's width becomes depth: x -> -z
    np.testing.assert_allclose(np.sort(projection.depth), np.sort(2.0 - spread[projection.kept]), atol=1e-6)


def test_zoom_brings_the_viewer_nearer_and_the_picture_grows_about_the_centre():
    scene, _ = wall_scene()
    base, near = project(scene, Orbit(), WIDTH, HEIGHT), project(scene, Orbit(zoom=2), WIDTH, HEIGHT)
    np.testing.assert_allclose(near.depth, 1.0, atol=1e-9)
    np.testing.assert_allclose(near.x - WIDTH / 2, 2 * (base.x - WIDTH / 2), atol=1e-6)


def test_points_behind_the_viewer_are_dropped():
    points = np.array([[0, 0, 1.0], [0, 0, 3.0], [0, 0, 5.0]], dtype=np.float32)  # centre at 3
    scene = Scene(points, np.zeros((3, 3), np.uint8), (WIDTH, HEIGHT), focal_length(WIDTH))
    projection = project(scene, Orbit(zoom=2), WIDTH, HEIGHT)  # viewer 1.5 before the centre
    assert projection.kept.tolist() == [1, 2]


def test_the_nearest_point_wins_a_pixel_whatever_the_order():
    points = np.array([[0, 0, 4.0], [0, 0, 2.0], [0, 0, 3.0]], dtype=np.float32)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1]):
        scene = Scene(points[order], colours[order], (WIDTH, HEIGHT), focal_length(WIDTH))
        image = render(scene, Orbit(), WIDTH, HEIGHT)
        assert image[HEIGHT // 2, WIDTH // 2].tolist() == [0, 255, 0]
        assert image[0, 0].tolist() == list(BACKGROUND)


def test_the_photos_viewpoint_redraws_the_photo():
    scene, cloud = wall_scene()
    image = render(scene, Orbit(), WIDTH, HEIGHT)
    photo = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    photo[cloud.pixels[:, 0], cloud.pixels[:, 1]] = cloud.colours
    np.testing.assert_array_equal(image, photo)


def test_orbit_limits():
    assert Orbit().turned(0, 200).pitch == 89 and Orbit().turned(0, -200).pitch == -89
    assert Orbit().turned(190, 0).yaw == pytest.approx(-170)
    assert Orbit().zoomed(100).zoom == 8 and Orbit().zoomed(0.001).zoom == 0.25


def test_thinning_keeps_at_most_the_asked_count():
    scene, _ = wall_scene()
    thin = scene.thinned(1000)
    assert len(thin.points) <= 1000 and thin.spacing >= 2
    assert scene.thinned(10**6) is scene


def test_grid_neighbours_name_the_next_kept_point_right_and_down():
    depth = np.full((4, 6), 2.0, np.float32)
    depth[1, 2] = np.nan  # no usable depth: not a point, and nobody's neighbour
    cloud = back_project(depth, "metric", np.zeros((4, 6, 3), np.uint8), step=2)
    neighbours = grid_neighbours(cloud.pixels, 2)
    at = {tuple(p): i for i, p in enumerate(cloud.pixels.tolist())}
    assert neighbours[at[0, 0]].tolist() == [at[0, 2], at[2, 0]]
    assert neighbours[at[0, 4]].tolist() == [-1, at[2, 4]]  # the last column
    assert neighbours[at[2, 4]].tolist() == [-1, -1]  # the last row too


def _gaps_inside(image):
    """Background pixels with covered pixels somewhere on both sides, along their row or their
    column: cracks and stripes, not the background around the cloud."""
    covered = (image != np.array(BACKGROUND, np.uint8)).any(-1)

    def between(mask):
        before = np.maximum.accumulate(mask, axis=1)
        after = np.maximum.accumulate(mask[:, ::-1], axis=1)[:, ::-1]
        return before & after & ~mask

    return int((between(covered) | between(covered.T).T).sum())


def floor_scene(width=120, height=60, camera_height=1.0, field_of_view=60.0):
    """The lower half of a photo of a flat floor `camera_height` below the camera: far rows
    lie much further apart than near ones, the surface the photo sees at a slant."""
    focal = focal_length(width, field_of_view)
    rows = np.arange(height)[:, None] + 0.5 - height / 2
    depth = np.where(rows > 2, camera_height * focal / np.maximum(rows, 1e-6), np.nan)  # y = h on the floor
    depth = np.broadcast_to(depth, (height, width)).astype(np.float32)
    photo = np.full((height, width, 3), 200, np.uint8)
    cloud = back_project(depth, "metric", photo, field_of_view=field_of_view)
    return Scene(cloud.points, cloud.colours, (width, height), focal), cloud


@pytest.mark.parametrize("orbit", [Orbit(pitch=-60), Orbit(pitch=-45, zoom=2)])
def test_a_floor_seen_from_above_stays_closed(orbit):
    """Looking down on the floor, its far rows land many pixels apart: squares sized by
    distance alone leave stripes of background between them; sized by where each point's
    neighbours land, none."""
    scene, cloud = floor_scene()
    striped = render(scene, orbit, 160, 120)
    closed = render(replace(scene, pixels=cloud.pixels), orbit, 160, 120)
    assert _gaps_inside(striped) > 100
    assert _gaps_inside(closed) == 0


def test_close_up_the_points_become_tiles_without_cracks():
    scene, cloud = wall_scene()
    scene = replace(scene, pixels=cloud.pixels)
    image = render(scene, Orbit(zoom=8), WIDTH, HEIGHT)  # each photo pixel 8 view pixels wide
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert _gaps_inside(image) == 0 and (image != np.array(BACKGROUND, np.uint8)).any(-1).all()
    assert len(np.unique(image.reshape(-1, 3), axis=0)) <= (WIDTH // 8 + 2) * (HEIGHT // 8 + 2)


def test_a_neighbour_across_an_edge_does_not_widen_a_point():
    """A near step before a far wall: the gap between them, seen from the side, is real."""
    depth = np.full((20, 20), 4.0, np.float32)
    depth[:, :10] = 2.0
    cloud = back_project(depth, "metric", np.zeros((20, 20, 3), np.uint8))
    scene = Scene(cloud.points, cloud.colours, (20, 20), focal_length(20), pixels=cloud.pixels)
    projection = project(scene, Orbit(yaw=30), 80, 80)
    widths = spreads(scene, projection)
    plain = spreads(replace(scene, pixels=None), projection)
    edge = np.flatnonzero(cloud.pixels[projection.kept, 1] == 9)  # the near step's last column
    assert widths[edge].max() < 2 * plain[edge].max()


def test_a_thinned_grid_stays_a_grid_and_a_slanted_floor_stays_closed():
    """While the mouse drags, the cloud is thinned: every n-th row and column of its grid, so
    the squares still reach their neighbours."""
    scene, cloud = floor_scene()
    scene = replace(scene, pixels=cloud.pixels)
    thin = scene.thinned(len(cloud) // 4)
    assert len(thin.points) <= len(cloud) // 4 and thin.spacing == 2
    assert ((thin.pixels % 2) == 0).all()
    found = (thin.neighbours >= 0).mean(axis=0)
    assert found.min() > 0.9  # all but the last column and row have both
    assert _gaps_inside(render(thin, Orbit(pitch=-60), 160, 120)) == 0
