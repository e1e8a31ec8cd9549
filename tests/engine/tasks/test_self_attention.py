"""Text generation with `explain`: each generated token's self-attention over the positions
before it (the prompt's, then the tokens written so far) equals transformers'
`generate(output_attentions=True)` averaged over heads; the prompt's pieces point into the
prompt; beams keep their own rows; without `explain` nothing changes."""

from __future__ import annotations

import numpy as np
import torch

from tests.engine.tasks.test_text_generation import folder, task  # noqa: F401 (fixtures: the tiny GPT-2)

PROMPT = "Ada Lovelace wrote notes"
GREEDY = {"num_beams": 1, "do_sample": False, "max_new_tokens": 7, "min_new_tokens": 7}


def theirs(folder, text, **settings):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, output_attentions=True, return_dict_in_generate=True, **settings)
    prompt, steps = ids.shape[1], len(out.attentions)
    expected = np.zeros((steps, len(out.attentions[0]), prompt + steps - 1), dtype=np.float32)
    for t, step in enumerate(out.attentions):  # layers × (batch, heads, queries, keys)
        for layer, weights in enumerate(step):
            expected[t, layer, : prompt + t] = weights[0, :, -1].mean(0).numpy()
    return out.sequences[0, prompt:].tolist(), expected, prompt


def test_greedy_self_attention_equals_transformers(task, folder):
    result = task.run(PROMPT, explain=True, **GREEDY)
    tokens, expected, prompt = theirs(folder, PROMPT, **GREEDY)
    sequence = result.sequences[0]
    assert [t.id for t in sequence.tokens] == tokens
    assert sequence.cross_attention is None and sequence.self_attention is not None
    np.testing.assert_allclose(sequence.self_attention, expected, rtol=1e-4, atol=1e-6)
    assert result.internals["self_attention"] is sequence.self_attention
    # each token's weights are a distribution over the positions before it, none after
    for t, weights in enumerate(sequence.self_attention):
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        assert not weights[:, prompt + t :].any()


def test_the_prompts_pieces_point_into_the_prompt(task):
    result = task.run(PROMPT, explain=True, max_new_tokens=3, do_sample=False)
    assert len(result.source) == result.prompt_tokens
    assert all(0 <= p.start < p.end <= len(PROMPT) for p in result.source)
    assert "".join(PROMPT[p.start : p.end] for p in result.source).replace(" ", "") == PROMPT.replace(" ", "")


def test_beam_search_keeps_each_returned_beams_attention(task):
    settings = {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 5, "do_sample": False}
    plain = task.run(PROMPT, **settings)
    explained = task.run(PROMPT, explain=True, **settings)
    assert explained.to_json() == plain.to_json()
    for sequence in explained.sequences:
        weights = sequence.self_attention
        assert weights.shape[0] == len(sequence.tokens)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_without_explain_nothing_is_kept_and_the_text_is_the_same(task):
    plain = task.run(PROMPT, **GREEDY)
    assert plain.internals == {} and plain.source == []
    assert all(s.self_attention is None and s.cross_attention is None for s in plain.sequences)
    assert task.run(PROMPT, explain=True, **GREEDY).to_json() == plain.to_json()


def test_an_empty_prompt_starts_from_the_beginning_of_text_token(task):
    result = task.run("", explain=True, max_new_tokens=3, do_sample=False)
    assert len(result.source) == 1 and result.source[0].start is None
    assert result.sequences[0].self_attention.shape[2] == 1 + len(result.sequences[0].tokens) - 1


def test_past_the_memory_budget_the_layers_are_kept_as_their_mean(task, monkeypatch):
    from engine.tasks import text_generation

    whole = task.run(PROMPT, explain=True, **GREEDY)
    monkeypatch.setattr(text_generation, "ATTENTION_BYTES", 1_000)
    merged = task.run(PROMPT, explain=True, **GREEDY)
    assert merged.to_json() == whole.to_json()
    full = whole.sequences[0].self_attention
    assert merged.sequences[0].self_attention.shape == (full.shape[0], 1, full.shape[2])
    np.testing.assert_allclose(merged.sequences[0].self_attention[:, 0], full.mean(axis=1), rtol=1e-5, atol=1e-7)
    assert any("mean of the layers" in w for w in merged.warnings) and not whole.warnings
