"""The pictures a vision tab holds, and how they get in: files, dropped or pasted data, camera
frames. Decoding for the screen happens in a thread pool with Qt's scaled reads, so a 50-megapixel
photo never stalls the window; the engine decodes its own full copy in the worker thread.

This module imports Qt only (numpy lazily, for camera frames and pasted pixels), never torch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QObject, QSize, Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader

PREVIEW_SIDE = 2048  # longest side kept for the screen; sharp on a HiDPI monitor
THUMBNAIL_SIDE = 144
MAX_FOLDER_FILES = 500  # a dropped folder is read for images, but not without end

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".tga")
FILE_FILTER = (
    "Images (" + " ".join("*" + s for s in IMAGE_SUFFIXES) + ");;All files (*)"
)

_ids = itertools.count(1)


@dataclass(eq=False)
class Picture:
    """One input image. `source` is what the engine reads (a path, or an HxWx3 uint8 array for
    pasted pixels and camera frames); `preview` and `thumbnail` are for the screen only."""

    name: str
    source: Any
    image: QImage | None = None  # pasted pixels, until the pool has made an array of them
    id: int = field(default_factory=lambda: next(_ids))
    preview: QImage | None = None
    thumbnail: QImage | None = None
    size: QSize = field(default_factory=QSize)  # upright size of the original
    error: str = ""
    decoding: bool = False
    outcome: Any = None  # the worker's Outcome for this picture, once run
    attempted: Any = None  # the ModelSpec last run on it, so an automatic run happens once
    shown_order: int = 0  # when it was last shown; the oldest previews are let go first

    @property
    def ready(self) -> bool:
        return self.preview is not None and not self.error


@dataclass(frozen=True)
class Decoded:
    preview: QImage | None
    thumbnail: QImage | None
    size: QSize
    source: Any  # the engine's input when decoding produced it (pasted pixels), else None
    error: str


# ----- decoding, off the UI thread -------------------------------------------------------------


def _fit(size: QSize, side: int) -> QSize:
    """`size` shrunk to fit a `side` x `side` square, aspect kept; never enlarged."""
    if max(size.width(), size.height()) <= side:
        return QSize(size)
    return size.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio)


def read_image(path: Path, side: int = PREVIEW_SIDE) -> tuple[QImage, QSize]:
    """The picture at `path`, upright (EXIF orientation applied) and at most `side` pixels on
    its longest side, with the original's upright size. Raises ValueError with a message for
    people. JPEG files are decoded straight at the reduced scale, so a huge photo costs little."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ValueError(f"{path.name} is empty (0 bytes)")
    except OSError as exc:
        raise ValueError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    if not reader.canRead():
        raise ValueError(f"{path.name} is not an image file this app can read")
    stored = reader.size()  # before the EXIF rotation
    upright = stored.transposed() if reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90 else stored
    if stored.isValid():
        reader.setScaledSize(_fit(stored, side))
    image = reader.read()
    if image.isNull():
        if stored.isValid() and stored.width() * stored.height() > 60_000_000:
            raise ValueError(f"{path.name} is {stored.width()}×{stored.height()} pixels, too large to show")
        raise ValueError(f"{path.name} is corrupt or not an image ({reader.errorString()})")
    if not upright.isValid():
        upright = image.size()
    return image, upright


def _scaled(image: QImage, side: int) -> QImage:
    if max(image.width(), image.height()) <= side:
        return image
    return image.scaled(
        _fit(image.size(), side), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def to_array(image: QImage) -> Any:
    """An HxWx3 uint8 numpy copy of `image`, as the engine takes camera frames."""
    import numpy as np

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    rows = np.frombuffer(rgb.constBits(), np.uint8, count=stride * height).reshape(height, stride)
    return rows[:, : width * 3].reshape(height, width, 3).copy()  # drop the row padding


def decode(picture_source: Any, image: QImage | None) -> Decoded:
    """Everything the screen needs for one picture; runs in the pool."""
    try:
        if image is not None:
            preview = _scaled(image, PREVIEW_SIDE)
            size, source = image.size(), to_array(image)
        else:
            preview, size = read_image(picture_source)
            source = None
    except ValueError as exc:
        return Decoded(None, None, QSize(), None, str(exc))
    thumbnail = _scaled(preview, THUMBNAIL_SIDE)
    return Decoded(preview, thumbnail, size, source, "")


class PictureDecoder(QObject):
    """Decodes pictures in its own small thread pool; `decoded(picture_id, Decoded)` arrives in
    the UI thread (the signal crosses threads as a queued call)."""

    decoded = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)  # the engine worker needs the other cores

    def request(self, picture: Picture) -> None:
        picture.decoding = True
        source, image, picture_id = picture.source, picture.image, picture.id
        self._pool.start(lambda: self._work(picture_id, source, image))

    def _work(self, picture_id: int, source: Any, image: QImage | None) -> None:
        result = decode(source, image)
        try:
            self.decoded.emit(picture_id, result)
        except RuntimeError:  # the tab was closed while this picture was decoding
            pass


# ----- what arrives by drag-and-drop or the clipboard -----------------------------------------


def local_folders(mime: QMimeData) -> list[Path]:
    """The local folders among what `mime` names by file URL (a folder dropped on a tab)."""
    urls = list(mime.urls()) if mime.hasUrls() else []
    return [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and Path(u.toLocalFile()).is_dir()]


def local_paths(mime: QMimeData) -> list[Path]:
    """Local files named by `mime` (file URLs, or text holding a path or file URL); a folder
    stands for the images in it, by name."""
    urls = list(mime.urls()) if mime.hasUrls() else []
    if not urls and mime.hasText():
        for line in mime.text().splitlines():
            line = line.strip()
            if line:
                urls.append(QUrl(line) if line.startswith("file:") else QUrl.fromLocalFile(line))
    paths = []
    for url in urls:
        if not url.isLocalFile():
            continue
        path = Path(url.toLocalFile())
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            paths.extend(inside[:MAX_FOLDER_FILES])
        elif path.is_file():
            paths.append(path)
    return paths


def remote_urls(mime: QMimeData) -> list[str]:
    return [u.toString() for u in mime.urls() if not u.isLocalFile()] if mime.hasUrls() else []


def pictures_from_mime(mime: QMimeData) -> tuple[list[Picture], str]:
    """Pictures for the files or pixels in `mime`, and a message when nothing usable is there."""
    paths = local_paths(mime)
    if paths:
        return [Picture(p.name, p) for p in paths], ""
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return [Picture("Pasted image", None, image=image)], ""
    if remote_urls(mime):
        return [], "Only files on this computer can be opened; save the image first, then drop the file."
    return [], "There is no image here: copy an image or image files, then paste again."


def accepts(mime: QMimeData) -> bool:
    """Whether a drag carries something `pictures_from_mime` may turn into pictures."""
    return mime.hasUrls() or mime.hasImage()
