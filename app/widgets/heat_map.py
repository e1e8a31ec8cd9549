"""A photo with a map of numbers laid over it as colour: attention over patches, a class
activation map, where an object query looked. For the "Inside the model" views of the vision
tabs.

The map covers a window of the photo given in the photo's own pixels (the part the model saw,
beyond the edges where the model's grid overhangs them); boxes and a marker can be drawn on top,
and clicks come back in photo pixels.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.widgets.overlays import map_rect

# "inferno"-like stops, dark to bright: low values fade into the photo, high ones glow
_STOPS = np.array(
    [[0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164]], dtype=np.float64
)


def _palette() -> np.ndarray:
    """(256, 4) uint8 RGBA: the stops interpolated, opacity rising with the value."""
    at = np.linspace(0, len(_STOPS) - 1, 256)
    rgb = np.stack([np.interp(at, np.arange(len(_STOPS)), _STOPS[:, c]) for c in range(3)], axis=1)
    alpha = 255 * (0.1 + 0.55 * np.linspace(0, 1, 256))
    return np.concatenate([rgb, alpha[:, None]], axis=1).round().astype(np.uint8)


PALETTE = _palette()


def normalised(values: np.ndarray) -> np.ndarray:
    """`values` scaled to 0…1 (a flat map becomes all zeros)."""
    values = np.asarray(values, dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def colour_image(values: np.ndarray, opaque: bool = False) -> QImage:
    """A (h, w) array as a w×h picture in the palette, scaled from its own minimum to its
    maximum; `opaque` for a picture shown on its own rather than over a photo."""
    index = (normalised(values) * 255).round().astype(np.uint8)
    rgba = np.ascontiguousarray(PALETTE[index])  # (h, w, 4)
    if opaque:
        rgba[..., 3] = 255
    height, width = index.shape
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def colour_pixmap(values: np.ndarray, side: int) -> QPixmap:
    """A small opaque picture of a map, its long side `side` pixels, cells kept square-edged."""
    image = colour_image(values, opaque=True)
    return QPixmap.fromImage(image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))


class HeatMapView(QWidget):
    """The photo scaled to fit, a map over `region`, optional grid lines, boxes and marker.

    `clicked(QPointF)` gives a click in the photo's pixels."""

    clicked = Signal(QPointF)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._photo: QImage | None = None
        self._space = QSizeF()
        self._map: QImage | None = None
        self._values: np.ndarray | None = None
        self._region = QRectF()
        self._smooth = False
        self._grid = (0, 0)
        self._boxes: list[tuple[QRectF, QColor]] = []
        self._selected = -1
        self._marker: QPointF | None = None
        self._placeholder = ""
        self.setMinimumSize(260, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)

    # ----- content ----------------------------------------------------------------------------

    def set_photo(self, photo: QImage | None, space: QSize | None = None) -> None:
        """The photo, and the size of the original it stands for (the pixels everything else
        is given in; a smaller preview still lines up)."""
        self._photo = photo
        self._space = QSizeF(space if space is not None and not space.isEmpty() else
                             (photo.size() if photo is not None else QSize()))
        self.update()

    def space(self) -> QSize:
        """The size of the original the photo stands for."""
        return self._space.toSize()

    def set_map(self, values: np.ndarray | None, region: QRectF = QRectF(), smooth: bool = False,
                grid: tuple[int, int] = (0, 0)) -> None:
        """A (h, w) map over `region` (photo pixels); `smooth` blends its cells, `grid` draws
        (rows, cols) lines over the region (the patches a ViT cut the photo into)."""
        self._values = None if values is None else np.asarray(values, dtype=np.float32)
        self._map = None if values is None else colour_image(values)
        self._region, self._smooth, self._grid = QRectF(region), smooth, grid
        self.update()

    def set_boxes(self, boxes: list[tuple[QRectF, QColor]], selected: int = -1) -> None:
        self._boxes, self._selected = list(boxes), selected
        self.update()

    def set_marker(self, point: QPointF | None) -> None:
        self._marker = None if point is None else QPointF(point)
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def values(self) -> np.ndarray | None:
        """The map on screen, as given (for tests and tooltips)."""
        return self._values

    def selected(self) -> int:
        return self._selected

    # ----- geometry ---------------------------------------------------------------------------

    def photo_rect(self) -> QRectF:
        """Where the photo is drawn, in widget coordinates: centred, aspect ratio kept."""
        if self._space.isEmpty():
            return QRectF()
        area = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        size = self._space.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF(area.center().x() - size.width() / 2, area.center().y() - size.height() / 2,
                      size.width(), size.height())

    def to_widget(self, point: QPointF) -> QPointF:
        target = self.photo_rect()
        return QPointF(target.x() + point.x() * target.width() / self._space.width(),
                       target.y() + point.y() * target.height() / self._space.height())

    def to_photo(self, point: QPointF) -> QPointF:
        target = self.photo_rect()
        return QPointF((point.x() - target.x()) * self._space.width() / target.width(),
                       (point.y() - target.y()) * self._space.height() / target.height())

    def box_rect(self, index: int) -> QRectF:
        return map_rect(self._boxes[index][0], self._space, self.photo_rect())

    # ----- painting ---------------------------------------------------------------------------

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._photo is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._placeholder)
            painter.end()
            return
        target = self.photo_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self._photo)
        painter.setClipRect(target)
        if self._map is not None:
            painter.fillRect(target, QColor(0, 0, 0, 90))  # the photo steps back, the map speaks
            region = map_rect(self._region, self._space, target)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
            painter.drawImage(region, self._map)
            if self._grid[0] and self._grid[1]:
                self._paint_grid(painter, region)
        for index, (rect, colour) in enumerate(self._boxes):
            chosen = index == self._selected
            pen_colour = QColor(colour)
            if self._selected >= 0 and not chosen:
                pen_colour.setAlphaF(0.45)
            painter.setPen(QPen(pen_colour, 3.0 if chosen else 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(map_rect(rect, self._space, target))
        if self._marker is not None:
            centre = self.to_widget(self._marker)
            painter.setPen(QPen(QColor("#ffffff"), 2.5))
            painter.setBrush(QColor("#3a7bd5"))
            painter.drawEllipse(centre, 6, 6)
        painter.end()

    def _paint_grid(self, painter: QPainter, region: QRectF) -> None:
        rows, cols = self._grid
        painter.setPen(QPen(QColor(255, 255, 255, 70), 1))
        for r in range(1, rows):
            y = region.top() + r * region.height() / rows
            painter.drawLine(QPointF(region.left(), y), QPointF(region.right(), y))
        for c in range(1, cols):
            x = region.left() + c * region.width() / cols
            painter.drawLine(QPointF(x, region.top()), QPointF(x, region.bottom()))

    # ----- interaction ------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.photo_rect().contains(event.position()):
            self.clicked.emit(self.to_photo(event.position()))
        super().mousePressEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(420, 300)
