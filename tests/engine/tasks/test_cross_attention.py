"""Translation and summarisation with `explain`: each generated token's cross-attention over the
source pieces equals transformers' `generate(output_attentions=True)` (averaged over heads),
the source pieces point into the user's text, and without `explain` nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.tasks.summarization import Summarization
from engine.tasks.translation import Translation
from tests.engine.models.tiny_generative import save_bart, save_t5

TEXT = "Ada Lovelace wrote notes in London, 1843."


@pytest.fixture(scope="module", params=["t5", "bart"])
def case(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "t5":
        save_t5(folder, flan=True)
        return Translation.load(folder, device="cpu"), "translate English to German: ", folder
    save_bart(folder)
    return Summarization.load(folder, device="cpu"), "", folder


def theirs(folder, text, **settings):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, attn_implementation="eager").eval()
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, output_attentions=True, return_dict_in_generate=True, **settings)
    # steps × layers × (batch, heads, 1, source) -> (steps, layers, source)
    weights = torch.stack([torch.stack([layer[0, :, -1].mean(0) for layer in step]) for step in out.cross_attentions])
    return out.sequences[0].tolist(), weights.numpy()


def test_greedy_cross_attention_equals_transformers(case):
    task, prefix, folder = case
    settings = {"num_beams": 1, "do_sample": False, "max_new_tokens": 8, "min_new_tokens": 8}
    result = task.run(TEXT, explain=True, **settings)
    tokens, expected = theirs(folder, prefix + TEXT, **settings)
    sequence = result.sequences[0]
    assert [t.id for t in sequence.tokens] == tokens[1:]  # theirs starts with the decoder's start token
    assert sequence.cross_attention is not None
    np.testing.assert_allclose(sequence.cross_attention, expected, rtol=1e-4, atol=1e-6)
    assert result.internals["cross_attention"] is sequence.cross_attention


def test_the_source_pieces_point_into_the_users_text(case):
    task, prefix, _ = case
    result = task.run(TEXT, explain=True, max_new_tokens=4)
    assert len(result.source) == result.prompt_tokens == result.sequences[0].cross_attention.shape[2]
    mine = [p for p in result.source if p.start is not None]
    assert mine, "no piece of the user's text"
    assert all(0 <= p.start < p.end <= len(TEXT) for p in mine)
    covered = {i for p in mine for i in range(p.start, p.end)}
    assert {i for i, c in enumerate(TEXT) if not c.isspace()} <= covered  # every character has its piece
    offsets = result.internals["source_offsets"]
    assert offsets.shape == (len(result.source), 2) and (offsets[:, 0] == -1).sum() == len(result.source) - len(mine)


def test_beam_search_keeps_the_attention_of_the_beams_it_returns(case):
    task, _, _ = case
    settings = {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 6}
    plain = task.run(TEXT, **settings)
    explained = task.run(TEXT, explain=True, **settings)
    assert explained.to_json() == plain.to_json()
    for sequence in explained.sequences:
        weights = sequence.cross_attention
        assert weights.shape[0] == len(sequence.tokens)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)  # every step a distribution


def test_without_explain_nothing_is_kept_and_the_answer_is_the_same(case):
    task, _, _ = case
    plain = task.run(TEXT, max_new_tokens=6)
    again = task.run(TEXT, max_new_tokens=6, explain=False)
    explained = task.run(TEXT, max_new_tokens=6, explain=True)
    assert plain.internals == {} and plain.source == [] and plain.sequences[0].cross_attention is None
    assert again.sequences == plain.sequences
    assert [t.id for t in explained.sequences[0].tokens] == [t.id for t in plain.sequences[0].tokens]


def test_the_cli_writes_the_internals_and_names_them(case, tmp_path, capsys):
    import json

    from engine.cli import main

    task, _, folder = case
    assert main([task.name, TEXT, "--model", str(folder), "--max-new-tokens", "4", "--explain", str(tmp_path / "inside")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["result"] == task.run(TEXT, max_new_tokens=4).to_json()
    paths = printed["internals"]
    assert set(paths) == {"cross_attention", "source_offsets"}
    assert np.load(paths["cross_attention"]).shape[0] == 4
