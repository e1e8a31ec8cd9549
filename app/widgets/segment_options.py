"""The segmentation tab's controls: the subtask (only those the checkpoint offers), the three
post-processing thresholds (only where the checkpoint makes instance or panoptic segments), the
colours' opacity, and the label map shown alone. Each remembers its value in the tab's settings.

`post_changed` says a post-processing option moved (the tab post-processes the shown result
again, without the model); `style_changed` that only the drawing changes."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QSlider, QWidget

from app.settings import TabSettings, as_bool

#: (option, what the slider is called, its tooltip, default)
THRESHOLDS = (
    ("threshold", "Score", "Keep segments whose score is above this; moving it needs no new run", 0.9),
    ("mask_threshold", "Mask", "A pixel belongs to a query's mask above this probability", 0.5),
    ("overlap_mask_area_threshold", "Overlap",
     "Drop a segment when less than this share of its mask is left once overlaps are settled (panoptic)", 0.5),
)
SEMANTIC = "semantic"


def _saved_fraction(settings: TabSettings, name: str, default: float) -> float:
    try:
        return min(max(float(settings.value(name, default)), 0.0), 1.0)
    except (TypeError, ValueError):
        return default


class SegmentOptions(QWidget):
    """A grid of labelled controls (see the module docstring)."""

    post_changed = Signal()
    style_changed = Signal()

    def __init__(self, settings: TabSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(2)

        self.subtask_box = QComboBox()
        self.subtask_box.setToolTip("Semantic: one segment per class; instance: one per object; "
                                    "panoptic: objects and the stuff between them")
        self.subtask_box.currentIndexChanged.connect(self._on_subtask)
        self.opacity = self._slider(round(100 * _saved_fraction(settings, "opacity", 0.55)), 10)
        self.opacity.setToolTip("How strongly the colours cover the photo")
        self.opacity.valueChanged.connect(self._on_style)
        self.alone = QCheckBox("Label map only")
        self.alone.setToolTip("The segments' colours by themselves, without the photo")
        self.alone.setChecked(as_bool(settings.value("alone"), False))
        self.alone.toggled.connect(self._on_style)
        grid.addWidget(_label("Subtask"), 0, 0)
        grid.addWidget(self.subtask_box, 0, 1)
        grid.addWidget(self.alone, 0, 2, 1, 2)
        grid.addWidget(_label("Opacity"), 1, 0)
        grid.addWidget(self.opacity, 1, 1, 1, 3)

        self.sliders: dict[str, QSlider] = {}
        self._readouts: dict[str, QLabel] = {}
        self._threshold_widgets: list[QWidget] = []
        for row, (name, title, tip, default) in enumerate(THRESHOLDS, start=2):
            slider = self._slider(round(100 * _saved_fraction(settings, name, default)), 0)
            slider.setToolTip(tip)
            readout = QLabel()
            readout.setMinimumWidth(readout.fontMetrics().horizontalAdvance("0.00 "))
            slider.valueChanged.connect(lambda value, n=name: self._on_threshold(n, value))
            self.sliders[name], self._readouts[name] = slider, readout
            label = _label(title)
            label.setToolTip(tip)
            grid.addWidget(label, row, 0)
            grid.addWidget(slider, row, 1, 1, 2)
            grid.addWidget(readout, row, 3)
            self._threshold_widgets += [label, slider, readout]
            readout.setText(f"{slider.value() / 100:.2f}")
        grid.setColumnStretch(1, 1)
        self._subtasks: tuple[str, ...] = ()
        self.set_subtasks(())

    @staticmethod
    def _slider(value: int, low: int) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, 100)
        slider.setPageStep(5)
        slider.setValue(value)
        return slider

    # ----- what the checkpoint offers -------------------------------------------------------------

    def set_subtasks(self, subtasks: tuple[str, ...]) -> None:
        """Offer `subtasks` (those of the loaded checkpoint), keeping the user's choice when it
        is among them; thresholds show only where a subtask other than semantic is offered."""
        if subtasks == self._subtasks and self.subtask_box.count():
            return
        self._subtasks = tuple(subtasks)
        wanted = str(self._settings.value("subtask", "") or "")
        self.subtask_box.blockSignals(True)
        self.subtask_box.clear()
        for subtask in subtasks:
            self.subtask_box.addItem(subtask.capitalize(), subtask)
        self.subtask_box.setCurrentIndex(max(0, self.subtask_box.findData(wanted)))
        self.subtask_box.blockSignals(False)
        self.subtask_box.setEnabled(len(subtasks) > 1)
        if len(subtasks) == 1:
            self.subtask_box.setToolTip(f"This checkpoint does {subtasks[0]} segmentation only")
        offers_thresholds = any(s != SEMANTIC for s in subtasks)
        for widget in self._threshold_widgets:
            widget.setVisible(offers_thresholds)
        self._enable_thresholds()

    def subtasks(self) -> tuple[str, ...]:
        return self._subtasks

    def subtask(self) -> str | None:
        """The chosen subtask, None before a checkpoint has said what it offers."""
        value = self.subtask_box.currentData()
        return None if value is None else str(value)

    def set_subtask(self, subtask: str) -> None:
        self.subtask_box.setCurrentIndex(self.subtask_box.findData(subtask))

    def thresholds(self) -> dict[str, float]:
        return {name: slider.value() / 100 for name, slider in self.sliders.items()}

    def set_threshold(self, name: str, value: float) -> None:
        self.sliders[name].setValue(round(100 * value))

    def wanted(self, subtasks: tuple[str, ...]) -> dict[str, Any]:
        """The post-processing options for a result whose checkpoint offers `subtasks`: the
        chosen subtask where it is offered ("default" otherwise) and the thresholds."""
        chosen = self.subtask()
        return {"subtask": chosen if chosen in subtasks else "default", **self.thresholds()}

    # ----- changes ------------------------------------------------------------------------------

    def _on_subtask(self) -> None:
        self._settings.set_value("subtask", self.subtask() or "")
        self._enable_thresholds()
        self.post_changed.emit()

    def _on_threshold(self, name: str, value: int) -> None:
        self._readouts[name].setText(f"{value / 100:.2f}")
        self._settings.set_value(name, value / 100)
        self.post_changed.emit()

    def _on_style(self) -> None:
        self._settings.set_value("opacity", self.opacity.value() / 100)
        self._settings.set_value("alone", self.alone.isChecked())
        self.style_changed.emit()

    def _enable_thresholds(self) -> None:
        """A semantic map reads no threshold; the overlap one matters to panoptic only."""
        subtask = self.subtask()
        for name, slider in self.sliders.items():
            slider.setEnabled(subtask not in (None, SEMANTIC) and (name != "overlap_mask_area_threshold"
                                                                   or subtask == "panoptic"))


def _label(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label
