"""Live mode: frames from a camera (or any `FrameSource`) shown as they come and run through the
engine worker with newest-wins.

The pump offers every frame to the worker under one job key. The worker's queue keeps one job per
key, so while the model is busy a new frame takes the place of the one waiting and the replaced
frame is dropped: frames never pile up, and the frame the model takes next is always the newest.
Qt Multimedia is imported only when a camera is used, so the rest of the app works without it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy

from app.pictures import to_array
from app.worker import Engine, ModelSpec, Outcome

_RATE_WINDOW_S = 2.0  # rates are averaged over the last two seconds: steady, yet quick to follow


class FrameSource(QObject):
    """Where live frames come from. Subclasses emit `frame(QImage)` between `start()` and
    `stop()`, and `failed(message)` when they cannot go on. Tests drive the pump with a
    synthetic source; the app uses `CameraSource`."""

    frame = Signal(QImage)
    failed = Signal(str)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def description(self) -> str:
        return "camera"


class StillFrames(FrameSource):
    """One picture played as a video: `count` frames (endless when None), one every
    `interval_ms`. It drives live mode without a camera, for screenshots and tests."""

    def __init__(self, image: QImage, count: int | None = None, interval_ms: int = 33,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.image, self.count, self.sent = image, count, 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def is_active(self) -> bool:
        return self._timer.isActive()

    def description(self) -> str:
        return "still picture"

    def _tick(self) -> None:
        if self.count is not None and self.sent >= self.count:
            self._timer.stop()
            return
        self.sent += 1
        self.frame.emit(self.image)


def camera_problem() -> str | None:
    """None when a camera can be used, else a sentence for people saying why not."""
    try:
        from PySide6.QtMultimedia import QMediaDevices
    except ModuleNotFoundError as exc:  # the PySide6-Addons wheel is not installed
        return (
            f"Live mode needs Qt Multimedia, which this installation lacks ({exc}). Install "
            "PySide6-Addons to use a camera; everything else works without it."
        )
    except (ImportError, OSError) as exc:  # the module is there, a system library it loads is not
        # on a bare Debian or Ubuntu that is PulseAudio's client library
        how = " (on Debian and Ubuntu: sudo apt install libpulse0)" if "libpulse" in str(exc) else ""
        return (
            f"Live mode needs Qt Multimedia, which cannot load a system library this machine lacks "
            f"({exc}). Install it{how} and restart the app to use a camera; everything else works "
            "without it."
        )
    if not QMediaDevices.videoInputs():
        return "No camera was found. Connect one and try again; files, drops and paste work without it."
    return None


class CameraSource(FrameSource):
    """The default camera through Qt Multimedia: QCamera -> QMediaCaptureSession -> QVideoSink."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtMultimedia import QCamera, QMediaCaptureSession, QMediaDevices, QVideoSink

        self._device = QMediaDevices.defaultVideoInput()
        self._camera = QCamera(self._device)
        self._session = QMediaCaptureSession()
        self.sink = QVideoSink()  # where Qt delivers the camera's frames (tests feed it directly)
        self._session.setCamera(self._camera)
        self._session.setVideoSink(self.sink)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self._camera.errorOccurred.connect(self._on_error)

    def description(self) -> str:
        return self._device.description() or "camera"

    def start(self) -> None:
        if self._permission_pending():
            return
        self._camera.start()

    def stop(self) -> None:
        self._camera.stop()

    def _permission_pending(self) -> bool:
        """Ask for camera access where the system wants it asked (macOS); True while the
        question is open. Start again once it is answered."""
        try:
            from PySide6.QtCore import QCameraPermission, QCoreApplication

            app = QCoreApplication.instance()
            permission = QCameraPermission()
            status = app.checkPermission(permission)
        except (ImportError, AttributeError):  # Qt before 6.5 has no permission API
            return False
        if status == Qt.PermissionStatus.Undetermined:
            app.requestPermission(permission, self, lambda _permission: self.start())
            return True
        if status == Qt.PermissionStatus.Denied:
            self.failed.emit("This app may not use the camera: allow it in the system's privacy settings.")
            return True
        return False

    @Slot(object)
    def _on_frame(self, frame: Any) -> None:
        if frame.isValid():
            image = frame.toImage()
            if not image.isNull():
                self.frame.emit(image)

    @Slot(object, str)
    def _on_error(self, _error: Any, message: str) -> None:
        self.failed.emit(f"The camera stopped: {message or 'unknown error'}")


@dataclass
class LiveStats:
    frames: int = 0  # frames the source produced
    done: int = 0  # frames the model answered
    dropped: int = 0  # frames replaced by a newer one before the model took them
    camera_fps: float = 0.0
    model_fps: float = 0.0
    model_ms: float | None = None  # the worker's time for the newest answered frame

    def text(self) -> str:
        parts = [f"camera {self.camera_fps:.0f} fps"]
        if self.model_ms is not None:
            parts.append(f"model {self.model_ms:,.0f} ms ({self.model_fps:.1f} fps)")
        return " · ".join(parts)


class _Rate:
    """Events per second over a sliding window."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def tick(self) -> float:
        now = time.monotonic()
        self._times.append(now)
        while now - self._times[0] > _RATE_WINDOW_S:
            self._times.popleft()
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class LivePump(QObject):
    """Feeds a `FrameSource` to the engine worker with newest-wins.

    `spec()` and `options()` are asked for each frame, so a model or option change applies to
    the next frame. Signals: `frame(QImage)` for every frame (show it), `outcome(Outcome)` for
    every answered frame, `stats_changed()`, and `failed(message)` after which the pump stops.
    """

    frame = Signal(QImage)
    outcome = Signal(object)
    stats_changed = Signal()
    failed = Signal(str)

    def __init__(
        self,
        engine: Engine,
        spec: Callable[[], ModelSpec],
        options: Callable[[], dict[str, Any]],
        key: str,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._spec = spec
        self._options = options
        self._key = key
        self._source: FrameSource | None = None
        self._jobs: set[int] = set()
        self._camera_rate = _Rate()
        self._model_rate = _Rate()
        self._last_stats_emit = 0.0
        self.stats = LiveStats()
        engine.result.connect(self._on_result)
        engine.failed.connect(self._on_failed)
        engine.cancelled.connect(self._on_cancelled)

    def is_running(self) -> bool:
        return self._source is not None

    def start(self, source: FrameSource) -> None:
        self.stop()
        self.stats = LiveStats()
        self._camera_rate, self._model_rate = _Rate(), _Rate()
        self._source = source
        source.frame.connect(self._on_frame)
        source.failed.connect(self._on_source_failed)
        source.start()

    def stop(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.frame.disconnect(self._on_frame)
            source.failed.disconnect(self._on_source_failed)
            source.stop()
        for job in list(self._jobs):
            self._engine.cancel(job)

    def pending(self) -> int:
        """Frames handed to the worker and not yet answered (running plus waiting)."""
        return len(self._jobs)

    @Slot(QImage)
    def _on_frame(self, image: QImage) -> None:
        if self._source is None:
            return
        self.stats.frames += 1
        self.stats.camera_fps = self._camera_rate.tick()
        self.frame.emit(image)
        # one key for every frame: the worker's queue swaps the waiting frame for this one
        job = self._engine.run(self._spec(), to_array(image), self._options(), key=self._key, live="video")
        self._jobs.add(job)
        now = time.monotonic()
        if now - self._last_stats_emit > 0.25:
            self._last_stats_emit = now
            self.stats_changed.emit()

    @Slot(int, object)
    def _on_result(self, job_id: int, outcome: Outcome) -> None:
        if job_id not in self._jobs:
            return
        self._jobs.discard(job_id)
        self.stats.done += 1
        self.stats.model_ms = outcome.latency_ms
        self.stats.model_fps = self._model_rate.tick()
        if self._source is not None:
            self.outcome.emit(outcome)
            self.stats_changed.emit()

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, _kind: str, message: str) -> None:
        if job_id not in self._jobs:
            return
        self._jobs.discard(job_id)
        if self._source is not None:
            self.stop()
            self.failed.emit(message)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id in self._jobs:
            self._jobs.discard(job_id)
            self.stats.dropped += 1

    @Slot(str)
    def _on_source_failed(self, message: str) -> None:
        self.stop()
        self.failed.emit(message)


class LiveMode(QObject):
    """A tab's live mode: its Camera button, a status line, the pump, and the camera it opened.

    The tab connects `button.toggled` to its own start and stop (it resets its view), draws
    `frame(QImage)` and `outcome(Outcome)`, shows `badge(text)` over the video, and hears
    `problem(message)` when live mode cannot start or ends on an error, `stopped()` when it ends.
    """

    frame = Signal(QImage)
    outcome = Signal(object)
    badge = Signal(str)
    problem = Signal(str)
    stopped = Signal()

    def __init__(
        self,
        engine: Engine,
        spec: Callable[[], ModelSpec],
        options: Callable[[], dict[str, Any]],
        key: str,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.button = QPushButton("Camera")
        self.button.setCheckable(True)
        self.button.setToolTip("Live mode: run the model on the camera's newest frame, again and again")
        self.label = QLabel()
        self.label.setObjectName("hint")
        # its text changes with every frame: it must never widen the card it sits in
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setToolTip("Frames that arrive while the model is busy are skipped, never queued")
        self.pump = LivePump(engine, spec, options, key, parent=self)
        self.pump.frame.connect(self.frame)
        self.pump.outcome.connect(self.outcome)
        self.pump.stats_changed.connect(self._on_stats)
        self.pump.failed.connect(self._on_failed)
        self._camera: CameraSource | None = None

    def is_running(self) -> bool:
        return self.pump.is_running()

    def start(self, source: FrameSource | None = None) -> bool:
        """Start reading `source`, or the default camera when None; False (and `problem`) when
        there is no camera to read."""
        self._end()
        if source is None:
            reason = camera_problem()
            if reason is not None:
                self.set_button(False)
                self.problem.emit(reason)
                return False
            source = self._camera = CameraSource(self)
        self.set_button(True)
        self.label.setText(f"Live · {source.description()}")
        self.pump.start(source)
        return True

    def stop(self) -> None:
        if self.is_running():
            self._end()
            self.stopped.emit()

    def set_button(self, on: bool) -> None:
        self.button.blockSignals(True)
        self.button.setChecked(on)
        self.button.setText("Stop camera" if on else "Camera")
        self.button.blockSignals(False)

    def _end(self) -> None:
        self.pump.stop()
        if self._camera is not None:
            self._camera.deleteLater()
            self._camera = None
        self.set_button(False)
        self.label.setText("")
        self.badge.emit("")

    def _on_stats(self) -> None:
        stats = self.pump.stats
        self.badge.emit(stats.text())
        self.label.setText(f"Live · {stats.dropped:,} frames skipped")

    def _on_failed(self, message: str) -> None:
        self.stop()
        self.problem.emit(message)
