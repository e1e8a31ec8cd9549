"""Text generation with a decoder-only model (GPT-2): the prompt continued token by token,
shaped like transformers' text-generation pipeline (`[{"generated_text": ...}]`, the prompt
included unless `return_full_text` is off)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch.nn.functional as F
from torch import Tensor

from engine import probe
from engine.errors import InputError
from engine.generation.search import CachedDecoder
from engine.models.gpt2 import GPT2LMHeadModel
from engine.tasks.base import EXPLAIN, Hooks, Option
from engine.tasks.generation_common import (
    GENERATION_OPTIONS,
    Generation,
    GenerationTask,
    SourcePiece,
    check_prompt,
    require_token,
    source_pieces,
    step_attention,
)


@dataclass
class GeneratedText(Generation):
    """The continuations; `prompt` is prepended in `to_json` ("" without return_full_text)."""

    prompt: str = ""

    def to_json(self) -> list[dict[str, str]]:
        return [{"generated_text": self.prompt + sequence.text} for sequence in self.sequences]


class TextGeneration(GenerationTask):
    """Continue a prompt with a GPT-2 checkpoint: greedy search, sampling or beam search."""

    name = "text-generation"
    title = "Text generation"
    default_model = "openai-community/gpt2"
    suggested_models = (
        "openai-community/gpt2",
        "distilbert/distilgpt2",
        "openai-community/gpt2-medium",
        "openai-community/gpt2-large",
    )
    head = "causal-lm"
    attention_field = "self_attention"
    # transformers' text-generation pipeline samples 256 new tokens at temperature 0.7 unless
    # the model says otherwise
    task_defaults = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}
    options = (
        *GENERATION_OPTIONS,
        Option("return_full_text", bool, True, "start the output with the prompt"),
        EXPLAIN,
    )

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> GeneratedText:
        hooks = hooks or Hooks()
        options = self.resolve_options(options)
        text = check_prompt(input)
        encoding = self.tokenizer.encode_batch([text])[0]
        ids, pieces = encoding.ids, source_pieces(encoding, 0)
        if not ids:  # an empty prompt starts from the beginning-of-text token, as the pipeline does
            ids = [require_token(self.generation_config.get("bos_token_id"), "bos_token_id")]
            pieces = [SourcePiece(self.tokenizer.id_to_token(ids[0]) or "", None, None)]
        positions = self.model_config.n_positions
        params = self.task_params()
        settings = self.settings(options, len(ids), params, positions)
        warnings = []
        new_tokens = settings.max_length - len(ids)
        asked = options.get("max_new_tokens") is not None or options.get("max_length") is not None
        if settings.max_length > positions and not asked and len(ids) < positions:
            # a length the user did not ask for (the pipeline's 256, the model's settings): fewer
            # new tokens, the whole prompt kept
            new_tokens = positions - len(ids)
            warnings.append(
                f"this model reads at most {positions} tokens: it writes at most {new_tokens} new tokens "
                "after this prompt (set max_new_tokens to write more of them after the prompt's end)"
            )
            settings = self.settings({**options, "max_new_tokens": new_tokens}, len(ids), params, positions)
        elif settings.max_length > positions:
            # keep the end of the prompt: the new tokens must fit in the model's positions
            room = positions - new_tokens
            if room < 1:
                raise InputError(f"this model reads at most {positions} tokens: ask for fewer than {positions} new tokens")
            warnings.append(
                f"the prompt was cut to its last {room} of {len(ids)} tokens, so that {new_tokens} new "
                f"tokens fit in the model's {positions} positions"
            )
            ids, pieces = ids[-room:], pieces[-room:]
            settings = self.settings({**options, "max_new_tokens": new_tokens}, len(ids), params, positions)
        model = cast(GPT2LMHeadModel, self.model)
        explain = bool(options["explain"])
        layers = model.attention_names() if explain else []
        keep = _last_query(settings.max_length)
        # the search holds (rows, positions, layers, positions) float32 weights: past a budget,
        # only their mean over the layers (a long beam search on a deep model)
        per_layer = 4 * self.rows(settings) * settings.max_length**2
        merged = explain and per_layer * len(layers) > ATTENTION_BYTES
        if merged:
            warnings.append("the self-attention of this long a search is kept as the mean of the layers, "
                            "not layer by layer")
        with probe.maybe_watching(explain, self.network(), keep, attention=layers) as watcher:
            cache = model.make_cache(self.rows(settings), settings.max_length)
            watch = step_attention(watcher, layers) if watcher is not None else None
            decoder = CachedDecoder(
                lambda tokens, cache: model(tokens, cache, last_only=True),
                cache,
                watch=_layer_mean(watch) if watch is not None and merged else watch,
            )
            sequences = self.generate(decoder, ids, settings, hooks)
        prompt = text if options["return_full_text"] else ""
        result = GeneratedText(sequences, len(ids), settings, prompt=prompt, warnings=warnings)
        if explain:
            result.source = pieces
            for sequence in sequences:  # token t looked at the prompt and the t tokens before it
                if sequence.self_attention is not None:
                    seen = len(ids) + max(0, len(sequence.tokens) - 1)
                    sequence.self_attention = sequence.self_attention[:, :, :seen]
            if sequences and sequences[0].self_attention is not None:
                result.internals["self_attention"] = sequences[0].self_attention
        return result


#: The most memory the kept self-attention of one request may take, layer by layer.
ATTENTION_BYTES = 256 * 2**20


def _layer_mean(watch: Callable[[], Tensor | None]) -> Callable[[], Tensor | None]:
    """`watch`'s (rows, layers, positions) weights averaged over the layers, (rows, 1, positions)."""

    def take() -> Tensor | None:
        weights = watch()
        return None if weights is None else weights.mean(dim=1, keepdim=True)

    return take


def _last_query(positions: int) -> Callable[[str, Tensor], Tensor]:
    """What the probe keeps of a step's self-attention, (rows, heads, queries, keys): the last
    query's weights averaged over heads, padded to `positions` keys so that every step's rows
    stack, (rows, positions)."""

    def keep(name: str, weights: Tensor) -> Tensor:
        row = weights.mean(dim=1)[:, -1]
        return F.pad(row, (0, positions - row.shape[-1]))

    return keep
