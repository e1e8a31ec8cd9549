"""Each logits processor against transformers' own on the same scores: equal to the bit."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from engine.generation import processors as ours
from engine.generation.settings import GenerationSettings

VOCAB = 40


def _scores(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(seed)) * 3


def _tokens(length: int, seed: int = 1) -> torch.Tensor:
    # a small alphabet, so that n-grams and tokens repeat
    return torch.randint(0, 6, (3, length), generator=torch.Generator().manual_seed(seed))


def _theirs(name: str, *args, **kwargs):
    import transformers.generation.logits_process as hf

    return getattr(hf, name)(*args, **kwargs)


CASES = [
    ("RepetitionPenaltyLogitsProcessor", (1.3,), {}, partial(ours.repetition_penalty, penalty=1.3), 12),
    ("RepetitionPenaltyLogitsProcessor", (0.7,), {}, partial(ours.repetition_penalty, penalty=0.7), 12),
    ("NoRepeatNGramLogitsProcessor", (1,), {}, partial(ours.no_repeat_ngram, size=1), 9),
    ("NoRepeatNGramLogitsProcessor", (2,), {}, partial(ours.no_repeat_ngram, size=2), 15),
    ("NoRepeatNGramLogitsProcessor", (3,), {}, partial(ours.no_repeat_ngram, size=3), 40),
    ("NoRepeatNGramLogitsProcessor", (3,), {}, partial(ours.no_repeat_ngram, size=3), 2),
    ("MinLengthLogitsProcessor", (10, [2, 3]), {}, partial(ours.min_length, length=10, eos=(2, 3)), 5),
    ("MinLengthLogitsProcessor", (10, [2, 3]), {}, partial(ours.min_length, length=10, eos=(2, 3)), 10),
    ("ForcedBOSTokenLogitsProcessor", (4,), {}, partial(ours.forced_bos, token=4), 1),
    ("ForcedBOSTokenLogitsProcessor", (4,), {}, partial(ours.forced_bos, token=4), 2),
    ("ForcedEOSTokenLogitsProcessor", (10, [2, 3]), {}, partial(ours.forced_eos, max_length=10, eos=(2, 3)), 9),
    ("ForcedEOSTokenLogitsProcessor", (10, [2, 3]), {}, partial(ours.forced_eos, max_length=10, eos=(2, 3)), 8),
    ("TemperatureLogitsWarper", (0.6,), {}, partial(ours.temperature, value=0.6), 3),
    ("TemperatureLogitsWarper", (1.7,), {}, partial(ours.temperature, value=1.7), 3),
    ("TopKLogitsWarper", (5,), {}, partial(ours.top_k, k=5), 3),
    ("TopKLogitsWarper", (1,), {"min_tokens_to_keep": 3}, partial(ours.top_k, k=1, keep=3), 3),
    ("TopKLogitsWarper", (100,), {}, partial(ours.top_k, k=100), 3),
    ("TopPLogitsWarper", (0.8,), {}, partial(ours.top_p, p=0.8), 3),
    ("TopPLogitsWarper", (0.3,), {"min_tokens_to_keep": 2}, partial(ours.top_p, p=0.3, keep=2), 3),
    ("TopPLogitsWarper", (1e-6,), {}, partial(ours.top_p, p=1e-6), 3),
]


@pytest.mark.parametrize("name, args, kwargs, processor, length", CASES, ids=[f"{c[0]}{c[1]}@{c[4]}" for c in CASES])
def test_each_processor_equals_transformers(name, args, kwargs, processor, length):
    scores, tokens = _scores(), _tokens(length)
    expected = _theirs(name, *args, **kwargs)(tokens, scores.clone())
    got = processor(tokens, scores)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("sequence, banned", [
    ([1, 2, 3, 1, 2, 4, 1, 2], [3, 4]),  # "1 2" was followed by 3 and by 4
    ([1, 2, 1, 2], [1]),
    ([5, 1, 2], []),  # "1 2" never went on
    ([1, 2], []),  # too short to hold a 3-gram
])
def test_no_repeat_ngram_bans_what_would_repeat(sequence, banned):
    scores = ours.no_repeat_ngram(torch.tensor([sequence]), torch.zeros(1, 6), size=3)
    assert scores[0].isinf().nonzero().flatten().tolist() == banned


def test_processors_leave_their_inputs_alone():
    scores, tokens = _scores().expand(3, VOCAB), _tokens(12)  # rows sharing memory, as on the first step
    before = scores.clone()
    settings = GenerationSettings(
        max_length=13, min_length=20, do_sample=True, temperature=0.5, top_k=7, top_p=0.9, repetition_penalty=1.2,
        no_repeat_ngram_size=2, eos_token_ids=(2,), forced_eos_token_ids=(2,),
    )
    ours.apply(ours.build_processors(settings), tokens, scores)
    assert torch.equal(scores, before)


def test_processors_come_in_transformers_order():
    settings = GenerationSettings(
        max_length=30, min_length=5, do_sample=True, temperature=0.5, top_k=7, top_p=0.9, repetition_penalty=1.2,
        no_repeat_ngram_size=2, eos_token_ids=(2,), forced_bos_token_id=0, forced_eos_token_ids=(2,),
    )
    names = [p.func.__name__ for p in ours.build_processors(settings)]
    assert names == ["repetition_penalty", "no_repeat_ngram", "min_length", "forced_bos", "forced_eos",
                     "temperature", "top_k", "top_p"]
    # greedy search ignores the sampling ones, and nothing at all is built for the defaults
    assert [p.func.__name__ for p in ours.build_processors(GenerationSettings(max_length=30, temperature=0.5))] == []
