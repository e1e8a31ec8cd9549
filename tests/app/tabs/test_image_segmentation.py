"""The segmentation tab end to end on a tiny SegFormer saved by transformers, through the real
worker: dropped and pasted pictures get the engine's segments, rows and regions light each other
up, a click isolates a segment, subtask and thresholds post-process again without the model,
the saved files reopen as what was shown, the camera feeds it, bad input says so, and the inside
view draws the chosen class's probabilities. Waits are qtbot.waitUntil / waitSignal only."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

import app.worker
from engine.tasks.base import Option
from app.segment_maps import segment_colours
from app.webcam import StillFrames
from app.widgets.segment_inside import InsideView
from tests.app import conftest
from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    WAIT_MS,
    file_mime,
    hover,
    images,
    started_jobs,
    tab_of,
    wait_for_result,
)
from tests.app.tabs.segment_fakes import Counted
from tests.app.tabs.vision_models import SAMPLES, SEGMENT_LABELS, save_segformer

TASK = "image-segmentation"


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    return save_segformer(tmp_path_factory.mktemp("tiny-segformer"))


@pytest.fixture
def counted():
    return []


def make_window(qtbot, settings, seg_model, counted, panoptic=False):
    def loader(spec, hooks):
        counted.append(Counted(app.worker.load_engine_task(spec, hooks), panoptic))
        return counted[-1]

    return conftest.open_window(qtbot, settings, {TASK: seg_model}, loader=loader, tasks=(TASK,))


@pytest.fixture
def window(qtbot, settings, seg_model, counted):
    win = make_window(qtbot, settings, seg_model, counted)
    yield win
    conftest.close_window(win)


def seg_tab(qtbot, win, picture):
    tab = tab_of(qtbot, win, TASK)
    tab.open_path(picture)
    return tab, wait_for_result(qtbot, tab, picture.name)


def pixels(image: QImage, channels: int = 3) -> np.ndarray:
    """(H, W, channels) uint8 of a QImage, RGB or RGBA."""
    image = image.convertToFormat(QImage.Format.Format_RGB888 if channels == 3 else QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : channels * image.width()].reshape(image.height(), image.width(), channels).copy()


def widget_point(tab, x: float, y: float) -> QPointF:
    """Where pixel (x, y) of the original lies in the view."""
    target, (width, height) = tab.view.image_rect(), tab.last_outcome.result.image_size
    return QPointF(target.left() + (x + 0.5) / width * target.width(),
                   target.top() + (y + 0.5) / height * target.height())


def inner_pixel(result, position: int, margin: int = 6, far: bool = False) -> tuple[int, int]:
    """A pixel of segment `position` with `margin` pixels of the segment all around it, so that
    it is the segment's in any scaled copy too: the middle one of those, or with `far` the one
    farthest from the middle (away from the segment's label)."""
    mask = result.mask(result.segments[position]).astype(np.int64)
    sums = np.pad(mask.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # a summed-area table
    side = 2 * margin + 1
    full = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side] == side * side
    ys, xs = np.nonzero(full)
    assert len(ys), f"segment {position} has no pixel {margin} pixels inside it"
    distances = (xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2
    chosen = int(np.argmax(distances) if far else np.argmin(distances))
    return int(xs[chosen]) + margin, int(ys[chosen]) + margin


# ----- the picture, its segments and the list --------------------------------------------------


def test_a_drop_shows_the_engines_segments_in_the_picture_and_the_list(qtbot, window, images, seg_model):
    from engine.tasks.image_segmentation import ImageSegmentation

    tab = tab_of(qtbot, window, TASK)
    mime = file_mime(images / "street.jpg", images / "still_life.jpg", images / "notes.txt")
    drag = (QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(tab.view, QDragEnterEvent(*drag))
    QApplication.sendEvent(tab.view, QDropEvent(*drag))
    result = wait_for_result(qtbot, tab, "street.jpg")
    qtbot.waitUntil(lambda: not any(p.decoding for p in tab.pictures), timeout=WAIT_MS)
    assert [p.name for p in tab.pictures] == ["street.jpg", "still_life.jpg"] and "notes.txt" in tab.banner.text()

    expected = ImageSegmentation.load(seg_model, device="cpu").run(images / "street.jpg")
    assert result.to_json() == expected.to_json() and len(result.segments) >= 3
    assert [tab.table.item(row, 0).text() for row in range(tab.table.rowCount())] == [s.label for s in result.segments]
    assert {tab.table.item(row, 1).text() for row in range(tab.table.rowCount())} == {"—"}  # semantic: no score
    shares = [tab.table.item(row, 2).text() for row in range(tab.table.rowCount())]
    assert shares == [f"{100 * s.area / (1200 * 800):.1f} %" for s in result.segments]
    assert json.loads(tab.result_json()) == expected.to_json()

    # the layer over the photo: each segment's colour where the engine put it
    layer = pixels(tab.view.layer_image(), 4)
    step = tab.view.mapped().step
    colours = segment_colours(result.segments)
    for position in range(len(result.segments)):
        x, y = inner_pixel(result, position)
        assert (layer[y // step, x // step, :3] == colours[position]).all()
    assert [label.text for label in tab.view.labels()] == [s.label for s in result.segments]

    # a semantic-only checkpoint offers no other subtask and no thresholds
    assert tab.controls.subtasks() == ("semantic",) and not tab.controls.subtask_box.isEnabled()
    assert not tab.controls.sliders["threshold"].isVisibleTo(tab)
    text = tab.how.plain_text()
    assert "SegFormer" in text and "Mix Transformer" in text and "reduction ratio" in text and "8, 4, 2, 1" in text

    tab.step(1)
    wait_for_result(qtbot, tab, "still_life.jpg")
    jobs = started_jobs(window.engine)
    tab.step(-1)  # its result is kept: no new run
    QApplication.processEvents()
    assert tab.last_outcome.result is result and jobs == []


def test_paste_segments_the_pixels(qtbot, window, images):
    tab = tab_of(qtbot, window, TASK)
    QGuiApplication.clipboard().setImage(QImage(str(images / "street.jpg")).scaled(300, 200))
    tab.paste()
    result = wait_for_result(qtbot, tab, "Pasted image")
    assert result.image_size == (300, 200) and result.segmentation.shape == (200, 300)


def test_rows_and_regions_light_each_other_and_a_click_isolates(qtbot, window, images):
    tab, result = seg_tab(qtbot, window, images / "street.jpg")
    for position in range(len(result.segments)):
        hover(tab.view, widget_point(tab, *inner_pixel(result, position)))
        assert tab.view.highlight() == position and tab.highlighted_row() == position
    tab.table.cellEntered.emit(0, 0)
    assert tab.view.highlight() == 0

    chosen = len(result.segments) - 1
    qtbot.mouseClick(tab.view, Qt.MouseButton.LeftButton, pos=widget_point(tab, *inner_pixel(result, chosen)).toPoint())
    assert tab.view.isolated() == chosen and result.segments[chosen].label in tab.summary.text()
    layer = pixels(tab.view.layer_image(), 4)
    step = tab.view.mapped().step
    for position in range(len(result.segments)):
        x, y = inner_pixel(result, position)
        veiled = tuple(layer[y // step, x // step])
        assert (veiled == (0, 0, 0, 166)) == (position != chosen)  # the rest of the photo is veiled
    hover(tab.view, widget_point(tab, *inner_pixel(result, 0)))
    assert tab.view.highlight() == -1  # hidden segments do not light up
    tab.table.cellClicked.emit(chosen, 0)  # the same one again: all of them
    assert tab.view.isolated() == -1
    tab.table.cellClicked.emit(1, 0)
    assert tab.view.isolated() == 1 and tab.highlighted_row() == 1 and tab.view.highlight() == 1

    tab.controls.alone.setChecked(True)  # the label map alone: opaque
    assert (pixels(tab.view.layer_image(), 4)[..., 3] == 255).all()


def test_thresholds_and_subtask_post_process_again_without_the_model(qtbot, settings, seg_model, counted, images):
    win = make_window(qtbot, settings, seg_model, counted, panoptic=True)
    try:
        tab, result = seg_tab(qtbot, win, images / "street.jpg")
        assert tab.controls.subtasks() == ("panoptic", "semantic") and result.subtask == "panoptic"
        assert tab.controls.sliders["threshold"].isVisibleTo(tab) and tab.controls.sliders["threshold"].isEnabled()
        tab.controls.set_threshold("threshold", 0.4)
        qtbot.waitUntil(lambda: tab.last_outcome.result.options["threshold"] == 0.4, timeout=WAIT_MS)
        every = [s.label_id for s in tab.last_outcome.result.segments]
        assert len(every) >= 3
        jobs = started_jobs(win.engine)

        cut = 0.5 + 0.1 * sorted(every)[len(every) // 2] - 0.05
        tab.controls.set_threshold("threshold", cut)
        qtbot.waitUntil(lambda: tab.last_outcome.result.options["threshold"] == round(cut, 2), timeout=WAIT_MS)
        kept = tab.last_outcome.result.segments
        assert [s.label_id for s in kept] == [c for c in every if 0.5 + 0.1 * c > cut] and len(kept) < len(every)
        assert tab.table.rowCount() == len(kept)
        assert tab.table.item(0, 1).text() == f"{kept[0].score:.3f}"
        assert "no new run" in tab.busy_label.text()
        assert tab.current.outcome is tab.last_outcome  # stepping back shows the refined one

        tab.controls.set_subtask("semantic")
        qtbot.waitUntil(lambda: tab.last_outcome.result.subtask == "semantic", timeout=WAIT_MS)
        assert tab.table.rowCount() == len(every) and tab.table.item(0, 1).text() == "—"
        assert not tab.controls.sliders["threshold"].isEnabled()
        QApplication.processEvents()
        assert counted[0].runs == 1 and len(jobs) == 2  # two post-processing jobs, one model run
    finally:
        conftest.close_window(win)


# ----- files -------------------------------------------------------------------------------------


def test_saved_files_reopen_as_what_was_shown(qtbot, window, images, tmp_path):
    from PIL import Image

    tab, result = seg_tab(qtbot, window, images / "street.jpg")
    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS) as done:
        tab.save_all(tmp_path)
    assert done.args[0].error == "" and done.args[0].size.toTuple() == (1200, 800)
    colours = segment_colours(result.segments)

    with Image.open(tmp_path / "street-labels.png") as png:
        assert png.mode == "P" and png.size == (1200, 800)
        values = np.asarray(png)
        palette = np.array(png.getpalette()[: 3 * (len(result.segments) + 1)]).reshape(-1, 3)
    legend = json.loads((tmp_path / "street-labels.json").read_text(encoding="utf-8"))["legend"]
    assert [entry["label"] for entry in legend] == [None] + [s.label for s in result.segments]
    for position, segment in enumerate(result.segments):
        np.testing.assert_array_equal(values == position + 1, result.mask(segment))
        assert (palette[position + 1] == colours[position]).all()
        assert legend[position + 1]["colour"] == "#{:02x}{:02x}{:02x}".format(*colours[position])

    entries = json.loads((tmp_path / "street.json").read_text(encoding="utf-8"))
    assert [{k: v for k, v in e.items() if k != "mask"} for e in entries] == result.to_json()
    for entry, segment in zip(entries, result.segments):
        with Image.open(entry["mask"]) as mask:
            np.testing.assert_array_equal(np.asarray(mask) == 255, result.mask(segment))

    overlay = pixels(QImage(str(tmp_path / "street-overlay.png")))
    photo = pixels(QImage(str(SAMPLES / "street.jpg")))
    assert overlay.shape == photo.shape
    x, y = inner_pixel(result, 0, far=True)
    alpha = tab.controls.opacity.value() / 100
    mixed = photo[y, x] * (1 - alpha) + colours[0] * alpha
    assert np.abs(overlay[y, x].astype(float) - mixed).max() <= 2  # the colour laid over the photo

    with qtbot.waitSignal(tab.exporter.done, timeout=WAIT_MS):
        tab.export_json(tmp_path / "again.png")  # Ctrl+S with a .png name: the same picture
    assert (pixels(QImage(str(tmp_path / "again.png"))) == overlay).all()


# ----- the camera, bad input -----------------------------------------------------------------


def test_the_camera_feeds_the_segments(qtbot, window):
    tab = tab_of(qtbot, window, TASK)
    frames = StillFrames(QImage(str(SAMPLES / "street.jpg")).scaled(240, 160), count=None, interval_ms=10)
    assert tab.start_live(frames)
    qtbot.waitUntil(lambda: tab.live.pump.stats.done >= 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "fps" in tab.view.badge(), timeout=WAIT_MS)
    result = tab.last_outcome.result
    assert result.image_size == (240, 160) and tab.view.layer_image() is not None
    assert tab.table.rowCount() == len(result.segments) and "ms" in tab.view.badge()
    alone = result.segments[-1].label
    tab.toggle_isolate(len(result.segments) - 1)
    done = tab.live.pump.stats.done
    qtbot.waitUntil(lambda: tab.live.pump.stats.done >= done + 2, timeout=WAIT_MS)
    assert tab.last_outcome.result is not result  # a later frame: the same segment still alone
    assert tab.last_outcome.result.segments[tab.view.isolated()].label == alone
    tab.live.button.click()  # stop
    qtbot.waitUntil(lambda: not tab.is_live(), timeout=WAIT_MS)


@pytest.mark.parametrize("name, says", [("empty.jpg", "empty"), ("notes.txt", "not an image"),
                                        ("garbage.png", "not an image"), ("truncated.jpg", "truncated")])
def test_bad_input_says_so_and_the_tab_still_works(qtbot, window, images, name, says):
    tab = tab_of(qtbot, window, TASK)
    tab.open_path(images / name)
    qtbot.waitUntil(lambda: says in tab.banner.text() and not tab.is_busy(), timeout=WAIT_MS)
    assert tab.banner.kind == "error" and name in tab.banner.text() and tab.view.layer_image() is None
    assert not tab.save_all_button.isEnabled()
    _, result = seg_tab(qtbot, window, images / "still_life.jpg")
    assert tab.table.rowCount() == len(result.segments) > 0


def test_a_one_pixel_picture_is_one_segment(qtbot, window, tmp_path):
    pixel = QImage(1, 1, QImage.Format.Format_RGB32)
    pixel.fill(0xFF3070C0)
    pixel.save(str(tmp_path / "dot.png"))
    tab, result = seg_tab(qtbot, window, tmp_path / "dot.png")
    assert result.image_size == (1, 1) and tab.table.rowCount() == len(result.segments) == 1
    assert tab.table.item(0, 2).text() == "100.0 %" and tab.view.layer_image().size().toTuple() == (1, 1)


# ----- inside the model --------------------------------------------------------------------------


def test_the_inside_view_draws_the_chosen_class_from_the_kept_scores(qtbot, window, images, counted):
    tab, result = seg_tab(qtbot, window, images / "street.jpg")
    view = tab.inside.view
    assert view.heat_picture() is None  # nothing computed while closed
    tab.inside_panel.set_open(True)
    qtbot.waitUntil(lambda: view.heat_picture() is not None, timeout=WAIT_MS)
    assert counted[0].runs == 1  # from the kept scores, no second run
    top = max(result.segments, key=lambda s: s.area)
    assert view.chosen_class() == top.label_id and view.class_box.count() == 6
    first = view.heat_picture()
    other = next(s.label_id for s in result.segments if s.label_id != top.label_id)
    view.choose_class(other)
    assert view.heat_picture() != first and view.chosen_class() == other
    probabilities = result.score_maps().numpy()
    assert f"{probabilities[other].max():.0%}" in view.heat_caption.text()
    assert not view.query_part.isVisibleTo(view)  # SegFormer has no decoder queries


def test_the_query_part_follows_a_segment_through_the_decoder_layers(qtbot):
    view = InsideView()
    qtbot.addWidget(view)
    rng = np.random.default_rng(0)
    layers = [rng.random((4, 8, 8)).astype(np.float16) for _ in range(3)]
    logits = rng.normal(size=(3, 4, 6)).astype(np.float32)
    logits[-1, 2, 1] = 9.0
    view.set_queries(layers, logits, [("cat 97%", 2), ("dog 80%", 0)], {1: "cat", 0: "dog"}, 2)
    assert view.query_part.isVisibleTo(view) and view.chosen_query() == 2
    assert view.layers.captions() == ["before", "layer 1", "layer 2"]
    rows = view.class_scores.rows()
    assert rows[0][0] == "cat" and rows[0][1] > 0.9 and len(rows) == 5
    view.query_box.setCurrentIndex(1)
    assert view.class_scores.rows() != rows
    view.set_queries([], None, [], {}, -1)
    assert not view.query_part.isVisibleTo(view)


def test_a_task_that_captures_its_decoder_layers_is_asked_to_while_the_view_is_open(
        qtbot, settings, seg_model, counted, images):
    win = make_window(qtbot, settings, seg_model, counted, panoptic=True)
    try:
        tab = tab_of(qtbot, win, TASK)
        # as Mask2Former's task will: a run option that captures the decoder's layers
        capture = Option("explain", bool, False, "keep each decoder layer's query masks and class scores")
        tab.meta = dataclasses.replace(tab.meta, options=(*tab.meta.options, capture))
        tab.open_path(images / "street.jpg")
        wait_for_result(qtbot, tab, "street.jpg")
        assert not counted[0].options[-1].get("explain")  # closed: nothing captured

        view = tab.inside.view
        tab.inside_panel.set_open(True)  # the shown result has no layers: one run to capture them
        qtbot.waitUntil(lambda: view.query_pictures() == 3, timeout=WAIT_MS)
        assert counted[0].runs == 2 and counted[0].options[-1]["explain"] is True
        result = tab.last_outcome.result
        best = max(result.segments, key=lambda s: s.score)
        assert view.chosen_query() == best.query and view.query_box.count() == len(result.segments)
        assert view.layers.captions() == ["before", "layer 1", "layer 2"]
        scores = np.exp(result.query_layer_logits[-1, best.query])
        scores /= scores.sum()
        top = int(np.argmax(scores))
        assert view.class_scores.rows()[0] == ([*SEGMENT_LABELS, "no object"][top], pytest.approx(scores[top]))
        assert view.heat_picture() is None and not view.class_part.isVisibleTo(view)  # no per-class maps

        tab.inside_panel.set_open(False)
        tab.run()
        qtbot.waitUntil(lambda: counted[0].runs == 3 and not tab.is_busy(), timeout=WAIT_MS)
        assert not counted[0].options[-1].get("explain")
    finally:
        conftest.close_window(win)
