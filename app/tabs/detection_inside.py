"""The object-detection tab's "Inside the model" view, after the figures of the DETR paper:
choose a box (here, or its row in the table) to see where its object query looked in the
decoder's last cross-attention, per head or averaged; click anywhere else to see where that
position of the encoder's last layer gathered from; the queries that answered "no object" are
listed with the class they liked best."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from app.widgets.heat_map import HeatMapView
from app.widgets.inside_parts import hint, lay_out, picker, refill, section

NO_BOX = QColor("#9aa0a6")  # a chosen query whose box is not among those shown


@dataclass(frozen=True)
class ShownBox:
    """A box the tab shows, with the object query that made it."""

    query: int
    rect: QRectF
    colour: QColor


class DetectionInside(QWidget):
    """Head picker, the photo with the chosen query's (or position's) attention, and the list
    of queries that said "no object"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.head = picker("One cross-attention head of the decoder's last layer, or their average")
        self.head.currentIndexChanged.connect(self._draw)
        self.view = HeatMapView()
        self.view.setToolTip("Click a box: where its query looked. Click elsewhere: where that spot of "
                             "the encoder looked.")
        self.view.clicked.connect(self._on_click)
        self.about = hint()
        self.no_object = QListWidget()
        self.no_object.setToolTip("Queries whose answer was “no object”, nearest misses first; click one "
                                  "to see where it looked")
        self.no_object.itemClicked.connect(lambda item: self.choose_query(item.data(Qt.ItemDataRole.UserRole)))
        self.no_object_title = section()
        self._result: Any = None
        self._boxes: list[ShownBox] = []
        self._cross = np.zeros((0, 0, 0, 0), dtype=np.float16)  # (queries, heads, h, w)
        self._encoder = np.zeros((0, 0), dtype=np.float16)  # (h·w, h·w)
        self._region = QRectF()
        self._query = -1  # the chosen query, or -1 when a position is chosen
        self._point = QPointF()

        lay_out(self, [("Head", self.head)], self.view, [self.about, self.no_object_title, self.no_object])
        self.clear()

    def clear(self, text: str = "Run a picture to see where the model looked.") -> None:
        self._result, self._cross = None, np.zeros((0, 0, 0, 0), dtype=np.float16)
        self.view.set_photo(None)
        self.view.set_map(None)
        self.view.set_placeholder(text)
        self.no_object.clear()
        self.no_object_title.setText("")
        self.about.setText("")

    # ----- content ----------------------------------------------------------------------------

    def show_result(self, result: Any, boxes: list[ShownBox], photo: QImage | None, space: QSize) -> None:
        inside = getattr(result, "internals", {})
        if "cross_attention" not in inside:
            self.clear("This result was computed with the view closed: run the picture again to look inside.")
            return
        same = self._result is not None and len(self._result.candidates) == len(result.candidates)
        self._result = result
        self._cross, self._encoder = inside["cross_attention"], inside.get("encoder_attention")
        x0, y0, x1, y1 = (float(v) for v in inside["map_region"])
        self._region = QRectF(x0, y0, x1 - x0, y1 - y0)
        heads = self._cross.shape[1]
        refill(self.head, ["Average of heads"] + [f"{i + 1} of {heads}" for i in range(heads)], 0)
        self.view.set_photo(photo, space)
        self._fill_no_object(inside["no_object"])
        self._boxes = list(boxes)
        if not (same and self._query >= 0):
            self._query = self._boxes[0].query if self._boxes else 0
        self._draw()

    def set_boxes(self, boxes: list[ShownBox]) -> None:
        """The boxes shown now (the threshold moved)."""
        self._boxes = list(boxes)
        self._draw()

    def _fill_no_object(self, no_object: np.ndarray) -> None:
        candidates = self._result.candidates
        empty = [q for q, c in enumerate(candidates) if float(no_object[q]) > c.score]
        empty.sort(key=lambda q: candidates[q].score, reverse=True)
        self.no_object.clear()
        for q in empty:
            best = candidates[q]
            item = QListWidgetItem(f"query {q + 1}: no object {100 * float(no_object[q]):.0f}% · "
                                   f"best class {best.label} {100 * best.score:.0f}%")
            item.setData(Qt.ItemDataRole.UserRole, q)
            self.no_object.addItem(item)
        self.no_object_title.setText(f"“No object” queries: {len(empty)} of {len(candidates)}")

    # ----- choosing ---------------------------------------------------------------------------

    def choose_query(self, query: int) -> None:
        """Show where object query `query` looked (a box's, or one of the no-object list)."""
        if self._result is not None and 0 <= query < len(self._cross):
            self._query = query
            self._draw()

    def choose_point(self, point: QPointF) -> None:
        """Show where the encoder position under `point` (photo pixels) gathered from."""
        if self._result is not None and self._encoder is not None:
            self._query, self._point = -1, QPointF(point)
            self._draw()

    def chosen_query(self) -> int:
        return self._query

    def _on_click(self, point: QPointF) -> None:
        under = [b for b in self._boxes if b.rect.contains(point)]
        if under:  # the smallest, so a box inside another can be chosen
            self.choose_query(min(under, key=lambda b: b.rect.width() * b.rect.height()).query)
        else:
            self.choose_point(point)

    def _draw(self) -> None:
        if self._result is None:
            return
        h, w = self._cross.shape[-2:]
        rects = [(b.rect, b.colour) for b in self._boxes]
        if self._query < 0:
            self.head.setEnabled(False)
            col = min(w - 1, max(0, int((self._point.x() - self._region.x()) / self._region.width() * w)))
            row = min(h - 1, max(0, int((self._point.y() - self._region.y()) / self._region.height() * h)))
            values = self._encoder[row * w + col].reshape(h, w)
            self.view.set_boxes(rects)
            self.view.set_marker(self._point)
            self.about.setText(
                f"Encoder self-attention from the marked spot (cell {row + 1}, {col + 1} of the {h}×{w} "
                "feature map), last layer, heads averaged: which parts of the picture that position "
                "gathered from. Click a box to go back to the object queries."
            )
        else:
            head = self.head.currentIndex()
            self.head.setEnabled(True)
            weights = self._cross[self._query].astype(np.float32)  # (heads, h, w)
            values = weights.mean(0) if head <= 0 else weights[head - 1]
            chosen = next((i for i, b in enumerate(self._boxes) if b.query == self._query), -1)
            if chosen < 0:  # a query below the threshold: its box in grey
                x0, y0, x1, y1 = self._result.candidates[self._query].box
                rects.append((QRectF(QPointF(x0, y0), QPointF(x1, y1)), NO_BOX))
                chosen = len(rects) - 1
            self.view.set_boxes(rects, chosen)
            self.view.set_marker(None)
            best = self._result.candidates[self._query]
            who = "averaged over the heads" if head <= 0 else f"head {head}"
            self.about.setText(
                f"Object query {self._query + 1} ({best.label} {100 * best.score:.0f}%): where it looked "
                f"in the decoder's last cross-attention, {who}, on the {h}×{w} feature map. Trained "
                "DETR queries look at an object's edges and extremities, which fix its box. Click "
                "another box, or anywhere else for the encoder's view."
            )
        self.view.set_map(values, self._region, smooth=True)
