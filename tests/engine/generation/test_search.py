"""Greedy search, sampling and beam search against transformers' `generate` on a tiny random
GPT-2: the same tokens for the same settings."""

from __future__ import annotations

import json

import pytest
import torch

from engine.checkpoint import load_model
from engine.errors import InputError
from engine.generation.search import Progress
from engine.models import gpt2
from tests.engine.models.tiny_generative import assert_same_tokens, generate_ours, generate_theirs, gpt2_config, save_model

VOCAB = 300
PROMPT = torch.randint(1, VOCAB, (6,), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from transformers import GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("gpt2")
    theirs = save_model(GPT2LMHeadModel, gpt2_config(VOCAB, initializer_range=0.5), folder)
    config = gpt2.GPT2Config.from_json(json.loads((folder / "config.json").read_text()))
    ours = load_model(lambda: gpt2.GPT2LMHeadModel(config), folder, adapt=gpt2.adapt)
    with torch.no_grad():  # an end token the model does reach: what greedy search picks on step 4
        eos = int(theirs.generate(PROMPT[None], max_new_tokens=4, do_sample=False, pad_token_id=0)[0, -1])
    return ours, theirs, eos


def run_ours(model, prompt, on_step=None, **settings):
    return generate_ours(model, prompt, on_step, **settings)


def run_theirs(model, prompt, **settings):
    return generate_theirs(model, prompt, len(prompt), **settings)


GREEDY = [
    {},
    {"repetition_penalty": 1.4},
    {"repetition_penalty": 0.8},
    {"no_repeat_ngram_size": 2},
    {"min_new_tokens": 9},
    {"min_length": 12},
    {"max_length": 14},
]
BEAM = [
    {"num_beams": 3},
    {"num_beams": 4, "num_return_sequences": 4},
    {"num_beams": 3, "length_penalty": 2.0},
    {"num_beams": 3, "length_penalty": -1.0, "num_return_sequences": 2},
    {"num_beams": 3, "length_penalty": 0.0, "early_stopping": "never"},
    {"num_beams": 3, "length_penalty": 2.0, "early_stopping": "never"},
    {"num_beams": 3, "early_stopping": True, "num_return_sequences": 3},
    {"num_beams": 2, "no_repeat_ngram_size": 2, "repetition_penalty": 1.3},
    {"num_beams": 3, "min_new_tokens": 6, "forced_eos_token_id": "eos"},
]


@pytest.mark.parametrize("settings", GREEDY + BEAM, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "greedy")
def test_same_tokens_as_transformers(models, settings):
    ours, theirs, eos = models
    settings = {k: eos if v == "eos" else v for k, v in settings.items()}
    common = {"max_new_tokens": 12, "eos_token_id": eos, "pad_token_id": eos, **settings}
    if "max_length" in settings:
        common.pop("max_new_tokens")
    expected = run_theirs(theirs, PROMPT, do_sample=False, **common)
    assert_same_tokens(run_ours(ours, PROMPT, **common), expected, eos)


def test_the_end_token_ends_a_sequence(models):
    ours, _, eos = models
    (greedy,) = run_ours(ours, PROMPT, max_new_tokens=12, eos_token_id=eos)
    assert greedy.tokens[-1] == eos and len(greedy.tokens) == 4


def test_forced_bos_applies_to_a_one_token_prompt(models):
    ours, theirs, eos = models
    common = {"max_new_tokens": 6, "eos_token_id": eos, "pad_token_id": eos, "forced_bos_token_id": 7, "num_beams": 2}
    got = run_ours(ours, PROMPT[:1], **common)
    assert got[0].tokens[0] == 7
    assert_same_tokens(got, run_theirs(theirs, PROMPT[:1], do_sample=False, **common), eos)


@pytest.mark.parametrize("settings", [
    {"top_k": 0},
    {"temperature": 0.7, "top_k": 20, "num_return_sequences": 3},
    {"top_p": 0.8, "repetition_penalty": 1.2},
    {"num_beams": 3, "num_return_sequences": 2},
], ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_sampling_with_a_seed_draws_what_transformers_draws(models, settings):
    ours, theirs, eos = models
    common = {"max_new_tokens": 10, "eos_token_id": eos, "pad_token_id": eos, "do_sample": True, "seed": 5, **settings}
    assert_same_tokens(run_ours(ours, PROMPT, **common), run_theirs(theirs, PROMPT, **common), eos)


def test_sampling_is_reproducible_for_a_seed(models):
    ours, _, _ = models
    draw = lambda seed: [h.tokens for h in run_ours(ours, PROMPT, max_new_tokens=15, do_sample=True, top_k=0, seed=seed, num_return_sequences=2)]  # noqa: E731
    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    first, second = draw(1)
    assert first != second  # the rows draw apart from one another


def test_each_token_carries_the_models_probabilities(models):
    ours, theirs, eos = models
    (greedy,) = run_ours(ours, PROMPT, max_new_tokens=5)
    with torch.no_grad():
        logits = theirs(torch.cat([PROMPT, torch.tensor(greedy.tokens)])[None]).logits[0, len(PROMPT) - 1 : -1]
    expected = logits.log_softmax(-1)
    for step, (token, log_prob, alternatives) in enumerate(zip(greedy.tokens, greedy.log_probs, greedy.alternatives)):
        assert log_prob == pytest.approx(float(expected[step, token]), abs=1e-5)
        top = expected[step].topk(5)
        assert [i for i, _ in alternatives] == top.indices.tolist()
        assert [p for _, p in alternatives] == pytest.approx(top.values.tolist(), abs=1e-5)
        assert alternatives[0][0] == token  # greedy takes the likeliest


def test_on_step_sees_every_token_and_beams_are_provisional(models):
    ours, _, _ = models
    seen: list[Progress] = []
    (greedy,) = run_ours(ours, PROMPT, on_step=lambda p: seen.append(Progress(p.tokens.clone(), p.provisional)), max_new_tokens=6)
    assert [p.tokens.tolist() for p in seen] == [greedy.tokens[:n] for n in range(1, 7)]
    assert not any(p.provisional for p in seen)
    seen.clear()
    run_ours(ours, PROMPT, on_step=lambda p: seen.append(p), max_new_tokens=6, num_beams=2)
    assert seen and all(p.provisional for p in seen)


@pytest.mark.parametrize("settings, message", [
    ({"max_length": 6}, "no room"),
    ({"num_beams": 2, "num_return_sequences": 3}, "exceed"),
    ({"num_return_sequences": 2}, "greedy"),
    ({"do_sample": True, "temperature": 0.0}, "temperature"),
    ({"top_p": 1.5}, "top-p"),
])
def test_impossible_settings_are_input_errors(models, settings, message):
    ours, _, _ = models
    with pytest.raises(InputError, match=message):
        run_ours(ours, PROMPT, **settings)
