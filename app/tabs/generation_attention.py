"""Where each generated token looked, for the generation tabs: runs ask for the attention of every
step (the engine's `explain`: one query per step and layer); hovering an output token tints the
input's words by the weight its step gave them and names the heaviest, and "Inside the model"
shows the whole grid, one row per output token, for every layer or their mean.

What a step attends to depends on the model: an encoder-decoder's cross-attention looks at the
encoded input (summarisation, translation); GPT-2's self-attention looks at the prompt and at
the tokens it has written so far. Subclasses say which (`attention_of`, `columns`)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.tabs.generation_common import GenerationTab
from app.widgets.alignment_view import AlignmentView

MEAN = -1  # the layer choice that averages every layer
SHOWN = 4  # columns named in the hover line


class AttendingTab(GenerationTab):
    """A generation tab that shows what each generated token attended to, on hover and inside."""

    grid_note: ClassVar[str] = ""  # what the rows and columns of the grid are, for people
    layer_name: ClassVar[str] = "Layer"

    def extra_options(self) -> dict[str, Any]:
        return {"explain": True}

    def attention_of(self, sequence: Any) -> np.ndarray | None:
        """(tokens, layers, columns) weights of one generated sequence, or None."""
        raise NotImplementedError

    def columns(self, width: int) -> list[tuple[str, bool]]:
        """The `width` columns' labels, and whether each is a piece of the user's text (else
        greyed)."""
        raise NotImplementedError

    def build_inside(self) -> QWidget:
        self.layer_choice = QComboBox()
        self.layer_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_choice.setToolTip("The attention of one layer, or the mean of all of them")
        self.layer_choice.currentIndexChanged.connect(lambda _: self._show_alignment())
        self.alignment = AlignmentView()
        self.alignment.row_hovered.connect(self._on_row_hovered)
        scroll = QScrollArea()
        scroll.setWidget(self.alignment)
        scroll.setMinimumHeight(180)
        self.alignment_note = QLabel()
        self.alignment_note.setObjectName("hint")
        self.alignment_note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel(self.layer_name))
        row.addWidget(self.layer_choice)
        row.addStretch(1)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.alignment_note)
        layout.addWidget(scroll, 1)
        return holder

    # ----- the shown sequence's attention -------------------------------------------------------

    def weights(self, layer: int = MEAN) -> np.ndarray | None:
        """The shown sequence's (tokens, columns) attention: one layer's, or the mean."""
        sequence = self.shown_sequence()
        attention = None if sequence is None else self.attention_of(sequence)
        if attention is None or not len(attention):
            return None
        return attention.mean(axis=1) if layer == MEAN else attention[:, layer]

    def shown_sequence(self) -> Any:
        if self._result is None or not self._result.sequences:
            return None
        index = max(0, self.sequence_choice.currentIndex())
        return self._result.sequences[min(index, len(self._result.sequences) - 1)]

    def input_pieces(self) -> list[tuple[str, bool]]:
        """The input's pieces as the grid labels them: their characters in the input, or (a
        task prefix, special tokens: greyed) the piece itself."""
        text = str(self.last_input or "")
        pieces = getattr(self._result, "source", None) or []
        return [
            (text[p.start : p.end], True) if p.start is not None else (p.text.replace("▁", " ").strip() or p.text, False)
            for p in pieces
        ]

    def show_inside(self, result: Any) -> None:
        sequence = self.shown_sequence()
        attention = None if sequence is None else self.attention_of(sequence)
        layers = 0 if attention is None else attention.shape[1]
        if self.layer_choice.count() != (layers + 1 if layers > 1 else 1):
            self.layer_choice.blockSignals(True)
            self.layer_choice.clear()
            self.layer_choice.addItem("Mean of all layers", MEAN)
            for layer in range(layers if layers > 1 else 0):  # one: the layers' mean, kept as such
                self.layer_choice.addItem(f"Layer {layer + 1} of {layers}", layer)
            self.layer_choice.blockSignals(False)
        self._show_alignment()

    def output_labels(self) -> list[str]:
        """The shown sequence's tokens as the grid's rows label them."""
        return [token.text.replace("\n", "⏎") or "∅" for token in self.view.tokens] or [
            str(t.token) for t in self.shown_sequence().tokens
        ]

    def _show_alignment(self) -> None:
        layer = self.layer_choice.currentData()
        weights = self.weights(MEAN if layer is None else int(layer))
        if weights is None:
            self.alignment.set_matrix(np.zeros((0, 0), dtype=np.float32), [], [])
            self.alignment_note.setText("Run the model to see where each output token looked.")
            return
        self.alignment.set_matrix(weights, self.output_labels()[: len(weights)], self.columns(weights.shape[1]))
        self.alignment_note.setText(self.grid_note)

    def _show_sequence(self, index: int) -> None:
        super()._show_sequence(index)
        if self.inside_open():
            self._show_alignment()

    # ----- hovering ----------------------------------------------------------------------------

    def _on_hovered(self, index: int) -> None:
        super()._on_hovered(index)
        self.alignment.set_row(index)
        self.mark_source(index)

    def _on_row_hovered(self, index: int) -> None:
        self.mark_source(index)

    def mark_source(self, index: int) -> None:
        """Tint the input's words by the weight output token `index` gave them (none for -1),
        and name the heaviest columns in the detail line."""
        weights = self.weights()
        pieces = getattr(self._result, "source", None) or []
        if weights is None or not 0 <= index < len(weights) or self.text.toPlainText() != self.last_input:
            self.text.highlight([])
            return
        row = weights[index]
        peak = float(row.max()) or 1.0
        spans = []
        for piece, weight in zip(pieces, row):
            if piece.start is not None and weight > 0.05 * peak:
                colour = QColor(self.palette().highlight().color())
                colour.setAlphaF(0.15 + 0.7 * float(weight) / peak)
                spans.append((piece.start, piece.end, colour))
        self.text.highlight(spans)
        labels = self.columns(len(row))
        best = [i for i in np.argsort(-row)[:SHOWN] if row[i] > 0]
        named = ", ".join(f"<code>{labels[i][0].strip() or '␣'}</code> {100 * row[i]:.0f} %" for i in best)
        if named:
            self.detail.setText(f"{self.detail.text()}<br>It looked most at: {named}")

    def clear_result(self) -> None:
        super().clear_result()
        if hasattr(self, "text"):
            self.text.highlight([])
