"""What the encoder-decoder tabs (summarisation, translation) add to a generation tab: where each
output token looked in the input. Runs ask for the decoder's cross-attention (the engine's
`explain`: one query per step and layer, which `bench/bench_generation.py --explain` could not
tell apart from the run without it); hovering an
output token tints the input's words by the weight its step gave them, and "Inside the model"
shows the whole grid, one row per output token, for every decoder layer or their mean."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.tabs.generation_common import GenerationTab
from app.widgets.alignment_view import AlignmentView

MEAN = -1  # the layer choice that averages every decoder layer
SHOWN = 4  # source words named in the hover line

SEQ2SEQ_EXPLANATION = (
    "<p>An <b>encoder-decoder</b> reads the whole input once: the encoder's layers let every token "
    "of it attend to every other. The decoder then writes the output one token at a time, each "
    "step attending to the tokens it has written (self-attention) and to the encoder's vectors "
    "(<i>cross-attention</i>), which is how it decides what to say next when {task}.</p><p>{head}</p>"
    "<p>The keys and values of the input are computed once and kept; each step adds one token's. "
    "The tint behind each output token shows how unsure the model was: hover it to see the other "
    "tokens it weighed, and to see in the input which words its cross-attention weighed most "
    "(averaged over heads and layers). <i>Inside the model</i> shows that for every output token "
    "at once.</p>"
)


class Seq2SeqTab(GenerationTab):
    """A generation tab over an encoder-decoder: the cross-attention on hover and inside."""

    inside_title = "Inside the model: where each output token looked in the input"

    def extra_options(self) -> dict[str, Any]:
        return {"explain": True}

    def build_inside(self) -> QWidget:
        self.layer_choice = QComboBox()
        self.layer_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_choice.setToolTip("Cross-attention of one decoder layer, or the mean of all of them")
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
        row.addWidget(QLabel("Decoder layer"))
        row.addWidget(self.layer_choice)
        row.addStretch(1)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.alignment_note)
        layout.addWidget(scroll, 1)
        return holder

    # ----- the shown sequence's cross-attention -------------------------------------------------

    def weights(self, layer: int = MEAN) -> np.ndarray | None:
        """The shown sequence's (tokens, source) cross-attention: one layer's, or the mean."""
        sequence = self.shown_sequence()
        attention = getattr(sequence, "cross_attention", None)
        if attention is None or not len(attention):
            return None
        return attention.mean(axis=1) if layer == MEAN else attention[:, layer]

    def shown_sequence(self) -> Any:
        if self._result is None or not self._result.sequences:
            return None
        index = max(0, self.sequence_choice.currentIndex())
        return self._result.sequences[min(index, len(self._result.sequences) - 1)]

    def source_words(self) -> list[tuple[str, bool]]:
        """Each source piece as the grid labels it: its characters in the input, or (prefix
        and special tokens, greyed) the piece itself."""
        text = str(self.last_input or "")
        pieces = getattr(self._result, "source", None) or []
        return [
            (text[p.start : p.end], True) if p.start is not None else (p.text.replace("▁", " ").strip() or p.text, False)
            for p in pieces
        ]

    def show_inside(self, result: Any) -> None:
        attention = getattr(self.shown_sequence(), "cross_attention", None)
        layers = 0 if attention is None else attention.shape[1]
        if self.layer_choice.count() != layers + 1:
            self.layer_choice.blockSignals(True)
            self.layer_choice.clear()
            self.layer_choice.addItem("Mean of all layers", MEAN)
            for layer in range(layers):
                self.layer_choice.addItem(f"Layer {layer + 1} of {layers}", layer)
            self.layer_choice.blockSignals(False)
        self._show_alignment()

    def _show_alignment(self) -> None:
        layer = self.layer_choice.currentData()
        weights = self.weights(MEAN if layer is None else int(layer))
        if weights is None:
            self.alignment.set_matrix(np.zeros((0, 0), dtype=np.float32), [], [])
            self.alignment_note.setText("Run the model to see where each output token looked.")
            return
        rows = [token.text.replace("\n", "⏎") or "∅" for token in self.view.tokens] or [
            str(t.token) for t in self.shown_sequence().tokens
        ]
        self.alignment.set_matrix(weights, rows[: len(weights)], self.source_words())
        self.alignment_note.setText(
            "Each row is an output token, each column a piece of the input (the task's prefix and "
            "special tokens in grey); darker cells got more of that step's attention. Hover a row."
        )

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
        and name the heaviest in the detail line."""
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
        words = self.source_words()
        best = [i for i in np.argsort(-row)[:SHOWN] if row[i] > 0]
        named = ", ".join(f"<code>{words[i][0].strip() or '␣'}</code> {100 * row[i]:.0f} %" for i in best)
        if named:
            self.detail.setText(f"{self.detail.text()}<br>It looked most at: {named}")

    def clear_result(self) -> None:
        super().clear_result()
        if hasattr(self, "text"):
            self.text.highlight([])
