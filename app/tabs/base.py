"""The base class of every task tab.

How to add a tab (for an engine task such as "image-classification"):

1. Write `app/tabs/image_classification.py` with a subclass of the base for its kind of input:
   `TextTab` (app/tabs/text_common.py), `VisionTab` (vision_common.py) or `AudioTab`
   (audio_common.py), or `TaskTab` itself for a new kind. Set the class attributes `task` (the
   engine task name), `title` and `blurb` (on a plain `TaskTab` also `modality`: "audio",
   "vision" or "text"), and implement what the base leaves open: for a `TaskTab`, `build_input`,
   `build_result`, `current_input`, `show_result`, `clear_result` and `explain` (see
   `TaskTab`); the input bases build and read the input themselves and say in their docstrings
   what is left. Call `self.input_changed()` whenever the input changes.
2. Add one line to `TABS` in `app/tabs/__init__.py`.

The tab appears in its modality's group once the engine task module exists. Everything else is
done here: the model picker, load progress, errors, run/cancel, option widgets built from the
engine's `Option`s, Copy/Save JSON, the How-it-works panel and QSettings. An engine task that
streams partial results (a transcript so far, tokens as they are generated) or reports how far
a run has got reaches the tab through `show_partial` and `show_run_progress`, for the tab's own
current run only (app/tabs/engine_signals.py). A tab module imports only Qt and `app`: never
torch and never an engine task module (the worker imports those, in its own thread, after the
window shows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.settings import TabSettings
from app.tabs.engine_signals import EngineSignalsMixin
from app.widgets.banner import Banner
from app.widgets.collapsible import Collapsible
from app.widgets.how_it_works import HowItWorks
from app.widgets.model_picker import ModelPicker
from app.widgets.options_form import OptionsForm
from app.widgets.progress import LoadProgress
from app.widgets.tab_parts import ResultHeader, RunBar
from app.worker import Engine, Loaded, ModelSpec, Outcome, TaskMeta


#: returns the (device, dtype) the toolbar asks for, e.g. ("auto", "fp32")
RuntimeChoice = Callable[[], tuple[str, str]]


class TaskTab(EngineSignalsMixin, QWidget):
    """One engine task, from input to result.

    Subclasses provide:
      `task`, `title`, `modality`, `blurb`: class attributes (titles are needed before the
          engine is imported, so they live here and not only in the engine task).
      `own_options`: names of engine options the tab edits with its own widgets; their values
          come from `extra_options()`. Every other option gets a widget automatically.
      `file_filter`: the Open dialog's filter (Ctrl+O); empty disables opening files.
      `build_input()`, `build_result()`: the two halves of the tab, built once.
      `current_input()`: what `Task.run` takes, or None when there is nothing to run yet.
      `show_result(result)`: draw an engine `Result`; `clear_result()` empties the view.
      `explain(info)`: HTML, a few sentences of our own on how the architecture in `info`
          (the loaded task's `info()`, None before loading) turns the input into the output.
      `open_path(path)`: take a file chosen with Ctrl+O; `load_sample()`: fill in an example
          input (used for screenshots).
    and, for an "Inside the model" view (the model's internals for this input):
      `build_inside()`: the view's widget (None, the default, for no view), shown folded
          below How it works; `show_inside(result)`: draw what `result.internals` holds (or
          whatever of the result the view shows). While the view is open, runs of a task with
          the engine's `explain` option ask for internals; closed, they cost nothing. Opening it
          on a result computed without them runs the input again with them
          (`inside_needs_run(result)` says when a result lacks them).
    and, when the engine task reports more than a result:
      `show_partial(value)`: a part of the result streamed by the tab's current run.
      `show_run_progress(done, total, message)`, `end_run_progress()`: how far the current run
          has got, once its model is loaded (the load bar shows it unless overridden).
    The base class (with its other half, engine_signals.py) handles everything else and keeps
    the user's input on every failure.
    """

    task: ClassVar[str]
    title: ClassVar[str]
    modality: ClassVar[str]
    blurb: ClassVar[str] = ""
    own_options: ClassVar[tuple[str, ...]] = ()
    file_filter: ClassVar[str] = ""
    inside_title: ClassVar[str] = "Inside the model"

    status_changed = Signal()  # model, device, dtype or latency changed: refresh the status bar

    def __init__(
        self, engine: Engine, settings: QSettings, runtime: RuntimeChoice, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.settings = TabSettings(settings, self.task)
        self._runtime = runtime
        self.meta: TaskMeta | None = None
        self.loaded: Loaded | None = None
        self.last_outcome: Outcome | None = None
        self.last_input: Any = None  # the input the shown result was computed from
        self._run_input: Any = None
        self._load_job: int | None = None
        self._load_spec: ModelSpec | None = None
        self._run_job: int | None = None
        self._run_loaded = False
        self._build()
        self._connect_engine()
        if self.settings.model():
            self.picker.set_current(self.settings.model())
        self.how.set_open(self.settings.how_open())
        self._refresh_how()
        if engine.info is not None:
            self._on_ready(engine.info)

    # ----- for subclasses -------------------------------------------------------------------

    def build_input(self) -> QWidget:
        raise NotImplementedError

    def build_result(self) -> QWidget:
        raise NotImplementedError

    def current_input(self) -> Any:
        raise NotImplementedError

    def show_result(self, result: Any) -> None:
        raise NotImplementedError

    def clear_result(self) -> None:
        raise NotImplementedError

    def explain(self, info: dict[str, Any] | None) -> str:
        return f"<p>{self.blurb}</p>"

    def extra_options(self) -> dict[str, Any]:
        return {}

    def build_inside(self) -> QWidget | None:
        return None

    def show_inside(self, result: Any) -> None:
        pass

    def inside_open(self) -> bool:
        return self.inside_panel is not None and self.inside_panel.is_open()

    def present(self, result: Any) -> None:
        """Show `result` in place of the last one, and its internals while the view is open:
        what a run, a batch's file or a finished live session ends with."""
        self.clear_result()
        self.show_result(result)
        if self.inside_open():
            self.show_inside(result)

    def explains(self) -> bool:
        """Whether the loaded engine task can keep internals (has the `explain` option)."""
        return self.meta is not None and any(o.name == "explain" for o in self.meta.options)

    def show_partial(self, value: Any) -> None:
        """A part of the current run's result, streamed before the result itself (a long
        recording's text so far, a generation's tokens so far). Only the partials of this tab's
        current run arrive, in the order the engine sent them; those of a run since replaced or
        cancelled are dropped. A tab that draws nothing until the result ignores them."""

    def show_run_progress(self, done: float, total: float | None, message: str) -> None:
        """How far the current run has got, reported once its model is loaded (a download or a
        load before that always goes to the load bar). By default the load bar shows it too, as
        with the question-answering tab's "reading window 2 of 5", counted in the run's own
        steps rather than in bytes."""
        if not self.progress.isVisible():
            self.progress.begin(message)
        self.progress.update_progress(done, total, message, in_bytes=False)

    def end_run_progress(self) -> None:
        """The current run ended (a result, a failure or a cancel): hide what an overridden
        `show_run_progress` showed. The load bar needs nothing here: it ends once the tab has
        no job left."""

    def run_summary(self, outcome: Outcome) -> str:
        """The run bar's words once a run has given its result."""
        return f"Done in {outcome.latency_ms:,.0f} ms"

    def open_path(self, path: Path) -> None:
        pass

    def load_sample(self) -> None:
        pass

    def input_changed(self) -> None:
        """Subclasses call this on every input edit: Run follows whether there is input."""
        if self.banner.kind == "info":
            self.banner.clear()
        self._update_actions()

    # ----- actions (buttons and the window's shortcuts) ---------------------------------------

    def run(self) -> None:
        if self.meta is None:
            return
        value = self.current_input()
        if value is None:
            self.banner.show_message("info", self.empty_input_message())
            return
        if self._run_job is not None:
            self.engine.cancel(self._run_job)
        options = {**self.options_form.values(), **self.extra_options()}
        if self.explains():  # unless the tab always asks (`extra_options`), while the view is open
            options.setdefault("explain", self.inside_open())
        self._run_input = value
        self._run_job = self.engine.run(self.spec(), value, options, key=f"{self.task}:run")
        self._run_loaded = False
        self.busy_label.setText("Running…")
        self._update_actions()

    def cancel(self) -> None:
        for job in (self._run_job, self._load_job):
            if job is not None:
                self.engine.cancel(job)

    def is_busy(self) -> bool:
        return self._run_job is not None or self._load_job is not None

    def empty_input_message(self) -> str:
        return "There is nothing to run yet: give the tab some input first."

    def open_file(self) -> None:
        if not self.file_filter:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Open — {self.title}", "", self.file_filter)
        if path:
            self.open_path(Path(path))

    def result_json(self) -> str | None:
        if self.last_outcome is None:
            return None
        return json.dumps(self.last_outcome.result.to_json(), ensure_ascii=False, indent=2)

    def copy_json(self) -> None:
        text = self.result_json()
        if text is not None:
            QGuiApplication.clipboard().setText(text)

    def export_json(self, path: Path | None = None) -> None:
        text = self.result_json()
        if text is None:
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save result as JSON", f"{self.task}.json", "JSON (*.json)")
            if not chosen:
                return
            path = Path(chosen)
        try:
            Path(path).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            self.banner.show_message("error", f"Could not save {path}: {exc.strerror or exc}")

    def spec(self) -> ModelSpec:
        device, dtype = self._runtime()
        return ModelSpec(self.task, self.picker.current(), device, dtype)

    def ensure_loaded(self) -> None:
        """Load the chosen model unless it (or a load of it) is already there."""
        if self.meta is None or not self.picker.current():
            return
        spec = self.spec()
        if (self.loaded is not None and self.loaded.spec == spec) or self._load_spec == spec:
            return
        if self._load_job is not None:
            self.engine.cancel(self._load_job)
        self._load_spec = spec
        self._load_job = self.engine.load(spec, key=f"{self.task}:load")
        self._update_actions()

    def _on_model_chosen(self, ref: str) -> None:
        self.settings.set_model(ref)
        if self.banner.kind == "error":  # a new choice makes the last model's trouble moot
            self.banner.clear()
        self.ensure_loaded()

    def runtime_changed(self) -> None:
        """The toolbar's device or precision changed: reload when this tab is on screen."""
        if self.isVisible():
            self.ensure_loaded()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.ensure_loaded()

    def status(self) -> dict[str, Any]:
        """What the window's status bar shows for this tab."""
        model = self.loaded
        return {
            "model": model.spec.ref if model else "",
            "device": model.device if model else "",
            "dtype": model.dtype if model else "",
            "latency_ms": self.last_outcome.latency_ms if self.last_outcome else None,
        }

    # ----- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        title = QLabel(self.title)
        title.setObjectName("tabTitle")
        blurb = QLabel(self.blurb)
        blurb.setObjectName("tabBlurb")
        blurb.setWordWrap(True)
        self.picker = ModelPicker()
        self.picker.chosen.connect(self._on_model_chosen)
        self.progress = LoadProgress()
        self.progress.cancel_requested.connect(self.cancel)
        self.banner = Banner()

        self.options_form = OptionsForm()
        self.options_form.changed.connect(lambda: self.settings.save_options(self.options_form.values()))
        run_bar = RunBar()
        self.run_button, self.cancel_button, self.busy_label = run_bar.run_button, run_bar.cancel_button, run_bar.busy_label
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        left = _card(self.build_input(), self.options_form, run_bar, stretch=0)

        header = ResultHeader()
        self.copy_button, self.save_button = header.copy_button, header.save_button
        self.copy_button.clicked.connect(self.copy_json)
        self.save_button.clicked.connect(lambda: self.export_json())
        self.warnings = Banner()
        right = _card(header, self.warnings, self.build_result(), stretch=2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([1, 1])
        self.how = HowItWorks()
        self.how.toggled.connect(self.settings.set_how_open)
        inside = self.build_inside()
        self.inside_panel: Collapsible | None = None
        if inside is not None:
            self.inside_panel = Collapsible(self.inside_title, inside)
            self.inside_panel.set_open(str(self.settings.value("inside_open", "false")) == "true")
            self.inside_panel.toggled.connect(self._on_inside_toggled)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(8)
        layout.addWidget(title)
        layout.addWidget(blurb)
        layout.addWidget(self.picker)
        layout.addWidget(self.progress)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.how)
        if self.inside_panel is not None:
            layout.addWidget(self.inside_panel)
        self._update_actions()

    def _on_inside_toggled(self, open_: bool) -> None:
        self.settings.set_value("inside_open", "true" if open_ else "false")
        if not open_ or self.last_outcome is None:
            return
        result = self.last_outcome.result
        if self.explains() and self.inside_needs_run(result) and self.current_input() is not None:
            self.run()  # the shown result was computed with the view closed: again, with internals
        else:
            self.show_inside(result)

    def inside_needs_run(self, result: Any) -> bool:
        """Whether `result`, made with the view closed, lacks what the view shows (by default:
        it holds no internals), so that opening the view runs its input again."""
        return not getattr(result, "internals", None)

    def _update_actions(self) -> None:
        ready = self.meta is not None
        self.run_button.setEnabled(ready and self.current_input() is not None)
        self.cancel_button.setEnabled(self.is_busy())
        has_result = self.last_outcome is not None
        self.copy_button.setEnabled(has_result)
        self.save_button.setEnabled(has_result)

    def _refresh_how(self) -> None:
        info = self.loaded.info if self.loaded else None
        self.how.set_content(self.explain(info), info)


def _card(*parts: QWidget, stretch: int) -> QFrame:
    """Widgets stacked in a framed card; `parts[stretch]` takes the room left over."""
    frame = QFrame()
    frame.setObjectName("card")
    layout = QVBoxLayout(frame)
    for i, part in enumerate(parts):
        layout.addWidget(part, 1 if i == stretch else 0)
    return frame
