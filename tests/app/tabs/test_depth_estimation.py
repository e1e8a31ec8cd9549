"""The depth tab end to end on a tiny Depth Anything saved by transformers, through the real
worker: the coloured depth is the engine's picture through the chosen map, colours and views
change without a new run, the value under the mouse is the model's, the depth files round-trip,
bad input says so, and the camera feeds it. Waits are qtbot.waitUntil / waitSignal only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

import app.worker
from app.depth_maps import COLOUR_MAPS, colourise, depth_from_png, lookup_table, sixteen_bit, to_qimage
from app.webcam import StillFrames
from app.widgets.depth_view import OVERLAY, SIDE_BY_SIDE
from tests.app import conftest
from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    WAIT_MS,
    SlowTask,
    hover,
    images,
    started_jobs,
    tab_of,
    wait_for_result,
)
from tests.app.tabs.vision_models import SAMPLES, save_depth_anything

TASK = "depth-estimation"


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory):
    return save_depth_anything(tmp_path_factory.mktemp("tiny-depth"))


@pytest.fixture
def counted():
    return []


def open_depth_window(qtbot, settings, model, counted):
    """The window with the depth tab on `model`; each task the worker loads is appended to
    `counted`, which counts its runs."""
    def loader(spec, hooks):
        counted.append(SlowTask(app.worker.load_engine_task(spec, hooks), seconds=0))
        return counted[-1]

    return conftest.open_window(qtbot, settings, {TASK: model}, loader=loader, tasks=(TASK,))


@pytest.fixture
def window(qtbot, settings, depth_model, counted):
    win = open_depth_window(qtbot, settings, depth_model, counted)
    yield win
    conftest.close_window(win)


def depth_tab(qtbot, win, picture):
    tab = tab_of(qtbot, win, TASK)
    tab.open_path(picture)
    return tab, wait_for_result(qtbot, tab, picture.name)


def pixels(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 of a QImage."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def mouse(widget, kind, point, button, buttons=None):
    buttons = button if buttons is None else buttons
    event = QMouseEvent(kind, QPointF(point), QPointF(widget.mapToGlobal(point.toPoint())), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_the_coloured_depth_is_the_engines_picture_through_the_map(qtbot, window, images, depth_model):
    from engine.tasks.depth_estimation import DepthEstimation

    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    expected = DepthEstimation.load(depth_model, device="cpu").run(images / "street.jpg")
    np.testing.assert_array_equal(result.predicted_depth, expected.predicted_depth)
    np.testing.assert_array_equal(pixels(tab.depth_view.depth()), lookup_table(tab.colour_map())[expected.depth])
    assert tab.depth_view.depth().size().toTuple() == (1200, 800)
    title, top, bottom = tab.colour_bar.labels()
    assert "nearer ↑" in title and top == f"{expected.predicted_depth.max():.3g}"
    assert json.loads(tab.result_json()) == expected.to_json()
    assert [c.split("×")[0] for c in tab.levels.captions()] == [str(level.shape[1]) for level in expected.decoder_levels]
    assert "Depth Anything" in tab.how.plain_text() and "relative" in tab.how.plain_text()


def test_colour_maps_and_views_change_without_a_new_run(qtbot, window, images, counted):
    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    jobs = started_jobs(window.engine)
    runs = counted[0].runs
    for name in COLOUR_MAPS:
        tab.set_colour_map(name)
        np.testing.assert_array_equal(pixels(tab.depth_view.depth()), lookup_table(name)[result.depth])
    grey = lookup_table("Grey")
    assert (grey[:, 0] == np.arange(256)).all() and (grey == grey[:, :1]).all()

    tab.set_mode(OVERLAY)
    assert tab.depth_view.mode() == OVERLAY and tab.mode_buttons.checkedButton().text() == "Overlay"
    view = tab.depth_view
    target = view.picture_rect()
    press_at = QPointF(target.left() + 0.25 * target.width(), target.center().y())
    mouse(view, QEvent.Type.MouseButtonPress, press_at, Qt.MouseButton.LeftButton)
    assert view.split() == pytest.approx(0.25, abs=0.01)
    mouse(view, QEvent.Type.MouseMove, QPointF(target.left() + 0.8 * target.width(), target.top() + 5),
          Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
    mouse(view, QEvent.Type.MouseButtonRelease, press_at, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    assert view.split() == pytest.approx(0.8, abs=0.01)
    tab.mode_buttons.buttons()[0].click()
    assert view.mode() == SIDE_BY_SIDE

    QApplication.processEvents()
    assert counted[0].runs == runs == 1 and jobs == [] and not tab.is_busy()
    assert tab.settings.value("colour_map") == COLOUR_MAPS[-1] and tab.settings.value("view") == SIDE_BY_SIDE


def test_hovering_the_depth_reads_the_models_value_there(qtbot, window, images):
    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    view = tab.depth_view
    target = view.picture_rect()
    for fx, fy in ((0.5, 0.5), (0.1, 0.9), (0.93, 0.07)):
        point = QPointF(target.left() + fx * target.width(), target.top() + fy * target.height())
        hover(view, point)
        pixel = view.pixel_at(point)
        assert pixel.x() == pytest.approx(fx * 1200, abs=2) and pixel.y() == pytest.approx(fy * 800, abs=2)
        x, y = int(pixel.x()), int(pixel.y())
        assert tab.hover_value() == float(result.predicted_depth[y, x])
        assert f"({x}, {y})" in tab.readout.text()
    hover(view, QPointF(1, 1))  # the margin around the picture
    assert tab.hover_value() is None


def test_save_depth_writes_a_16_bit_png_the_array_and_json_that_round_trip(qtbot, window, images, tmp_path):
    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS) as done:  # written in the exporter's thread
        tab.save_depth(tmp_path / "street-depth.png")
    assert done.args[0].error == "" and done.args[0].size.toTuple() == (1200, 800)

    np.testing.assert_array_equal(np.load(tmp_path / "street-depth.npy"), result.predicted_depth)
    from PIL import Image

    with Image.open(tmp_path / "street-depth.png") as png:
        assert png.mode == "I;16" and png.size == (1200, 800) and png.text["depth_kind"] == "relative"
        stored = np.asarray(png)
    assert stored.min() == 0 and stored.max() == 65535
    depth = result.predicted_depth
    step = (depth.max() - depth.min()) / 65535
    np.testing.assert_allclose(depth_from_png(tmp_path / "street-depth.png"), depth, atol=step / 2 + 1e-6)
    described = json.loads((tmp_path / "street-depth.json").read_text(encoding="utf-8"))
    assert described["kind"] == "relative" and described["width"] == 1200 and described["npy"] == "street-depth.npy"

    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS):
        tab.export_json(tmp_path / "coloured.png")  # Ctrl+S with a .png name: the coloured depth
    saved = QImage(str(tmp_path / "coloured.png"))
    np.testing.assert_array_equal(pixels(saved), colourise(result.depth, tab.colour_map()))


def test_metric_depth_is_stored_in_millimetres_and_clipped_past_the_16_bit_range():
    depth = np.array([[0.0, 1.2344], [65.5, 70.0]], dtype=np.float32)
    stored, scale, offset, clipped = sixteen_bit(depth, "metric")
    assert (scale, offset, clipped) == (1000.0, 0.0, 1)
    assert stored.tolist() == [[0, 1234], [65500, 65535]]
    flat = sixteen_bit(np.full((2, 2), 3.0, dtype=np.float32), "relative")
    assert flat[0].tolist() == [[0, 0], [0, 0]] and flat[2] == 3.0


def test_bad_input_shows_the_banner_and_the_tab_still_works(qtbot, window, images):
    tab = tab_of(qtbot, window, TASK)
    tab.open_path(images / "garbage.png")
    qtbot.waitUntil(lambda: "not an image" in tab.banner.text() and not tab.is_busy(), timeout=WAIT_MS)
    assert tab.banner.kind == "error" and tab.depth_view.depth() is None and not tab.save_depth_button.isEnabled()
    depth_tab_result = depth_tab(qtbot, window, images / "still_life.jpg")[1]
    assert depth_tab_result.image_size == QImage(str(images / "still_life.jpg")).size().toTuple()


def test_the_camera_feeds_the_depth_view(qtbot, window):
    tab = tab_of(qtbot, window, TASK)
    frame = QImage(str(SAMPLES / "street.jpg")).scaled(240, 160)
    frames = StillFrames(frame, count=20, interval_ms=10)
    assert tab.start_live(frames)
    qtbot.waitUntil(lambda: tab.live.pump.stats.done >= 2, timeout=WAIT_MS)
    assert tab.depth_view.depth().size().toTuple() == (240, 160)
    expected = to_qimage(lookup_table(tab.colour_map())[tab.last_outcome.result.depth])
    assert tab.depth_view.depth() == expected
    tab.live.button.click()  # stop
    qtbot.waitUntil(lambda: not tab.is_live(), timeout=WAIT_MS)


def test_a_metric_model_speaks_in_metres_and_saves_millimetres(qtbot, window, images, tmp_path_factory, tmp_path):
    metric = save_depth_anything(tmp_path_factory.mktemp("tiny-metric"), depth_estimation_type="metric", max_depth=20)
    tab, _ = depth_tab(qtbot, window, images / "street.jpg")
    tab.picker.choose(str(metric))
    qtbot.waitUntil(lambda: tab.current.outcome.model.spec.ref == str(metric) and not tab.is_busy(), timeout=WAIT_MS)
    result = tab.current.outcome.result
    assert result.kind == "metric"
    title, top, bottom = tab.colour_bar.labels()
    assert title.startswith("m") and top == f"{result.predicted_depth.max():.2f} m"
    hover(tab.depth_view, tab.depth_view.picture_rect().center())
    assert tab.readout.text().endswith(" m") and "metric" in tab.how.plain_text()

    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS):
        tab.save_depth(tmp_path / "metric.png")
    from PIL import Image

    with Image.open(tmp_path / "metric.png") as png:
        assert png.text["depth_scale"] == "1000.0" and png.text["depth_offset"] == "0.0"
        stored = np.asarray(png)
    np.testing.assert_array_equal(stored, np.rint(result.predicted_depth.astype(np.float64) * 1000).astype(np.uint16))
