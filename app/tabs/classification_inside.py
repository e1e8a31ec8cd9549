"""The image-classification tab's "Inside the model" view: for ViT, the [CLS] token's attention
over the patch grid per layer and head, or rolled out across layers, and the top logits; for
ConvNeXT, a class activation map for a chosen class and each stage's map, small. Both draw over
the photo the window the model saw (its resize and crop mapped back)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from app.widgets.heat_map import HeatMapView, colour_pixmap
from app.widgets.inside_parts import hint, lay_out, picker, refill, section

STAGE_SIDE = 72  # pixels of each small stage map


def _region(internals: dict[str, np.ndarray]) -> QRectF:
    x0, y0, x1, y1 = (float(v) for v in internals["map_region"])
    return QRectF(x0, y0, x1 - x0, y1 - y0)


class ViTInside(QWidget):
    """Layer and head pickers over a heat map of the [CLS] row on the patch grid."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layer = picker("Which layer's attention to show, or the rollout through all of them")
        self.head = picker("One head, or the average of the layer's heads")
        self.layer.currentIndexChanged.connect(self._draw)
        self.head.currentIndexChanged.connect(self._draw)
        self.view = HeatMapView()
        self.about = hint()
        self.logits = QLabel()
        self.logits.setTextFormat(Qt.TextFormat.RichText)
        self.logits.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._attention = np.zeros((0, 0, 0), dtype=np.float32)
        self._rollout = np.zeros(0, dtype=np.float32)
        self._grid = (0, 0)
        self._region = QRectF()

        lay_out(self, [("Layer", self.layer), ("Head", self.head)], self.view,
                [section("Top logits (before softmax)"), self.logits, self.about])

    def show_result(self, result: Any, photo: QImage | None, space: QSize) -> None:
        inside = result.internals
        self._attention, self._rollout = inside["cls_attention"], inside["rollout"]
        rows, cols = (int(v) for v in inside["grid"])
        self._grid, self._region = (rows, cols), _region(inside)
        layers, heads, _ = self._attention.shape
        refill(self.layer, [f"{i + 1} of {layers}" for i in range(layers)] + ["Rollout (all layers)"], layers - 1)
        refill(self.head, ["Average of heads"] + [f"{i + 1} of {heads}" for i in range(heads)], 0)
        self.view.set_photo(photo, space)
        logits = inside["logits"]
        best = np.sort(logits)[::-1][: len(result.labels)]  # the same classes, in the same order
        rows_html = "".join(
            f"<tr><td>{html.escape(entry['label'])}</td><td align='right'>&nbsp;&nbsp;{value:+.2f}</td></tr>"
            for entry, value in zip(result.labels, best)
        )
        self.logits.setText(f"<table>{rows_html}</table>")
        self._draw()

    def _draw(self) -> None:
        if not self._attention.size:
            return
        layers = self._attention.shape[0]
        layer, head = self.layer.currentIndex(), self.head.currentIndex()
        rolled = layer == layers
        self.head.setEnabled(not rolled)
        if rolled:
            values = self._rollout
            text = ("Attention rollout: the layers' head-averaged attention, each with the residual "
                    "path added, multiplied from the first layer up; where the final [CLS] draws from.")
        else:
            weights = self._attention[layer]  # (heads, patches)
            values = weights.mean(0) if head == 0 else weights[head - 1]
            who = "the heads' average" if head == 0 else f"head {head}"
            text = (f"Where [CLS] looks in layer {layer + 1} ({who}): one cell per patch of "
                    f"{self._grid[0]}×{self._grid[1]}. The rest of its attention goes to itself.")
        self.view.set_map(values.reshape(self._grid), self._region, smooth=False, grid=self._grid)
        self.about.setText(text)


class ConvNextInside(QWidget):
    """A class picker over the class activation map, and the stages' maps, small."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = picker("The class whose activation map is shown")
        self.label.currentIndexChanged.connect(self._draw)
        self.view = HeatMapView()
        self.about = hint()
        self.stages = QHBoxLayout()
        self.stages.setSpacing(10)
        self._maps = np.zeros((0, 0, 0), dtype=np.float32)
        self._logits = np.zeros(0, dtype=np.float32)
        self._biases = np.zeros(0, dtype=np.float32)
        self._region = QRectF()

        lay_out(self, [("Class", self.label)], self.view,
                [section("Each stage's output, averaged over channels"), self.stages, self.about])

    def show_result(self, result: Any, photo: QImage | None, space: QSize) -> None:
        inside = result.internals
        self._maps, self._region = inside["cam"], _region(inside)
        self._logits = inside["logits"][inside["cam_classes"]]
        self._biases = inside.get("cam_bias", np.zeros(len(self._logits), dtype=np.float32))
        refill(self.label, [entry["label"] for entry in result.labels], 0)
        self.view.set_photo(photo, space)
        while self.stages.count():
            item = self.stages.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        number = 1
        while f"stage_{number}" in inside:
            values = inside[f"stage_{number}"]
            picture = QLabel()
            picture.setPixmap(colour_pixmap(values, STAGE_SIDE))
            caption = hint(f"{number}: {values.shape[0]}×{values.shape[1]}")
            cell = QVBoxLayout()
            cell.addWidget(picture)
            cell.addWidget(caption)
            holder = QWidget()
            holder.setLayout(cell)
            self.stages.addWidget(holder)
            number += 1
        self.stages.addStretch(1)
        self._draw()

    def _draw(self) -> None:
        index = self.label.currentIndex()
        if not 0 <= index < len(self._maps):
            return
        values = self._maps[index]
        self.view.set_map(values, self._region, smooth=True)
        mean, bias, logit = float(values.mean()), float(self._biases[index]), float(self._logits[index])
        if abs(mean + bias - logit) <= 1e-3 * max(1.0, abs(logit)):
            adds_up = (f"Its mean, {mean:.2f}, plus the classifier's bias, {bias:.2f}, is the logit, {logit:.2f}: "
                       "the map is exact for the linear part of the head, the LayerNorm's statistics taken as fixed.")
        else:  # bf16 or int8: the run rounded the head's arithmetic, the map is worked out in float32
            adds_up = (f"Its mean, {mean:.2f}, plus the classifier's bias, {bias:.2f}, comes to {mean + bias:.2f}, "
                       f"near the logit, {logit:.2f}: the model ran in a lower precision that rounded the head's "
                       "arithmetic, while the map is worked out in float32.")
        self.about.setText(
            f"Class activation map of “{self.label.currentText()}” on the last stage's "
            f"{values.shape[0]}×{values.shape[1]} grid: each position's features, normalised with "
            "the pooled vector's mean and variance (the final LayerNorm's statistics), dotted with "
            f"the class's weights. {adds_up}"
        )


class ClassificationInside(QStackedWidget):
    """The view for whichever model made the result, or a line saying why there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = hint()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.vit = ViTInside()
        self.convnext = ConvNextInside()
        for page in (self.message, self.vit, self.convnext):
            self.addWidget(page)
        self.clear()

    def clear(self, text: str = "Run a picture to see how the model read it.") -> None:
        self.message.setText(text)
        self.setCurrentWidget(self.message)

    def show_result(self, result: Any, photo: QImage | None, space: QSize) -> None:
        inside = getattr(result, "internals", {})
        if "cls_attention" in inside:
            self.vit.show_result(result, photo, space)
            self.setCurrentWidget(self.vit)
        elif "cam" in inside:
            self.convnext.show_result(result, photo, space)
            self.setCurrentWidget(self.convnext)
        else:
            self.clear("This result was computed with the view closed: run the picture again to look inside.")
