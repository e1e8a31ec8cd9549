"""T5 and T5 v1.1 / FLAN-T5 against transformers on the same tiny checkpoint files: logits,
the cache, generation, and the key layouts of Hub files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError
from engine.models import t5
from tests.engine.models.tiny_generative import assert_same_tokens, generate_ours, generate_theirs, save_model, t5_config

TOL = dict(atol=1e-5, rtol=1e-5)
VOCAB = 90
SOURCE = torch.randint(3, VOCAB, (2, 30), generator=torch.Generator().manual_seed(5))  # long: far buckets
TARGET = torch.randint(3, VOCAB, (2, 26), generator=torch.Generator().manual_seed(6))


def _pair(folder, **config):
    from transformers import T5ForConditionalGeneration

    theirs = save_model(T5ForConditionalGeneration, t5_config(VOCAB, **config), folder)
    return _load(folder), theirs


def _load(folder):
    config = t5.T5Config.from_json(json.loads((folder / "config.json").read_text()))
    return load_model(lambda: t5.T5ForConditionalGeneration(config), folder, adapt=t5.adapt)


def _expected(theirs, source=SOURCE, target=TARGET):
    with torch.no_grad():
        return theirs(input_ids=source, decoder_input_ids=target).logits


@pytest.mark.parametrize("config", [
    {},
    {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},  # v1.1 / FLAN as transformers 5 saves it
    {"feed_forward_proj": "gated-silu", "num_decoder_layers": 3},
], ids=["t5", "flan", "gated-silu"])
def test_logits_match_transformers(tmp_path, config):
    ours, theirs = _pair(tmp_path, **config)
    torch.testing.assert_close(ours(SOURCE, TARGET), _expected(theirs), **TOL)


def test_hub_flan_files_have_an_untied_head(tmp_path):
    from tests.engine.models.tiny_generative import save_t5

    theirs = save_t5(tmp_path, flan=True)
    assert not torch.equal(theirs.lm_head.weight, theirs.shared.weight)
    source, target = SOURCE.clamp(max=theirs.config.vocab_size - 1), TARGET.clamp(max=theirs.config.vocab_size - 1)
    torch.testing.assert_close(_load(tmp_path)(source, target), _expected(theirs, source, target), **TOL)


def test_decoding_step_by_step_over_the_cache(tmp_path):
    ours, theirs = _pair(tmp_path)
    memory = ours.encode(SOURCE)
    cache = ours.make_cache(2, 26)
    steps = [ours.decode(TARGET[:, :3], memory, cache)] + [ours.decode(TARGET[:, i : i + 1], memory, cache) for i in range(3, 26)]
    torch.testing.assert_close(torch.cat(steps, dim=1), _expected(theirs), **TOL)
    assert cache.length == 26


@pytest.mark.parametrize("settings", [
    {},
    {"num_beams": 3, "num_return_sequences": 2, "length_penalty": 2.0},
    {"num_beams": 4, "no_repeat_ngram_size": 2, "early_stopping": True, "min_length": 6},
], ids=["greedy", "beams", "constraints"])
def test_generation_matches_transformers(tmp_path, settings):
    ours, theirs = _pair(tmp_path)
    source = SOURCE[0]
    with torch.no_grad():  # an end token the model reaches: greedy search's fourth token
        eos = generate_theirs(theirs, source, 1, max_new_tokens=4, do_sample=False)[0][-1]
    common = {"max_new_tokens": 12, "eos_token_id": eos, "pad_token_id": 0, "decoder_start_token_id": 0, **settings}
    got = generate_ours(ours, torch.tensor([0]), memory=ours.encode(source[None]), **common)
    assert_same_tokens(got, generate_theirs(theirs, source, 1, do_sample=False, **common), 0)


def test_relative_buckets_match_transformers():
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = torch.arange(-200, 200)[None, :]
    for bidirectional in (True, False):
        for buckets, distance in ((32, 128), (8, 20)):
            expected = T5Attention._relative_position_bucket(relative, bidirectional, buckets, distance)
            assert torch.equal(t5.relative_buckets(relative, bidirectional, buckets, distance), expected)


def test_embedding_copies_and_stray_keys_are_dropped(tmp_path):
    ours, _ = _pair(tmp_path / "a")
    state = load_file(tmp_path / "a" / "model.safetensors")
    old = {k: v for k, v in state.items() if k != "shared.weight"}
    shared = state["shared.weight"]
    old["encoder.embed_tokens.weight"] = shared.clone()
    old["decoder.embed_tokens.weight"] = shared.clone()
    old["lm_head.weight"] = shared.clone()
    old["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.zeros(8, 4)
    (tmp_path / "b").mkdir()
    save_file(old, tmp_path / "b" / "model.safetensors")
    (tmp_path / "b" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    torch.testing.assert_close(_load(tmp_path / "b")(SOURCE, TARGET), ours(SOURCE, TARGET))


def test_config_checks_and_describe():
    data = {"vocab_size": 10, "d_model": 8, "d_kv": 2, "d_ff": 16, "num_layers": 2, "num_heads": 4}
    config = t5.T5Config.from_json({**data, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False})
    assert (config.gated, config.act_name, config.scales_output, config.decoder_layers) == (True, "gelu_new", False, 2)
    assert t5.T5Config.from_json(data).scales_output
    assert t5.describe(config)["feed_forward"] == "gated-gelu"
    for bad in ("gated-gelu-new", "swiglu"):
        with pytest.raises(CheckpointError, match="feed_forward_proj"):
            t5.T5Config.from_json({**data, "feed_forward_proj": bad})
