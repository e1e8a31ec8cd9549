"""The segmentation tab's "Inside the model" panel: what the forward pass that made the shown
result computed on the way (app/widgets/segment_inside.py draws it).

Nothing is captured while the panel is closed. Open, it reads the result itself: SegFormer's
kept class scores become probabilities in the engine's thread (a softmax over every class, too
much for the UI thread on a large model), together with the checkpoint's class names; runs ask
for `explain` while the panel is open (the base class's doing), and a Mask2Former result then
carries `query_layers` and `query_layer_logits`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from app.segment_maps import segment_text, top_segment
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
    """The engine jobs that fill the tab's inside view (`view`, which the tab's base class
    folds under How it works and opens and closes)."""

    def __init__(self, tab: ImageSegmentationTab) -> None:
        super().__init__(tab)
        self._tab = tab
        self.view = InsideView()
        self._job: tuple[int, Any, QImage | None] | None = None  # (job, result, photo)

    def clear(self) -> None:
        self._job = None
        self.view.clear()

    def show_result(self, result: Any, photo: QImage | None) -> None:
        """Fill the panel for `result` (when open), asking the engine for what it must compute."""
        outcome = self._tab.last_outcome
        if not self._tab.inside_open() or outcome is None or outcome.result is not result:
            return
        if self._job is not None and self._job[1] is result:
            return  # already asked for (the tab shows a result, then the base class calls again)
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
