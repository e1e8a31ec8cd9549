"""The settings of one generation request, and how they are resolved from the places that set
them: the task's own defaults, the checkpoint's generation config, the task's entry in
config.json's `task_specific_params`, and the user's options, each over the one before.

Names are transformers' `GenerationConfig` names, so that a generation_config.json, a
config.json and a user's options all read the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import InputError

#: The generation parameters the engine reads, as transformers names them.
KEYS = frozenset({
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "do_sample", "num_beams",
    "num_return_sequences", "temperature", "top_k", "top_p", "repetition_penalty",
    "no_repeat_ngram_size", "length_penalty", "early_stopping", "eos_token_id", "pad_token_id",
    "bos_token_id", "decoder_start_token_id", "forced_bos_token_id", "forced_eos_token_id", "seed",
})

#: transformers' own defaults for what nothing else sets (`GenerationConfig`): greedy search
#: of 20 new tokens.
DEFAULT_NEW_TOKENS = 20

EARLY_STOPPING: dict[str, bool | str] = {"true": True, "false": False, "never": "never"}


@dataclass(frozen=True)
class GenerationSettings:
    """How one request generates.

    Lengths count what the decoder sees, as transformers' `max_length` does: the prompt and
    the new tokens for a decoder-only model, the decoder start token and the new tokens for an
    encoder-decoder. `early_stopping` is transformers' beam-search switch: True stops once
    `num_beams` hypotheses are finished, False when a heuristic says no running beam can beat
    them, "never" only when none can.
    """

    max_length: int
    min_length: int = 0
    do_sample: bool = False
    num_beams: int = 1
    num_return_sequences: int = 1
    temperature: float = 1.0
    top_k: int = 50  # used only when sampling, as in transformers; 0 keeps every token
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0
    forced_bos_token_id: int | None = None
    forced_eos_token_ids: tuple[int, ...] = ()
    seed: int | None = None

    def check(self, prompt_length: int) -> None:
        """An `InputError` that names the option when the settings cannot generate."""
        if self.max_length <= prompt_length:
            raise InputError(
                f"max_length {self.max_length} leaves no room for new tokens after the "
                f"{prompt_length} the decoder starts with: set max_new_tokens instead"
            )
        if self.num_beams < 1:
            raise InputError("--num-beams must be 1 or more")
        if self.num_return_sequences < 1:
            raise InputError("--num-return-sequences must be 1 or more")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise InputError("--num-return-sequences cannot exceed --num-beams")
        if self.num_beams == 1 and not self.do_sample and self.num_return_sequences > 1:
            raise InputError("greedy search gives one sequence: use --do-sample or --num-beams for more")
        if self.do_sample and not self.temperature > 0:
            raise InputError("--temperature must be above 0 when sampling (greedy search: leave --do-sample off)")
        if not 0 <= self.top_p <= 1:
            raise InputError("--top-p must be between 0 and 1")
        if self.top_k < 0:
            raise InputError("--top-k must be 0 (off) or more")
        if not self.repetition_penalty > 0:
            raise InputError("--repetition-penalty must be above 0")
        if self.no_repeat_ngram_size < 0:
            raise InputError("--no-repeat-ngram-size must be 0 (off) or more")


def resolve(
    layers: Sequence[Mapping[str, Any]], *, prompt_length: int, max_positions: int | None = None
) -> GenerationSettings:
    """The settings that `layers`, weakest first, give together for a decoder that starts with
    `prompt_length` tokens. A value of None in a layer leaves the one below it.

    Lengths: the strongest layer that sets `max_new_tokens` or `max_length` decides (a new-token
    count counts from the prompt's end); where none does, 20 new tokens, capped at
    `max_positions` as transformers caps its default. `min_new_tokens` / `min_length` likewise.
    The pad token falls back to the first end-of-sequence token.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if k in KEYS and v is not None})
    max_length = _length(layers, "max_new_tokens", "max_length", prompt_length)
    if max_length is None:
        max_length = prompt_length + DEFAULT_NEW_TOKENS
        if max_positions is not None:
            max_length = min(max_length, max_positions)
    eos = _ids(merged.get("eos_token_id"))
    pad = merged.get("pad_token_id")
    return GenerationSettings(
        max_length=max_length,
        min_length=_length(layers, "min_new_tokens", "min_length", prompt_length) or 0,
        do_sample=bool(merged.get("do_sample", False)),
        num_beams=int(merged.get("num_beams", 1)),
        num_return_sequences=int(merged.get("num_return_sequences", 1)),
        temperature=float(merged.get("temperature", 1.0)),
        top_k=int(merged.get("top_k", 50)),
        top_p=float(merged.get("top_p", 1.0)),
        repetition_penalty=float(merged.get("repetition_penalty", 1.0)),
        no_repeat_ngram_size=int(merged.get("no_repeat_ngram_size", 0)),
        length_penalty=float(merged.get("length_penalty", 1.0)),
        early_stopping=early_stopping(merged.get("early_stopping", False)),
        eos_token_ids=eos,
        pad_token_id=int(pad) if pad is not None else (eos[0] if eos else 0),
        forced_bos_token_id=merged.get("forced_bos_token_id"),
        forced_eos_token_ids=_ids(merged.get("forced_eos_token_id")),
        seed=merged.get("seed"),
    )


def early_stopping(value: Any) -> bool | str:
    """True, False or "never", from a bool or its name in any case."""
    if isinstance(value, bool):
        return value
    try:
        return EARLY_STOPPING[str(value).lower()]
    except KeyError:
        raise InputError("--early-stopping must be true, false or never") from None


def _length(layers: Sequence[Mapping[str, Any]], new_key: str, total_key: str, prompt_length: int) -> int | None:
    for layer in reversed(layers):
        if layer.get(new_key) is not None:
            return prompt_length + int(layer[new_key])
        if layer.get(total_key) is not None:
            return int(layer[total_key])
    return None


def _ids(value: int | Sequence[int] | None) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)
