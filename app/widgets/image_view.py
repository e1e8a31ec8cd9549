"""A picture with what a model found drawn over it (the boxes and caption are painted by
app/widgets/overlays.py), and a badge for live numbers. It takes dropped files and says which box
is under the mouse."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMimeData, QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QFontInfo,
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
from app.widgets.overlays import Box, Overlay, draw_pill, map_rect, paint_overlays, pill_size


class ImageView(QWidget):
    """Shows one picture scaled to fit. Boxes are given in a pixel space of their own (the
    original picture's size), so a preview decoded at a smaller scale still lines up.

    Signals: `hovered(index)` (-1 when the mouse is over no box), `pointed(QPointF)` (the
    original's pixel under the mouse, (-1, -1) off the picture), `dropped(QMimeData)`,
    `step(±1)` from the arrow keys, to move through several pictures.
    """

    hovered = Signal(int)
    pointed = Signal(QPointF)
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

    def pixel_at(self, point: QPointF) -> QPointF:
        """The original's pixel under widget `point` (in `space`), (-1, -1) when off the picture."""
        target = self.image_rect()
        if target.isEmpty() or not target.contains(point) or self._space.isEmpty():
            return QPointF(-1, -1)
        x = (point.x() - target.left()) / target.width() * self._space.width()
        y = (point.y() - target.top()) / target.height() * self._space.height()
        return QPointF(min(x, self._space.width() - 1), min(y, self._space.height() - 1))

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
            self.paint_over(painter, target)
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

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        """What lies over the picture drawn in `target`: the boxes and the caption. A view for
        another kind of result (segments) paints its own."""
        overlay = Overlay(tuple(self._boxes), self._space, self._caption, self.font())
        paint_overlays(painter, overlay, target, scale=1.0, highlight=self._highlight)

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
        self.pointed.emit(self.pixel_at(event.position()))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        if self._highlight >= 0:
            self.set_highlight(-1)
            self.hovered.emit(-1)
        self.pointed.emit(QPointF(-1, -1))
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
