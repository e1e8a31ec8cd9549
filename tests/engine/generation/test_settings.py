"""How a request's settings are resolved from its sources, weakest first."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.generation.settings import early_stopping, resolve


def test_each_layer_overrides_the_ones_before():
    pipeline = {"do_sample": True, "temperature": 0.7, "num_beams": 1}
    model = {"num_beams": 4, "temperature": None, "eos_token_id": 2}
    task = {"num_beams": 6, "length_penalty": 2.0}
    user = {"length_penalty": None, "temperature": 0.9, "ignored_option": 1}
    s = resolve([pipeline, model, task, user], prompt_length=3)
    assert (s.do_sample, s.temperature, s.num_beams, s.length_penalty) == (True, 0.9, 6, 2.0)
    assert s.eos_token_ids == (2,) and s.pad_token_id == 2  # no pad token: the end token pads


def test_transformers_defaults_fill_the_rest():
    s = resolve([{}], prompt_length=5)
    assert (s.max_length, s.min_length, s.do_sample, s.num_beams, s.top_k, s.top_p) == (25, 0, False, 1, 50, 1.0)
    assert resolve([{}], prompt_length=5, max_positions=16).max_length == 16


@pytest.mark.parametrize("layers, expected", [
    ([{"max_new_tokens": 10}], 13),
    ([{"max_length": 10}], 10),
    ([{"max_new_tokens": 256}, {"max_length": 50}], 50),  # a pipeline default yields to the model's max_length
    ([{"max_length": 50}, {"max_new_tokens": 7}], 10),
    ([{"max_length": 50, "max_new_tokens": 7}], 10),  # in one layer, the new-token count wins
])
def test_the_strongest_layer_that_sets_a_length_decides(layers, expected):
    assert resolve(layers, prompt_length=3).max_length == expected


def test_min_lengths_count_like_max_lengths():
    assert resolve([{"min_length": 30}, {"min_new_tokens": 4}], prompt_length=3).min_length == 7
    assert resolve([{"min_new_tokens": 4}, {"min_length": 30}], prompt_length=3).min_length == 30


def test_token_lists_and_early_stopping_spellings():
    s = resolve([{"eos_token_id": [5, 6], "pad_token_id": 0, "forced_eos_token_id": 5}], prompt_length=1)
    assert (s.eos_token_ids, s.pad_token_id, s.forced_eos_token_ids) == ((5, 6), 0, (5,))
    assert [early_stopping(v) for v in (True, "false", "NEVER", "True")] == [True, False, "never", True]
    with pytest.raises(InputError, match="early-stopping"):
        early_stopping("sometimes")
