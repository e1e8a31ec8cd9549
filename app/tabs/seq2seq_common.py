"""What the encoder-decoder tabs (summarisation, translation) add to a generation tab: where each
output token looked in the input, through the decoder's cross-attention (kept on every run:
`bench/bench_generation.py --explain` could not tell it apart from a run without it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.tabs.generation_attention import AttendingTab

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


class Seq2SeqTab(AttendingTab):
    """A generation tab over an encoder-decoder: the cross-attention on hover and inside."""

    inside_title = "Inside the model: where each output token looked in the input"
    layer_name = "Decoder layer"
    grid_note = (
        "Each row is an output token, each column a piece of the input (the task's prefix and "
        "special tokens in grey); darker cells got more of that step's attention. Hover a row."
    )

    def attention_of(self, sequence: Any) -> np.ndarray | None:
        return getattr(sequence, "cross_attention", None)

    def columns(self, width: int) -> list[tuple[str, bool]]:
        return self.input_pieces()  # one column per piece of the encoder's input
