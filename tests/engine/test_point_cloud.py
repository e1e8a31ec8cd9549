"""The depth map lifted into 3D: the pinhole geometry on planes whose answer is known, the
relative-depth conversion, invalid pixels skipped, subsampling, and PLY files (binary and ASCII)
read back by a parser written here, independent of the writer."""

import math

import numpy as np
import pytest

from engine.errors import InputError
from engine.point_cloud import back_project, distances, focal_length, step_for, write_ply


def read_ply(path):
    """(format, comments, structured vertex array) of a PLY file with one vertex element."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    assert lines[0] == "ply"
    fmt = lines[1].split()[1]
    count = next(int(line.split()[2]) for line in lines if line.startswith("element vertex"))
    types = {"float": "<f4", "uchar": "u1"}
    fields = [(line.split()[2], types[line.split()[1]]) for line in lines if line.startswith("property")]
    comments = [line[len("comment "):] for line in lines if line.startswith("comment")]
    dtype = np.dtype(fields)
    if fmt == "binary_little_endian":
        assert len(data) - end == count * dtype.itemsize
        vertices = np.frombuffer(data[end:], dtype=dtype)
    else:
        table = np.loadtxt(data[end:].decode("ascii").splitlines(), ndmin=2)
        assert table.shape == (count, len(fields))
        vertices = np.empty(count, dtype=dtype)
        for column, (name, _) in enumerate(fields):
            vertices[name] = table[:, column]
    return fmt, comments, vertices


def test_the_focal_length_follows_the_field_of_view():
    assert focal_length(640, 90) == pytest.approx(320)
    assert focal_length(640, 60) == pytest.approx(320 / math.tan(math.radians(30)))
    for bad in (0, 180, -5):
        with pytest.raises(InputError, match="field of view"):
            focal_length(640, bad)


def test_a_flat_wall_lands_where_the_pinhole_puts_it():
    """A wall 2 m ahead seen 90° across: the pixel centres span x = ±(1 - 1/W) * 2 m."""
    height, width = 4, 8
    photo = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)
    cloud = back_project(np.full((height, width), 2.0, dtype=np.float32), "metric", photo, field_of_view=90)
    assert len(cloud) == height * width and cloud.unit == "m"
    assert np.all(cloud.points[:, 2] == 2.0)
    xs = cloud.points[:, 0].reshape(height, width)
    np.testing.assert_allclose(xs[0], (np.arange(width) + 0.5 - width / 2) * 2 / (width / 2), rtol=1e-6)
    ys = cloud.points[:, 1].reshape(height, width)
    np.testing.assert_allclose(ys[:, 0], (np.arange(height) + 0.5 - height / 2) * 2 / (width / 2), rtol=1e-6)
    np.testing.assert_array_equal(cloud.colours, photo.reshape(-1, 3))
    assert cloud.pixels[5].tolist() == [0, 5] and cloud.pixels[-1].tolist() == [3, 7]


def test_a_point_twice_as_far_spreads_twice_as_wide():
    depth = np.array([[1.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    cloud = back_project(depth, "metric", np.zeros((2, 2, 3), np.uint8))
    near, far = cloud.points[:2], cloud.points[2:]
    np.testing.assert_allclose(far[:, 0], 2 * near[:, 0], rtol=1e-6)  # same columns, the same ray


def test_relative_depth_becomes_distance_nearest_one_farthest_eleven():
    inverse = np.array([[0.0, 5.0, 10.0]], dtype=np.float32)  # larger is nearer
    z = distances(inverse, "relative")
    np.testing.assert_allclose(z, [[11.0, 1.1 / 0.6, 1.0]], rtol=1e-6)
    assert distances(np.full((2, 2), 3.0, dtype=np.float32), "relative").tolist() == [[1.0, 1.0]] * 2


def test_invalid_values_are_skipped():
    depth = np.array([[1.0, np.nan, 0.0], [np.inf, -1.0, 3.0]], dtype=np.float32)
    cloud = back_project(depth, "metric", np.zeros((2, 3, 3), np.uint8))
    assert cloud.pixels.tolist() == [[0, 0], [1, 2]]
    relative = back_project(depth, "relative", np.zeros((2, 3, 3), np.uint8))
    assert len(relative) == 4  # NaN and infinity go; zero and negatives are fine inverse depths


def test_every_kth_pixel_is_kept():
    cloud = back_project(np.ones((5, 7), np.float32), "metric", np.zeros((5, 7, 3), np.uint8), step=3)
    assert len(cloud) == 2 * 3
    assert sorted({r for r, _ in cloud.pixels.tolist()}) == [0, 3]
    assert sorted({c for _, c in cloud.pixels.tolist()}) == [0, 3, 6]
    assert step_for(480, 640, 76_800) == 2 and step_for(480, 640, 76_799) == 3 and step_for(4, 4, 16) == 1
    with pytest.raises(InputError, match="step"):
        back_project(np.ones((2, 2), np.float32), "metric", np.zeros((2, 2, 3), np.uint8), step=0)
    with pytest.raises(InputError, match="photo"):
        back_project(np.ones((2, 2), np.float32), "metric", np.zeros((3, 2, 3), np.uint8))


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 9.0, (37, 53)).astype(np.float32)
    depth[4, 6] = np.nan  # on the grid of every 2nd pixel
    depth[3, 5] = np.nan  # off it
    photo = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    cloud = back_project(depth, "metric", photo, step=2)
    path = write_ply(tmp_path / "cloud.ply", cloud, binary=binary, comments=("made by a test",))
    fmt, comments, vertices = read_ply(path)
    assert fmt == ("binary_little_endian" if binary else "ascii")
    assert "made by a test" in comments and "units: m" in comments
    assert len(vertices) == len(cloud) == 19 * 27 - 1
    kept = cloud.pixels
    colours = np.stack([vertices["red"], vertices["green"], vertices["blue"]], axis=1)
    np.testing.assert_array_equal(colours, photo[kept[:, 0], kept[:, 1]])
    # viewers' axes: y up, looking down -z
    np.testing.assert_array_equal(vertices["x"], cloud.points[:, 0])
    np.testing.assert_array_equal(vertices["y"], -cloud.points[:, 1])
    np.testing.assert_array_equal(vertices["z"], -depth[kept[:, 0], kept[:, 1]])
