"""The depth tab's 3D view: the photo lifted by its depth, as a point cloud the user turns by
dragging and zooms with the wheel; drawn in software (app/scene3d.py), so it needs no OpenGL."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPalette, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.scene3d import Orbit, Scene, render

DRAG_DEGREES_PER_PIXEL = 0.4
WHEEL_ZOOM_PER_NOTCH = 1.15  # one wheel step (120 units of angle)
REDRAW_BUDGET_S = 0.03  # a full redraw slower than this draws fewer points while dragging
DRAG_POINTS = 20_000


class DepthScene(QWidget):
    """Shows a `Scene` through an `Orbit`: drag to turn it, the wheel to zoom, `reset()` (or a
    double click) to look from where the photo was taken. While a drag lasts and the last full
    drawing took longer than `REDRAW_BUDGET_S`, a thinned cloud is drawn; the full one comes
    back when the button is released. `view_changed(Orbit)` follows every change."""

    view_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene: Scene | None = None
        self._orbit = Orbit()
        self._frame: QImage | None = None
        self._frame_key: tuple[object, ...] = ()
        self._dragging: QPointF | None = None
        self._placeholder = ""
        self.last_draw_s = 0.0  # how long the last drawing took
        self.last_draw_points = 0
        self.setMinimumSize(200, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    # ----- content ----------------------------------------------------------------------------

    def set_scene(self, scene: Scene | None) -> None:
        """A new cloud, seen as the last one was (a new frame from the camera keeps the view)."""
        self._scene = scene
        self._frame = None
        self.update()

    def scene(self) -> Scene | None:
        return self._scene

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def orbit(self) -> Orbit:
        return self._orbit

    def set_orbit(self, orbit: Orbit) -> None:
        if orbit != self._orbit:
            self._orbit = orbit
            self.update()
            self.view_changed.emit(orbit)

    def reset(self) -> None:
        """Back to the photo's own viewpoint."""
        self.set_orbit(Orbit())

    def frame(self) -> QImage | None:
        """The picture drawn last (None before the first paint)."""
        return self._frame

    # ----- drawing ----------------------------------------------------------------------------

    def draw(self) -> QImage | None:
        """The scene drawn at the widget's size with the current orbit (cached until either
        changes); thinned while dragging when a full drawing is slow."""
        scene = self._scene
        if scene is None or self.width() < 2 or self.height() < 2:
            return None
        thin = self._dragging is not None and self.last_draw_s > REDRAW_BUDGET_S
        key = (id(scene), self._orbit, self.width(), self.height(), thin)
        if self._frame is not None and key == self._frame_key:
            return self._frame
        shown = scene.thinned(DRAG_POINTS) if thin else scene
        began = time.perf_counter()
        pixels = np.ascontiguousarray(render(shown, self._orbit, self.width(), self.height()))
        height, width = pixels.shape[:2]
        self._frame = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        if not thin:
            self.last_draw_s = time.perf_counter() - began
        self.last_draw_points = len(shown.points)
        self._frame_key = key
        return self._frame

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        frame = self.draw()
        if frame is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRectF(self.rect()).adjusted(20, 0, -20, 0),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        painter.drawImage(0, 0, frame)
        painter.setPen(QColor(220, 220, 225))  # over the dark background the scene is drawn on
        hint = "drag to turn · wheel to zoom · double-click to reset"
        painter.drawText(QRectF(self.rect()).adjusted(8, 0, -8, -6),
                         Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft, hint)

    # ----- the mouse --------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging is not None:
            moved = event.position() - self._dragging
            self._dragging = event.position()
            # as if the near surface were grabbed: dragging right carries it right, down carries it down
            self.set_orbit(self._orbit.turned(-moved.x() * DRAG_DEGREES_PER_PIXEL,
                                              moved.y() * DRAG_DEGREES_PER_PIXEL))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging is not None:
            self._dragging = None
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.update()  # the full cloud again
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.reset()
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120
        if notches:
            self.set_orbit(self._orbit.zoomed(WHEEL_ZOOM_PER_NOTCH ** notches))
        event.accept()
