"""What the three generation tabs share: a text in, generated text streaming out token by token,
decoding presets, the run's speed in the run bar, and each token's probability on hover."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.tabs.text_common import TextTab
from app.widgets.token_view import Token, TokenView, token_tooltip
from app.worker import Outcome

#: Decoding presets: the options each sets (None hands the choice back to the model's settings).
PRESETS: dict[str, dict[str, Any]] = {
    "Model's settings": {"do_sample": None, "num_beams": None, "temperature": None, "top_k": None, "top_p": None,
                         "no_repeat_ngram_size": None, "early_stopping": None},
    "Greedy": {"do_sample": False, "num_beams": 1, "temperature": None, "top_k": None, "top_p": None,
               "no_repeat_ngram_size": None, "early_stopping": None},
    "Creative sampling": {"do_sample": True, "num_beams": 1, "temperature": 0.9, "top_k": 50, "top_p": 0.95,
                          "no_repeat_ngram_size": None, "early_stopping": None},
    "Beam search": {"do_sample": False, "num_beams": 4, "temperature": None, "top_k": None, "top_p": None,
                    "no_repeat_ngram_size": 3, "early_stopping": "true"},
}
CUSTOM = "Custom"


def tokens_of(sequence: Any, text: str) -> list[Token]:
    """The view's tokens for one generated sequence. A token whose text does not continue the
    sequence's text (an end or start token, which decoding skips) is marked special; if the
    pieces do not add up to the text (a character split across tokens), None of them are."""
    tokens, covered = [], ""
    for generated in sequence.tokens:
        alternatives = tuple((choice.token, choice.probability) for choice in generated.alternatives)
        fits = text.startswith(covered + generated.token) and generated.token != ""
        if fits:
            covered += generated.token
        tokens.append(Token(generated.token, generated.probability, alternatives, special=not fits))
    return tokens if covered == text else []


class GenerationTab(TextTab):
    """A text tab whose result is generated text: streamed while it is made, then shown token by
    token. Subclasses set `output_name` ("continuation", "summary", …) and may override
    `shown_prompt` (the text drawn before the output) and `describe_result`."""

    output_name: ClassVar[str] = "text"
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS

    def build_input(self) -> QWidget:
        box = super().build_input()
        self.preset = QComboBox()
        self.preset.addItems([*self.presets, CUSTOM])
        self.preset.setToolTip("Decoding presets: they set the options below")
        self.preset.currentTextChanged.connect(self.apply_preset)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel("Decoding")
        label.setBuddy(self.preset)
        row.addWidget(label)
        row.addWidget(self.preset, 1)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box, 1)
        layout.addLayout(row)
        self._applying = False
        return holder

    def build_result(self) -> QWidget:
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.view = TokenView()
        self.view.hovered.connect(self._on_hovered)
        self.detail = QLabel()
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setWordWrap(True)
        self.sequence_choice = QComboBox()
        self.sequence_choice.currentIndexChanged.connect(self._show_sequence)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.sequence_choice)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.detail)
        self.options_form.changed.connect(self._on_options_edited)
        self._result: Any = None
        self._clock: dict[str, float] = {}
        self.clear_result()
        return holder

    def build_inside(self) -> QWidget | None:
        """None: the encoders' head view is not a decoder's; what a generation tab shows of the
        model (each token's alternatives) is in its result, and an encoder-decoder adds its own."""
        return None

    # ----- decoding presets ----------------------------------------------------------------

    def _on_ready(self, info: Any) -> None:
        super()._on_ready(info)
        self.sync_preset()

    def sync_preset(self) -> None:
        """Show the preset the options match, or Custom."""
        values = self.options_form.values()
        found = next(
            (name for name, preset in self.presets.items()
             if all(values.get(key, value) == value for key, value in preset.items())),
            CUSTOM,
        )
        self.preset.blockSignals(True)
        self.preset.setCurrentText(found)
        self.preset.blockSignals(False)

    def apply_preset(self, name: str) -> None:
        values = self.presets.get(name)
        if values is None:
            return
        self._applying = True
        try:
            self.options_form.set_values(values)
        finally:
            self._applying = False

    def _on_options_edited(self) -> None:
        if not self._applying:
            self.sync_preset()

    # ----- results -----------------------------------------------------------------------------

    def shown_prompt(self) -> str:
        """The grey text before the output: nothing, unless the output continues the input."""
        return ""

    def run(self) -> None:
        super().run()
        self._clock = {"started": time.monotonic()}

    def _on_loaded(self, job_id: int, model: Any) -> None:
        if job_id == self._run_job:  # a model loaded for this run: time the run from here
            self._clock = {"started": time.monotonic()}
        super()._on_loaded(job_id, model)

    def show_partial(self, value: Any) -> None:
        self._clock.setdefault("first", time.monotonic())
        text = getattr(value, "text", None)
        if isinstance(text, str):
            self.view.show_stream(self.shown_prompt(), text, bool(getattr(value, "provisional", False)))
            self.summary.setText("The model is writing…")

    def show_result(self, result: Any) -> None:
        self._clock["done"] = time.monotonic()
        self._result = result
        sequences = list(result.sequences)
        self.sequence_choice.blockSignals(True)
        self.sequence_choice.clear()
        self.sequence_choice.addItems([f"Sequence {i + 1} of {len(sequences)}" for i in range(len(sequences))])
        self.sequence_choice.setVisible(len(sequences) > 1)
        self.sequence_choice.blockSignals(False)
        self._show_sequence(0)
        self.summary.setText(self.describe_result(result))

    def _show_sequence(self, index: int) -> None:
        if self._result is None or not 0 <= index < len(self._result.sequences):
            return
        sequence = self._result.sequences[index]
        tokens = tokens_of(sequence, sequence.text)
        if tokens:
            self.view.show_tokens(self.shown_prompt(), tokens)
            self.detail.setText("<span style='color:gray'>Hover a token to see what else the model weighed.</span>")
        else:
            self.view.show_stream(self.shown_prompt(), sequence.text)
            self.detail.clear()

    def describe_result(self, result: Any) -> str:
        sequence = result.sequences[0] if result.sequences else None
        count = len(sequence.tokens) if sequence else 0
        return f"{_tokens(count)} of {self.output_name} from {_tokens(result.prompt_tokens)} in"

    def clear_result(self) -> None:
        self._result = None
        self.view.show_stream("", "")
        self.summary.setText(f"Run the model to see the {self.output_name} appear token by token.")
        self.detail.clear()
        self.sequence_choice.clear()
        self.sequence_choice.hide()

    def _on_hovered(self, index: int) -> None:
        if 0 <= index < len(self.view.tokens):
            self.detail.setText(token_tooltip(self.view.tokens[index]).replace("<br>", " · ", 1))

    def run_summary(self, outcome: Outcome) -> str:
        """Tokens, tokens per second after the first, and the wait for the first one, as the
        window saw them arrive."""
        result = outcome.result
        count = len(result.sequences[0].tokens) if result.sequences else 0
        clock = self._clock
        total = outcome.latency_ms / 1000
        words = f"{_tokens(count)} in {total:.1f} s"
        if "first" in clock and "done" in clock:
            streaming = clock["done"] - clock["first"]
            words = _tokens(count)
            if count > 1 and streaming > 0:
                words += f" · {(count - 1) / streaming:.1f} tokens/s"
            words += f" · first after {1000 * (clock['first'] - clock['started']):,.0f} ms"
        return words


def _tokens(count: int) -> str:
    return f"{count} token{'' if count == 1 else 's'}"
