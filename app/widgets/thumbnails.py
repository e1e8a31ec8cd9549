"""A strip of thumbnails to step through the pictures a tab holds."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QIcon, QImage, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListView, QListWidget, QListWidgetItem, QWidget

from app.pictures import accepts

ICON = QSize(96, 64)
_ID = Qt.ItemDataRole.UserRole


def _fit_icon(image: QImage | None) -> QIcon:
    """`image` centred on a fixed-size canvas, so every tile has the same shape."""
    canvas = QPixmap(ICON)
    canvas.fill(QColor(0, 0, 0, 0))
    if image is not None and not image.isNull():
        scaled = image.scaled(ICON, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        painter = QPainter(canvas)
        painter.drawImage((ICON.width() - scaled.width()) // 2, (ICON.height() - scaled.height()) // 2, scaled)
        painter.end()
    return QIcon(canvas)


class ThumbnailStrip(QListWidget):
    """One tile per picture, left to right. Signals carry picture ids: `picked(id)` when the user
    selects a tile, `removed(id)` on Delete; `dropped(QMimeData)` for files dropped on the strip."""

    picked = Signal(int)
    removed = Signal(int)
    dropped = Signal(QMimeData)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(ICON)
        self.setSpacing(4)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFixedHeight(ICON.height() + 30)  # a tile, its margins and the scroll bar
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.currentItemChanged.connect(self._on_current)

    def add(self, picture_id: int, name: str, thumbnail: QImage | None = None) -> None:
        item = QListWidgetItem(_fit_icon(thumbnail), "")
        item.setData(_ID, picture_id)
        item.setToolTip(name)
        item.setSizeHint(QSize(ICON.width() + 8, ICON.height() + 8))
        self.addItem(item)

    def set_thumbnail(self, picture_id: int, thumbnail: QImage) -> None:
        item = self._item(picture_id)
        if item is not None:
            item.setIcon(_fit_icon(thumbnail))

    def remove(self, picture_id: int) -> None:
        item = self._item(picture_id)
        if item is not None:
            self.blockSignals(True)  # the tab chooses what to show next
            self.takeItem(self.row(item))
            self.blockSignals(False)

    def select(self, picture_id: int) -> None:
        """Mark a picture as current without emitting `picked`."""
        item = self._item(picture_id)
        self.blockSignals(True)
        self.setCurrentItem(item)
        self.blockSignals(False)
        if item is not None:
            self.scrollToItem(item)

    def ids(self) -> list[int]:
        return [self.item(row).data(_ID) for row in range(self.count())]

    def _item(self, picture_id: int) -> QListWidgetItem | None:
        for row in range(self.count()):
            if self.item(row).data(_ID) == picture_id:
                return self.item(row)
        return None

    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.picked.emit(item.data(_ID))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and item is not None:
            self.removed.emit(item.data(_ID))
        else:
            super().keyPressEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if accepts(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:
        if accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if accepts(event.mimeData()):
            event.acceptProposedAction()
            self.dropped.emit(event.mimeData())
