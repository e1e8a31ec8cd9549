"""Logits processors: how the scores of the next token change before one is chosen.

Each is a function `(tokens, scores) -> scores` over a batch of rows, where `tokens`
(rows, length) are the sequences so far (the prompt included for a decoder-only model, the
decoder's own tokens for an encoder-decoder) and `scores` (rows, vocab) are float32. None
changes its inputs in place: on the first step every row shares one tensor.

`build_processors` lists them in the order transformers' `generate` applies them, so that the
same settings give the same scores: the penalties and constraints first, then (sampling only)
temperature, top-k and top-p.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor

from engine.generation.settings import GenerationSettings

Processor = Callable[[Tensor, Tensor], Tensor]


def repetition_penalty(tokens: Tensor, scores: Tensor, *, penalty: float) -> Tensor:
    """CTRL's penalty (Keskar et al., 2019): the score of each token already in the sequence is
    divided by `penalty` where positive and multiplied by it where negative."""
    seen = scores.gather(1, tokens)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, tokens, seen)


def no_repeat_ngram(tokens: Tensor, scores: Tensor, *, size: int) -> Tensor:
    """Ban each token that would repeat an n-gram of `size` tokens the sequence already holds."""
    length = tokens.shape[1]
    if length < size:
        return scores
    grams = tokens.unfold(1, size, 1)  # (rows, length - size + 1, size): every n-gram so far
    tail = tokens[:, length - size + 1 :]  # (rows, size - 1): what the next token would extend
    repeats = (grams[..., :-1] == tail[:, None]).all(dim=-1)  # (rows, n-grams)
    rows, found = repeats.nonzero(as_tuple=True)
    banned = torch.zeros_like(scores, dtype=torch.bool)
    banned[rows, grams[rows, found, -1]] = True
    return scores.masked_fill(banned, -math.inf)


def min_length(tokens: Tensor, scores: Tensor, *, length: int, eos: Sequence[int]) -> Tensor:
    """No end-of-sequence token while the sequence is shorter than `length`."""
    if tokens.shape[1] >= length:
        return scores
    scores = scores.clone()
    scores[:, list(eos)] = -math.inf
    return scores


def forced_bos(tokens: Tensor, scores: Tensor, *, token: int) -> Tensor:
    """The first token after the decoder's start token is `token` (BART's <s>)."""
    if tokens.shape[1] != 1:
        return scores
    return _only(scores, [token])


def forced_eos(tokens: Tensor, scores: Tensor, *, max_length: int, eos: Sequence[int]) -> Tensor:
    """The last token a sequence has room for ends it."""
    if tokens.shape[1] != max_length - 1:
        return scores
    return _only(scores, list(eos))


def temperature(tokens: Tensor, scores: Tensor, *, value: float) -> Tensor:
    """Below 1 sharpens the distribution, above 1 flattens it."""
    return scores / value


def top_k(tokens: Tensor, scores: Tensor, *, k: int, keep: int = 1) -> Tensor:
    """Only the `k` highest scores (at least `keep`) stay in the draw (Fan et al., 2018)."""
    k = min(max(k, keep), scores.shape[-1])
    kth = torch.topk(scores, k).values[..., -1:]
    return scores.masked_fill(scores < kth, -math.inf)


def top_p(tokens: Tensor, scores: Tensor, *, p: float, keep: int = 1) -> Tensor:
    """Nucleus sampling (Holtzman et al., 2019): the fewest likeliest tokens whose probabilities
    add up to more than `p` stay in the draw (at least `keep` of them)."""
    ascending, order = torch.sort(scores, descending=False)
    cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative <= 1 - p
    drop[..., -keep:] = False
    return scores.masked_fill(drop.scatter(1, order, drop), -math.inf)


def _only(scores: Tensor, allowed: list[int]) -> Tensor:
    forced = torch.full_like(scores, -math.inf)
    forced[:, allowed] = 0
    return forced


def build_processors(settings: GenerationSettings) -> list[Processor]:
    """The processors `settings` ask for, in transformers' order."""
    s = settings
    found: list[Processor] = []
    if s.repetition_penalty != 1.0:
        found.append(partial(repetition_penalty, penalty=s.repetition_penalty))
    if s.no_repeat_ngram_size > 0:
        found.append(partial(no_repeat_ngram, size=s.no_repeat_ngram_size))
    if s.min_length > 0 and s.eos_token_ids:
        found.append(partial(min_length, length=s.min_length, eos=s.eos_token_ids))
    if s.forced_bos_token_id is not None:
        found.append(partial(forced_bos, token=s.forced_bos_token_id))
    if s.forced_eos_token_ids:
        found.append(partial(forced_eos, max_length=s.max_length, eos=s.forced_eos_token_ids))
    if s.do_sample:
        # beam sampling keeps one token more than there are end tokens, so a beam can go on
        keep = len(s.eos_token_ids) + 1 if s.num_beams > 1 and s.eos_token_ids else (2 if s.num_beams > 1 else 1)
        if s.temperature != 1.0:
            found.append(partial(temperature, value=s.temperature))
        if s.top_k != 0:
            found.append(partial(top_k, k=s.top_k, keep=keep))
        if s.top_p < 1.0:
            found.append(partial(top_p, p=s.top_p, keep=keep))
    return found


def apply(processors: Sequence[Processor], tokens: Tensor, scores: Tensor) -> Tensor:
    for process in processors:
        scores = process(tokens, scores)
    return scores
