"""The segmentation tab's "Inside the model" panel: what the forward pass that made the shown
result computed on the way (app/widgets/segment_inside.py draws it).

Nothing is captured while the panel is closed. Open, it reads the result itself: SegFormer's
kept class scores become probabilities in the engine's thread (a softmax over every class, too
much for the UI thread on a large model), together with the checkpoint's class names; a task
that can capture more (Mask2Former's decoder layers, its run option `explain`) is asked to while
the panel is open, and its result then carries `query_layers` and `query_layer_logits`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from app.segment_maps import segment_text, top_segment
from app.settings import as_bool
from app.widgets.collapsible import Collapsible
from app.widgets.segment_inside import InsideView
from app.worker import Outcome

if TYPE_CHECKING:
    from app.tabs.image_segmentation import ImageSegmentationTab


def inside_data(result: Any, task: Any) -> dict[str, Any]:
    """Runs in the engine's thread: the class probabilities at the model's resolution (when the
    result kept per-class scores) and the checkpoint's class names."""
    data: dict[str, Any] = {"labels": dict(getattr(task, "labels", None) or {})}
    if "logits" in result.outputs:
        data["probabilities"] = result.score_maps().numpy()
    return data


class InsidePanel(QObject):
    """The folding panel and the engine jobs that fill it, for one tab."""

    def __init__(self, tab: ImageSegmentationTab) -> None:
        super().__init__(tab)
        self._tab = tab
        self.view = InsideView()
        self.collapsible = Collapsible("Inside the model", self.view)
        self.collapsible.set_open(as_bool(tab.settings.value("inside_open"), False))
        self._job: tuple[int, Any, QImage | None] | None = None  # (job, result, photo)

    def is_open(self) -> bool:
        return self.collapsible.is_open()

    def wants_capture(self) -> bool:
        """True while open, for a task that captures its insides on request (`explain`)."""
        meta = self._tab.meta
        return self.is_open() and meta is not None and any(o.name == "explain" for o in meta.options)

    def needs_rerun(self, result: Any) -> bool:
        """The result was made while nothing was captured, and its model could capture more
        (a query-based one, Mask2Former: SegFormer's class scores are always kept)."""
        queries = any(subtask != "semantic" for subtask in getattr(result, "subtasks", ()))  # not SegFormer
        return self.wants_capture() and queries and getattr(result, "query_layers", None) is None

    def clear(self) -> None:
        self._job = None
        self.view.clear()

    def show_result(self, result: Any, photo: QImage | None) -> None:
        """Fill the panel for `result` (when open), asking the engine for what it must compute."""
        outcome = self._tab.last_outcome
        if not self.is_open() or outcome is None or outcome.result is not result:
            return
        job = self._tab.engine.call(outcome.model.spec, lambda task, _hooks: inside_data(result, task),
                                    key=f"{self._tab.task}:inside")
        self._job = (job, result, photo)

    def take_answer(self, job_id: int, answer: Outcome) -> None:
        if self._job is None or job_id != self._job[0]:
            return
        _, result, photo = self._job
        self._job = None
        if self._tab.last_outcome is None or self._tab.last_outcome.result is not result:
            return  # another result is shown by now
        self.draw(result, photo, answer.result)

    def take_failure(self, job_id: int, message: str) -> None:
        if self._job is not None and job_id == self._job[0]:
            self._job = None
            self.view.clear(f"Could not look inside the model: {message}")

    def draw(self, result: Any, photo: QImage | None, data: dict[str, Any]) -> None:
        segments, labels = result.segments, data.get("labels", {})
        top = top_segment(segments)
        present = tuple(dict.fromkeys(s.label_id for s in sorted(segments, key=lambda s: -s.area)))
        chosen_class = segments[top].label_id if top >= 0 else 0
        if self._tab.is_live() and self.view.kept_class is not None:
            chosen_class = self.view.kept_class  # the class the user picked stays from frame to frame
        self.view.set_class_scores(data.get("probabilities"), labels, photo, chosen_class, present)
        layers = getattr(result, "query_layers", None) or []
        with_query = [s for s in segments if getattr(s, "query", None) is not None]
        choices = [(segment_text(s), int(s.query)) for s in with_query]
        chosen = segments[top].query if top >= 0 and getattr(segments[top], "query", None) is not None else -1
        self.view.set_queries(layers, getattr(result, "query_layer_logits", None), choices, labels, chosen)
        if data.get("probabilities") is None and not (layers and choices):
            self.view.clear("This result carries nothing from inside the model.")
