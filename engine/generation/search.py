"""Choosing tokens step by step: greedy search, multinomial sampling and beam search, as small
functions over a `Decoder` (in the manner of gpt-fast's generate.py), token for token what
transformers' `generate` chooses with the same settings.

The first step runs the whole prompt for one row; the cache is then copied to every row the
search keeps (the sampled sequences, or the beams), and each later step runs one token per
row. After every step `on_step(progress)` gets the sequence to show; raising there (a
cancelled job) stops the search before the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from engine.generation.cache import KVCache
from engine.generation.processors import Processor, apply, build_processors
from engine.generation.settings import GenerationSettings

#: How many of the likeliest tokens each step records (the chosen one is recorded apart).
ALTERNATIVES = 5
#: transformers' stand-in for minus infinity in beam scores (kept, so the scores are the same).
EXCLUDED = -1e9


class Decoder(Protocol):
    """One step of a model over the cache it holds."""

    def __call__(self, tokens: Tensor) -> Tensor:
        """(rows, new) ids -> (rows, vocab) float32 logits of the position after the last."""
        ...

    def expand(self, rows: int) -> None:
        """After the prompt's step: `rows` rows, each continuing row 0."""
        ...

    def reorder(self, order: Tensor) -> None:
        """Row i continues what row `order[i]` held."""
        ...

    def attention(self) -> Tensor | None:
        """What the last step attended to, (rows, layers, source), when the decoder is
        watched (an encoder-decoder's cross-attention, for "inside the model"); else None."""
        ...


class CachedDecoder:
    """A model's step function bound to the request's cache: `step(tokens, cache)` runs the
    new tokens and returns the logits of the last position. `watch`, when given, returns
    what the step just attended to (see `Decoder.attention`)."""

    def __init__(
        self,
        step: Callable[[Tensor, KVCache], Tensor],
        cache: KVCache,
        watch: Callable[[], Tensor | None] | None = None,
    ) -> None:
        self.step = step
        self.cache = cache
        self.watch = watch

    def __call__(self, tokens: Tensor) -> Tensor:
        return self.step(tokens, self.cache).float()

    def attention(self) -> Tensor | None:
        return self.watch() if self.watch is not None else None

    def expand(self, rows: int) -> None:
        self.cache.expand(rows)

    def reorder(self, order: Tensor) -> None:
        self.cache.reorder(order)


@dataclass(frozen=True)
class Progress:
    """What a step produced: the new ids of the sequence to show (row 0, or in beam search the
    best running beam, which a later step may replace: `provisional`)."""

    tokens: Tensor
    provisional: bool


@dataclass
class Hypothesis:
    """One generated sequence: its new ids (an end token included), the model's own
    log-probability of each, the likeliest ids at each step with theirs, in beam search the
    length-penalised score that ranked it, and for a watched decoder what each step attended
    to, (tokens, layers, source)."""

    tokens: list[int]
    log_probs: list[float]
    alternatives: list[list[tuple[int, float]]]
    score: float | None = None
    attention: Tensor | None = None


def generate(
    decoder: Decoder,
    prompt: Tensor,
    settings: GenerationSettings,
    on_step: Callable[[Progress], None] | None = None,
) -> list[Hypothesis]:
    """`settings.num_return_sequences` sequences that continue `prompt` (1-D ids the decoder
    starts from), best first for beam search."""
    settings.check(len(prompt))
    processors = build_processors(settings)
    with torch.inference_mode():
        if settings.num_beams > 1:
            return beam_search(decoder, prompt, settings, processors, on_step)
        return sample(decoder, prompt, settings, processors, on_step)


def sample(
    decoder: Decoder,
    prompt: Tensor,
    settings: GenerationSettings,
    processors: list[Processor],
    on_step: Callable[[Progress], None] | None = None,
) -> list[Hypothesis]:
    """Greedy search (the best-scoring token each step) or, with `do_sample`, multinomial
    sampling of `num_return_sequences` sequences."""
    s = settings
    start = length = len(prompt)
    count = s.num_return_sequences if s.do_sample else 1
    rows = Rows.start(prompt, count, s.max_length, s.pad_token_id)
    eos = torch.tensor(s.eos_token_ids, dtype=torch.long, device=prompt.device)
    generator = _generator(s.seed, prompt.device) if s.do_sample else None
    running = torch.ones(count, dtype=torch.bool, device=prompt.device)
    logits, attention = _first_step(decoder, prompt, count)
    while True:
        scores = apply(processors, rows.tokens[:, :length], logits)
        if s.do_sample:
            chosen = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator)[:, 0]
        else:
            chosen = scores.argmax(dim=-1)
        chosen = torch.where(running, chosen, s.pad_token_id)  # finished rows only pad
        rows.put(length, chosen, logits.log_softmax(dim=-1), where=running, attention=attention)
        length += 1
        running &= ~torch.isin(chosen, eos)
        if on_step is not None:
            on_step(Progress(rows.tokens[0, start:length], provisional=False))
        if not running.any() or length >= s.max_length:
            break
        logits = decoder(chosen[:, None])
        attention = decoder.attention()
    return [rows.hypothesis(row, start) for row in range(count)]


def beam_search(
    decoder: Decoder,
    prompt: Tensor,
    settings: GenerationSettings,
    processors: list[Processor],
    on_step: Callable[[Progress], None] | None = None,
) -> list[Hypothesis]:
    """Beam search (with `do_sample`, beam sampling) as transformers runs it: each step scores
    every continuation of every beam, keeps the best `2 × num_beams` candidates (more with
    several end tokens), continues the best unfinished ones, and moves those that ended among
    the best `num_beams` into the finished set, ranked by log-probability / length^penalty."""
    s = settings
    beams, start = s.num_beams, len(prompt)
    keep = max(2, 1 + len(s.eos_token_ids)) * beams
    eos = torch.tensor(s.eos_token_ids, dtype=torch.long, device=prompt.device)
    generator = _generator(s.seed, prompt.device) if s.do_sample else None

    running = Rows.start(prompt, beams, s.max_length, s.pad_token_id)
    running_scores = torch.full((beams,), EXCLUDED, device=prompt.device)
    running_scores[0] = 0  # the beams start alike: only the first one's continuations count
    finished = running.take(torch.arange(beams, device=prompt.device))
    finished_scores = torch.full((beams,), EXCLUDED, device=prompt.device)
    finished_done = torch.zeros(beams, dtype=torch.bool, device=prompt.device)
    improvable = True

    logits, attention = _first_step(decoder, prompt, beams)
    length = start
    while True:
        log_probs = logits.log_softmax(dim=-1)  # (beams, vocab)
        scores = apply(processors, running.tokens[:, :length], log_probs)
        vocab = scores.shape[-1]
        totals = (scores + running_scores[:, None]).view(-1)  # every beam × every token
        top_scores, top_index = _best(totals, keep, s.do_sample, generator)
        origin, token = top_index // vocab, top_index % vocab
        candidates = running.take(origin)
        candidates.put(length, token, log_probs, origin, attention=attention)
        ended = torch.isin(token, eos) | (length + 1 >= s.max_length)

        going_on = torch.where(ended, top_scores + EXCLUDED, top_scores)
        chosen = going_on.topk(beams).indices
        running, running_scores = candidates.take(chosen), going_on[chosen]

        # only the best `beams` candidates may join the finished set
        just_finished = ended & (torch.arange(keep, device=ended.device) < beams)
        penalised = top_scores / ((length + 1 - start) ** s.length_penalty)
        if s.early_stopping is True and bool(finished_done.all()):
            penalised = penalised + EXCLUDED
        if not improvable:
            penalised = penalised + EXCLUDED
        penalised = torch.where(just_finished, penalised, penalised + EXCLUDED)
        merged_scores = torch.cat([finished_scores, penalised])
        best = merged_scores.topk(beams).indices
        finished = finished.cat(candidates).take(best)
        finished_scores = merged_scores[best]
        finished_done = torch.cat([finished_done, just_finished])[best]

        decoder.reorder(origin[chosen])
        length += 1
        improvable = improvable and _can_improve(running_scores, finished_scores, finished_done, length - start, s, start)
        if on_step is not None:
            on_step(Progress(running.tokens[0, start:length], provisional=True))
        if not improvable or (s.early_stopping is True and bool(finished_done.all())) or bool(ended.all()):
            break
        logits = decoder(running.tokens[:, length - 1 : length])
        attention = decoder.attention()
    return [finished.hypothesis(row, start, float(finished_scores[row])) for row in range(s.num_return_sequences)]


def _first_step(decoder: Decoder, prompt: Tensor, rows: int) -> tuple[Tensor, Tensor | None]:
    """The prompt's logits (and what it attended to, when watched), run once and shared by
    `rows` rows."""
    logits = decoder(prompt[None])
    attention = decoder.attention()
    if rows > 1:
        decoder.expand(rows)
        logits = logits.expand(rows, -1)
        attention = None if attention is None else attention.expand(rows, *attention.shape[1:])
    return logits, attention


def _best(totals: Tensor, count: int, draw: bool, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """The `count` best candidates, or with `draw` `count` drawn without replacement in
    proportion to their probability; either way best first."""
    if not draw:
        found = totals.topk(count)
        return found.values, found.indices
    index = torch.multinomial(totals.softmax(dim=-1), count, generator=generator)
    scores, order = totals[index].sort(descending=True)
    return scores, index[order]


def _can_improve(
    running_scores: Tensor,
    finished_scores: Tensor,
    finished_done: Tensor,
    generated: int,
    s: GenerationSettings,
    start: int,
) -> bool:
    """transformers' stopping heuristic: can the best running beam still beat the worst of a
    full finished set? It guesses the beam's final length as its length now, or with
    early_stopping="never" and a positive length penalty, the longest allowed."""
    if s.early_stopping == "never" and s.length_penalty > 0:
        generated = s.max_length - start
    best_running = running_scores[0] / (generated**s.length_penalty)
    worst_finished = torch.where(finished_done, finished_scores.min(), EXCLUDED)
    return bool((best_running > worst_finished).any())


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A generator seeded with `seed`; None (torch's global one) without a seed."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


class Rows:
    """Sequences being generated, kept together with what the model thought at each step: the
    log-probability of the token chosen and the `ALTERNATIVES` likeliest tokens with theirs,
    and for a watched decoder what the step attended to. Positions count from the start of the
    prompt; `lengths` are the positions filled."""

    def __init__(
        self,
        tokens: Tensor,
        lengths: Tensor,
        chosen: Tensor,
        top_ids: Tensor,
        top_log_probs: Tensor,
        attention: Tensor | None = None,
    ) -> None:
        self.tokens = tokens  # (rows, max_length)
        self.lengths = lengths  # (rows,)
        self.chosen = chosen  # (rows, max_length)
        self.top_ids = top_ids  # (rows, max_length, ALTERNATIVES)
        self.top_log_probs = top_log_probs  # (rows, max_length, ALTERNATIVES)
        self.attention = attention  # (rows, max_length, layers, source), made by the first `put` with one

    @classmethod
    def start(cls, prompt: Tensor, rows: int, max_length: int, pad: int) -> Rows:
        device = prompt.device
        tokens = torch.full((rows, max_length), pad, dtype=torch.long, device=device)
        tokens[:, : len(prompt)] = prompt
        lengths = torch.full((rows,), len(prompt), dtype=torch.long, device=device)
        chosen = torch.zeros((rows, max_length), device=device)
        top_ids = torch.zeros((rows, max_length, ALTERNATIVES), dtype=torch.long, device=device)
        return cls(tokens, lengths, chosen, top_ids, torch.zeros(top_ids.shape, device=device))

    def _fields(self) -> tuple[Tensor, ...]:
        attention = () if self.attention is None else (self.attention,)
        return self.tokens, self.lengths, self.chosen, self.top_ids, self.top_log_probs, *attention

    def take(self, index: Tensor) -> Rows:
        """The rows at `index`, copied, in that order."""
        return Rows(*(field.index_select(0, index) for field in self._fields()))

    def cat(self, other: Rows) -> Rows:
        if (self.attention is None) != (other.attention is None):  # rows from before the first watched step
            shape = (self.attention if self.attention is not None else other.attention).shape[2:]  # type: ignore[union-attr]
            for rows in (self, other):
                if rows.attention is None:
                    rows.attention = rows.chosen.new_zeros((*rows.chosen.shape, *shape))
        return Rows(*(torch.cat([a, b]) for a, b in zip(self._fields(), other._fields(), strict=True)))

    def put(
        self,
        position: int,
        tokens: Tensor,
        log_probs: Tensor,
        origin: Tensor | None = None,
        where: Tensor | None = None,
        attention: Tensor | None = None,
    ) -> None:
        """Write each row's token at `position`, with what the model's distribution
        `log_probs` (rows, vocab) says of it and of the likeliest tokens, and what the step
        attended to (`attention`, (rows, layers, source), when watched); row i's distribution
        is row `origin[i]` of them (beam search), else row i. Rows outside `where` keep their
        length."""
        count = min(ALTERNATIVES, log_probs.shape[-1])
        top = log_probs.topk(count)
        index = origin if origin is not None else torch.arange(len(tokens), device=tokens.device)
        if attention is not None:
            if self.attention is None:
                self.attention = attention.new_zeros((len(tokens), self.tokens.shape[1], *attention.shape[1:]))
            self.attention[:, position] = attention[index]
        self.tokens[:, position] = tokens
        self.chosen[:, position] = log_probs[index, tokens]
        self.top_ids[:, position, :count] = top.indices[index]
        self.top_log_probs[:, position, :count] = top.values[index]
        self.lengths = torch.where(where, position + 1, self.lengths) if where is not None else self.lengths.fill_(position + 1)

    def hypothesis(self, row: int, start: int, score: float | None = None) -> Hypothesis:
        """Row `row`'s new tokens (from `start`) as a `Hypothesis`."""
        end = int(self.lengths[row])
        ids = self.top_ids[row, start:end].tolist()
        values = self.top_log_probs[row, start:end].tolist()
        return Hypothesis(
            tokens=self.tokens[row, start:end].tolist(),
            log_probs=self.chosen[row, start:end].tolist(),
            alternatives=[list(zip(i, v)) for i, v in zip(ids, values)],
            score=score,
            attention=None if self.attention is None else self.attention[row, start:end].clone(),
        )
