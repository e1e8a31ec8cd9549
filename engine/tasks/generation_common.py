"""What the generation tasks share: the families that generate text (GPT-2, T5, BART), their
tokenizers, the settings each request resolves, running the search with the task's hooks
(streaming and cancel), and the result: the texts, with what the model thought at each step.

Settings are resolved as transformers' pipelines resolve them, each source over the one
before: the pipeline's own defaults (`task_defaults`), the checkpoint's generation config
(generation_config.json, or for older checkpoints the generation keys of config.json), the
task's entry in config.json's `task_specific_params` (which transformers 4.x pipelines apply
over the generation config), and the user's options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

import numpy as np
import torch
from tokenizers import Encoding
from torch import Tensor

from engine import probe
from engine.config import read_json
from engine.errors import CheckpointError, InputError
from engine.generation import search
from engine.generation.cache import KVCache
from engine.generation.settings import KEYS, GenerationSettings, early_stopping, resolve
from engine.generation.stream import StreamedText, TextStream
from engine.models import bart, gpt2, t5
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, CheckInput, Family, Hooks, Option, Result, Task, find_family
from engine.tasks.text_common import check_text
from engine.tokenization import load_tokenizer, tokenizer_settings

FAMILIES: dict[str, Family] = {
    "gpt2": Family("GPT-2", gpt2.GPT2Config.from_json, gpt2.HEADS, gpt2.adapt, gpt2.describe),
    "t5": Family("T5", t5.T5Config.from_json, t5.HEADS, t5.adapt, t5.describe),
    "bart": Family("BART", bart.BartConfig.from_json, bart.HEADS, bart.adapt, bart.describe),
}

#: The options every generation task takes, named as transformers' `generate` names them.
GENERATION_OPTIONS = (
    Option("max_new_tokens", int, None, "the most tokens to generate (default: the model's settings)"),
    Option("max_length", int, None, "the longest the decoder's sequence may get, start included"),
    Option("min_new_tokens", int, None, "no end token before this many new tokens"),
    Option("min_length", int, None, "no end token before the decoder's sequence is this long"),
    Option("do_sample", bool, None, "draw each token from the model's distribution instead of taking the likeliest"),
    Option("num_beams", int, None, "beam search with this many beams (1: no beam search)"),
    Option("num_return_sequences", int, None, "how many sequences to return (sampling or beam search)"),
    Option("temperature", float, None, "sampling: below 1 sharpens the distribution, above 1 flattens it"),
    Option("top_k", int, None, "sampling: draw only from the k likeliest tokens (0: all)"),
    Option("top_p", float, None, "sampling: draw only from the likeliest tokens that cover this probability"),
    Option("repetition_penalty", float, None, "above 1 makes tokens already in the text less likely"),
    Option("no_repeat_ngram_size", int, None, "never repeat a sequence of this many tokens (0: off)"),
    Option("length_penalty", float, None, "beam search: above 0 favours longer sequences, below 0 shorter"),
    Option("early_stopping", str, None, "beam search: stop when num_beams sequences end (true), when none "
           "is likely to beat them (false), or when none can (never)", ("true", "false", "never")),
    Option("seed", int, None, "sampling: the same seed gives the same text"),
)


@dataclass
class TokenChoice:
    """A token the model considered, with the probability it gave it."""

    id: int
    token: str
    probability: float


@dataclass
class GeneratedToken(TokenChoice):
    """A token of the output, and the likeliest tokens at its step (itself usually among them).
    Probabilities are the model's own: the softmax of its logits, before any processor."""

    alternatives: list[TokenChoice]


@dataclass
class GeneratedSequence:
    """One output: its text, its tokens, (beam search) the score that ranked it, and when the
    run was asked to explain, what each step attended to, averaged over heads, float32: an
    encoder-decoder's cross-attention, each decoder layer's weights over the source pieces
    (tokens, layers, source); a decoder-only model's self-attention, each layer's weights over
    the positions before the token (the prompt's, then the tokens written before it), (tokens,
    layers, positions), zero past a token's own."""

    text: str
    tokens: list[GeneratedToken]
    score: float | None = None
    cross_attention: np.ndarray | None = None
    self_attention: np.ndarray | None = None


@dataclass
class SourcePiece:
    """A piece of an encoder-decoder's input (or of a prompt): its text and, for pieces of the
    user's text, its characters there (`start`, `end`); None for a task prefix and special
    tokens."""

    text: str
    start: int | None
    end: int | None


@dataclass
class Generation(Result):
    """Base of the generation tasks' results: `to_json()` gives one `{output_key: text}` per
    sequence, as the pipelines do."""

    sequences: list[GeneratedSequence]
    prompt_tokens: int  # tokens the model read: the prompt, or the encoder's input
    settings: GenerationSettings
    source: list[SourcePiece] = field(default_factory=list)  # an explained run's input (or prompt) pieces

    output_key: ClassVar[str] = "generated_text"

    def to_json(self) -> list[dict[str, str]]:
        return [{self.output_key: sequence.text} for sequence in self.sequences]


class GenerationTask(Task):
    """A checkpoint of a generating family, with its tokenizer and generation config."""

    modality = "text"
    input_kind = "text"
    extra_files = (
        "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
        "generation_config.json",
    )
    options: ClassVar[tuple[Option, ...]] = GENERATION_OPTIONS
    head: ClassVar[str]  # "causal-lm" or "seq2seq-lm"
    task_defaults: ClassVar[Mapping[str, Any]] = {}  # the pipeline's own defaults
    # which of GeneratedSequence's fields a watched step's attention goes to
    attention_field: ClassVar[str] = "cross_attention"

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = find_family(self.config, FAMILIES, self.head, self.name)
        self.model_config = self.family.config(self.config)
        self.model = self.family.load(self.head, self.folder, self.model_config, device, dtype)
        self.tokenizer = load_tokenizer(self.folder)
        self.generation_config = model_generation_config(self.folder, self.config)

    @classmethod
    def resolve_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        if given.get("early_stopping") is not None:  # True / False from Python, any case from people
            given = {**given, "early_stopping": str(early_stopping(given["early_stopping"])).lower()}
        return super().resolve_options(given)

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "architecture": (self.config.get("architectures") or [type(self.model).__name__])[0],
            "model_type": self.config.get("model_type"),
        }
        facts.update(self.family.describe(self.model_config))
        facts["parameters"] = self.parameter_count()
        return {**facts, **self.runtime_facts()}

    @classmethod
    def check_inputs(cls) -> list[CheckInput]:
        """The sentences, continued for 16 tokens: enough for a precision to change a word,
        few enough for Auto to stay quick whatever the model's own settings allow."""
        return [(text, {**options, "max_new_tokens": 16}) for text, options in super().check_inputs()]

    # ----------------------------------------------------------------------- settings

    def task_params(self, key: str | None = None) -> dict[str, Any]:
        """config.json's `task_specific_params` entry for `key` (default: this task's name)."""
        params = (self.config.get("task_specific_params") or {}).get(key or self.name) or {}
        return dict(params)

    def settings(
        self, options: Mapping[str, Any], prompt_length: int, task_params: Mapping[str, Any], max_positions: int | None
    ) -> GenerationSettings:
        """The request's settings: the user's `options` over `task_params`, over the model's
        generation config, over the task's defaults."""
        user = {key: value for key, value in options.items() if key in KEYS}
        layers = [self.task_defaults, self.generation_config, task_params, user]
        settings = resolve(layers, prompt_length=prompt_length, max_positions=max_positions)
        settings.check(prompt_length)
        return settings

    # ----------------------------------------------------------------------- generating

    def generate(
        self, decoder: search.Decoder, prompt: Sequence[int], settings: GenerationSettings, hooks: Hooks
    ) -> list[GeneratedSequence]:
        """Run the search from `prompt` (the decoder's first ids), streaming the text to
        `hooks.on_partial` and checking `hooks.cancel` between steps."""
        stream = TextStream(self.tokenizer)

        def on_step(progress: search.Progress) -> None:
            if hooks.on_partial is not None and progress.provisional:
                text = self.tokenizer.decode(progress.tokens.tolist(), skip_special_tokens=True)
                hooks.on_partial(StreamedText(text, "", provisional=True))
            elif hooks.on_partial is not None and (delta := stream.push(int(progress.tokens[-1]))):
                hooks.on_partial(StreamedText(stream.text, delta))
            check_cancel(hooks.cancel)  # after the partial, so a cancel it prompts stops at once

        check_cancel(hooks.cancel)
        ids = torch.tensor(list(prompt), dtype=torch.long, device=self.device)
        hypotheses = search.generate(decoder, ids, settings, on_step)
        sequences = [self._sequence(h) for h in hypotheses]
        if hooks.on_partial is not None:  # the last partial holds the final text, never provisional
            final = sequences[0].text
            if settings.num_beams > 1:
                hooks.on_partial(StreamedText(final, final))
            elif delta := stream.flush():
                hooks.on_partial(StreamedText(final, delta))
        return sequences

    def _sequence(self, hypothesis: search.Hypothesis) -> GeneratedSequence:
        """The hypothesis with its text and every token's text and probability."""
        considered = sorted({i for step in hypothesis.alternatives for i, _ in step} | set(hypothesis.tokens))
        texts = dict(zip(considered, self.tokenizer.decode_batch([[i] for i in considered], skip_special_tokens=False)))
        tokens = [
            GeneratedToken(
                id=token,
                token=texts[token],
                probability=math.exp(log_prob),
                alternatives=[TokenChoice(i, texts[i], math.exp(p)) for i, p in alternatives],
            )
            for token, log_prob, alternatives in zip(hypothesis.tokens, hypothesis.log_probs, hypothesis.alternatives)
        ]
        text = self.tokenizer.decode(hypothesis.tokens, skip_special_tokens=True)
        attention = None if hypothesis.attention is None else hypothesis.attention.float().cpu().numpy()
        return GeneratedSequence(text, tokens, hypothesis.score, **{self.attention_field: attention})

    def rows(self, settings: GenerationSettings) -> int:
        """How many sequences the search keeps at once."""
        return settings.num_beams if settings.num_beams > 1 else settings.num_return_sequences


class Seq2SeqLM(Protocol):
    """What the encoder-decoder tasks ask of a model (T5, BART)."""

    def encode(self, input_ids: Tensor) -> Tensor: ...

    def decode(self, input_ids: Tensor, memory: Tensor, cache: KVCache | None = None, last_only: bool = False) -> Tensor: ...

    def make_cache(self, rows: int, capacity: int) -> KVCache: ...

    def cross_attention_names(self) -> list[str]: ...


class Seq2SeqTask(GenerationTask):
    """An encoder-decoder checkpoint: the input (after the task's prefix) is encoded once and
    the output decoded from the decoder's start token. Inputs longer than the model reads are
    cut, with a warning."""

    head = "seq2seq-lm"
    result_type: ClassVar[type[Generation]]
    options: ClassVar[tuple[Option, ...]] = (*GENERATION_OPTIONS, EXPLAIN)

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        positions = self.config.get("max_position_embeddings")  # BART's; T5's relative positions have no end
        self.max_positions: int | None = positions if isinstance(positions, int) else None
        limits = [n for n in (self.max_positions, tokenizer_settings(self.folder).model_max_length) if n]
        self.max_input_tokens: int | None = min(limits) if limits else None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "max_input_tokens": self.max_input_tokens}

    def prefix(self, task_params: dict[str, Any], t5_wording: str) -> str:
        """What goes before the input: the task parameters' `prefix` (taken out of them), else
        config.json's, else for T5 `t5_wording` (FLAN-T5 names none: it takes instructions)."""
        named = task_params.pop("prefix", None) or self.config.get("prefix")
        if isinstance(named, str):
            return named
        return t5_wording if self.config.get("model_type") == "t5" else ""

    def generate_from(
        self, text: str, prefix: str, task_params: Mapping[str, Any], options: Mapping[str, Any], hooks: Hooks
    ) -> Generation:
        """Encode `prefix + text` and decode its output with `task_params` under the options;
        with `explain`, keep each step's cross-attention and the source's pieces."""
        encoding, warnings = self.encode_input(prefix + text)
        ids = encoding.ids
        # transformers starts from the BOS token when the model names no decoder start token
        known = self.generation_config
        start = require_token(known.get("decoder_start_token_id", known.get("bos_token_id")), "decoder_start_token_id")
        settings = self.settings(options, 1, task_params, self.max_positions)
        if self.max_positions is not None and settings.max_length > self.max_positions:
            raise InputError(f"this model writes at most {self.max_positions} tokens: ask for fewer")
        model = cast(Seq2SeqLM, self.model)
        check_cancel(hooks.cancel)
        explain = bool(options.get("explain"))
        layers = model.cross_attention_names() if explain else []
        with probe.maybe_watching(explain, self.network(), _mean_over_heads, attention=layers) as watcher:
            with torch.inference_mode():
                memory = model.encode(torch.tensor([ids], device=self.device))
            cache = model.make_cache(self.rows(settings), settings.max_length)
            decoder = search.CachedDecoder(
                lambda tokens, cache: model.decode(tokens, memory, cache, last_only=True),
                cache,
                watch=step_attention(watcher, layers) if watcher is not None else None,
            )
            sequences = self.generate(decoder, [start], settings, hooks)
        result = self.result_type(sequences, len(ids), settings, warnings=warnings)
        if explain:
            result.source = source_pieces(encoding, len(prefix))
            if sequences and sequences[0].cross_attention is not None:
                result.internals["cross_attention"] = sequences[0].cross_attention
            result.internals["source_offsets"] = np.array(
                [(-1, -1) if p.start is None else (p.start, p.end) for p in result.source], dtype=np.int64
            ).reshape(-1, 2)
        return result

    def encode_input(self, text: str) -> tuple[Encoding, list[str]]:
        """The input's encoding, cut to `max_input_tokens` (its special tokens kept) with a
        warning."""
        encoding = self.tokenizer.encode_batch([text])[0]
        limit = self.max_input_tokens
        if limit is None or len(encoding.ids) <= limit:
            return encoding, []
        self.tokenizer.enable_truncation(limit)
        try:
            cut = self.tokenizer.encode_batch([text])[0]
        finally:
            self.tokenizer.no_truncation()
        return cut, [f"the input was cut to its first {limit} of {len(encoding.ids)} tokens, as many as the model reads"]


def _mean_over_heads(name: str, weights: Tensor) -> Tensor:
    """A cross-attention's (rows, heads, 1, source) weights -> (rows, source)."""
    return weights.mean(dim=1)[:, -1]


def step_attention(watcher: probe.Probe, layers: list[str]) -> Callable[[], Tensor | None]:
    """What the last decoder step attended to, (rows, layers, source), taken out of the probe
    so that each step's records replace the last's."""

    def take() -> Tensor | None:
        found = [watcher.records.pop(name) for name in layers if name in watcher.records]
        return torch.stack(found, dim=1) if found and len(found) == len(layers) else None

    return take


def source_pieces(encoding: Encoding, prefix_length: int) -> list[SourcePiece]:
    """The encoder's input pieces, with their characters in the user's text (after a prefix of
    `prefix_length` characters); special tokens and the prefix's pieces have none."""
    pieces = []
    for token, (start, end), special in zip(encoding.tokens, encoding.offsets, encoding.special_tokens_mask):
        mine = not special and end > start and start >= prefix_length
        pieces.append(SourcePiece(token, start - prefix_length if mine else None, end - prefix_length if mine else None))
    return pieces


def model_generation_config(folder: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's generation settings: generation_config.json, or where there is none the
    generation keys of config.json (older checkpoints, as transformers reads them; their
    `force_bos_token_to_be_generated` forces the BOS token). Special token ids missing from
    either come from config.json."""
    path = Path(folder) / "generation_config.json"
    if path.is_file():
        found = {key: value for key, value in read_json(path).items() if key in KEYS}
    else:
        found = {key: value for key, value in config.items() if key in KEYS}
        if config.get("force_bos_token_to_be_generated") and found.get("forced_bos_token_id") is None:
            found["forced_bos_token_id"] = config.get("bos_token_id")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        if found.get(key) is None and config.get(key) is not None:
            found[key] = config[key]
    return found


def check_prompt(text: Any, what: str = "prompt") -> str:
    """The text itself; an empty or blank prompt is a prompt too (generation from nothing
    starts at the beginning-of-text token). Not a string, or half of a UTF-16 pair, is an
    `InputError`."""
    if isinstance(text, str) and not text.strip():
        return text
    return check_text(text, what)


def require_token(value: Any, name: str) -> int:
    """A special token id the model needs, or a `CheckpointError` naming it."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, int):
        raise CheckpointError(f"the checkpoint sets no {name}, which generation needs")
    return value
