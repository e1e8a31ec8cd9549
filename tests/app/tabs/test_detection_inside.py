"""The object-detection tab's "Inside the model" view through the real worker: a box or its row
shows its query's cross-attention (per head or averaged), a click elsewhere the encoder's
self-attention from there, and the no-object queries are listed."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    WAIT_MS,
    images,
    tab_of,
    vision_models,
    wait_for_result,
    window,
)
from tests.app.tabs.vision_models import STREET_OBJECTS


def click(view, photo_point):
    QTest.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.to_widget(photo_point).toPoint())


def test_boxes_rows_and_pixels_choose_what_the_view_shows(qtbot, window, images):
    tab = tab_of(qtbot, window, "object-detection")
    tab.inside_panel.set_open(True)
    tab.open_path(images / "street.jpg")
    result = wait_for_result(qtbot, tab, "street.jpg")
    inside = result.internals
    cross = inside["cross_attention"].astype(np.float32)  # (12 queries, 4 heads, h, w)
    view = tab.inside

    # the best box's query first (the fitted checkpoint puts STREET_OBJECTS on queries 0, 1, ...)
    assert view.chosen_query() == 0 and view.view.selected() == 0
    np.testing.assert_allclose(view.view.values(), cross[0].mean(0), rtol=1e-6)

    tab._on_row_clicked(1, 0)  # the traffic light's row (cellClicked)
    assert view.chosen_query() == 1
    np.testing.assert_allclose(view.view.values(), cross[1].mean(0), rtol=1e-6)
    view.head.setCurrentIndex(2)
    np.testing.assert_allclose(view.view.values(), cross[1, 1])

    road = QPointF(150, 700)  # below every box: the encoder's view from there
    click(view.view, road)
    assert view.chosen_query() == -1 and not view.head.isEnabled()
    h, w = cross.shape[-2:]
    x0, y0, x1, y1 = inside["map_region"]
    row, col = int((road.y() - y0) / (y1 - y0) * h), int((road.x() - x0) / (x1 - x0) * w)
    np.testing.assert_allclose(view.view.values(), inside["encoder_attention"][row * w + col].reshape(h, w))

    stop_sign = STREET_OBJECTS[0][2:]
    click(view.view, QPointF((stop_sign[0] + stop_sign[2]) / 2, (stop_sign[1] + stop_sign[3]) / 2))
    assert view.chosen_query() == 0 and view.head.isEnabled()

    empty = [q for q, c in enumerate(result.candidates) if inside["no_object"][q] > c.score]
    assert view.no_object.count() == len(empty) > 0
    item = view.no_object.item(0)
    view.no_object.itemClicked.emit(item)
    query = item.data(Qt.ItemDataRole.UserRole)
    assert query in empty and view.chosen_query() == query
    np.testing.assert_allclose(view.view.values(), cross[query, 1])  # head 2 still chosen


def test_closed_view_keeps_nothing_and_opening_runs_again(qtbot, window, images):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(images / "street.jpg")
    assert wait_for_result(qtbot, tab, "street.jpg").internals == {}
    assert tab.inside.view.values() is None
    tab.inside_panel.set_open(True)
    qtbot.waitUntil(lambda: not tab.is_busy() and bool(tab.current.outcome.result.internals), timeout=WAIT_MS)
    assert tab.inside.view.values() is not None
    tab.slider.setValue(90)  # fewer boxes: the view follows the threshold
    assert len(tab.inside._boxes) == 2
