"""The depth tab with a tiny GLPN saved by transformers, through the real worker: metres and the
decoder's four maps, the 3D view turning under a simulated drag and zooming under the wheel
(the projection changes, the model does not run again), a .ply saved from the tab that parses
with the photo's colours, and the depth read by pointing at the photo."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.scene3d import Orbit, project
from app.widgets.depth_view import SIDE_BY_SIDE, THREE_D
from tests.app import conftest
from tests.app.tabs.test_depth_estimation import counted, depth_tab, mouse, open_depth_window  # noqa: F401
from tests.app.tabs.vision_fixtures import WAIT_MS, hover, images, started_jobs  # noqa: F401
from tests.app.tabs.vision_models import save_glpn
from tests.engine.test_point_cloud import read_ply


@pytest.fixture(scope="module")
def glpn_model(tmp_path_factory):
    return save_glpn(tmp_path_factory.mktemp("tiny-glpn"))


@pytest.fixture
def window(qtbot, settings, glpn_model, counted):
    win = open_depth_window(qtbot, settings, glpn_model, counted)
    yield win
    conftest.close_window(win)


def test_glpn_gives_metres_and_its_decoders_four_maps(qtbot, window, images):
    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    assert result.kind == "metric" and result.model_input_size == (1184, 800)
    assert tab.levels.captions() == ["74×50", "148×100", "296×200", "1184×800"]
    title, top, _ = tab.colour_bar.labels()
    assert title.startswith("m") and top.endswith(" m")
    assert "GLPN" in tab.how.plain_text() and "selective feature fusion" in tab.how.plain_text()


def test_the_3d_view_turns_under_a_drag_and_zooms_under_the_wheel(qtbot, window, images, counted):
    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    runs = counted[0].runs
    tab.mode_buttons.buttons()[2].click()
    assert tab.mode() == THREE_D and tab.settings.value("view") == THREE_D and tab.reset_button.isVisible()
    scene_view = tab.scene_view
    scene = scene_view.scene()
    assert scene is not None and 0 < len(scene.points) <= 60_000
    size = (scene_view.width(), scene_view.height())
    before = project(scene, scene_view.orbit(), *size)
    first = scene_view.draw().copy()

    centre = QPointF(size[0] / 2, size[1] / 2)
    mouse(scene_view, QEvent.Type.MouseButtonPress, centre, Qt.MouseButton.LeftButton)
    mouse(scene_view, QEvent.Type.MouseMove, centre + QPointF(50, 20), Qt.MouseButton.NoButton,
          Qt.MouseButton.LeftButton)
    mouse(scene_view, QEvent.Type.MouseButtonRelease, centre + QPointF(50, 20), Qt.MouseButton.LeftButton,
          Qt.MouseButton.NoButton)
    orbit = scene_view.orbit()
    assert orbit.yaw == pytest.approx(-20) and orbit.pitch == pytest.approx(8)
    after = project(scene, orbit, *size)
    assert np.abs(after.x - before.x).max() > 5  # the points moved on the screen
    assert scene_view.draw() != first

    wheel = QWheelEvent(centre, QPointF(scene_view.mapToGlobal(centre.toPoint())), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(scene_view, wheel)
    assert scene_view.orbit().zoom == pytest.approx(1.15 ** 2)
    tab.reset_button.click()
    assert scene_view.orbit() == Orbit()

    tab.field_of_view.setValue(90)  # a new cloud, wider
    assert scene_view.scene() is not scene and scene_view.scene().focal == pytest.approx(1200 / 2)
    tab.set_mode(SIDE_BY_SIDE)
    assert tab.mode() == SIDE_BY_SIDE and not tab.reset_button.isVisible()
    QApplication.processEvents()
    assert counted[0].runs == runs == 1 and started_jobs(window.engine) == []


def test_save_writes_a_point_cloud_that_parses_with_the_photos_colours(qtbot, window, images, tmp_path):
    from PIL import Image

    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    tab.field_of_view.setValue(70)
    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS) as done:
        tab.save_depth(tmp_path / "street.ply")
    assert done.args[0].error == "" and done.args[0].path == tmp_path / "street.ply"
    fmt, comments, vertices = read_ply(tmp_path / "street.ply")
    assert fmt == "binary_little_endian" and "horizontal field of view: 70 degrees" in comments
    assert len(vertices) == 1200 * 800  # metric depth is above zero everywhere: every pixel kept
    photo = np.asarray(Image.open(images / "street.jpg").convert("RGB")).reshape(-1, 3)
    np.testing.assert_array_equal(np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1), photo)
    np.testing.assert_allclose(-vertices["z"], result.predicted_depth.ravel(), rtol=1e-6)


def test_pointing_at_the_photo_reads_the_depth_there(qtbot, window, images):
    tab, result = depth_tab(qtbot, window, images / "street.jpg")
    view = tab.view
    target = view.image_rect()
    point = QPointF(target.left() + 0.3 * target.width(), target.top() + 0.6 * target.height())
    hover(view, point)
    pixel = view.pixel_at(point)
    assert pixel.x() == pytest.approx(0.3 * 1200, abs=2) and pixel.y() == pytest.approx(0.6 * 800, abs=2)
    x, y = int(pixel.x()), int(pixel.y())
    assert tab.hover_value() == float(result.predicted_depth[y, x])
    assert tab.readout.text() == f"At ({x}, {y}): {result.predicted_depth[y, x]:.2f} m"
    hover(view, QPointF(1, 1))  # the margin around the photo
    assert tab.hover_value() is None
