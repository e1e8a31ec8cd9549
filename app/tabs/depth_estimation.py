"""Depth estimation: the depth of every pixel of a picture or camera frame, coloured by a map of
the user's choice with a colour bar in the depth's units, either beside the photo or laid over it
with a divider to drag, or the photo lifted by its depth in a 3D view to turn and zoom; the value
under the mouse, on the depth or on the photo; the depth saved as a 16-bit PNG, .npy and JSON, or
as a .ply point cloud; and, folded away, the four maps the model's decoder passes on toward the
depth.

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
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.depth_maps import (
    COLOUR_MAPS,
    colour_bar,
    colourise,
    save_coloured,
    save_depth,
    save_point_cloud,
    to_qimage,
)
from app.pictures import PREVIEW_SIDE
from app.scene3d import Scene
from app.tabs.vision_common import VisionTab
from app.widgets.depth_scene import DepthScene
from app.widgets.depth_view import OVERLAY, SIDE_BY_SIDE, THREE_D, ColourBar, DepthView, LevelStrip
from app.worker import Outcome
from engine.point_cloud import DEFAULT_FIELD_OF_VIEW, focal_length, step_for

MODES = ((SIDE_BY_SIDE, "Side by side"), (OVERLAY, "Overlay"), (THREE_D, "3D"))
SCENE_POINTS = 60_000  # the most points the 3D view draws: every n-th pixel in each direction


def format_depth(value: float, kind: str) -> str:
    """One depth value as people read it: metres for metric depth, three figures otherwise."""
    return f"{value:.2f} m" if kind == "metric" else f"{value:.3g}"


class DepthEstimationTab(VisionTab):
    task = "depth-estimation"
    title = "Depth estimation"
    modality = "vision"
    inside_title = "Inside the model: the decoder's four maps, coarse to fine"
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
        for mode, text in MODES:
            button = QPushButton(text)
            button.setCheckable(True)
            button.setProperty("mode", mode)
            self.mode_buttons.addButton(button)
            mode_row.addWidget(button)
        self.mode_buttons.buttons()[1].setToolTip("The depth over the photo: drag across it to move the divider")
        self.mode_buttons.buttons()[2].setToolTip("The photo lifted by its depth: drag to turn it, wheel to zoom")
        self.field_of_view = QSpinBox()
        self.field_of_view.setRange(20, 140)
        self.field_of_view.setSuffix("°")
        self.field_of_view.setValue(int(self.settings.value("field_of_view", DEFAULT_FIELD_OF_VIEW)))
        self.field_of_view.setToolTip("The camera's horizontal field of view, for the 3D view and the .ply "
                                      "point cloud (a webcam sees about 60°, a phone about 65°)")
        self.field_of_view.valueChanged.connect(self._on_field_of_view)
        self.reset_button = QPushButton("Reset view")
        self.reset_button.setToolTip("Look from where the photo was taken again")
        self.mode_buttons.buttonToggled.connect(lambda button, on: on and self.set_mode(button.property("mode")))
        controls = QHBoxLayout()
        label = QLabel("Colours")
        label.setObjectName("sectionLabel")
        controls.addWidget(label)
        controls.addWidget(self.colour_box)
        controls.addSpacing(12)
        view_label = QLabel("Field of view")
        view_label.setObjectName("sectionLabel")
        controls.addWidget(view_label)
        controls.addWidget(self.field_of_view)
        controls.addStretch(1)
        controls.addWidget(self.reset_button)
        controls.addLayout(mode_row)

        self.depth_view = DepthView()
        self.depth_view.hovered.connect(self._on_hover)
        self.view.pointed.connect(self._on_hover)  # the photo in the input card tells the depth too
        self.scene_view = DepthScene()
        self.reset_button.clicked.connect(self.scene_view.reset)
        self._scene_key: tuple[Any, ...] = ()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.depth_view)
        self.stack.addWidget(self.scene_view)
        self.colour_bar = ColourBar()
        pictures = QHBoxLayout()
        pictures.addWidget(self.stack, 1)
        pictures.addWidget(self.colour_bar)

        self.readout = QLabel()  # the value under the mouse, else what the numbers are
        self.readout.setObjectName("hint")
        self.readout.setWordWrap(True)
        self._summary = ""
        self.save_depth_button = QPushButton("Save depth…")
        self.save_depth_button.setToolTip("Save the depth itself: a 16-bit PNG with a .npy array and a JSON "
                                          "description, or a .ply point cloud coloured by the photo")
        self.save_depth_button.clicked.connect(lambda: self.save_depth())
        footer = QHBoxLayout()
        footer.addWidget(self.readout, 1)
        footer.addWidget(self.save_depth_button)

        self.levels = LevelStrip()  # filled with every result (they are small); shown by `build_inside`

        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(pictures, 1)
        layout.addLayout(footer)
        saved_mode = str(self.settings.value("view", SIDE_BY_SIDE))
        self.set_mode(saved_mode if saved_mode in dict(MODES) else SIDE_BY_SIDE)
        self.clear_outcome()
        return holder

    # ----- what the user chooses ----------------------------------------------------------------

    def colour_map(self) -> str:
        return self.colour_box.currentText()

    def set_colour_map(self, name: str) -> None:
        self.colour_box.setCurrentText(name)

    def set_mode(self, mode: str) -> None:
        """SIDE_BY_SIDE: the depth alone, beside the photo; OVERLAY: over the photo, split;
        THREE_D: the photo lifted by its depth, to turn and zoom."""
        for button in self.mode_buttons.buttons():
            if button.property("mode") == mode and not button.isChecked():
                button.setChecked(True)  # re-enters through buttonToggled
                return
        if mode == THREE_D:
            self.stack.setCurrentWidget(self.scene_view)
            self._update_scene()
        else:
            self.stack.setCurrentWidget(self.depth_view)
            self.depth_view.set_mode(mode)
        self.reset_button.setVisible(mode == THREE_D)
        self.colour_bar.setVisible(mode != THREE_D)  # the 3D view wears the photo's own colours
        self.settings.set_value("view", mode)

    def mode(self) -> str:
        return THREE_D if self.stack.currentWidget() is self.scene_view else self.depth_view.mode()

    def _on_field_of_view(self, degrees: int) -> None:
        self.settings.set_value("field_of_view", degrees)
        self._update_scene()

    def _update_scene(self) -> None:
        """The 3D view's cloud for the last result, built only while the view is shown and
        only when the result or the field of view changed."""
        result = self._result
        if self.stack.currentWidget() is not self.scene_view:
            return
        if result is None or result.photo is None:
            self.scene_view.set_scene(None)
            self._scene_key = ()
            return
        degrees = float(self.field_of_view.value())
        key = (id(result), degrees)
        if key == self._scene_key:
            return
        width, height = result.image_size
        step = step_for(height, width, SCENE_POINTS)
        cloud = result.point_cloud(field_of_view=degrees, step=step)
        self.scene_view.set_scene(Scene(cloud.points, cloud.colours, (width, height), focal_length(width, degrees),
                                        spacing=step, pixels=cloud.pixels))
        self._scene_key = key

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
        self.scene_view.set_scene(None)
        self.scene_view.set_placeholder("Open a picture, drop one here or start the camera to look around it "
                                        "in 3D.")
        self._scene_key = ()
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
        for index, level in enumerate(result.decoder_levels):
            spread = float(level.max() - level.min())
            scaled = (level - level.min()) / spread * 255 if spread > 0 else np.zeros_like(level)
            height, width = level.shape
            levels.append((to_qimage(colourise(scaled.astype(np.uint8), name)), f"{width}×{height}"))
        self.levels.set_pictures(levels)
        self._update_scene()
        what = "Metres" if result.kind == "metric" else "Relative depth (larger is nearer)"
        seen = "×".join(str(side) for side in result.model_input_size)
        self._summary = (f"{what}, {format_depth(low, result.kind)} to {format_depth(high, result.kind)}; "
                         f"the model saw {seen}. Point at the photo or the depth to read it.")
        self.readout.setText(self._summary)

    def _on_hover(self, point: QPointF) -> None:
        result = self._result
        x, y = int(point.x()), int(point.y())
        height, width = result.predicted_depth.shape if result is not None else (0, 0)
        # off the picture, or over a photo other than the result's (a new one still decoding)
        if result is None or not (0 <= x < width and 0 <= y < height) or point.x() < 0:
            self._hover_value = None
            self.readout.setText(self._summary)
            return
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
        """The depth as a 16-bit PNG with `.npy` and `.json` beside it or, for a `.ply` name, the
        photo lifted by it as a point cloud (with the chosen field of view), written in the
        exporter's thread (a 12-megapixel depth takes a while to compress)."""
        result = self._result
        if result is None:
            return
        if path is None:
            png, ply = "16-bit PNG, with .npy and .json beside it (*.png)", "PLY point cloud coloured by the photo (*.ply)"
            chosen, kind = QFileDialog.getSaveFileName(self, "Save depth", "depth.png", f"{png};;{ply}")
            if not chosen:
                return
            path = Path(chosen)
            if kind == ply and path.suffix.lower() != ".ply":
                path = path.with_suffix(".ply")
        if Path(path).suffix.lower() == ".ply":
            cloud, degrees = Path(path), float(self.field_of_view.value())
            self.exporter.submit(lambda: save_point_cloud(result, cloud, degrees))
            self._say(f"Saving {cloud.name}…", 0)
            return
        target = Path(path).with_suffix(".png")
        self.exporter.submit(lambda: save_depth(result, target))
        npy, described = target.with_suffix(".npy").name, target.with_suffix(".json").name
        self._say(f"Saving {target.name}, {npy} and {described}…", 0)

    # ----- explanation ------------------------------------------------------------------------

    def build_inside(self) -> QWidget:
        return self.levels

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
        if info.get("architecture") == "GLPN":
            return self._explain_glpn(info, size, output)
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

    @staticmethod
    def _explain_glpn(info: dict[str, Any], size: str, output: str) -> str:
        depths = info.get("depths") or []
        layers = f"{sum(depths)} transformer layers in four stages" if depths else "four stages of transformer layers"
        return (
            "<p><b>GLPN</b> (Kim et al., 2022) estimates metric depth from a single photo. The picture "
            f"is resized ({size}) and read by a <b>Mix Transformer</b> encoder: {layers}, each stage "
            "at half the resolution of the one before (1/4 to 1/32 of the photo), whose attention "
            "looks at a shrunken copy of the map to stay affordable.</p>"
            "<p>A light decoder walks back up from the coarsest stage: at each step it blends the "
            "encoder's map of that size with what came from below through <i>selective feature "
            "fusion</i>, a weight per pixel choosing between local detail and global layout, and "
            f"doubles the resolution, up to the photo's full size. {output} <i>Inside the model</i> "
            "shows the decoder's four maps (1/16, 1/8, 1/4 and full size), averaged over their "
            "channels.</p>"
        )
