"""BART against transformers on the same tiny checkpoint files: logits, the cache, generation
with distilbart-cnn's kind of settings, and the key layouts of older Hub files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError, InputError
from engine.models import bart
from tests.engine.models.tiny_generative import MAX_POSITIONS, assert_same_tokens, bart_config, generate_ours, generate_theirs, save_model

TOL = dict(atol=1e-5, rtol=1e-5)
VOCAB = 90
SOURCE = torch.randint(3, VOCAB, (2, 30), generator=torch.Generator().manual_seed(5))
TARGET = torch.randint(3, VOCAB, (2, 20), generator=torch.Generator().manual_seed(6))


def _pair(folder, **config):
    from transformers import BartForConditionalGeneration

    theirs = save_model(BartForConditionalGeneration, bart_config(VOCAB, **config), folder)
    with torch.no_grad():  # a real checkpoint's bias is not zero
        theirs.final_logits_bias.normal_(generator=torch.Generator().manual_seed(0))
    theirs.save_pretrained(folder)
    return _load(folder), theirs


def _load(folder):
    config = bart.BartConfig.from_json(json.loads((folder / "config.json").read_text()))
    return load_model(lambda: bart.BartForConditionalGeneration(config), folder, adapt=bart.adapt)


def _expected(theirs):
    with torch.no_grad():
        return theirs(input_ids=SOURCE, decoder_input_ids=TARGET).logits


@pytest.mark.parametrize("config", [{}, {"scale_embedding": True, "activation_function": "relu", "decoder_layers": 3}], ids=["bart", "scaled"])
def test_logits_match_transformers(tmp_path, config):
    ours, theirs = _pair(tmp_path, **config)
    torch.testing.assert_close(ours(SOURCE, TARGET), _expected(theirs), **TOL)


def test_decoding_step_by_step_over_the_cache(tmp_path):
    ours, theirs = _pair(tmp_path)
    memory = ours.encode(SOURCE)
    cache = ours.make_cache(2, 20)
    steps = [ours.decode(TARGET[:, :3], memory, cache)] + [ours.decode(TARGET[:, i : i + 1], memory, cache) for i in range(3, 20)]
    torch.testing.assert_close(torch.cat(steps, dim=1), _expected(theirs), **TOL)


# distilbart-cnn-12-6's summarisation settings, shortened
CNN = {"num_beams": 4, "length_penalty": 2.0, "min_length": 8, "max_length": 18, "no_repeat_ngram_size": 3,
       "early_stopping": True, "forced_bos_token_id": 0, "forced_eos_token_id": 2}


@pytest.mark.parametrize("settings", [
    {"max_new_tokens": 10},
    CNN,
    {**CNN, "num_return_sequences": 3, "early_stopping": False, "length_penalty": 1.0},
], ids=["greedy", "cnn", "cnn-three"])
def test_generation_matches_transformers(tmp_path, settings):
    ours, theirs = _pair(tmp_path)
    source = SOURCE[0]
    # the saved generation config forces </s> last, as BART's do: say so to ours too
    common = {"eos_token_id": 2, "pad_token_id": 1, "decoder_start_token_id": 2, "forced_eos_token_id": 2, "do_sample": False, **settings}
    got = generate_ours(ours, torch.tensor([2]), memory=ours.encode(source[None]), **common)
    assert_same_tokens(got, generate_theirs(theirs, source, 1, **common), 1)
    if "forced_bos_token_id" in settings:
        assert all(h.tokens[0] == 0 and len(h.tokens) >= settings["min_length"] - 1 for h in got)


def test_older_files_with_copies_of_the_embedding_and_a_bin_file_load(tmp_path):
    ours, _ = _pair(tmp_path / "a")
    state = load_file(tmp_path / "a" / "model.safetensors")
    shared = state.pop("model.shared.weight")
    for key in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"):
        state[key] = shared.clone()
    state["model.encoder.version"] = torch.tensor([2.0])
    (tmp_path / "b").mkdir()
    torch.save(state, tmp_path / "b" / "pytorch_model.bin")  # distilbart-cnn-12-6 ships only this
    (tmp_path / "b" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    torch.testing.assert_close(_load(tmp_path / "b")(SOURCE, TARGET), ours(SOURCE, TARGET))


def test_a_missing_final_logits_bias_is_zero(tmp_path):
    ours, _ = _pair(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["final_logits_bias"]
    save_file(state, tmp_path / "model.safetensors")
    assert torch.equal(_load(tmp_path).final_logits_bias, torch.zeros(1, VOCAB))


def test_positions_beyond_the_model_are_an_input_error(tmp_path):
    ours, _ = _pair(tmp_path)
    with pytest.raises(InputError, match=f"at most {MAX_POSITIONS}"):
        ours.encode(torch.zeros(1, MAX_POSITIONS + 1, dtype=torch.long))


def test_config_checks_and_describe():
    data = {"vocab_size": 10, "d_model": 8, "encoder_layers": 2, "decoder_layers": 1, "encoder_attention_heads": 2,
            "decoder_attention_heads": 2, "encoder_ffn_dim": 16, "decoder_ffn_dim": 16, "max_position_embeddings": 32}
    assert bart.describe(bart.BartConfig.from_json(data))["decoder_layers"] == 1
    for bad in ({"normalize_before": True}, {"decoder_attention_heads": 3}, {"activation_function": "swiglu"}):
        with pytest.raises(CheckpointError):
            bart.BartConfig.from_json({**data, **bad})
