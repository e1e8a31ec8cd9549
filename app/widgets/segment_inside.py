"""Inside the segmentation model, from the forward pass that made the result:

- a model with per-class score maps (SegFormer): the probability of a chosen class at each
  position of the model's output grid, as a heat map over the photo;
- a model with mask queries (Mask2Former, when its result carries the decoder's layers): a
  chosen segment's query mask after each decoder layer, first to last, and that query's best
  class scores. Hidden when the result has no such layers.

The tab hands the arrays over; choosing a class or a segment redraws from them at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.depth_maps import lookup_table
from app.segment_maps import heat_image
from app.widgets.depth_view import LevelStrip
from app.widgets.score_bars import ScoreBars

HEAT_HEIGHT = 180  # pixels of the heat map picture
HEAT_MAP = "Inferno"
TOP_CLASSES = 5


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


class InsideView(QWidget):
    """`set_class_scores(...)` and `set_queries(...)` fill the two parts; each hides when given
    nothing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._probabilities: np.ndarray | None = None  # (classes, h, w)
        self._photo: QImage | None = None
        self._heat: QImage | None = None
        self._labels: dict[int, str] = {}
        self._query_layers: list[np.ndarray] = []  # per decoder layer, (queries, h, w)
        self._query_logits: np.ndarray | None = None  # (layers, queries, classes + 1)

        self.class_box = _chooser("The class whose probability the map shows", self._draw_heat)
        self.class_box.activated.connect(lambda _index: self._keep_class())
        self.kept_class: int | None = None  # the class the user picked, which live frames keep
        self.heat = QLabel()
        self.heat_caption = _hint()
        self.class_part = _part("Score map of", self.class_box, self.heat, self.heat_caption)

        self.query_box = _chooser("The segment whose query the pictures follow through the decoder", self._draw_query)
        self.layers = LevelStrip()
        self.layers.setMinimumHeight(96)  # a layer's mask must stay legible when the panels above take room
        self.class_scores = ScoreBars()
        self.query_caption = _hint()
        self.query_part = _part("Query of", self.query_box, self.layers, self.query_caption, self.class_scores)

        self.empty = _hint()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty)
        layout.addWidget(self.class_part)
        layout.addWidget(self.query_part)
        self.clear()

    def clear(self, message: str = "Open a picture to look inside the model.") -> None:
        self.set_class_scores(None, {}, None, -1)
        self.set_queries([], None, [], {}, -1)
        self.empty.setText(message)
        self.empty.show()

    # ----- per-class score maps -----------------------------------------------------------------

    def set_class_scores(self, probabilities: np.ndarray | None, labels: dict[int, str], photo: QImage | None,
                         chosen: int, present: tuple[int, ...] = ()) -> None:
        """`probabilities` (classes, h, w) at the model's resolution; the class box lists the
        `present` classes first, then the others, and starts on `chosen`."""
        self._probabilities, self._photo, self._labels = probabilities, photo, labels
        self.class_part.setVisible(probabilities is not None)
        self.class_box.blockSignals(True)
        self.class_box.clear()
        if probabilities is not None:
            self.empty.hide()
            rest = [c for c in range(probabilities.shape[0]) if c not in present]
            for c in (*present, *rest):
                self.class_box.addItem(labels.get(c, f"class {c}"), c)
            self.class_box.setCurrentIndex(max(0, self.class_box.findData(chosen)))
        self.class_box.blockSignals(False)
        self._draw_heat()

    def choose_class(self, label_id: int) -> None:
        self.class_box.setCurrentIndex(self.class_box.findData(label_id))
        self._keep_class()

    def _keep_class(self) -> None:
        self.kept_class = self.chosen_class()

    def chosen_class(self) -> int:
        value = self.class_box.currentData()
        return -1 if value is None else int(value)

    def heat_picture(self) -> QImage | None:
        """The heat map as drawn (the photo under it), or None."""
        return self._heat

    def _draw_heat(self) -> None:
        probabilities, c = self._probabilities, self.chosen_class()
        if probabilities is None or c < 0:
            self._heat = None
            self.heat.clear()
            self.heat_caption.setText("")
            return
        values = probabilities[c]
        heat = heat_image(values, lookup_table(HEAT_MAP))
        photo = self._photo
        aspect = photo.width() / photo.height() if photo is not None and photo.height() else 1.0
        picture = QImage(max(1, round(HEAT_HEIGHT * aspect)), HEAT_HEIGHT, QImage.Format.Format_RGB32)
        picture.fill(0)
        painter = QPainter(picture)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        whole = QRectF(QPointF(0, 0), picture.size().toSizeF())
        if photo is not None:
            painter.drawImage(whole, photo)
            painter.setOpacity(0.7)
        painter.drawImage(whole, heat)  # the model saw a square: stretched back onto the photo
        painter.end()
        self._heat = picture
        self.heat.setPixmap(QPixmap.fromImage(picture))
        height, width = values.shape
        self.heat_caption.setText(
            f"How sure the model is, at each of its {width}×{height} output positions, that the pixel is "
            f"“{self.class_box.currentText()}” (dark: 0, bright: 1; the highest here {float(values.max()):.0%}). "
            "A softmax over the classes' scores, before they are scaled up to the photo."
        )

    # ----- mask queries ---------------------------------------------------------------------------

    def set_queries(self, layers: list[np.ndarray], logits: np.ndarray | None, choices: list[tuple[str, int]],
                    labels: dict[int, str], chosen: int) -> None:
        """`layers`: per decoder layer, (queries, h, w) mask probabilities; `logits` (layers,
        queries, classes + 1), the last column "no object"; `choices` (text, query) per segment
        with a query, starting on the query `chosen`."""
        self._query_layers, self._query_logits = list(layers), logits
        self._labels = labels or self._labels
        shown = bool(layers) and bool(choices)
        self.query_part.setVisible(shown)
        self.query_box.blockSignals(True)
        self.query_box.clear()
        for text, query in choices if shown else []:
            self.query_box.addItem(text, query)
        self.query_box.setCurrentIndex(max(0, self.query_box.findData(chosen)))
        self.query_box.blockSignals(False)
        if shown:
            self.empty.hide()
        self._draw_query()

    def chosen_query(self) -> int:
        value = self.query_box.currentData()
        return -1 if value is None else int(value)

    def _draw_query(self) -> None:
        query = self.chosen_query()
        if not self._query_layers or query < 0:
            self.layers.set_pictures([])
            self.class_scores.set_scores([])
            return
        table = lookup_table(HEAT_MAP)
        count = len(self._query_layers)
        # the engine's first prediction comes from the learned queries before any decoder layer
        pictures = [(heat_image(masks[query].astype(np.float32), table), f"layer {i}" if i else "before")
                    for i, masks in enumerate(self._query_layers)]
        self.layers.set_pictures(pictures)
        rows: list[tuple[str, float]] = []
        if self._query_logits is not None:
            scores = softmax(self._query_logits[-1, query].astype(np.float64))
            no_object = len(scores) - 1
            best = np.argsort(scores)[::-1][:TOP_CLASSES]
            rows = [("no object" if c == no_object else self._labels.get(int(c), f"class {c}"), float(scores[c]))
                    for c in best]
        self.class_scores.set_scores(rows)
        self.query_caption.setText(
            f"Query {query}'s mask as first predicted from the learned queries, then after each of the "
            f"{count - 1} decoder layers: each layer attends only inside the mask predicted before it, so "
            "it sharpens as it goes. "
            "Below, the class scores of its final layer."
        )

    def query_pictures(self) -> int:
        return len(self.layers.captions())


def _chooser(tip: str, changed: Callable[[], None]) -> QComboBox:
    box = QComboBox()
    box.setToolTip(tip)
    box.currentIndexChanged.connect(lambda _index: changed())
    return box


def _hint() -> QLabel:
    label = QLabel()
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def _part(title: str, chooser: QComboBox, *below: QWidget) -> QWidget:
    """`title` and its chooser on a line, the widgets `below` under them."""
    part = QWidget()
    row = QHBoxLayout()
    row.addWidget(QLabel(title))
    row.addWidget(chooser, 1)
    column = QVBoxLayout(part)
    column.setContentsMargins(0, 0, 0, 0)
    column.addLayout(row)
    for widget in below:
        column.addWidget(widget)
    return part
