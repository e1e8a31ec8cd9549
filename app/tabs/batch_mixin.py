"""Batches for the file-based tabs (vision and audio): "Open folder…" or a dropped folder runs
every file of the folder's kind through the engine worker in turn (app/batch.py), with the
batch panel's progress, Cancel, table and exports (app/widgets/batch_panel.py). Clicking a row
shows that file with its result, as if it had been opened and run.

A mixin for TaskTab, before it in the bases. The tab adds `build_batch()`'s panel to its
layout, calls `run_folder(path)` for a dropped folder, and implements `show_batch_file(path,
outcome)`; it may override `batch_summary(data)` (the table's words for a result's JSON) and
`batch_exports()` / `export_batch_files(kind, items)` for exports of its own (the speech tab's
subtitles). Only file names are listed in the UI thread; the files are read by the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtWidgets import QFileDialog, QPushButton

from app.batch import BatchItem, BatchRun, top_label, write_csv, write_jsonl
from app.widgets.batch_panel import BatchPanel
from app.worker import Outcome

#: The most files one folder may hold for a batch (the CLI allows more).
MAX_BATCH_FILES = 10_000


class BatchMixin:
    """Open folder…, dropped folders and the batch panel (see the module docstring)."""

    batch_kind: ClassVar[str]  # "image" or "audio": which files of a folder a batch takes
    batch_kept_outcomes: ClassVar[int] = 100  # the latest files whose whole results are kept to show
    folder_run: BatchRun | None

    # ----- for the tab ----------------------------------------------------------------------------

    def show_batch_file(self, path: Path, outcome: Outcome | None) -> None:
        """Show the file at `path` as the tab's input and `outcome` as its result; with None
        (a result no longer kept) run it again."""
        raise NotImplementedError

    def batch_summary(self, data: Any) -> str:
        """A result's JSON in a few words for the table: the best label and its score, or the
        start of a text, or "done"."""
        label, score = top_label(data)
        if label:
            return f"{label} · {100 * score:.1f} %" if score is not None else label
        text = data.get("text") if isinstance(data, dict) else None
        if isinstance(text, str):
            flat = " ".join(text.split())
            return (flat[:77] + "…" if len(flat) > 80 else flat) or "(nothing heard)"
        return "done"

    def batch_exports(self) -> list[tuple[str, str, str]]:
        """Exports beyond CSV and JSON Lines: (kind, button text, tooltip)."""
        return []

    def export_batch_files(self, kind: str, items: list[BatchItem], target: Path | None = None) -> bool:
        """Carry out an export named in `batch_exports` into `target` (asked for when None)."""
        return False

    # ----- building -------------------------------------------------------------------------------

    def build_batch(self) -> BatchPanel:
        self.folder_run = None
        panel = self.batch_panel = BatchPanel()
        panel.add_export("csv", "Export CSV…", "Each file's best label and score, summary, time and error, as CSV")
        panel.add_export("jsonl", "Export JSON Lines…", "Each file's whole result, one JSON object a line")
        for kind, text, tip in self.batch_exports():
            panel.add_export(kind, text, tip)
        panel.picked.connect(self.show_batch_row)
        panel.cancel_requested.connect(self.cancel_batch)
        panel.export_requested.connect(lambda kind: self.export_batch(kind))
        panel.closed.connect(panel.hide)
        return panel

    def open_folder_button(self) -> QPushButton:
        button = QPushButton("Open folder…")
        button.setToolTip(f"Run every {self.batch_kind} file of a folder, one after another")
        button.clicked.connect(lambda: self.open_folder())
        return button

    # ----- running --------------------------------------------------------------------------------

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Open a folder of {self.batch_kind} files — {self.title}")
        if folder:
            self.run_folder(Path(folder))

    def run_folder(self, folder: Path) -> bool:
        """Run every file of the tab's kind in `folder` (sorted by name, not its subfolders)."""
        from engine.batch import SUFFIXES, files_in
        from engine.errors import InputError

        try:
            paths = files_in(folder, self.batch_kind, limit=MAX_BATCH_FILES)
        except (InputError, OSError) as exc:
            self.banner.show_message("error", str(exc))
            return False
        if not paths:
            endings = " ".join(SUFFIXES[self.batch_kind])
            self.banner.show_message("info", f"{folder.name} holds no {self.batch_kind} files ({endings}).")
            return False
        return self.run_batch(paths, folder.name)

    def run_batch(self, paths: list[Path], title: str) -> bool:
        """Run `paths` one after another with the tab's model and options."""
        if self.meta is None:
            self.banner.show_message("info", "The engine is still starting; try again in a moment.")
            return False
        if self.folder_run is not None:
            self.folder_run.cancel()
        self.ensure_loaded()  # queued first, so the load bar shows a model being loaded
        options = {**self.options_form.values(), **self.extra_options()}
        run = self.folder_run = BatchRun(self.engine, self.spec(), options, paths, self.batch_kept_outcomes, self)
        run.item_started.connect(lambda index: self._on_batch_started(run, index))
        run.item_done.connect(lambda index: self._on_batch_item(run, index))
        run.progress.connect(lambda index, done, total, message: self._on_batch_progress(run, index, done, total))
        run.finished.connect(lambda completed: self._on_batch_finished(run, completed))
        self.banner.clear()
        self.batch_panel.begin(f"{title}: {len(paths)} {self.batch_kind} files", [p.name for p in paths])
        run.start()
        self._update_actions()
        return True

    def cancel_batch(self) -> None:
        if self.folder_run is not None:
            self.folder_run.cancel()

    def cancel(self) -> None:
        super().cancel()  # type: ignore[misc]
        self.cancel_batch()

    def is_busy(self) -> bool:
        run = getattr(self, "folder_run", None)
        return super().is_busy() or (run is not None and run.running)  # type: ignore[misc]

    def _on_batch_started(self, run: BatchRun, index: int) -> None:
        if run is self.folder_run:
            self.batch_panel.show_row(index, "running…", None)
            self._batch_status(run, run.items[index].path.name)

    def _on_batch_progress(self, run: BatchRun, index: int, done: float, total: float | None) -> None:
        if run is self.folder_run and total:
            self._batch_status(run, f"{run.items[index].path.name} {100 * done / total:.0f} %")

    def _on_batch_item(self, run: BatchRun, index: int) -> None:
        if run is not self.folder_run:
            return
        item = run.items[index]
        if item.state == "done":
            self.batch_panel.show_row(index, self.batch_summary(item.json), item.seconds)
        else:
            self.batch_panel.show_row(index, item.error, None, failed=True)
        self._batch_status(run, "")

    def _on_batch_finished(self, run: BatchRun, completed: bool) -> None:
        if run is not self.folder_run:
            return
        for index, item in enumerate(run.items):
            if item.state == "cancelled":
                self.batch_panel.show_row(index, "cancelled", None)
        ok, failed = run.counts()
        words = f"{ok} of {len(run.items)} files done" + (f", {failed} failed" if failed else "")
        self.batch_panel.set_status(ok + failed, len(run.items), words if completed else f"Cancelled: {words}")
        self.batch_panel.set_running(False)
        self._update_actions()

    def _batch_status(self, run: BatchRun, current: str) -> None:
        ok, failed = run.counts()
        finished = ok + failed
        text = f"{finished}/{len(run.items)}" + (f" · {failed} failed" if failed else "")
        self.batch_panel.set_status(finished, len(run.items), f"{text} · {current}" if current else text)

    # ----- looking at one file, exports -----------------------------------------------------------

    def show_batch_row(self, index: int) -> None:
        run = self.folder_run
        if run is None or not 0 <= index < len(run.items):
            return
        item = run.items[index]
        if item.state != "done":
            reason = item.error or ("not run yet" if item.state in ("waiting", "running") else item.state)
            named = reason if item.path.name in reason else f"{item.path.name}: {reason}"
            self.banner.show_message("error" if item.error else "info", named)
            return
        self.banner.clear()
        self.show_batch_file(item.path, item.outcome)
        if item.warnings:
            self.warnings.show_message("warning", "\n".join(item.warnings))
        else:
            self.warnings.clear()

    def export_batch(self, kind: str, path: Path | None = None) -> bool:
        """Write the batch's records: "csv" or "jsonl" into `path` (asked for when None), or
        a tab's own export."""
        run = self.folder_run
        if run is None:
            return False
        if kind not in ("csv", "jsonl"):
            return self.export_batch_files(kind, run.items, path)
        if path is None:
            name = f"{self.task}.{kind}"
            kinds = "CSV (*.csv)" if kind == "csv" else "JSON Lines (*.jsonl)"
            chosen, _ = QFileDialog.getSaveFileName(self, "Export the batch's results", name, kinds)
            if not chosen:
                return False
            path = Path(chosen)
        try:
            if kind == "csv":
                summaries = [self.batch_summary(i.json) if i.state == "done" else "" for i in run.items]
                write_csv(run.items, path, summaries)
            else:
                write_jsonl(run.items, path)
        except OSError as exc:
            self.banner.show_message("error", f"Could not save {path}: {exc.strerror or exc}")
            return False
        return True
