"""Saving the annotated picture (app/annotate.py): the original's size, EXIF orientation applied,
overlays at the original's coordinates and drawn thicker on a larger picture, painted off the UI
thread; the preview when the original is too large; a camera frame as it is; a clear error when
the file cannot be written. Real worker and tiny checkpoints; waits are waitSignal/waitUntil."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage, QImageReader

import app.annotate
from app.widgets.overlays import class_colour
from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    WAIT_MS,
    tab_of,
    vision_models,
    wait_for_result,
    window,
)
from tests.app.tabs.vision_models import SAMPLES
from tests.app.ui_probe import UiProbe

EXIF_ORIENTATION = 0x0112
ROTATE_90_CW = 6  # the stored pixels are shown turned a quarter clockwise


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """The street scene as big photos: 3000×2000, and 2400×1600 stored on its side with an EXIF
    tag that turns it upright; a plain 3000×2000 picture for classification."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("large-pictures")
    street = Image.open(SAMPLES / "street.jpg").convert("RGB")
    street.resize((3000, 2000), Image.Resampling.BICUBIC).save(folder / "street_3000.jpg", quality=92)
    sideways = street.resize((2400, 1600), Image.Resampling.BICUBIC).rotate(90, expand=True)  # 1600×2400
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW
    sideways.save(folder / "street_rotated.jpg", quality=92, exif=exif)
    Image.new("RGB", (3000, 2000), (200, 210, 190)).save(folder / "plain_3000.jpg", quality=95)
    return folder


def _stroke_columns(x: float, width: float) -> range:
    """The pixel columns a vertical line of `width` centred on `x` covers completely."""
    return range(math.ceil(x - width / 2), math.floor(x + width / 2))


def _export(qtbot, tab, path):
    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS) as signal:
        tab.export_image(path)
    return signal.args[0], QImage(str(path))


def _assert_left_edge_drawn(saved, box, width):
    """The box's left edge is drawn in its colour at mid-height, `width` pixels thick."""
    rect, colour = box.rect, box.colour.rgb()
    y = round(rect.center().y())
    columns = _stroke_columns(rect.left(), width)
    assert len(columns) >= math.floor(width) - 1
    assert [saved.pixelColor(x, y).rgb() for x in columns] == [colour] * len(columns)


def test_detection_exports_the_full_size_photo_off_the_ui_thread(qtbot, window, large, tmp_path):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(large / "street_3000.jpg")
    result = wait_for_result(qtbot, tab, "street_3000.jpg")
    assert result.image_size == (3000, 2000) and tab.current.preview.size() == QSize(2048, 1365)
    preview, outcome, boxes = tab.current.preview, tab.current.outcome, tab.view.boxes()
    assert boxes and boxes[0].colour == class_colour(tab._shown[0].label_id)

    with UiProbe() as probe:
        exported, saved = _export(qtbot, tab, tmp_path / "street.png")

    assert exported.error == "" and exported.note == ""
    assert saved.size() == QSize(3000, 2000)
    # lines scale with the picture: 2 px on a 1000-pixel picture, 6 px on this one
    _assert_left_edge_drawn(saved, boxes[0], 6.0)
    probe.assert_kept_turning()
    assert window.statusBar().currentMessage() == "Saved street.png (3000×2000)"
    # what the user loaded and the results are untouched
    assert tab.current.preview is preview and preview.size() == QSize(2048, 1365)
    assert tab.view.image() is preview and tab.current.outcome is outcome
    assert [(b.rect, b.text) for b in tab.view.boxes()] == [(b.rect, b.text) for b in boxes]


def test_an_exif_rotated_photo_is_exported_upright_at_its_full_size(qtbot, window, large, tmp_path):
    stored = QImageReader(str(large / "street_rotated.jpg")).size()
    assert stored == QSize(1600, 2400)  # on its side in the file
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(large / "street_rotated.jpg")
    result = wait_for_result(qtbot, tab, "street_rotated.jpg")
    assert result.image_size == (2400, 1600)
    boxes = tab.view.boxes()
    assert boxes

    _, saved = _export(qtbot, tab, tmp_path / "rotated.png")
    assert saved.size() == QSize(2400, 1600)
    _assert_left_edge_drawn(saved, boxes[0], 2.0 * 2.4)


def test_classification_exports_the_full_size_picture_with_its_label_chip(qtbot, window, large, tmp_path):
    tab = tab_of(qtbot, window, "image-classification")
    tab.open_path(large / "plain_3000.jpg")
    wait_for_result(qtbot, tab, "plain_3000.jpg")
    assert tab.view.caption()
    plain = QImage(str(large / "plain_3000.jpg"))

    _, saved = _export(qtbot, tab, tmp_path / "label.png")
    assert saved.size() == QSize(3000, 2000)
    # the chip sits 30 px (10 px × 3) from the bottom-left corner; its dark band, read down a
    # column inside its left padding, is as tall as the picture is large
    column = 40
    dark = [y for y in range(1700, 2000) if saved.pixelColor(column, y).lightness() < 100]
    assert dark and dark[-1] == pytest.approx(2000 - 30, abs=2)
    assert 0.025 * 2000 < len(dark) < 0.06 * 2000
    assert len(dark) == dark[-1] - dark[0] + 1  # one solid band
    assert saved.pixelColor(2900, 100).rgb() == plain.pixelColor(2900, 100).rgb()  # nothing else drawn


def test_a_too_large_original_is_exported_at_the_preview_size_with_a_note(qtbot, window, large, tmp_path, monkeypatch):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(large / "street_3000.jpg")
    wait_for_result(qtbot, tab, "street_3000.jpg")
    monkeypatch.setattr(app.annotate, "MAX_EXPORT_PIXELS", 5_000_000)  # the original has 6 MP

    exported, saved = _export(qtbot, tab, tmp_path / "preview.png")
    assert saved.size() == QSize(2048, 1365) == exported.size
    assert "too large" in exported.note
    assert tab.banner.kind == "warning" and "preview" in tab.banner.text() and "3000×2000" in tab.banner.text()
    box = tab.view.boxes()[0]
    x = box.rect.left() * 2048 / 3000
    y = round(box.rect.center().y() * 1365 / 2000)
    assert [saved.pixelColor(c, y).rgb() for c in _stroke_columns(x, 2 * 2.048)] != []
    assert all(saved.pixelColor(c, y).rgb() == box.colour.rgb() for c in _stroke_columns(x, 2 * 2.048))


def test_a_camera_frame_is_exported_as_it_is(qtbot, window, tmp_path):
    tab = tab_of(qtbot, window, "object-detection")
    ready = tab.start_live_sample()
    assert ready is not None
    qtbot.waitUntil(ready, timeout=WAIT_MS)
    frame = tab.view.image()

    exported, saved = _export(qtbot, tab, tmp_path / "frame.png")
    tab.stop_live()
    assert exported.error == "" and saved.size() == frame.size() == QSize(1200, 800)
    assert saved.pixelColor(5, 790).rgb() == frame.pixelColor(5, 790).rgb()  # the road, untouched


def test_a_file_that_cannot_be_written_is_an_inline_error(qtbot, window, large, tmp_path):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(large / "street_3000.jpg")
    wait_for_result(qtbot, tab, "street_3000.jpg")
    target = tmp_path / "no such folder" / "street.png"

    exported, _ = _export(qtbot, tab, target)
    assert exported.error and not target.exists()
    assert tab.banner.kind == "error" and "Could not save" in tab.banner.text()
