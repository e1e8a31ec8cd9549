"""The picture with its segments laid over it: a translucent colour per segment with its
outline (app/segment_maps.py makes that layer), and a label at each segment's centre, placed so
that no two labels overlap. The mouse lights the segment under it; a click picks it.

`paint_labels` draws the labels for the view and for the full-size export alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter

from app.segment_maps import IndexMap, boundary, layer, rgba_image
from app.widgets.image_view import ImageView
from app.widgets.overlays import resized_font, draw_pill, pill_size


@dataclass(frozen=True)
class SegmentLabel:
    """A segment's label: its text, its colour and where it goes, (x, y) in the original's pixels."""

    text: str
    colour: QColor
    anchor: tuple[float, float]
    area: int


def place_labels(labels: Sequence[SegmentLabel], space: QSizeF, target: QRectF, font: QFont,
                 first: int = -1) -> dict[int, QRectF]:
    """Where each label is drawn, centred on its anchor or, when that spot is taken, just above
    or below it; a label with no free spot is left out. `first` (the lit segment) is placed
    before the others, then the largest segments, so the big regions keep their names."""
    if space.isEmpty():
        return {}
    sx, sy = target.width() / space.width(), target.height() / space.height()
    order = sorted(range(len(labels)), key=lambda i: (i != first, -labels[i].area))
    placed: dict[int, QRectF] = {}
    for i in order:
        size = pill_size(labels[i].text, font)
        x = target.left() + labels[i].anchor[0] * sx - size.width() / 2
        y = target.top() + labels[i].anchor[1] * sy - size.height() / 2
        for dy in (0.0, -1.1, 1.1, -2.2, 2.2):
            spot = QRectF(QPointF(x, y + dy * size.height()), size)
            spot.moveLeft(max(target.left(), min(spot.left(), target.right() - size.width())))
            spot.moveTop(max(target.top(), min(spot.top(), target.bottom() - size.height())))
            if not any(spot.intersects(other) for other in placed.values()):
                placed[i] = spot
                break
        else:
            if i == first:
                placed[i] = QRectF(QPointF(x, y), size)
    return placed


def paint_labels(painter: QPainter, labels: Sequence[SegmentLabel], space: QSizeF, target: QRectF, font: QFont,
                 scale: float, highlight: int = -1, isolate: int = -1) -> None:
    """The labels over a picture drawn in `target`; with `isolate` only that one, with
    `highlight` that one in full colour and the others faded."""
    font = resized_font(font, 0.9 * scale)
    font.setWeight(QFont.Weight.DemiBold)
    shown = [label if isolate < 0 or i == isolate else None for i, label in enumerate(labels)]
    kept = [i for i, label in enumerate(shown) if label is not None]
    first = isolate if isolate >= 0 else highlight
    places = place_labels([labels[i] for i in kept], space, target, font, kept.index(first) if first in kept else -1)
    for slot, rect in places.items():
        i = kept[slot]
        background = QColor(labels[i].colour)
        background.setAlphaF(0.5 if highlight >= 0 and i != highlight else 0.92)
        draw_pill(painter, rect, labels[i].text, background, font)


class SegmentView(ImageView):
    """An ImageView that draws segments instead of boxes. `hovered(index)` names the segment
    under the mouse (-1 for none), `clicked(index)` the one clicked."""

    clicked = Signal(int)

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self._mapped: IndexMap | None = None
        self._colours = np.zeros((0, 3), dtype=np.uint8)
        self._labels: list[SegmentLabel] = []
        self._layer: QImage | None = None
        self._opacity = 0.55
        self._alone = False
        self._isolated = -1
        self._pressed_at: QPointF | None = None
        self._edge: np.ndarray | None = None

    def set_segments(self, mapped: IndexMap | None, colours: np.ndarray, labels: list[SegmentLabel]) -> None:
        self._mapped, self._colours, self._labels = mapped, colours, list(labels)
        self._edge = None if mapped is None else boundary(mapped.indices)  # kept for every redraw
        self._highlight = self._isolated = -1
        self._rebuild()

    def set_style(self, opacity: float, alone: bool) -> None:
        """`opacity` of the colours over the photo; `alone`: the label map by itself."""
        self._opacity, self._alone = opacity, alone
        self._rebuild()

    def set_isolated(self, index: int) -> None:
        self._isolated = index if 0 <= index < len(self._labels) else -1
        self._rebuild()

    def isolated(self) -> int:
        return self._isolated

    def set_highlight(self, index: int) -> None:
        index = index if 0 <= index < len(self._labels) else -1
        if index != self._highlight:
            self._highlight = index
            self._rebuild()

    def layer_image(self) -> QImage | None:
        return self._layer

    def mapped(self) -> IndexMap | None:
        """Which segment covers each pixel, at the layer's size."""
        return self._mapped

    def colours(self) -> np.ndarray:
        """(N, 3) uint8: the segments' colours, in the result's order."""
        return self._colours

    def labels(self) -> list[SegmentLabel]:
        return list(self._labels)

    def box_at(self, point: QPointF) -> int:
        """The segment under widget `point` (what ImageView's hover asks), -1 for none."""
        target, mapped = self.image_rect(), self._mapped
        if mapped is None or target.isEmpty() or not target.contains(point):
            return -1
        width, height = mapped.size
        x = (point.x() - target.left()) / target.width() * width
        y = (point.y() - target.top()) / target.height() * height
        index = mapped.at(x, y)
        return index if self._isolated < 0 or index == self._isolated else -1

    def _rebuild(self) -> None:
        if self._mapped is None or not self._labels:
            self._layer = None
        else:
            rgba = layer(self._mapped.indices, self._colours, opacity=self._opacity, highlight=self._highlight,
                         isolate=self._isolated, alone=self._alone, edge=self._edge)
            self._layer = rgba_image(rgba)
        self.update()

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        mapped = self._mapped
        if self._layer is None or mapped is None:
            return
        width, height = mapped.size
        space = QSizeF(width, height)
        # each layer pixel stands for step × step pixels; the last row and column may stand for fewer
        covered = QRectF(target.left(), target.top(),
                         target.width() * self._layer.width() * mapped.step / width,
                         target.height() * self._layer.height() * mapped.step / height)
        painter.save()
        painter.setClipRect(target)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp segment edges
        painter.drawImage(covered, self._layer)
        painter.restore()
        paint_labels(painter, self._labels, space, target, self.font(), 1.0, self._highlight, self._isolated)

    # ----- clicks -----------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._pressed_at = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pressed, self._pressed_at = self._pressed_at, None
        if pressed is not None and (event.position() - pressed).manhattanLength() < 6:
            self.clicked.emit(self._segment_under(event.position()))
        super().mouseReleaseEvent(event)

    def _segment_under(self, point: QPointF) -> int:
        isolated, self._isolated = self._isolated, -1  # a click on a hidden segment picks it too
        try:
            return self.box_at(point)
        finally:
            self._isolated = isolated
