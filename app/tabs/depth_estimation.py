"""Depth estimation: the depth of every pixel of a picture or camera frame, coloured by a map of
the user's choice with a colour bar in the depth's units, either beside the photo or laid over it
with a divider to drag; the value under the mouse; the depth saved as a 16-bit PNG, .npy and JSON;
and, folded away, the four maps the model's neck fuses on the way to the depth.

Changing the colour map or the view redraws the last result: it never runs the model again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.depth_maps import COLOUR_MAPS, colour_bar, colourise, save_coloured, save_depth, to_qimage
from app.pictures import PREVIEW_SIDE
from app.tabs.vision_common import VisionTab
from app.widgets.collapsible import Collapsible
from app.widgets.depth_view import OVERLAY, SIDE_BY_SIDE, ColourBar, DepthView, LevelStrip
from app.worker import Outcome


def format_depth(value: float, kind: str) -> str:
    """One depth value as people read it: metres for metric depth, three figures otherwise."""
    return f"{value:.2f} m" if kind == "metric" else f"{value:.3g}"


class DepthEstimationTab(VisionTab):
    task = "depth-estimation"
    title = "Depth estimation"
    modality = "vision"
    blurb = ("How far away each part of a picture is, from a single photo or the camera: in metres for "
             "metric models, relative (larger is nearer) for the others.")
    sample = "landscape.jpg"
    batch_kept_outcomes = 8  # a depth map is the photo's size in float32: only the latest are kept

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        splitter = self.findChild(QSplitter, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if splitter is not None:
            splitter.setSizes([1, 1])  # the photo and its depth, side by side at the same size

    def batch_summary(self, data: Any) -> str:
        return f"{data['kind']} depth {data['min']:.3g} to {data['max']:.3g}"

    # ----- building ---------------------------------------------------------------------------

    def build_result(self) -> QWidget:
        self._result: Any = None
        self._hover_value: float | None = None
        self.save_image_button.setToolTip("Save the coloured depth picture as PNG, at the photo's full size")

        self.colour_box = QComboBox()
        self.colour_box.addItems(COLOUR_MAPS)
        saved = str(self.settings.value("colour_map", COLOUR_MAPS[0]))
        self.colour_box.setCurrentText(saved if saved in COLOUR_MAPS else COLOUR_MAPS[0])
        self.colour_box.setToolTip("How depth is coloured; changing it needs no new run")
        self.colour_box.currentTextChanged.connect(self._on_colour_map)
        self.mode_buttons = QButtonGroup(self)
        mode_row = QHBoxLayout()
        mode_row.setSpacing(0)
        for mode, text in ((SIDE_BY_SIDE, "Side by side"), (OVERLAY, "Overlay")):
            button = QPushButton(text)
            button.setCheckable(True)
            button.setProperty("mode", mode)
            self.mode_buttons.addButton(button)
            mode_row.addWidget(button)
        self.mode_buttons.buttons()[1].setToolTip("The depth over the photo: drag across it to move the divider")
        self.mode_buttons.buttonToggled.connect(lambda button, on: on and self.set_mode(button.property("mode")))
        controls = QHBoxLayout()
        label = QLabel("Colours")
        label.setObjectName("sectionLabel")
        controls.addWidget(label)
        controls.addWidget(self.colour_box)
        controls.addStretch(1)
        controls.addLayout(mode_row)

        self.depth_view = DepthView()
        self.depth_view.hovered.connect(self._on_hover)
        self.colour_bar = ColourBar()
        pictures = QHBoxLayout()
        pictures.addWidget(self.depth_view, 1)
        pictures.addWidget(self.colour_bar)

        self.readout = QLabel()  # the value under the mouse, else what the numbers are
        self.readout.setObjectName("hint")
        self.readout.setWordWrap(True)
        self._summary = ""
        self.save_depth_button = QPushButton("Save depth…")
        self.save_depth_button.setToolTip("Save the depth itself: a 16-bit PNG, a .npy array and a JSON description")
        self.save_depth_button.clicked.connect(lambda: self.save_depth())
        footer = QHBoxLayout()
        footer.addWidget(self.readout, 1)
        footer.addWidget(self.save_depth_button)

        self.levels = LevelStrip()
        self.inside = Collapsible("Inside the model: the neck's four maps, coarse to fine", self.levels)
        self.inside.set_open(str(self.settings.value("inside_open", "false")) == "true")
        self.inside.toggled.connect(lambda on: self.settings.set_value("inside_open", "true" if on else "false"))

        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(pictures, 1)
        layout.addLayout(footer)
        layout.addWidget(self.inside)
        saved_mode = str(self.settings.value("view", SIDE_BY_SIDE))
        self.set_mode(saved_mode if saved_mode in (SIDE_BY_SIDE, OVERLAY) else SIDE_BY_SIDE)
        self.clear_outcome()
        return holder

    # ----- what the user chooses ----------------------------------------------------------------

    def colour_map(self) -> str:
        return self.colour_box.currentText()

    def set_colour_map(self, name: str) -> None:
        self.colour_box.setCurrentText(name)

    def set_mode(self, mode: str) -> None:
        """SIDE_BY_SIDE: the depth alone, beside the photo; OVERLAY: over the photo, split."""
        for button in self.mode_buttons.buttons():
            if button.property("mode") == mode and not button.isChecked():
                button.setChecked(True)  # re-enters through buttonToggled
                return
        self.depth_view.set_mode(mode)
        self.settings.set_value("view", mode)

    def _on_colour_map(self, name: str) -> None:
        self.settings.set_value("colour_map", name)
        self._draw()

    # ----- results ----------------------------------------------------------------------------

    def show_outcome(self, outcome: Outcome) -> None:
        self._result = outcome.result
        self.save_depth_button.setEnabled(True)
        self._draw()

    def clear_outcome(self) -> None:
        self._result = None
        self._hover_value = None
        self.depth_view.set_pictures(None, None)
        self.depth_view.set_placeholder("Open a picture, drop one here or start the camera to see its depth.")
        self.colour_bar.set_scale(None)
        self.levels.set_pictures([])
        self._summary = ""
        self.readout.setText("")
        self.save_depth_button.setEnabled(False)

    def _draw(self) -> None:
        """The last result in the chosen colours: the depth, the bar and the inner maps."""
        result = self._result
        if result is None:
            return
        name = self.colour_map()
        depth = to_qimage(colourise(result.depth, name, longest=PREVIEW_SIDE))
        self.depth_view.set_pictures(depth, self.view.image(), QSize(*result.image_size))
        low, high = float(result.predicted_depth.min()), float(result.predicted_depth.max())
        title = "m\nfarther ↑" if result.kind == "metric" else "relative\nnearer ↑"
        self.colour_bar.set_scale(colour_bar(name, 256), format_depth(low, result.kind),
                                  format_depth(high, result.kind), title)
        levels = []
        for index, level in enumerate(result.neck_levels):
            spread = float(level.max() - level.min())
            scaled = (level - level.min()) / spread * 255 if spread > 0 else np.zeros_like(level)
            height, width = level.shape
            levels.append((to_qimage(colourise(scaled.astype(np.uint8), name)), f"{width}×{height}"))
        self.levels.set_pictures(levels)
        what = "Metres" if result.kind == "metric" else "Relative depth (larger is nearer)"
        seen = "×".join(str(side) for side in result.model_input_size)
        self._summary = (f"{what}, {format_depth(low, result.kind)} to {format_depth(high, result.kind)}; "
                         f"the model saw {seen}. Point at the depth to read it.")
        self.readout.setText(self._summary)

    def _on_hover(self, point: QPointF) -> None:
        result = self._result
        if result is None or point.x() < 0:
            self._hover_value = None
            self.readout.setText(self._summary)
            return
        x, y = int(point.x()), int(point.y())
        self._hover_value = float(result.predicted_depth[y, x])
        self.readout.setText(f"At ({x}, {y}): {format_depth(self._hover_value, result.kind)}")

    def hover_value(self) -> float | None:
        """The depth under the mouse, as the readout shows it; None when it is off the picture."""
        return self._hover_value

    # ----- saving -----------------------------------------------------------------------------

    def export_image(self, path: Path | None = None) -> None:
        """The coloured depth at the photo's full size, painted and saved in the exporter's thread."""
        result = self._result
        if result is None:
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save depth picture", f"{self.task}.png", "PNG image (*.png)")
            if not chosen:
                return
            path = Path(chosen)
        name, target = self.colour_map(), Path(path)
        self.exporter.submit(lambda: save_coloured(result.depth, name, target))
        self._say(f"Saving {target.name}…", 0)

    def save_depth(self, path: Path | None = None) -> None:
        """The depth as a 16-bit PNG with `.npy` and `.json` beside it, written in the exporter's
        thread (a 12-megapixel depth takes a while to compress)."""
        result = self._result
        if result is None:
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save depth", "depth.png", "16-bit PNG, with .npy and .json beside it (*.png)"
            )
            if not chosen:
                return
            path = Path(chosen)
        target = Path(path).with_suffix(".png")
        self.exporter.submit(lambda: save_depth(result, target))
        npy, described = target.with_suffix(".npy").name, target.with_suffix(".json").name
        self._say(f"Saving {target.name}, {npy} and {described}…", 0)

    # ----- explanation ------------------------------------------------------------------------

    def explain(self, info: dict[str, Any] | None) -> str:
        info = info or {}
        backbone = info.get("backbone") or {}
        layers = info.get("backbone_layers_used", [])
        size = info.get("preprocessing", "shape kept, scaled toward 518×518, sides in multiples of 14")
        kind = info.get("depth")
        if kind == "metric":
            output = (f"This checkpoint is <i>metric</i>: a sigmoid times {info.get('max_depth')} gives "
                      "metres, so values from different pictures compare.")
        elif kind == "relative":
            output = ("This checkpoint is <i>relative</i>: it gives an inverse depth with no unit, where "
                      "larger means nearer and only the ratios within one picture mean anything.")
        else:
            output = "Relative checkpoints give an inverse depth without unit; metric ones give metres."
        used = f" (layers {', '.join(str(i) for i in layers)})" if layers else ""
        width = f"{backbone['hidden_size']}-wide " if isinstance(backbone, dict) and "hidden_size" in backbone else ""
        return (
            "<p><b>Depth Anything</b> (Yang et al., 2024) estimates depth from a single photo. The "
            f"picture is resized ({size}) and cut into patches that a {width}DINOv2 vision transformer "
            f"reads. Four of its layers{used} are taken out, and a <b>DPT</b> neck (Ranftl et al., "
            "2021) reassembles each into a map of its own resolution, from coarse to fine, then fuses "
            "them from the coarsest up, so global layout and fine edges meet in one map.</p>"
            "<p>A small convolutional head turns the fused map into one number per pixel, which is "
            f"scaled back to the photo's size. {output} <i>Inside the model</i> shows the four fused "
            "maps, averaged over their channels.</p>"
        )
