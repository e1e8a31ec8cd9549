"""Live mode of the vision tabs: a synthetic camera faster than a deliberately slowed model
(frames are dropped, never queued), the Qt Multimedia camera source, and no camera at all."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtGui import QImage

import app.worker
from app.webcam import StillFrames, camera_problem
from tests.app.conftest import stop_engine
from tests.app.tabs.vision_fixtures import (  # noqa: F401 (fixtures)
    WAIT_MS,
    SlowTask,
    images,
    open_window,
    tab_of,
    vision_models,
    wait_for_result,
    window,
)
from tests.app.tabs.vision_models import SAMPLES, STREET_OBJECTS

LIVE_KEY = "object-detection:live"


class RecordingQueue(app.worker.JobQueue):
    """The worker's queue, noting the most frame jobs it ever held at once."""

    most_frames = 0

    def put(self, job):
        with self._cond:  # the queue's own lock (re-entrant), so the count is exact
            replaced = super().put(job)
            frames = sum(1 for waiting in self._jobs if waiting.key == LIVE_KEY)
            RecordingQueue.most_frames = max(RecordingQueue.most_frames, frames)
            return replaced


def test_live_frames_are_dropped_never_queued_when_the_model_is_slower(qtbot, settings, vision_models, monkeypatch):
    monkeypatch.setattr(app.worker, "JobQueue", RecordingQueue)
    RecordingQueue.most_frames = 0
    slow: list[SlowTask] = []

    def slow_loader(spec, hooks):
        slow.append(SlowTask(app.worker.load_engine_task(spec, hooks), seconds=0.05))
        return slow[-1]

    win, engine = open_window(qtbot, settings, vision_models, loader=slow_loader, tasks=("object-detection",))
    try:
        tab = tab_of(qtbot, win, "object-detection")
        # a camera far faster than the model: a frame every 2 ms
        frames = StillFrames(QImage(str(SAMPLES / "street.jpg")).scaled(600, 400), count=150, interval_ms=2)
        assert tab.start_live(frames)
        assert tab.live.button.isChecked()
        qtbot.waitUntil(lambda: frames.sent == frames.count and tab.live.pump.pending() == 0, timeout=WAIT_MS)

        stats = tab.live.pump.stats
        runs = slow[0].runs
        assert stats.frames == 150
        assert 1 <= runs <= stats.frames // 5  # most frames were skipped...
        assert RecordingQueue.most_frames == 1  # ...and the queue never held more than one
        assert stats.done + stats.dropped == stats.frames
        assert stats.done == runs
        assert [b.text.split(" ")[0] for b in tab.view.boxes()][:2] == ["stop", "traffic"]  # overlay follows
        assert "camera" in tab.view.badge() and "model" in tab.view.badge()

        tab.live.button.click()  # stop
        assert not tab.live.pump.is_running() and not frames.is_active()
        assert tab.view.image() is None  # back to the (empty) picture view
    finally:
        win.close()
        stop_engine(engine)


def test_without_a_camera_the_tab_says_so_and_still_works(qtbot, window, images, monkeypatch):
    tab = tab_of(qtbot, window, "object-detection")
    monkeypatch.setattr("app.webcam.camera_problem", lambda: "No camera was found.")
    tab.live.button.click()
    assert not tab.live.button.isChecked() and not tab.live.pump.is_running()
    assert "No camera" in tab.banner.text()
    tab.open_path(images / "street.jpg")
    wait_for_result(qtbot, tab, "street.jpg")


def test_the_camera_source_turns_video_frames_into_images(qtbot):
    multimedia = pytest.importorskip("PySide6.QtMultimedia", exc_type=ImportError)
    from app.webcam import CameraSource

    source = CameraSource()
    picture = QImage(64, 48, QImage.Format.Format_RGB32)
    picture.fill(0xFF336699)
    with qtbot.waitSignal(source.frame, timeout=5_000) as blocker:
        source.sink.setVideoFrame(multimedia.QVideoFrame(picture))
    assert blocker.args[0].size() == picture.size()
    assert blocker.args[0].pixelColor(10, 10) == picture.pixelColor(10, 10)


def test_camera_problem_names_a_missing_qt_multimedia(monkeypatch):
    monkeypatch.setitem(sys.modules, "PySide6.QtMultimedia", None)
    assert "Qt Multimedia" in camera_problem()


def test_camera_problem_names_a_missing_system_library(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_libpulse(name, *args, **kwargs):  # what a bare Debian without libpulse0 gives
        if name == "PySide6.QtMultimedia":
            raise ImportError("libpulse.so.0: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_libpulse)
    problem = camera_problem()
    assert "libpulse.so.0" in problem and "sudo apt install libpulse0" in problem
    assert "PySide6-Addons" not in problem  # the package is there; the library is not


def test_the_overlay_follows_the_video_in_the_frames_own_pixels(qtbot, window):
    tab = tab_of(qtbot, window, "object-detection")
    ready = tab.start_live_sample()  # the street scene played as a camera, as screenshots do
    assert ready is not None
    qtbot.waitUntil(ready, timeout=WAIT_MS)
    assert tab.is_live() and tab.view.image().size() == QImage(str(SAMPLES / "street.jpg")).size()
    first = tab.view.boxes()[0].rect
    assert (first.left(), first.top(), first.right(), first.bottom()) == pytest.approx(STREET_OBJECTS[0][2:], abs=0.5)
    assert not tab.run_button.isEnabled()  # the camera feeds the model by itself
    tab.stop_live()
    assert not tab.is_live() and tab.live.button.text() == "Camera"


@pytest.mark.parametrize("task, view", [("image-classification", "vit"), ("object-detection", None)])
def test_the_inside_view_follows_the_camera_while_open(qtbot, window, task, view):
    """Open, the camera's frames bring their internals and the view draws the newest over the
    frame on screen; closed, frames keep nothing."""
    tab = tab_of(qtbot, window, task)
    tab.inside_panel.set_open(True)
    frame = QImage(str(SAMPLES / "street.jpg")).scaled(240, 160)
    frames = StillFrames(frame, count=None, interval_ms=20)
    assert tab.start_live(frames)
    qtbot.waitUntil(lambda: tab.live.pump.stats.done >= 3, timeout=WAIT_MS)
    result = tab.last_outcome.result
    assert result.internals  # a live frame's result, with the internals the view draws
    inside = tab.inside if view is None else getattr(tab.inside, view)
    if view == "vit":
        assert tab.inside.currentWidget() is inside
    else:
        assert inside.head.count() > 1  # filled: the average and each head
    assert inside.view.space() == frame.size()  # drawn over the frame itself
    tab.inside_panel.set_open(False)
    done = tab.live.pump.stats.done
    qtbot.waitUntil(lambda: tab.live.pump.stats.done >= done + 2, timeout=WAIT_MS)
    assert tab.last_outcome.result.internals == {}
    tab.stop_live()
