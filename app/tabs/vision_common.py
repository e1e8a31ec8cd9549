"""What the vision tabs share: pictures from files, drops, the clipboard and samples; a strip of
thumbnails to step through; the picture with the model's overlays; live camera mode. Saving
the picture with its overlays lives in vision_export.py.

A picture runs by itself once it is decoded and the chosen model is loaded, and keeps its result,
so stepping back through the strip shows it again without another run. Subclasses draw a result
with `show_outcome(outcome)` and clear it with `clear_outcome()`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import QMimeData, QSize, Qt, Slot
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.annotate import ImageExporter
from app.pictures import FILE_FILTER, IMAGE_SUFFIXES, Decoded, Picture, PictureDecoder, local_folders, pictures_from_mime
from app.tabs.base import TaskTab
from app.tabs.batch_mixin import BatchMixin
from app.tabs.vision_export import ImageExportMixin
from app.webcam import FrameSource, LiveMode, StillFrames
from app.widgets.image_view import ImageView
from app.widgets.thumbnails import ThumbnailStrip
from app.worker import Outcome

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "samples"
MAX_PREVIEWS = 8  # decoded previews kept in memory; others are decoded again when shown


def sample_files() -> list[Path]:
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class VisionTab(BatchMixin, ImageExportMixin, TaskTab):
    """A task tab whose input is a picture or a live camera; a folder of pictures runs as a
    batch (app/tabs/batch_mixin.py)."""

    file_filter = FILE_FILTER
    batch_kind = "image"
    sample: ClassVar[str] = ""  # the file in resources/samples that `load_sample` opens
    view_class: ClassVar[type[ImageView]] = ImageView  # the picture widget, with what it draws over it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        splitter = self.findChild(QSplitter, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if splitter is not None:
            splitter.setSizes([3, 2])  # the picture deserves more room than the list of results

    # ----- for subclasses ---------------------------------------------------------------------

    def show_outcome(self, outcome: Outcome) -> None:
        raise NotImplementedError

    def clear_outcome(self) -> None:
        raise NotImplementedError

    # ----- building ---------------------------------------------------------------------------

    def build_input(self) -> QWidget:
        self.pictures: list[Picture] = []
        self.current: Picture | None = None
        self._run_picture: Picture | None = None
        self._shown_order = 0
        self._errors: list[str] = []  # why files of the last batch could not be opened
        self._batch: list[Picture] = []
        self.decoder = PictureDecoder(self)
        self.decoder.decoded.connect(self._on_decoded)
        self.exporter = ImageExporter(self)
        self.exporter.done.connect(self._on_exported)

        self.view = self.view_class()
        self.view.dropped.connect(self.take_mime)
        self.view.step.connect(self.step)
        self.strip = ThumbnailStrip()
        self.strip.picked.connect(lambda picture_id: self.show_picture(self._picture(picture_id)))
        self.strip.removed.connect(self.remove_picture)
        self.strip.dropped.connect(self.take_mime)
        self.strip.hide()

        open_button = QPushButton("Open…")
        open_button.setToolTip("Open image files (Ctrl+O)")
        open_button.clicked.connect(self.open_file)
        paste_button = QPushButton("Paste")
        paste_button.setToolTip("Paste an image or image files from the clipboard (Ctrl+V)")
        paste_button.clicked.connect(self.paste)
        self.samples_button = QToolButton()
        self.samples_button.setText("Samples")
        self.samples_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.samples_button)
        for path in sample_files():
            menu.addAction(path.stem.replace("_", " ").capitalize(), lambda p=path: self.open_paths([p]))
        self.samples_button.setMenu(menu)
        self.samples_button.setEnabled(not menu.isEmpty())
        self.samples_button.setToolTip("Sample photographs and drawings (public domain or CC0, see resources/samples)")
        self.live = LiveMode(self.engine, self.spec, self._run_options, key=f"{self.task}:live", parent=self)
        self.live.button.toggled.connect(lambda on: self.start_live() if on else self.stop_live())
        self.live.frame.connect(self.view.set_image)
        self.live.outcome.connect(self._on_live_outcome)
        self.live.badge.connect(self.view.set_badge)
        self.live.problem.connect(lambda message: self.banner.show_message("error", message))
        self.live.stopped.connect(self._show_current)
        self.save_image_button = QPushButton("Save image…")
        self.save_image_button.setToolTip("Save the picture with its overlays as PNG")
        self.save_image_button.clicked.connect(lambda: self.export_image())
        row = QHBoxLayout()
        for widget in (open_button, self.open_folder_button(), paste_button, self.samples_button, self.live.button):
            row.addWidget(widget)
        row.addWidget(self.live.label, 1)
        row.addWidget(self.save_image_button)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strip)
        layout.addWidget(self.build_batch())

        paste = QShortcut(QKeySequence(QKeySequence.StandardKey.Paste), self, self.paste)
        paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.status_changed.connect(self._maybe_autorun)  # after a model loads
        self.options_form.changed.connect(self._on_options_changed)
        return holder

    # ----- the TaskTab contract ---------------------------------------------------------------

    def current_input(self) -> Any:
        picture = self.current
        if picture is None or picture.error or picture.source is None:
            return None
        return str(picture.source) if isinstance(picture.source, Path) else picture.source

    def empty_input_message(self) -> str:
        return "Open, drop or paste an image first, or pick one of the samples."

    def run(self) -> None:
        if self.live.is_running():
            return  # the camera is already feeding the model
        if self.meta is not None and self.current is not None and self.current_input() is not None:
            self.current.attempted = self.spec()
            self._run_picture = self.current
        super().run()

    def show_result(self, result: Any) -> None:
        picture, self._run_picture = self._run_picture, None
        if picture is not None:
            picture.outcome = self.last_outcome
        self._report_unreadable()  # the base class cleared the banner for the result
        if picture is not self.current:  # the user moved on while it ran: keep it for later
            self._show_current()
            return
        self.show_outcome(self.last_outcome)

    def clear_result(self) -> None:
        self.view.set_boxes([])
        self.view.set_caption("")
        self.clear_outcome()

    def open_path(self, path: Path) -> None:
        self.open_paths([path])

    def open_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, f"Open images — {self.title}", "", self.file_filter)
        if paths:
            self.open_paths([Path(p) for p in paths])

    def load_sample(self) -> None:
        if self.sample and (SAMPLES_DIR / self.sample).is_file():
            self.open_paths([SAMPLES_DIR / self.sample])

    def input_pending(self) -> bool:
        """True while the current picture is still being decoded (screenshots wait for it)."""
        return self.current is not None and self.current.decoding

    def show_batch_file(self, path: Path, outcome: Outcome | None) -> None:
        """A batch's picture with its result: the strip's picture when it is there, else added;
        without a result it runs as any opened picture does."""
        picture = next((p for p in self.pictures if p.source == path), None)
        fresh = picture is None
        picture = picture or Picture(path.name, path)
        if outcome is not None:
            picture.outcome, picture.attempted = outcome, outcome.model.spec
        if fresh:
            self.add_pictures([picture])
        else:
            self.show_picture(picture)

    # ----- pictures ---------------------------------------------------------------------------

    def open_paths(self, paths: list[Path]) -> None:
        self.add_pictures([Picture(Path(p).name, Path(p)) for p in paths])

    def paste(self) -> None:
        self.take_mime(QGuiApplication.clipboard().mimeData())

    @Slot(QMimeData)
    def take_mime(self, mime: QMimeData | None) -> None:
        """Pictures from a drop or the clipboard: image files (many at once) or image data; a
        folder runs as a batch."""
        if mime is None:
            return
        folders = local_folders(mime)
        if folders:
            self.run_folder(folders[0])
            return
        pictures, message = pictures_from_mime(mime)
        if not pictures:
            self.banner.show_message("info", message)
            return
        self.add_pictures(pictures)

    def add_pictures(self, pictures: list[Picture]) -> None:
        """Append pictures to the strip, decode them in the background, show the first."""
        if not pictures:
            return
        self.stop_live()
        self._errors, self._batch = [], list(pictures)
        for picture in pictures:
            self.pictures.append(picture)
            self.strip.add(picture.id, picture.name)
            self.decoder.request(picture)
        self.strip.setVisible(len(self.pictures) > 1)
        self.show_picture(pictures[0])

    def show_picture(self, picture: Picture | None) -> None:
        if picture is None:
            return
        self.stop_live()
        self.current = picture
        self._shown_order += 1
        picture.shown_order = self._shown_order
        self.strip.select(picture.id)
        if picture.preview is None and not picture.decoding and not picture.error:
            self.decoder.request(picture)  # its preview was let go to save memory
        self._show_current()
        self.input_changed()
        self._maybe_autorun()

    def step(self, delta: int) -> None:
        if self.current in self.pictures and len(self.pictures) > 1:
            index = (self.pictures.index(self.current) + delta) % len(self.pictures)
            self.show_picture(self.pictures[index])

    def remove_picture(self, picture_id: int) -> None:
        picture = self._picture(picture_id)
        if picture is None:
            return
        index = self.pictures.index(picture)
        self.pictures.remove(picture)
        self.strip.remove(picture_id)
        self.strip.setVisible(len(self.pictures) > 1)
        if picture is self.current:
            self.current = None
            if self.pictures:
                self.show_picture(self.pictures[min(index, len(self.pictures) - 1)])
            else:
                self._show_current()
                self.input_changed()

    def _picture(self, picture_id: int) -> Picture | None:
        return next((p for p in self.pictures if p.id == picture_id), None)

    def _show_current(self) -> None:
        """Draw the current picture and, when it has one, its result."""
        picture = self.current
        if picture is not None and picture.preview is None:
            self.view.set_placeholder(f"Opening {picture.name}…")
        else:
            self.view.set_placeholder(
                "Drop images here", "or paste one (Ctrl+V), open files (Ctrl+O), pick a sample or start the camera"
            )
        self.view.set_image(picture.preview if picture else None, picture.size if picture else None)
        self.view.set_badge("")
        self.clear_result()
        self.last_outcome = picture.outcome if picture is not None else None
        if self.last_outcome is not None:
            self.show_outcome(self.last_outcome)
        self._update_actions()

    @Slot(int, object)
    def _on_decoded(self, picture_id: int, decoded: Decoded) -> None:
        picture = self._picture(picture_id)
        if picture is None:
            return  # removed while it was decoding
        picture.decoding = False
        if decoded.error:
            picture.error = decoded.error
            self._errors.append(decoded.error)
            self.remove_picture(picture_id)
            self._report_unreadable()
            return
        picture.preview, picture.thumbnail, picture.size = decoded.preview, decoded.thumbnail, decoded.size
        if decoded.source is not None:
            picture.source, picture.image = decoded.source, None
        self.strip.set_thumbnail(picture.id, decoded.thumbnail)
        self._let_go_of_previews()
        if picture is self.current and not self.live.is_running():
            self._show_current()
            self.input_changed()
            self._maybe_autorun()

    def _report_unreadable(self) -> None:
        """Name the files of the last batch that could not be opened: a warning when others of
        the batch could, an error when none could. It stays until the next batch."""
        if not self._errors:
            return
        usable = any(p in self.pictures for p in self._batch)
        self.banner.show_message("warning" if usable else "error", "\n".join(self._errors))

    def _let_go_of_previews(self) -> None:
        kept = [p for p in self.pictures if p.preview is not None and p is not self.current]
        kept.sort(key=lambda p: p.shown_order)
        for picture in kept[: max(0, len(kept) - (MAX_PREVIEWS - 1))]:
            picture.preview = None

    def _maybe_autorun(self) -> None:
        """Run the current picture once per model, as soon as both are ready."""
        picture = self.current
        if self.meta is None or self.loaded is None or picture is None or not picture.ready:
            return
        if self.live.is_running() or self.loaded.spec != self.spec() or picture.attempted == self.spec():
            return
        self.run()

    def _on_options_changed(self) -> None:
        """Options apply at once to a picture that has a result; live mode reads them per frame."""
        if self.current is not None and self.current.outcome is not None and not self.live.is_running():
            self.run()

    def _run_options(self) -> dict[str, Any]:
        """A camera frame's options, read per frame: while the inside view is open the frames
        bring their internals too, so it follows the camera."""
        options = {**self.options_form.values(), **self.extra_options()}
        if self.explains():
            options.setdefault("explain", self.inside_open())
        return options

    def inside_needs_run(self, result: Any) -> bool:
        """Live, the camera's next frame brings the internals: nothing to run again."""
        return not self.live.is_running() and super().inside_needs_run(result)

    def inside_picture(self, result: Any) -> tuple[Any, QImage | None, QSize] | None:
        """What the inside view draws, over what: live, `result` (the newest frame's) over the
        frame on screen at its own size; else the current picture's result over its preview and
        full size (a result that arrives may be another picture's). None when there is nothing
        to draw: no picture with a result, or live, a frame without internals (the first ones
        after the view opens), which keeps the last drawing."""
        if self.live.is_running():
            frame = self.view.image()
            if frame is None or not getattr(result, "internals", None):
                return None
            return result, frame, frame.size()
        picture = self.current
        if picture is None or picture.outcome is None:
            return None
        return picture.outcome.result, picture.preview, picture.size

    # ----- live mode --------------------------------------------------------------------------

    def start_live(self, source: FrameSource | None = None) -> bool:
        """Show and analyse frames from `source` (the default camera when None)."""
        if self.meta is None:
            self.banner.show_message("info", "The engine is still starting; try again in a moment.")
            self.live.set_button(False)
            return False
        if not self.live.start(source):
            return False
        self.banner.clear()
        self.busy_label.setText("")  # a still picture's "Done in … ms" says nothing about the video
        self.view.set_placeholder("Starting the camera…")
        self.view.set_image(None)
        self.clear_result()
        self._update_actions()
        return True

    def stop_live(self) -> None:
        self.live.stop()  # the picture view comes back through `stopped`

    def is_live(self) -> bool:
        return self.live.is_running()

    def start_live_sample(self) -> Callable[[], bool] | None:
        """Screenshots: play the tab's sample picture as a camera. Returns a check that holds
        once a few frames have been answered, or None when live mode cannot start."""
        image = QImage(str(SAMPLES_DIR / self.sample)) if self.sample else QImage()
        if image.isNull() or not self.start_live(StillFrames(image, parent=self)):
            return None
        return lambda: self.live.pump.stats.done >= 3

    def _on_live_outcome(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        self.clear_result()
        self.show_outcome(outcome)
        self._update_actions()
        self.status_changed.emit()

    def hideEvent(self, event: Any) -> None:
        self.stop_live()  # a camera nobody watches should not keep the model busy
        super().hideEvent(event)

    def _update_actions(self) -> None:
        super()._update_actions()
        if hasattr(self, "save_image_button"):  # the base class asks before the tab is built
            self.save_image_button.setEnabled(self.last_outcome is not None)
            if self.live.is_running():
                self.run_button.setEnabled(False)  # the camera feeds the model by itself
