"""What a model found, drawn over a picture: boxes labelled in their class's colour and a
caption. `Overlay` holds them as plain data and the functions here paint it with QPainter, so the
view (image_view.py) and the export (app/annotate.py), which paints the full-size picture in
another thread, draw it exactly alike."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen

from engine.annotate import PALETTE, palette_index


def class_colour(key: int | str) -> QColor:
    """The colour of a class: by its id when known, else by a hash of its name (the palette is
    the engine's, so the files the CLI draws agree with the view)."""
    return QColor(PALETTE[palette_index(key)])


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


def resized_font(font: QFont, factor: float) -> QFont:
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
    font = resized_font(overlay.font, 0.95 * scale)
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
        big = resized_font(font, 1.25)
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
