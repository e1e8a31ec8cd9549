"""A picture with what a model found drawn over it: boxes labelled in their class's colour, a
caption, and a badge for live numbers. It takes dropped files and says which box is under the
mouse. The overlays are drawn by module functions, so the export (app/annotate.py) paints them
onto the full-size picture in another thread exactly as the screen shows them."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QMimeData, QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QFontInfo,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app import theme
from app.pictures import accepts

# Distinct, saturated colours that stay readable on photos; a class keeps its colour by id.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#469990", "#dcbeff", "#9a6324", "#ffe119", "#800000", "#aaffc3", "#808000", "#000075",
)


def class_colour(key: int | str) -> QColor:
    """The colour of a class: by its id when known, else by a hash of its name."""
    index = key if isinstance(key, int) else zlib.crc32(str(key).encode())
    return QColor(PALETTE[index % len(PALETTE)])


def text_colour_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on `background` (perceived luminance)."""
    r, g, b = background.redF(), background.greenF(), background.blueF()
    return QColor("#111111") if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else QColor("#ffffff")


@dataclass(frozen=True)
class Box:
    """A labelled rectangle in the pixels of the picture the model saw (x0, y0, x1, y1)."""

    rect: QRectF
    text: str
    colour: QColor


@dataclass(frozen=True)
class Overlay:
    """What the view draws over a picture, detached from the widget so another thread can
    paint it: boxes in the pixels of a picture of size `space`, a caption, and the font whose
    size the overlay scales from (in pixels, so a picture's stored DPI cannot change it)."""

    boxes: tuple[Box, ...]
    space: QSizeF
    caption: str
    font: QFont


# An exported picture looks as the view shows it when its long side is this many pixels, so a
# 4000-pixel photo gets lines and labels four times as thick as a 1000-pixel one.
EXPORT_REFERENCE_SIDE = 1000


def render_overlay(image: QImage, overlay: Overlay) -> QImage:
    """A copy of `image` with `overlay` drawn at a size relative to the picture, every box alike.
    Only QImage and QPainter: safe outside the GUI thread. `image` itself is left alone."""
    keeps = (QImage.Format.Format_RGB32, QImage.Format.Format_ARGB32_Premultiplied)
    out = image.copy() if image.format() in keeps else image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    scale = max(1.0, max(out.width(), out.height()) / EXPORT_REFERENCE_SIDE)
    paint_overlays(painter, overlay, QRectF(out.rect()), scale)
    painter.end()
    return out


def map_rect(rect: QRectF, space: QSizeF, target: QRectF) -> QRectF:
    """`rect`, given in the pixels of a picture of size `space`, where that picture fills `target`."""
    if space.isEmpty():
        return QRectF()
    sx, sy = target.width() / space.width(), target.height() / space.height()
    return QRectF(target.x() + rect.x() * sx, target.y() + rect.y() * sy, rect.width() * sx, rect.height() * sy)


def _resized(font: QFont, factor: float) -> QFont:
    """`font` `factor` times as large, whether its size was set in points or in pixels."""
    out = QFont(font)
    if font.pixelSize() > 0:
        out.setPixelSize(max(1, round(font.pixelSize() * factor)))
    else:
        out.setPointSizeF(font.pointSizeF() * factor)
    return out


def paint_overlays(painter: QPainter, overlay: Overlay, target: QRectF, scale: float, highlight: int = -1) -> None:
    """Boxes, labels and caption of `overlay` over a picture drawn in `target`; `scale` widens
    lines and fonts, `highlight` is the box the mouse is over (-1 for none)."""
    boxes = overlay.boxes
    font = _resized(overlay.font, 0.95 * scale)
    font.setWeight(QFont.Weight.DemiBold)
    rects = [map_rect(box.rect, overlay.space, target).intersected(target) for box in boxes]
    labels = _place_labels(rects, [box.text for box in boxes], font, target)
    order = [i for i in range(len(boxes)) if i != highlight and not rects[i].isEmpty()]
    if highlight >= 0:
        order.append(highlight)  # drawn last, on top of its neighbours
    for i in order:
        colour = QColor(boxes[i].colour)
        dimmed = highlight >= 0 and i != highlight
        fill = QColor(colour)
        fill.setAlphaF(0.22 if i == highlight else 0.0 if dimmed else 0.08)
        if dimmed:
            colour.setAlphaF(0.35)
        painter.setBrush(fill)
        painter.setPen(QPen(colour, (3.5 if i == highlight else 2.0) * scale))
        painter.drawRoundedRect(rects[i], 3 * scale, 3 * scale)
    for i in order:  # labels after every box, so no box line crosses a label
        background = QColor(boxes[i].colour)
        background.setAlphaF(0.5 if highlight >= 0 and i != highlight else 0.92)
        draw_pill(painter, labels[i], boxes[i].text, background, font)
    if overlay.caption:
        big = _resized(font, 1.25)
        size = pill_size(overlay.caption, big)
        corner = QPointF(target.left() + 10 * scale, target.bottom() - 10 * scale - size.height())
        draw_pill(painter, QRectF(corner, size), overlay.caption, QColor(20, 22, 26, 200), big)


def _place_labels(rects: list[QRectF], texts: list[str], font: QFont, bound: QRectF) -> list[QRectF]:
    """Where each box's label goes: above its top-left corner when that spot is free, else
    the first free spot among inside the top, above the right end and below the box. Boxes
    come best first, so the best get the best spots, and the places do not move on hover."""
    placed: list[QRectF] = []
    for rect, text in zip(rects, texts):
        size = pill_size(text, font)
        w, h = size.width(), size.height()
        spots = [
            QPointF(rect.left(), rect.top() - h),
            QPointF(rect.left(), rect.top()),
            QPointF(rect.right() - w, rect.top() - h),
            QPointF(rect.left(), rect.bottom()),
        ]
        options = []
        for spot in spots:
            x = max(bound.left(), min(spot.x(), bound.right() - w))
            y = max(bound.top(), min(spot.y(), bound.bottom() - h))
            options.append(QRectF(QPointF(x, y), size))
        free = [o for o in options if not any(o.intersects(p) for p in placed)]
        placed.append(free[0] if free else options[0])
    return placed


def pill_size(text: str, font: QFont) -> QSizeF:
    metrics = QFontMetricsF(font)
    pad = metrics.height() * 0.3
    return QSizeF(metrics.horizontalAdvance(text) + 2 * pad, metrics.height() + pad)


def draw_pill(painter: QPainter, rect: QRectF, text: str, background: QColor, font: QFont) -> None:
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(background)
    painter.drawRoundedRect(rect, rect.height() / 4, rect.height() / 4)
    painter.setPen(text_colour_on(background) if background.alphaF() > 0.6 else QColor("#ffffff"))
    painter.setFont(font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


class ImageView(QWidget):
    """Shows one picture scaled to fit. Boxes are given in a pixel space of their own (the
    original picture's size), so a preview decoded at a smaller scale still lines up.

    Signals: `hovered(index)` (-1 when the mouse is over no box), `dropped(QMimeData)`,
    `step(±1)` from the arrow keys, to move through several pictures.
    """

    hovered = Signal(int)
    dropped = Signal(QMimeData)
    step = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._space = QSizeF()
        self._boxes: list[Box] = []
        self._highlight = -1
        self._caption = ""
        self._badge = ""
        self._placeholder = "Drop images here"
        self._hint = "or paste one (Ctrl+V), open files (Ctrl+O), pick a sample or start the camera"
        self._drag_over = False
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ----- content ----------------------------------------------------------------------------

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None, space: QSize | None = None) -> None:
        """Show `image`; `space` is the size of the original it stands for (its own size when
        omitted). Boxes stay until `set_boxes` replaces them, so a video keeps its overlay."""
        self._image = image if image is not None and not image.isNull() else None
        if space is not None and space.isValid():
            self._space = QSizeF(space)
        elif self._image is not None:
            self._space = QSizeF(self._image.size())
        self.update()

    def set_boxes(self, boxes: list[Box], space: QSize | tuple[int, int] | None = None) -> None:
        if isinstance(space, tuple):
            space = QSize(*space)
        if space is not None and space.isValid():
            self._space = QSizeF(space)
        self._boxes = list(boxes)
        self._highlight = -1
        self.update()

    def boxes(self) -> list[Box]:
        return list(self._boxes)

    def set_highlight(self, index: int) -> None:
        index = index if 0 <= index < len(self._boxes) else -1
        if index != self._highlight:
            self._highlight = index
            self.update()

    def highlight(self) -> int:
        return self._highlight

    def set_caption(self, text: str) -> None:
        self._caption = text
        self.update()

    def caption(self) -> str:
        return self._caption

    def set_badge(self, text: str) -> None:
        self._badge = text
        self.update()

    def badge(self) -> str:
        return self._badge

    def set_placeholder(self, title: str, hint: str = "") -> None:
        self._placeholder, self._hint = title, hint
        self.update()

    def clear(self) -> None:
        self._image = None
        self._boxes = []
        self._highlight = -1
        self._caption = ""
        self.update()

    # ----- geometry ---------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the picture is drawn in the widget: fitted, centred, aspect kept."""
        if self._image is None:
            return QRectF()
        area = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        size = QSizeF(self._image.size()).scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF(area.center().x() - size.width() / 2, area.center().y() - size.height() / 2,
                      size.width(), size.height())

    def box_rect(self, index: int) -> QRectF:
        """Box `index` in widget coordinates."""
        return self._map(self._boxes[index].rect, self.image_rect())

    def box_at(self, point: QPointF) -> int:
        """The smallest box under `point`, so a box inside another can still be picked."""
        target = self.image_rect()
        under = [i for i, box in enumerate(self._boxes) if self._map(box.rect, target).contains(point)]
        return min(under, key=lambda i: self._boxes[i].rect.width() * self._boxes[i].rect.height(), default=-1)

    def _map(self, rect: QRectF, target: QRectF) -> QRectF:
        return map_rect(rect, self._space, target)

    # ----- painting ---------------------------------------------------------------------------

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._image is None:
            self._paint_placeholder(painter)
        else:
            target = self.image_rect()
            painter.drawImage(target, self._image)
            overlay = Overlay(tuple(self._boxes), self._space, self._caption, self.font())
            paint_overlays(painter, overlay, target, scale=1.0, highlight=self._highlight)
            if self._badge:
                size = pill_size(self._badge, self.font())
                corner = QPointF(target.right() - 8 - size.width(), target.top() + 8)
                draw_pill(painter, QRectF(corner, size), self._badge, QColor(0, 0, 0, 170), self.font())
        if self._drag_over:
            pen = QPen(theme.accent(self), 3)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(2, 2, -2, -2), 8, 8)
        painter.end()

    def overlay(self) -> Overlay:
        """A copy of what is drawn over the picture, for painting elsewhere (the export). The font
        is fixed in pixels at its on-screen size: a picture's stored DPI must not resize it."""
        font = QFont(self.font())
        font.setPixelSize(QFontInfo(self.font()).pixelSize())
        boxes = tuple(Box(QRectF(b.rect), b.text, QColor(b.colour)) for b in self._boxes)
        return Overlay(boxes, QSizeF(self._space), self._caption, font)

    def _paint_placeholder(self, painter: QPainter) -> None:
        area = QRectF(self.rect()).adjusted(8, 8, -8, -8)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        pen = QPen(muted, 1.5, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(self.palette().color(QPalette.ColorRole.AlternateBase))
        painter.drawRoundedRect(area, 10, 10)
        # a small landscape glyph: frame, sun and two hills
        icon = QRectF(0, 0, 56, 42)
        icon.moveCenter(QPointF(area.center().x(), area.center().y() - 34))
        painter.setPen(QPen(muted, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(icon, 6, 6)
        painter.setBrush(muted)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(QPointF(icon.left() + 16, icon.top() + 13), 5, 5)
        hills = QPainterPath(QPointF(icon.left() + 4, icon.bottom() - 4))
        hills.lineTo(icon.left() + 22, icon.top() + 20)
        hills.lineTo(icon.left() + 32, icon.top() + 30)
        hills.lineTo(icon.left() + 40, icon.top() + 22)
        hills.lineTo(icon.right() - 4, icon.bottom() - 4)
        hills.closeSubpath()
        painter.drawPath(hills)
        title = QFont(self.font())
        title.setPointSizeF(title.pointSizeF() * 1.2)
        title.setWeight(QFont.Weight.DemiBold)
        painter.setFont(title)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        text_top = icon.bottom() + 12
        painter.drawText(QRectF(area.left(), text_top, area.width(), 26), Qt.AlignmentFlag.AlignCenter, self._placeholder)
        painter.setFont(self.font())
        painter.setPen(muted)
        painter.drawText(QRectF(area.left() + 20, text_top + 28, area.width() - 40, 44),
                         Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap, self._hint)

    # ----- interaction ------------------------------------------------------------------------

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.box_at(event.position())
        if index != self._highlight:
            self.set_highlight(index)
            self.hovered.emit(index)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        if self._highlight >= 0:
            self.set_highlight(-1)
            self.hovered.emit(-1)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        steps = {Qt.Key.Key_Left: -1, Qt.Key.Key_Up: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Down: 1}
        if event.key() in steps:
            self.step.emit(steps[event.key()])
        else:
            super().keyPressEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if accepts(event.mimeData()):
            event.acceptProposedAction()
            self._drag_over = True
            self.update()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:
        if accepts(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QEvent) -> None:
        self._drag_over = False
        self.update()

    def dropEvent(self, event: QDropEvent) -> None:
        self._drag_over = False
        self.update()
        if accepts(event.mimeData()):
            event.acceptProposedAction()
            self.dropped.emit(event.mimeData())

    def sizeHint(self) -> QSize:
        return QSize(560, 420)
