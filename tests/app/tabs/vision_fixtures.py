"""Fixtures and helpers shared by the vision tab tests: the tiny checkpoints, pictures good and
bad, and a main window with the vision tabs on the real engine worker."""

from __future__ import annotations

import shutil
import time

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.app import conftest
from tests.app.tabs.vision_models import SAMPLES, build_vision_models

VISION_TASKS = ("image-classification", "object-detection")
WAIT_MS = 60_000


@pytest.fixture(scope="session")
def vision_models(tmp_path_factory):
    return build_vision_models(tmp_path_factory.mktemp("tiny-vision"))


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Good pictures, and the bad input people drop by mistake."""
    folder = tmp_path_factory.mktemp("pictures")
    for name in ("street.jpg", "still_life.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    alpha = QImage(300, 200, QImage.Format.Format_ARGB32)
    alpha.fill(0x8040A0E0)
    alpha.save(str(folder / "alpha.png"))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("a shopping list, not a picture\n", encoding="utf-8")
    (folder / "garbage.png").write_bytes(bytes(range(256)) * 8)
    (folder / "truncated.jpg").write_bytes((SAMPLES / "street.jpg").read_bytes()[:4000])
    return folder


def open_window(qtbot, settings, models, loader=None, tasks=VISION_TASKS):
    """The window with the vision tabs of `tasks`, each on its tiny model, and its engine."""
    win = conftest.open_window(qtbot, settings, {t: models[t] for t in VISION_TASKS}, loader=loader, tasks=tasks)
    return win, win.engine


@pytest.fixture
def window(qtbot, settings, vision_models):
    win, _ = open_window(qtbot, settings, vision_models)
    yield win
    conftest.close_window(win)


def tab_of(qtbot, win, task):
    """The tab for `task`, on screen, with its tiny model loaded."""
    win.select_task(task)
    tab = win.tab(task)
    qtbot.waitUntil(lambda: tab.loaded is not None and not tab.is_busy(), timeout=WAIT_MS)
    return tab


def wait_for_result(qtbot, tab, name):
    qtbot.waitUntil(
        lambda: tab.current is not None and tab.current.name == name and tab.current.outcome is not None
        and tab.current.preview is not None and not tab.is_busy(),
        timeout=WAIT_MS,
    )
    return tab.current.outcome.result


def started_jobs(engine):
    """Ids of the jobs the worker takes from now on."""
    ids = []
    engine.started.connect(ids.append)
    return ids


def file_mime(*paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def hover(widget, point):
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(point), QPointF(widget.mapToGlobal(point.toPoint())),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


class SlowTask:
    """The real task, slowed by `seconds` a run (to well below a synthetic camera's rate), and
    counting its runs."""

    def __init__(self, task, seconds: float) -> None:
        self.task, self.seconds, self.runs = task, seconds, 0

    def info(self):
        return self.task.info()

    def parameter_bytes(self) -> int:
        return self.task.parameter_bytes()

    def run(self, input, **kwargs):
        self.runs += 1
        time.sleep(self.seconds)  # a slow model, not a wait: the test itself never sleeps
        return self.task.run(input, **kwargs)
