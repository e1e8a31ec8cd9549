"""Text generation: a prompt, and the model's continuation streaming in after it; hovering a
token (or Inside the model) shows which earlier tokens its step attended to."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.tabs.generation_attention import AttendingTab

SAMPLE = "The museum opened a new room for old calculating machines, and on the first morning"


class TextGenerationTab(AttendingTab):
    task = "text-generation"
    title = "Text generation"
    blurb = "Give the start of a text; the model continues it one token at a time."
    sample = SAMPLE
    output_name = "continuation"
    inside_title = "Inside the model: which earlier tokens each new token looked at"
    grid_note = (
        "Each row is a generated token, each column a token before it: the prompt's pieces, then "
        "the tokens written so far (in grey). Darker cells got more of the attention of the step "
        "that wrote the row's token; a step sees only what came before it, so the grid is a "
        "staircase. Hover a row."
    )

    def attention_of(self, sequence: Any) -> np.ndarray | None:
        return getattr(sequence, "self_attention", None)

    def columns(self, width: int) -> list[tuple[str, bool]]:
        """The prompt's pieces, then the shown sequence's tokens but its last (no step looks at
        the token it writes)."""
        labels = self.input_pieces() + [(label, False) for label in self.output_labels()]
        return (labels + [("?", False)] * width)[:width]

    def build_input(self) -> Any:
        holder = super().build_input()
        self.text.setPlaceholderText("Type the start of a text, paste one, or drop a .txt file here")
        return holder

    def empty_input_message(self) -> str:
        return "Type the start of a text first: the model continues it."

    def shown_prompt(self) -> str:
        return str(self._run_input or "")

    def explain(self, info: dict[str, Any] | None) -> str:
        facts = info or {}
        sizes = ""
        if facts.get("layers"):
            sizes = (
                f" This one has {facts['layers']} layers of {facts.get('hidden_size', '?')} numbers per "
                f"token and {facts.get('attention_heads', '?')} attention heads."
            )
        return (
            "<p><b>GPT-2</b> (Radford et al., 2019) is a <i>decoder</i>: a stack of transformer layers "
            "in which every token may look only at the tokens before it. The text is cut into "
            "byte-level BPE tokens; each becomes a vector (its embedding plus one for its position), "
            "and the layers refine them. The last vector is compared with every token of the "
            "vocabulary, giving one score per token: the model's guess at what comes next." + sizes + "</p>"
            "<p>Generation repeats that step. <i>Greedy</i> decoding takes the likeliest token each "
            "time; <i>sampling</i> draws one, with <i>temperature</i>, <i>top-k</i> and <i>top-p</i> "
            "narrowing the draw; <i>beam search</i> keeps the best few sequences at once. The keys "
            "and values of every token already read are kept in a cache, so each step reads only the "
            "new token. The colour behind each generated token shows how unsure the model was: hover "
            "one to see the other tokens it weighed, and which earlier words its self-attention "
            "weighed most (averaged over heads and layers). <i>Inside the model</i> shows that for "
            "every generated token at once.</p>"
        )
