"""How a task tab hears back from the engine.

The worker answers every job through the same signals, to every tab, so each handler first asks
whether the job is this tab's current load or run; answers about another tab's jobs, or about a
job this tab has since replaced, are dropped. A run job first loads its model when it is not
cached: until its `loaded` arrives, its progress is a load's and goes to the load bar; after
that it is the run's own (`show_run_progress`), and streamed partials go to `show_partial`.

A mixin for TaskTab (app/tabs/base.py): TaskTab's actions (`run`, `ensure_loaded`) set the job
ids, the handlers here clear them when a job ends, draw in the tab's widgets (load bar, banners,
busy label, picker) and call its hooks (`show_result`, `show_partial`, …).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Slot

from app.worker import EngineInfo, Loaded, ModelSpec, Outcome


class EngineSignalsMixin:
    """The engine's answers for TaskTab (see the module docstring)."""

    _load_job: int | None
    _load_spec: ModelSpec | None
    _run_job: int | None
    _run_loaded: bool  # the run job's model is loaded: its progress is now the run's
    _run_input: Any

    def _connect_engine(self) -> None:
        engine = self.engine
        engine.ready.connect(self._on_ready)
        engine.progress.connect(self._on_progress)
        engine.loaded.connect(self._on_loaded)
        engine.partial.connect(self._on_partial)
        engine.result.connect(self._on_result)
        engine.failed.connect(self._on_failed)
        engine.cancelled.connect(self._on_cancelled)

    def _mine(self, job_id: int) -> bool:
        return job_id in (self._load_job, self._run_job)

    def _finish(self, job_id: int) -> None:
        if job_id == self._load_job:
            self._load_job = self._load_spec = None
        if job_id == self._run_job:
            self._run_job = None
            self.busy_label.setText("")
            self.end_run_progress()
        if not self.is_busy():
            self.progress.end()
        self._update_actions()

    @Slot(object)
    def _on_ready(self, info: EngineInfo) -> None:
        self.meta = info.tasks.get(self.task)
        if self.meta is None:
            why = info.broken.get(self.task, "it is not part of this engine")
            self.banner.show_message("error", f"The {self.title} engine could not start: {why}")
            self._update_actions()
            return
        self.picker.set_choices(self.meta.default_model, self.meta.suggested_models, self.settings.recent())
        self.options_form.set_options(self.meta.options, exclude=(*self.own_options, "explain"))
        self.options_form.set_values(self.settings.options(self.options_form.names()))
        self._update_actions()
        if self.isVisible():
            self.ensure_loaded()

    @Slot(int, object, object, str)
    def _on_progress(self, job_id: int, done: float, total: float | None, message: str) -> None:
        # a run job first loads its model when it is not cached (download, weights): until its
        # `loaded` arrives, its progress is a load's like a load job's
        if job_id == self._run_job and self._run_loaded:
            self.show_run_progress(done, total, message)
        elif self._mine(job_id):
            self._show_load_progress(done, total, message)

    def _show_load_progress(self, done: float, total: float | None, message: str) -> None:
        if not self.progress.isVisible():
            self.progress.begin(message)
        self.progress.update_progress(done, total, message)

    @Slot(int, object)
    def _on_partial(self, job_id: int, value: Any) -> None:
        if job_id == self._run_job:
            self.show_partial(value)

    @Slot(int, object)
    def _on_loaded(self, job_id: int, model: Loaded) -> None:
        if not self._mine(job_id):
            return
        if job_id == self._run_job:
            self._run_loaded = True
        self.loaded = model
        self.settings.remember(model.spec.ref)
        self.picker.set_choices(self.meta.default_model, self.meta.suggested_models, self.settings.recent())
        if self.banner.kind == "error":
            self.banner.clear()
        self.progress.end()
        self._refresh_how()
        if job_id == self._load_job:
            self._finish(job_id)
        self.status_changed.emit()

    @Slot(int, object)
    def _on_result(self, job_id: int, outcome: Outcome) -> None:
        if job_id != self._run_job:
            return
        self.last_outcome = outcome
        self.last_input = self._run_input
        self.banner.clear()
        warnings = list(getattr(outcome.result, "warnings", []) or [])
        if warnings:
            self.warnings.show_message("warning", "\n".join(warnings))
        else:
            self.warnings.clear()
        self.present(outcome.result)
        self._finish(job_id)
        self.busy_label.setText(self.run_summary(outcome))
        self.status_changed.emit()

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, kind: str, message: str) -> None:
        if not self._mine(job_id):
            return
        ref = self._load_spec.ref if job_id == self._load_job and self._load_spec else self.picker.current()
        actions = []
        if kind in ("ModelUnavailable", "CheckpointError"):
            actions.append(("Open local folder…", self.picker.open_folder))
            if ref not in message:
                message = f"Could not load {ref}: {message}"
        self.banner.show_message("error", message, actions)
        self._finish(job_id)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if not self._mine(job_id):
            return
        was_run = job_id == self._run_job
        self._finish(job_id)
        if was_run:
            self.busy_label.setText("Cancelled")
