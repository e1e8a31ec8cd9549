"""Image segmentation: the photo with each segment as a translucent colour, outlined and named
at its centre; a list of the segments whose rows and regions light each other up; a click
isolates a segment; the label map can be shown alone. Subtask and thresholds re-run only the
post-processing, in the engine's thread, on the outputs the result kept (never the model).

Saving writes the picture with its segments at full size, or everything at once (every mask,
the indexed label map with its legend, the JSON). Inside the model (segmentation_inside.py)
shows what the same forward pass computed on the way to the segments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.segment_files import SegmentExport, save_everything, save_overlay
from app.segment_maps import anchors, index_map, segment_colours, segment_text
from app.tabs.segmentation_inside import InsidePanel
from app.tabs.vision_common import VisionTab
from app.widgets.segment_options import SegmentOptions
from app.widgets.segment_view import SegmentLabel, SegmentView
from app.widgets.tab_parts import RowLink, results_table
from app.worker import Outcome

COLUMNS = ("Segment", "Score", "Area")


class ImageSegmentationTab(VisionTab):
    task = "image-segmentation"
    title = "Segmentation"
    modality = "vision"
    blurb = ("Which part of a picture is what: every pixel given to a segment, with its class (and, for "
             "instances, which object it belongs to).")
    own_options = ("subtask", "threshold", "mask_threshold", "overlap_mask_area_threshold")
    sample = "street.jpg"
    view_class = SegmentView

    # ----- building ---------------------------------------------------------------------------

    def build_result(self) -> QWidget:
        self._result: Any = None
        self._kept_isolation: tuple[int, int] | None = None
        self._post_job: tuple[int, Any, Outcome] | None = None  # (job, picture, outcome it refines)
        self.save_image_button.setToolTip("Save the picture with its segments as PNG, at the photo's full size")
        self.view.clicked.connect(self.toggle_isolate)

        self.controls = SegmentOptions(self.settings)
        self.controls.post_changed.connect(self._post_process)
        self.controls.style_changed.connect(self._apply_style)
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.table = results_table(COLUMNS)
        self.table.setShowGrid(False)
        # the list takes the room the inside view leaves, never the other way round
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.table.setMinimumHeight(6 * self.table.verticalHeader().defaultSectionSize())
        self.table.cellClicked.connect(lambda row, _column: self.toggle_isolate(row))
        self.rows = RowLink(self.table, self.view)
        self.save_all_button = QPushButton("Save all…")
        self.save_all_button.setToolTip("Into a folder: the picture with its segments, every mask as PNG, the label "
                                        "map as an indexed PNG with its legend, and the JSON")
        self.save_all_button.clicked.connect(lambda: self.save_all())
        footer = QHBoxLayout()
        footer.addStretch(1)
        footer.addWidget(self.save_all_button)

        self.inside = InsidePanel(self)  # its view goes under How it works: `build_inside`
        self.engine.result.connect(self._on_engine_result)
        self.engine.failed.connect(self._on_engine_failed)
        self.status_changed.connect(self._offer_subtasks)

        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(footer)
        self._apply_style()
        self.clear_outcome()
        return holder

    # ----- options ------------------------------------------------------------------------------

    def extra_options(self) -> dict[str, Any]:
        """What a run takes: the chosen subtask where the loaded checkpoint offers it, and the
        thresholds (the base class adds `explain` while the inside view is open)."""
        offered = tuple(self.loaded.info.get("subtasks", ())) if self.loaded and self.loaded.spec == self.spec() else ()
        return self.controls.wanted(offered)

    def _offer_subtasks(self) -> None:
        """A model loaded: offer its subtasks."""
        if self.loaded is not None:
            self.controls.set_subtasks(tuple(self.loaded.info.get("subtasks", ())))

    def _changes_for(self, result: Any) -> dict[str, Any]:
        """The options that differ between what `result` was made with and what the controls ask."""
        wanted = self.controls.wanted(result.subtasks)
        if wanted["subtask"] == "default":
            wanted["subtask"] = result.subtasks[0]
        if wanted["subtask"] == result.subtask == "semantic":
            return {}  # a semantic map reads no threshold
        return {name: value for name, value in wanted.items() if result.options.get(name) != value}

    def _post_process(self) -> None:
        """The shown result post-processed with the controls' options, in the engine's thread:
        the model does not run. Newest wins while a slider moves."""
        outcome, picture = self.last_outcome, self.current
        if outcome is None or self.live.is_running():
            return  # live frames take the options with every frame
        result = outcome.result
        changes = self._changes_for(result)
        if not changes:
            return
        job = self.engine.call(outcome.model.spec, lambda _task, _hooks: result.with_options(**changes),
                               key=f"{self.task}:post")
        self._post_job = (job, picture, outcome)
        self.busy_label.setText("Post-processing…")

    def _on_engine_result(self, job_id: int, answer: Outcome) -> None:
        if self._post_job is not None and job_id == self._post_job[0]:
            _, picture, before = self._post_job
            self._post_job = None
            outcome = Outcome(answer.result, before.latency_ms, before.model)
            if picture is not None and picture.outcome is before:
                picture.outcome = outcome
            if self.last_outcome is before:
                self.last_outcome = outcome
                self.clear_result()
                self.show_outcome(outcome)
                self.busy_label.setText(f"Post-processed again in {answer.latency_ms:,.0f} ms, no new run")
        else:
            self.inside.take_answer(job_id, answer)

    def _on_engine_failed(self, job_id: int, _kind: str, message: str) -> None:
        if self._post_job is not None and job_id == self._post_job[0]:
            self._post_job = None
            self.busy_label.setText("")
            self.banner.show_message("error", message)
        else:
            self.inside.take_failure(job_id, message)

    # ----- results ----------------------------------------------------------------------------

    def show_outcome(self, outcome: Outcome) -> None:
        isolated, self._kept_isolation = self._kept_isolation, None
        result = self._result = outcome.result
        self.controls.set_subtasks(tuple(result.subtasks))
        segments = result.segments
        colours = segment_colours(segments)
        mapped = index_map(result.segmentation, segments)
        places = anchors(mapped, segments)
        labels = [SegmentLabel(segment_text(s), QColor(*map(int, colours[i])), places[i], s.area)
                  for i, s in enumerate(segments)]
        self.view.set_segments(mapped, colours, labels)
        if isolated is not None:
            same = [i for i, s in enumerate(segments) if (s.id, s.label_id) == isolated]
            self.view.set_isolated(same[0] if same else -1)
        self._fill_table(result, colours)
        self.save_all_button.setEnabled(True)
        self.show_inside(result)
        if not self.live.is_running() and self._changes_for(result):
            self._post_process()  # made with other options (a run begun before a slider moved)

    def clear_outcome(self) -> None:
        # the segment shown alone stays alone in the next result that has it: a camera's next
        # frame, the same picture with another threshold
        self._kept_isolation = self._isolated_segment()
        self._result = None
        self.view.set_segments(None, segment_colours([]), [])
        self.table.setRowCount(0)
        self.summary.setText("Open a picture, drop one here or start the camera to see its segments.")
        self.save_all_button.setEnabled(False)
        self.inside.clear()

    def _fill_table(self, result: Any, colours: Any) -> None:
        width, height = result.image_size
        self.table.setRowCount(len(result.segments))
        for row, segment in enumerate(result.segments):
            swatch = QPixmap(12, 12)
            swatch.fill(QColor(*map(int, colours[row])))
            name = QTableWidgetItem(QIcon(swatch), segment.label)
            score = QTableWidgetItem("—" if segment.score is None else f"{segment.score:.3f}")
            share = 100 * segment.area / max(1, width * height)
            area = QTableWidgetItem(f"{share:.1f} %" if share >= 0.05 or segment.area == 0 else "<0.1 %")
            for column, item in enumerate((name, score, area)):
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self._say_summary()

    def _say_summary(self) -> None:
        result = self._result
        if result is None:
            return
        count = len(result.segments)
        found = "no segment" if count == 0 else "1 segment" if count == 1 else f"{count} segments"
        isolated = self.view.isolated()
        if isolated >= 0:
            what = f"Only “{result.segments[isolated].label}” is shown; click it again to see them all."
        else:
            what = "Point at a region or a row to light it up; click one to see it alone."
        self.summary.setText(f"{found} ({result.subtask}). {what}")

    def _apply_style(self) -> None:
        self.view.set_style(self.controls.opacity.value() / 100, self.controls.alone.isChecked())

    # ----- hover and isolate ------------------------------------------------------------------

    def highlighted_row(self) -> int:
        return self.rows.highlighted_row()

    def _isolated_segment(self) -> tuple[int, int] | None:
        """(id, class) of the segment shown alone, None when all are shown."""
        index = self.view.isolated()
        if self._result is None or not 0 <= index < len(self._result.segments):
            return None
        segment = self._result.segments[index]
        return segment.id, segment.label_id

    def toggle_isolate(self, index: int) -> None:
        """Show only segment `index`; the same one again (or none) shows them all."""
        self.view.set_isolated(-1 if index == self.view.isolated() else index)
        self.rows.highlight(self.view.isolated(), from_table=True)  # its row, and its label in full colour
        self._say_summary()

    # ----- inside the model ---------------------------------------------------------------------

    def build_inside(self) -> QWidget:
        return self.inside.view

    def show_inside(self, result: Any) -> None:
        self.inside.show_result(result, self.view.image())

    def inside_needs_run(self, result: Any) -> bool:
        """Only a query-based model (Mask2Former) has more to capture: SegFormer's class scores
        are always kept. The camera's next frame brings them in live mode."""
        queries = any(subtask != "semantic" for subtask in getattr(result, "subtasks", ()))
        return queries and getattr(result, "query_layers", None) is None and not self.live.is_running()

    # ----- saving -----------------------------------------------------------------------------

    def _export_request(self) -> SegmentExport:
        source, fallback = self.export_source()
        return SegmentExport(source, fallback, self._result, self.view.colours(), self.view.labels(),
                             self.view.overlay().font, self.controls.opacity.value() / 100,
                             self.controls.alone.isChecked())

    def export_image(self, path: Path | None = None) -> None:
        """The picture with its segments at full size, painted and saved in the exporter's thread."""
        if self._result is None:
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save picture with segments", f"{self._stem()}-overlay.png",
                                                    "PNG image (*.png)")
            if not chosen:
                return
            path = Path(chosen)
        request, target = self._export_request(), Path(path)
        self.exporter.submit(lambda: save_overlay(request, target))
        self._say(f"Saving {target.name}…", 0)

    def save_all(self, folder: Path | None = None) -> None:
        """Everything into `folder` (see app/segment_files.py), in the exporter's thread."""
        if self._result is None:
            return
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Save the segments into a folder")
            if not chosen:
                return
            folder = Path(chosen)
        request, target, stem = self._export_request(), Path(folder), self._stem()
        self.exporter.submit(lambda: save_everything(request, target, stem))
        self._say(f"Saving {stem}-… into {target}…", 0)

    def _stem(self) -> str:
        picture = self.current
        if self.live.is_running() or picture is None:
            return "frame"
        return Path(picture.name).stem or "picture"

    # ----- explanation ------------------------------------------------------------------------

    def explain(self, info: dict[str, Any] | None) -> str:
        info = info or {}
        if str(info.get("architecture", "")).lower() == "mask2former" or info.get("model_type") == "mask2former":
            return explain_mask2former(info)
        return explain_segformer(info)


def _listed(values: Any, fallback: str) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, (list, tuple)) and values else fallback


def explain_segformer(info: dict[str, Any]) -> str:
    size = info.get("preprocessing", "512×512")
    stages = info.get("stages", 4)
    labels = info.get("labels")
    classes = f"each of its {labels} classes" if labels else "every class"
    return (
        "<p><b>SegFormer</b> (Xie et al., 2021) gives every pixel a class. The photo is resized "
        f"({size}) and read by a <b>Mix Transformer</b> in {stages} stages "
        f"(blocks per stage: {_listed(info.get('depths'), '2, 2, 2, 2')}). Each stage begins with an "
        "<i>overlapping patch merging</i>: a strided convolution whose windows overlap their neighbours, "
        f"so the maps shrink to 1/{_listed(info.get('strides'), '4, 8, 16, 32').replace(', ', ', 1/')} of the "
        f"input with {_listed(info.get('hidden_sizes'), '32, 64, 160, 256')} channels, without seams between "
        "patches. Attention is made affordable by <i>efficient self-attention</i>: keys and values are "
        f"shrunk by the stage's reduction ratio ({_listed(info.get('reduction_ratios'), '8, 4, 2, 1')}) along "
        "each side before every position attends to them. No position embeddings: a 3×3 depth-wise "
        "convolution in each feed-forward layer tells positions apart, so any picture size works.</p>"
        "<p>The decoder is <b>all MLP</b>: each stage's map is projected to "
        f"{info.get('decoder_hidden_size', 256)} channels, upsampled to 1/4 of the input, the four are fused, "
        f"and {classes} gets a score at every position. Scaled up to the photo, the best class wins each pixel; "
        "every class present is one segment (semantic: no score). <i>Inside the model</i> shows one class's "
        "probability at the model's own 1/4 resolution.</p>"
    )


def explain_mask2former(info: dict[str, Any]) -> str:
    queries = info.get("queries") or info.get("num_queries") or 100
    layers = info.get("decoder_layers") or 9
    backbone = info.get("backbone") or "Swin Transformer"
    backbone = backbone.get("architecture", "Swin Transformer") if isinstance(backbone, dict) else backbone
    subtasks = _listed(info.get("subtasks"), "panoptic, instance and semantic")
    return (
        "<p><b>Mask2Former</b> (Cheng et al., 2022) treats every kind of segmentation as predicting a set "
        f"of masks. A <b>{backbone}</b> backbone turns the picture into feature maps at 1/4 to 1/32 of its "
        "size; a <b>pixel decoder</b> mixes the coarser maps with multi-scale deformable attention (each "
        "position looks at a few learned points on every scale) and gives a feature for every pixel at "
        "1/4 resolution.</p>"
        f"<p>Then {queries} learned <i>queries</i> pass through a <b>masked-attention decoder</b> of {layers} "
        "layers. Each layer predicts, for every query, a class (or “no object”) and a mask (the query's "
        "feature against every pixel's), and the next layer lets each query attend only inside its own "
        "mask, so the masks sharpen layer by layer. This checkpoint does "
        f"{subtasks} segmentation: semantic sums the queries' masks by class; instance keeps the queries "
        "scoring above the threshold; panoptic gives each pixel to its most likely query, fuses the "
        "“stuff” classes, and drops segments left with too little of their mask. The thresholds only "
        "change this last step, so moving them needs no new run. <i>Inside the model</i> follows one "
        "segment's query through the layers.</p>"
    )
