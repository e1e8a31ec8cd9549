"""Object detection: a box around each object, labelled with its class and score in the class's
colour; a threshold slider that re-filters the model's candidates at once, without a new run; a
table whose rows light up with their boxes, whichever of the two the mouse is over."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.tabs.detection_inside import DetectionInside, ShownBox
from app.tabs.vision_common import VisionTab
from app.widgets.overlays import Box, class_colour
from app.widgets.tab_parts import RowLink, results_table
from app.worker import Outcome

COLUMNS = ("Object", "Score", "Box (x0, y0, x1, y1)")


def _swatch(colour: QColor) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(colour)
    return QIcon(pixmap)


class ObjectDetectionTab(VisionTab):
    task = "object-detection"
    title = "Object detection"
    modality = "vision"
    blurb = "Find the objects in a picture or in front of the camera: a box, a class and a score for each."
    own_options = ("threshold",)
    sample = "street.jpg"

    def build_result(self) -> QWidget:
        self._result: Any = None
        self._shown: list[Any] = []  # the detections on screen, best first: box i is row i
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(5)
        self.slider.setToolTip("Show the boxes whose score is above this; moving it needs no new run")
        self.threshold_value = QLabel()
        self.threshold_value.setMinimumWidth(self.threshold_value.fontMetrics().horizontalAdvance("0.00 "))
        try:
            saved = float(self.settings.value("threshold", 0.5))
        except (TypeError, ValueError):
            saved = 0.5
        self.slider.setValue(round(100 * min(max(saved, 0.0), 1.0)))
        self.slider.valueChanged.connect(self._on_threshold)
        self._on_threshold(self.slider.value())
        row = QHBoxLayout()
        label = QLabel("Threshold")
        label.setObjectName("sectionLabel")
        row.addWidget(label)
        row.addWidget(self.slider, 1)
        row.addWidget(self.threshold_value)

        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.table = results_table(COLUMNS)
        self.table.setShowGrid(False)
        self.rows = RowLink(self.table, self.view)
        self.table.cellClicked.connect(self._on_row_clicked)

        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        self.clear_outcome()
        return holder

    def threshold(self) -> float:
        return self.slider.value() / 100

    def extra_options(self) -> dict[str, Any]:
        return {"threshold": self.threshold()}

    # ----- results ----------------------------------------------------------------------------

    def batch_summary(self, data: Any) -> str:
        """How many objects a batch's picture holds, and of which classes, most first."""
        from collections import Counter

        found = Counter(str(entry["label"]) for entry in data)
        if not found:
            return "no objects"
        kinds = ", ".join(f"{count} {label}" if count > 1 else label for label, count in found.most_common(4))
        total = sum(found.values())
        return f"{total} object{'s' if total > 1 else ''}: {kinds}" + ("…" if len(found) > 4 else "")

    def show_outcome(self, outcome: Outcome) -> None:
        self._result = outcome.result
        self._refilter()
        if self.inside_open():
            self.show_inside(outcome.result)

    def clear_outcome(self) -> None:
        if hasattr(self, "inside"):  # build_result clears before build_inside has run
            self.inside.clear()
        self._result = None
        self._shown = []
        self.table.setRowCount(0)
        self.summary.setText("Open a picture, drop one here or start the camera to see what the model finds.")

    def _refilter(self) -> None:
        """Boxes and rows for the candidates above the threshold; no engine job involved."""
        result = self._result
        if result is None:
            return
        threshold = self.threshold()
        self._shown = sorted(result.above(threshold), key=lambda d: d.score, reverse=True)
        boxes = [
            Box(QRectF(QPointF(d.box[0], d.box[1]), QPointF(d.box[2], d.box[3])),
                f"{d.label} {100 * d.score:.0f}%", class_colour(d.label_id))
            for d in self._shown
        ]
        self.view.set_boxes(boxes, QSize(*result.image_size))
        self.table.setRowCount(len(self._shown))
        for row, detection in enumerate(self._shown):
            x0, y0, x1, y1 = detection.box
            name = QTableWidgetItem(_swatch(class_colour(detection.label_id)), detection.label)
            score = QTableWidgetItem(f"{detection.score:.3f}")
            score.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            where = QTableWidgetItem(f"{x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}")
            for column, item in enumerate((name, score, where)):
                self.table.setItem(row, column, item)
        if self.inside_open():
            self.inside.set_boxes(self._shown_boxes())
        count = len(self._shown)
        objects = "no object" if count == 0 else "1 object" if count == 1 else f"{count} objects"
        self.summary.setText(
            f"{objects} above {threshold:.2f}, out of {len(result.candidates)} candidates the model "
            "proposed. Move the threshold to see more or fewer."
        )

    def result_json(self) -> str | None:
        """The detections above the slider's threshold, in the pipeline's order and format."""
        if self.last_outcome is None:
            return None
        kept = self.last_outcome.result.above(self.threshold())
        return json.dumps([d.to_json() for d in kept], ensure_ascii=False, indent=2)

    def _on_threshold(self, value: int) -> None:
        self.threshold_value.setText(f"{value / 100:.2f}")
        self.settings.set_value("threshold", value / 100)
        self._refilter()

    # ----- inside the model -------------------------------------------------------------------

    def build_inside(self) -> QWidget:
        self.inside = DetectionInside()
        return self.inside

    def show_inside(self, result: Any) -> None:
        """Over the picture on screen, with the boxes shown (refiltered by the threshold)."""
        found = self.inside_picture(self._result) if self._result is not None else None
        if found is not None:
            shown, photo, size = found
            self.inside.show_result(shown, self._shown_boxes(), photo, size)
        elif not self.live.is_running():
            self.inside.clear()

    def _shown_boxes(self) -> list[ShownBox]:
        """The boxes on screen with their queries (a detection is its query's candidate)."""
        queries = {id(d): q for q, d in enumerate(self._result.candidates)} if self._result is not None else {}
        return [
            ShownBox(queries[id(d)], QRectF(QPointF(d.box[0], d.box[1]), QPointF(d.box[2], d.box[3])),
                     class_colour(d.label_id))
            for d in self._shown
        ]

    def _on_row_clicked(self, row: int, _column: int) -> None:
        if self.inside_open() and 0 <= row < len(self._shown):
            self.inside.choose_query(self._shown_boxes()[row].query)

    # ----- hover: a box and its row light up together -------------------------------------------

    def highlighted_row(self) -> int:
        return self.rows.highlighted_row()

    # ----- explanation ------------------------------------------------------------------------

    def explain(self, info: dict[str, Any] | None) -> str:
        info = info or {}
        queries = info.get("queries", 100)
        size = info.get("input_size", "short side 800, long side ≤ 1333")
        return (
            "<p><b>DETR</b> (Carion et al., 2020) treats detection as predicting a set. The picture "
            f"is resized ({size}) and a ResNet backbone turns it into a grid of features, "
            "one for every 32×32 patch, and a transformer encoder lets each patch attend to all the "
            "others, with sine waves telling it where each patch sits.</p>"
            f"<p>Then {queries} learned <i>object queries</i> pass through the decoder. Each one "
            "looks over the image and ends up describing at most one thing: a class, or “no object”, "
            "and a box as centre, width and height relative to the picture. Training paired every "
            "real object with exactly one query, so there is no grid of anchors and no step that "
            "removes duplicate boxes. The tab keeps each query's best class and shows those scoring "
            "above the threshold, which is why moving the slider needs no new run.</p>"
        )
