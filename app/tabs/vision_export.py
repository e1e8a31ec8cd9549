"""Saving what a vision tab shows: the picture with its overlays as PNG at the original's full
size, painted in the exporter's thread, or the results as JSON.

A mixin for VisionTab: it uses the tab's view, current picture, live mode, exporter and banner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMainWindow

from app.annotate import Exported, ExportRequest


class ImageExportMixin:
    """Export for VisionTab (see the module docstring); it keeps no state of its own."""

    def export_image(self, path: Path | None = None) -> None:
        """The picture with its overlays as PNG, at the original's resolution (a camera frame as
        it is). Decoding and painting happen in the exporter's thread; `_on_exported` reports."""
        if self.view.image() is None:
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save annotated image", f"{self.task}.png", "PNG image (*.png)")
            if not chosen:
                return
            path = Path(chosen)
        source, fallback = self.export_source()
        self.exporter.request(ExportRequest(Path(path), source, fallback, self.view.overlay()))
        self._say(f"Saving {Path(path).name}…", 0)

    def export_source(self) -> tuple[Any, QImage | None]:
        """(the original behind what the view shows, what to draw on when it cannot be read)
        as `ExportRequest` takes them: a camera frame as it is, else the picture's source."""
        picture = self.current
        if self.live.is_running() or picture is None:
            return self.view.image(), None
        # pasted pixels stay a QImage until the decoder has made an array of them
        source = picture.image if picture.image is not None else picture.source
        return source, picture.preview

    @Slot(object)
    def _on_exported(self, outcome: Exported) -> None:
        """A done export: "Saved …" in the status bar, or the banner when it failed or had to
        fall back to the preview (which people should not miss)."""
        saved = f"Saved {outcome.path.name} ({outcome.size.width()}×{outcome.size.height()})"
        if outcome.error:
            self.banner.show_message("error", outcome.error)
        elif outcome.note:
            self.banner.show_message("warning", f"{saved}: {outcome.note}.")
        self._say("" if outcome.error or outcome.note else saved, 5000)

    def _say(self, text: str, timeout_ms: int) -> None:
        """A passing message in the main window's status bar ("" clears it)."""
        window = self.window()
        if isinstance(window, QMainWindow):
            window.statusBar().showMessage(text, timeout_ms)

    def export_json(self, path: Path | None = None) -> None:
        """Ctrl+S: the results as JSON, or the annotated image when a .png name is chosen."""
        if path is None:
            if self.last_outcome is None:
                return
            chosen, kind = QFileDialog.getSaveFileName(
                self, "Save result", f"{self.task}.json", "JSON (*.json);;Annotated image (*.png)"
            )
            if not chosen:
                return
            path = Path(chosen)
            if kind.startswith("Annotated") and path.suffix.lower() != ".png":
                path = path.with_suffix(".png")
        if Path(path).suffix.lower() == ".png":
            self.export_image(Path(path))
        else:
            super().export_json(Path(path))
