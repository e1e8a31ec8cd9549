"""Audio classification: a clip's top labels as bars; live, the last second of the microphone is
classified again whenever the model is free, the bars follow, and a strip keeps the recent
winners."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.live_audio import ClassificationSession, LiveLabels
from app.tabs.audio_common import AudioTab, encoder_paragraph
from app.widgets.audio_file_input import clock
from app.widgets.audio_inside import LayerWeights, ScoresOverTime
from app.widgets.label_history import LabelHistory
from app.widgets.score_bars import ScoresPanel

LIVE_WINDOW_S = 1.0
HISTORY = 12
LIVE_SCORES_KEPT = 40  # live windows in the inside view's scores over time: 10 s at a quarter second


class AudioClassificationTab(AudioTab):
    task = "audio-classification"
    title = "Audio classification"
    blurb = "Name what is heard in a clip (a spoken keyword, an emotion, a language), or live from a microphone."
    live_hint = (
        "The last second of sound is classified every quarter of a second, or as often as the "
        "model keeps up; the strip below the bars keeps each window's winner, newest on the right."
    )
    options_in_live = True
    run_verb = "Classifying"

    def build_result(self) -> QWidget:
        self._live_times: list[tuple[float, float]] = []  # the microphone's windows, for the inside view
        self._live_scores: list[np.ndarray] = []
        self._live_winners: list[int] = []  # labels in the order they first won a live window
        holder = ScoresPanel()
        self.summary, self.bars = holder.summary, holder.bars
        self.summary.setText("Run the model on a clip, or listen live, to see its labels.")
        self.history_title = QLabel("Recent windows")
        self.history_title.setObjectName("sectionLabel")
        self.history = LabelHistory(HISTORY)
        self.live_info = QLabel()
        self.live_info.setObjectName("hint")
        layout = holder.layout()
        layout.insertWidget(0, self.make_run_progress())
        layout.addSpacing(8)
        layout.addWidget(self.history_title)
        layout.addWidget(self.history)
        layout.addWidget(self.live_info)
        layout.addStretch(1)
        self.updates = 0  # live updates drawn since the session began
        self._show_history(False)
        return holder

    def build_inside(self) -> QWidget | None:
        self.over_time_title = QLabel("Scores over time")
        self.over_time_title.setObjectName("sectionLabel")
        self.over_time_note = QLabel()
        self.over_time_note.setObjectName("hint")
        self.over_time_note.setWordWrap(True)
        self.over_time = ScoresOverTime()
        self.layer_title = QLabel("Weight of each layer in the classifier's input")
        self.layer_title.setObjectName("sectionLabel")
        self.layer_note = QLabel(
            "This head mixes every layer's frames with learned weights (softmaxed, adding up to 100 %) "
            "before pooling: “in” is the encoder's input, then each layer's output."
        )
        self.layer_note.setObjectName("hint")
        self.layer_note.setWordWrap(True)
        self.layer_weights = LayerWeights()
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.over_time_title, self.over_time_note, self.over_time,
                       self.layer_title, self.layer_note, self.layer_weights):
            layout.addWidget(widget)  # fmt: skip
        return holder

    def show_inside(self, result: Any) -> None:
        if isinstance(result, LiveLabels):
            self._show_live_scores(result.label_names)
            return
        internals = getattr(result, "internals", None) or {}
        if "window_scores" not in internals:
            return
        times = internals["window_times"]
        self.over_time.set_scores(times, internals["window_scores"], internals["labels"].tolist())
        span = float(times[0, 1] - times[0, 0]) if len(times) else 0.0
        step = float(times[1, 0] - times[0, 0]) if len(times) > 1 else 0.0
        self.over_time_note.setText(
            "The head averages the clip's frames and is linear, so the clip's score is the average of "
            f"every frame's vote. Here the votes of windows of {span:.1f} s"
            + (f" every {step:.1f} s" if step else " (one window: the clip is short)")
            + ", from the same pass: each row a label, each cell as strong as its score in that window."
        )
        weights = internals.get("layer_weights")
        self.layer_weights.set_weights(weights)
        for widget in (self.layer_title, self.layer_note, self.layer_weights):
            widget.setVisible(weights is not None)

    def _show_live_scores(self, labels: tuple[str, ...]) -> None:
        """The microphone's recent windows as the scores over time: each column the last
        second of sound when it was classified, newest on the right."""
        if not self._live_scores:
            return
        self.over_time.set_scores(np.array(self._live_times), np.stack(self._live_scores), list(labels), self._live_winners)
        self.over_time_note.setText(
            f"Live: each column is the last {LIVE_WINDOW_S:g} s of sound when it was classified (about every "
            f"quarter second), the newest {len(self._live_scores)} windows, newest on the right. Each row a label, "
            "each cell as strong as its score in that window."
        )

    def make_session(self, rate: int) -> ClassificationSession:
        top_k = self.options_form.values().get("top_k") or 5
        return ClassificationSession(rate, window_s=LIVE_WINDOW_S, top_k=top_k, history_size=HISTORY)

    def live_started(self) -> None:
        self._live_times.clear()
        self._live_scores.clear()
        self._live_winners.clear()
        self.last_outcome = None
        self.clear_result()
        self.updates = 0
        self.summary.setText("Listening…")
        self.history.set_history([])
        self._show_history(True)
        self._update_actions()

    def live_picture_ready(self) -> bool:
        return len(self.history.labels()) >= 6

    @Slot(object)
    def show_live(self, value: LiveLabels) -> None:
        if value.labels:
            self.updates += 1
            self._draw(value.labels)
        if value.scores is not None and value.labels:
            self._live_times.append((max(0.0, value.heard_s - LIVE_WINDOW_S), value.heard_s))
            self._live_scores.append(value.scores)
            best = int(np.argmax(value.scores))
            if best not in self._live_winners:  # the rows keep their places as windows scroll away
                self._live_winners.append(best)
            del self._live_times[:-LIVE_SCORES_KEPT], self._live_scores[:-LIVE_SCORES_KEPT]
            if self.inside_open():
                self._show_live_scores(value.label_names)
        self.history.set_history([(h["label"], h["score"]) for h in value.history])
        self.live_info.setText(f"Window: the last {LIVE_WINDOW_S:g} s · {clock(value.heard_s)} heard")

    def show_result(self, result: Any) -> None:
        if isinstance(result, LiveLabels):  # the last window once the microphone stopped
            self.show_live(result)
            self.live_info.setText(f"Stopped after {clock(result.heard_s)}: the bars show the last window")
            return
        self._show_history(False)
        self._draw(result.to_json())

    def clear_result(self) -> None:
        self.bars.set_scores([])
        self.summary.setText("")
        self.live_info.clear()

    def _draw(self, labels: list[dict[str, Any]]) -> None:
        self.bars.set_scores([(item["label"], item["score"]) for item in labels])
        if labels:
            best = labels[0]
            self.summary.setText(
                f"<span style='font-size:13pt'><b>{html.escape(str(best['label']))}</b></span>"
                f" &nbsp;{100 * best['score']:.1f} %"
            )
        else:
            self.summary.setText("The model returned no labels.")

    def _show_history(self, shown: bool) -> None:
        for widget in (self.history_title, self.history, self.live_info):
            widget.setVisible(shown)

    def explain(self, info: dict[str, Any] | None) -> str:
        head = (
            "For classification the frame vectors are pooled into one vector for the whole clip: "
            "their average over time (with <i>weighted layer sum</i>, first a learned mix of every "
            "layer's output, since lower layers keep more of the sound and upper ones more of the "
            "words). A small projection and a linear <b>classifier</b> give one number per label, "
            "and a softmax turns those into probabilities that add up to 1."
        )
        live = (
            f"Live, the newest {LIVE_WINDOW_S:g} s of sound is classified every quarter of a second, "
            "or whenever the model is free if it is slower; windows that passed while it was busy "
            "are skipped, so the bars always show what was heard last. The strip keeps each "
            "window's winner: its colour is the label, its strength the score."
        )
        return encoder_paragraph(info) + f"<p>{head}</p><p>{live}</p>"
