"""The vision tabs end to end on tiny checkpoints saved by transformers: input from files, drops
and the clipboard; bars, boxes, the threshold slider, hover, export, and bad input. The worker is
the real one; waits are qtbot.waitUntil / waitSignal only. Live mode: test_vision_live.py."""

from __future__ import annotations

import json
import threading

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

import app.pictures
from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    VISION_TASKS,
    WAIT_MS,
    file_mime,
    hover,
    images,
    started_jobs,
    tab_of,
    vision_models,
    wait_for_result,
    window,
)
from tests.app.tabs.vision_models import STREET_OBJECTS


# ----- image classification ------------------------------------------------------------------


def test_classification_from_a_file_shows_the_engines_top_five(qtbot, window, images, vision_models):
    from engine.tasks.image_classification import ImageClassification

    tab = tab_of(qtbot, window, "image-classification")
    assert {"google/vit-base-patch16-224", "facebook/convnext-tiny-224"} <= set(tab.picker.choices())
    tab.open_path(images / "still_life.jpg")
    result = wait_for_result(qtbot, tab, "still_life.jpg")

    expected = ImageClassification.load(vision_models["image-classification"], device="cpu").run(
        images / "still_life.jpg", top_k=5
    ).to_json()
    assert [label for label, _ in tab.bars.rows()] == [e["label"] for e in expected]
    assert [score for _, score in tab.bars.rows()] == pytest.approx([e["score"] for e in expected], abs=1e-6)
    assert json.loads(tab.result_json()) == result.to_json()
    assert tab.view.image() is not None and tab.view.caption().startswith(expected[0]["label"])
    assert tab.save_image_button.isEnabled()


def test_classification_reruns_the_picture_when_the_model_changes(qtbot, window, images, vision_models):
    tab = tab_of(qtbot, window, "image-classification")
    tab.open_path(images / "still_life.jpg")
    wait_for_result(qtbot, tab, "still_life.jpg")
    assert "ViT" in tab.how.plain_text()

    tab.picker.choose(str(vision_models["convnext"]))
    qtbot.waitUntil(
        lambda: tab.current.outcome.model.spec.ref == str(vision_models["convnext"]) and not tab.is_busy(),
        timeout=WAIT_MS,
    )
    assert "ConvNeXT" in tab.how.plain_text()
    assert len(tab.bars.rows()) == 5


# ----- object detection ----------------------------------------------------------------------


def test_detection_from_a_file_draws_labelled_boxes_and_fills_the_table(qtbot, window, images):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(images / "street.jpg")
    result = wait_for_result(qtbot, tab, "street.jpg")

    above = [o for o in STREET_OBJECTS if o[1] > 0.5]  # the slider starts at 0.50
    boxes = tab.view.boxes()
    assert [b.text for b in boxes] == [f"{label} {100 * score:.0f}%" for label, score, *_ in above]
    assert [tab.table.item(r, 0).text() for r in range(tab.table.rowCount())] == [o[0] for o in above]
    stop_sign = boxes[0].rect
    assert (stop_sign.left(), stop_sign.top(), stop_sign.right(), stop_sign.bottom()) == pytest.approx(
        STREET_OBJECTS[0][2:], abs=0.5
    )
    assert result.image_size == (1200, 800)
    assert boxes[1].colour != boxes[0].colour and boxes[2].colour == boxes[3].colour  # a colour per class


def test_threshold_slider_refilters_at_once_without_a_new_job(qtbot, window, images, tmp_path):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(images / "street.jpg")
    result = wait_for_result(qtbot, tab, "street.jpg")
    jobs = started_jobs(window.engine)

    tab.slider.setValue(10)
    assert tab.table.rowCount() == len(tab.view.boxes()) == 7
    tab.slider.setValue(0)
    assert tab.table.rowCount() == len(result.candidates)
    tab.slider.setValue(90)
    assert [b.text.rsplit(" ", 1)[0] for b in tab.view.boxes()] == ["stop sign", "traffic light"]
    tab.export_json(tmp_path / "above.json")
    saved = json.loads((tmp_path / "above.json").read_text(encoding="utf-8"))
    assert saved == [d.to_json() for d in result.above(0.9)]

    QApplication.processEvents()
    assert jobs == [] and not tab.is_busy()


def test_hovering_a_box_highlights_its_row_and_hovering_a_row_its_box(qtbot, window, images):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(images / "street.jpg")
    wait_for_result(qtbot, tab, "street.jpg")

    for index in (0, 1):
        hover(tab.view, tab.view.box_rect(index).center())
        assert tab.view.highlight() == index and tab.highlighted_row() == index
    road = tab.view.image_rect()
    hover(tab.view, QPointF(road.center().x(), road.bottom() - 5))
    assert tab.view.highlight() == -1 and tab.highlighted_row() == -1

    viewport = tab.table.viewport()
    hover(viewport, QPointF(tab.table.visualItemRect(tab.table.item(2, 1)).center()))
    assert tab.view.highlight() == 2 and tab.highlighted_row() == 2
    QApplication.sendEvent(viewport, QEvent(QEvent.Type.Leave))
    assert tab.view.highlight() == -1 and tab.highlighted_row() == -1


def test_export_writes_the_annotated_picture_as_png(qtbot, window, images, tmp_path):
    tab = tab_of(qtbot, window, "object-detection")
    tab.open_path(images / "street.jpg")
    wait_for_result(qtbot, tab, "street.jpg")

    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS):  # painted and saved in a worker thread
        tab.export_json(tmp_path / "annotated.png")  # Ctrl+S with a .png name saves the picture
    saved = QImage(str(tmp_path / "annotated.png"))
    plain = tab.current.preview
    assert saved.size() == plain.size()
    # the stop sign's box runs along x = 617: drawn there, not in the plain picture
    edge = (617, 300)
    assert saved.pixelColor(*edge).rgb() != plain.pixelColor(*edge).rgb()
    assert saved.pixelColor(5, 790).rgb() == plain.convertToFormat(QImage.Format.Format_ARGB32).pixelColor(5, 790).rgb()


# ----- input: drops, the clipboard, bad files ------------------------------------------------


@pytest.mark.parametrize("task", VISION_TASKS)
def test_a_drop_of_several_files_fills_the_strip_and_each_picture_runs(qtbot, window, images, monkeypatch, task):
    decoded_in = []
    read = app.pictures.read_image
    monkeypatch.setattr(app.pictures, "read_image", lambda *a: (decoded_in.append(threading.current_thread()), read(*a))[1])
    tab = tab_of(qtbot, window, task)

    mime = file_mime(images / "street.jpg", images / "notes.txt", images / "alpha.png")
    drag = (QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter, drop = QDragEnterEvent(*drag), QDropEvent(*drag)
    QApplication.sendEvent(tab.view, enter)  # as a real drag does: Qt delivers the drop only after this
    QApplication.sendEvent(tab.view, drop)
    assert enter.isAccepted() and drop.isAccepted()
    wait_for_result(qtbot, tab, "street.jpg")
    street = tab.current.outcome
    qtbot.waitUntil(lambda: not any(p.decoding for p in tab.pictures), timeout=WAIT_MS)

    assert [p.name for p in tab.pictures] == ["street.jpg", "alpha.png"]  # notes.txt refused...
    assert "notes.txt" in tab.banner.text()  # ...with a message
    assert tab.strip.isVisible() and tab.strip.count() == 2
    assert decoded_in and threading.main_thread() not in decoded_in  # decoding stays off the UI thread

    tab.step(1)
    wait_for_result(qtbot, tab, "alpha.png")
    jobs = started_jobs(window.engine)
    tab.step(-1)  # back to a picture that already has its result: shown again, no new run
    assert tab.current.name == "street.jpg" and tab.last_outcome is street
    QApplication.processEvents()
    assert jobs == []


@pytest.mark.parametrize("task", VISION_TASKS)
def test_paste_takes_image_data_and_copied_files(qtbot, window, images, task):
    tab = tab_of(qtbot, window, task)
    clipboard = QGuiApplication.clipboard()
    picture = QImage(str(images / "street.jpg")).scaled(480, 320)
    clipboard.setImage(picture)
    tab.paste()
    result = wait_for_result(qtbot, tab, "Pasted image")
    assert result.image_size == (480, 320)
    assert tab.current.source.shape == (320, 480, 3)  # the pixels went to the engine as an array

    clipboard.setMimeData(file_mime(images / "still_life.jpg"))
    tab.paste()
    wait_for_result(qtbot, tab, "still_life.jpg")
    assert len(tab.pictures) == 2

    clipboard.setText("just some words")
    tab.paste()
    assert "no image" in tab.banner.text()
    assert tab.current.name == "still_life.jpg"


@pytest.mark.parametrize("name, says", [
    ("empty.jpg", "empty"),
    ("notes.txt", "not an image"),
    ("garbage.png", "not an image"),
    ("truncated.jpg", "truncated"),
])
def test_bad_input_shows_a_message_and_keeps_the_tab_usable(qtbot, window, images, name, says):
    tab = tab_of(qtbot, window, "image-classification")
    tab.open_path(images / name)
    qtbot.waitUntil(lambda: says in tab.banner.text() and not tab.is_busy(), timeout=WAIT_MS)
    assert name in tab.banner.text()
    assert tab.banner.kind == "error"

    tab.open_path(images / "still_life.jpg")
    wait_for_result(qtbot, tab, "still_life.jpg")
    assert len(tab.bars.rows()) == 5
