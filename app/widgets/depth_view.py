"""The depth tab's pictures: the coloured depth alone (beside the photo in the input card) or laid
over the photo with a divider to drag, a colour bar in the depth's units, and the small maps
from inside the model."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

SIDE_BY_SIDE, OVERLAY, THREE_D = "side", "overlay", "3d"  # THREE_D is the tab's DepthScene


class DepthView(QWidget):
    """The depth picture fitted to the widget. In `OVERLAY` mode the photo lies underneath and
    the depth covers it left of a vertical divider at `split()` (0..1 of the width), which a
    press-and-drag moves. `hovered(QPointF)` gives the pixel under the mouse in the original
    picture's pixels (`space`), or an invalid point (-1, -1) when the mouse is off the picture."""

    hovered = Signal(QPointF)
    split_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._depth: QImage | None = None
        self._photo: QImage | None = None
        self._space = QSizeF()
        self._mode = SIDE_BY_SIDE
        self._split = 0.5
        self._dragging = False
        self._placeholder = ""
        self.setMouseTracking(True)
        self.setMinimumSize(200, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pictures(self, depth: QImage | None, photo: QImage | None, space: QSize | None = None) -> None:
        """`depth` and `photo` may be scaled copies: both are drawn over the picture of size
        `space` (the original's), which hover positions are given in."""
        self._depth, self._photo = depth, photo
        self._space = QSizeF(space) if space is not None and space.isValid() else QSizeF()
        self.update()

    def depth(self) -> QImage | None:
        return self._depth

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_mode(self, mode: str) -> None:
        self._mode = mode
        self.update()

    def mode(self) -> str:
        return self._mode

    def set_split(self, split: float) -> None:
        split = min(max(split, 0.0), 1.0)
        if split != self._split:
            self._split = split
            self.split_changed.emit(split)
            self.update()

    def split(self) -> float:
        return self._split

    # ----- geometry ---------------------------------------------------------------------------

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn: fitted, centred, aspect kept."""
        if self._depth is None:
            return QRectF()
        area = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        shape = self._space if not self._space.isEmpty() else QSizeF(self._depth.size())
        size = shape.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF(area.center().x() - size.width() / 2, area.center().y() - size.height() / 2,
                      size.width(), size.height())

    def pixel_at(self, point: QPointF) -> QPointF:
        """The original's pixel under widget `point`, (-1, -1) when off the picture."""
        target = self.picture_rect()
        if target.isEmpty() or not target.contains(point):
            return QPointF(-1, -1)
        space = self._space if not self._space.isEmpty() else QSizeF(self._depth.size())
        x = (point.x() - target.left()) / target.width() * space.width()
        y = (point.y() - target.top()) / target.height() * space.height()
        return QPointF(min(x, space.width() - 1), min(y, space.height() - 1))

    def divider_x(self) -> float:
        target = self.picture_rect()
        return target.left() + self._split * target.width()

    # ----- painting and the mouse ---------------------------------------------------------------

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._depth is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRectF(self.rect()).adjusted(20, 0, -20, 0),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        target = self.picture_rect()
        if self._mode == OVERLAY and self._photo is not None:
            painter.drawImage(target, self._photo)
            x = self.divider_x()
            painter.save()
            painter.setClipRect(QRectF(target.left(), target.top(), x - target.left(), target.height()))
            painter.drawImage(target, self._depth)
            painter.restore()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(255, 255, 255, 230), 2))
            painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
            painter.setBrush(QColor(255, 255, 255, 230))
            painter.setPen(QPen(QColor(0, 0, 0, 120), 1))
            painter.drawEllipse(QPointF(x, target.center().y()), 7, 7)
        else:
            painter.drawImage(target, self._depth)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._mode == OVERLAY and event.button() == Qt.MouseButton.LeftButton and self._depth is not None:
            self._dragging = True
            self._drag_to(event.position())
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self._drag_to(event.position())
        self.hovered.emit(self.pixel_at(event.position()))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._dragging = False
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: object) -> None:
        self.hovered.emit(QPointF(-1, -1))
        super().leaveEvent(event)

    def _drag_to(self, point: QPointF) -> None:
        target = self.picture_rect()
        if target.width() > 0:
            self.set_split((point.x() - target.left()) / target.width())


class ColourBar(QWidget):
    """The colour map as a vertical strip, the highest value on top, labelled with the range
    and what the numbers mean ("m", or "nearer ↑" for relative depth)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._strip: QImage | None = None
        self._top = self._bottom = self._title = ""
        self.setFixedWidth(76)
        self.setMinimumHeight(120)

    def set_scale(self, strip: QImage | None, low: str = "", high: str = "", title: str = "") -> None:
        self._strip, self._bottom, self._top, self._title = strip, low, high, title
        self.update()

    def labels(self) -> tuple[str, str, str]:
        """(title, top, bottom): what the bar says."""
        return self._title, self._top, self._bottom

    def paintEvent(self, _event: object) -> None:
        if self._strip is None:
            return
        painter = QPainter(self)
        line = self.fontMetrics().height()
        strip = QRectF(4, 3 * line, 14, self.height() - 4 * line)  # room for the title and the top label
        painter.drawImage(strip, self._strip)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        painter.drawText(QRectF(0, 0, self.width(), 2 * line), Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap,
                         self._title)
        text_left = strip.right() + 4
        painter.drawText(QRectF(text_left, strip.top() - line / 2, self.width() - text_left, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._top)
        painter.drawText(QRectF(text_left, strip.bottom() - line / 2, self.width() - text_left, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._bottom)


class LevelStrip(QWidget):
    """Small pictures in a row, each with a caption under it (the model's inner maps). Cells are
    kept and refilled, so redrawing in other colours leaves nothing behind."""

    HEIGHT = 64

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.addStretch(1)
        self._cells: list[tuple[QWidget, QLabel, QLabel]] = []

    def set_pictures(self, pictures: list[tuple[QImage, str]]) -> None:
        while len(self._cells) < len(pictures):
            cell, picture, text = QWidget(), QLabel(), QLabel()
            text.setObjectName("hint")
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(picture)
            column.addWidget(text)
            self._row.insertWidget(len(self._cells), cell)
            self._cells.append((cell, picture, text))
        for index, (cell, picture, text) in enumerate(self._cells):
            if index < len(pictures):
                image, caption = pictures[index]
                scaled = image.scaledToHeight(self.HEIGHT, Qt.TransformationMode.FastTransformation)
                picture.setPixmap(QPixmap.fromImage(scaled))
                text.setText(caption)
            cell.setVisible(index < len(pictures))  # after its content: the row lays it out at its size

    def captions(self) -> list[str]:
        return [text.text() for cell, _, text in self._cells if not cell.isHidden()]
