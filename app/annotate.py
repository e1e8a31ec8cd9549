"""Saving the annotated picture: the original at its full resolution, upright, with the overlays
the view draws, scaled to the picture. Decoding a 4000×3000 photo and encoding it as PNG take
seconds, so both run in a thread pool that works on QImage and QPainter only (QPixmap may not
leave the GUI thread); the outcome comes back as a signal.

This module imports Qt only (numpy lazily, for pictures held as arrays), never torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSaveFile, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QImageWriter

from app.widgets.overlays import Overlay, render_overlay

MAX_EXPORT_PIXELS = 100_000_000  # the engine refuses larger pictures, so none has overlays to draw
_BYTES_PER_PIXEL = 4  # Qt decodes photos to 32-bit pixels


@dataclass(frozen=True)
class ExportRequest:
    """One export. `source` is the original: a file path, an HxWx3 uint8 array (pasted pixels)
    or a QImage (a camera frame, or pasted pixels not yet converted); `fallback` is what to draw
    on when the original cannot be decoded (the preview), None when there is nothing smaller."""

    path: Path
    source: Any
    fallback: QImage | None
    overlay: Overlay


@dataclass(frozen=True)
class Exported:
    """What became of an export: `error` says why nothing was written (empty on success), and
    `note` why the PNG is smaller than the original (empty when it is the original's size)."""

    path: Path
    size: QSize
    error: str = ""
    note: str = ""


def read_original(source: Any) -> QImage:
    """The full-size, upright picture behind `source`. Raises ValueError with a message for
    people when it cannot be decoded, or is larger than the engine would ever take."""
    if isinstance(source, QImage):
        return source
    if isinstance(source, (str, Path)):
        return _read_file(Path(source))
    return _from_array(source)


def _read_file(path: Path) -> QImage:
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # EXIF orientation, as the preview and the engine apply it
    stored = reader.size()
    if stored.isValid() and stored.width() * stored.height() > MAX_EXPORT_PIXELS:
        raise ValueError(f"the original ({stored.width()}×{stored.height()}) is too large to decode")
    # Qt's default cap (256 MB) stops short of pictures the engine accepts; allow those, no more.
    reader.setAllocationLimit(MAX_EXPORT_PIXELS * _BYTES_PER_PIXEL // 2**20 + 1)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"the original could not be read again ({reader.errorString()})")
    return image


def _from_array(pixels: Any) -> QImage:
    import numpy as np

    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"the original is an array of shape {pixels.shape}, not height × width × 3")
    height, width = pixels.shape[:2]
    if width * height > MAX_EXPORT_PIXELS:
        raise ValueError(f"the original ({width}×{height}) is too large to decode")
    # copy(): the QImage must own its pixels once the array goes away
    return QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def export(request: ExportRequest) -> Exported:
    """Paint and save one export; runs in the pool. Never raises: failures become `error`."""
    note = ""
    try:
        picture = read_original(request.source)
    except ValueError as exc:
        if request.fallback is None or request.fallback.isNull():
            return Exported(request.path, QSize(), error=f"Could not save {request.path.name}: {exc}")
        picture = request.fallback
        note = f"{exc}, so it was saved at the preview's resolution"
    annotated = render_overlay(picture, request.overlay)
    error = save_png(annotated, request.path)
    if error:
        return Exported(request.path, QSize(), error=f"Could not save {request.path}: {error}")
    return Exported(request.path, annotated.size(), note=note)


def save_png(image: QImage, path: Path) -> str:
    """Write `image` to `path` as PNG through a temporary file, so a failure midway leaves an
    existing file as it was. Returns why it failed, or "" on success."""
    target = QSaveFile(str(path))
    if not target.open(QSaveFile.OpenModeFlag.WriteOnly):
        return target.errorString()
    writer = QImageWriter(target, b"png")
    if not writer.write(image):
        target.cancelWriting()
        return writer.errorString()
    if not target.commit():
        return target.errorString()
    return ""


class ImageExporter(QObject):
    """Runs exports one at a time in its own thread, so the window stays responsive and two
    saves never race on one file; `done(Exported)` arrives in the UI thread (queued)."""

    done = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # a full-size picture is large: one in memory at a time

    def request(self, request: ExportRequest) -> None:
        self.submit(lambda: export(request))

    def submit(self, work: Callable[[], Exported]) -> None:
        """Run `work` (a save that never raises) in the exporter's thread; `done` reports it."""
        self._pool.start(lambda: self._work(work))

    def _work(self, work: Callable[[], Exported]) -> None:
        outcome = work()
        try:
            self.done.emit(outcome)
        except RuntimeError:  # the tab was closed while its picture was being saved
            pass
