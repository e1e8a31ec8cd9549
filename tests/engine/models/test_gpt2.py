"""GPT-2 against transformers on the same tiny checkpoint files: logits with and without the
cache, the config flags that change the maths, and the Hub's key layouts."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError, InputError
from engine.models import gpt2
from tests.engine.models.tiny_generative import MAX_POSITIONS, gpt2_config, save_model

TOL = dict(atol=1e-5, rtol=1e-5)
VOCAB = 120


def _ids(rows: int = 2, length: int = 12) -> torch.Tensor:
    return torch.randint(0, VOCAB, (rows, length), generator=torch.Generator().manual_seed(4))


def _pair(folder, **config):
    from transformers import GPT2LMHeadModel

    theirs = save_model(GPT2LMHeadModel, gpt2_config(VOCAB, **config), folder)
    return _load(folder), theirs


def _load(folder):
    config = gpt2.GPT2Config.from_json(json.loads((folder / "config.json").read_text()))
    return load_model(lambda: gpt2.GPT2LMHeadModel(config), folder, adapt=gpt2.adapt)


@pytest.mark.parametrize("config", [
    {},
    {"scale_attn_by_inverse_layer_idx": True},
    {"reorder_and_upcast_attn": True},
    {"n_inner": 20, "activation_function": "relu"},
    {"scale_attn_weights": False, "layer_norm_epsilon": 1e-3},
], ids=lambda c: ",".join(c) or "default")
def test_logits_match_transformers(tmp_path, config):
    ours, theirs = _pair(tmp_path, **config)
    ids = _ids()
    with torch.no_grad():
        expected = theirs(ids).logits
    torch.testing.assert_close(ours(ids), expected, **TOL)
    torch.testing.assert_close(ours(ids, last_only=True), expected[:, -1], **TOL)


def test_the_cache_gives_the_same_logits_step_by_step(tmp_path):
    ours, theirs = _pair(tmp_path)
    ids = _ids(length=10)
    with torch.no_grad():
        expected = theirs(ids).logits
    cache = ours.make_cache(2, 10)
    steps = [ours(ids[:, :4], cache)] + [ours(ids[:, i : i + 1], cache) for i in range(4, 10)]
    torch.testing.assert_close(torch.cat(steps, dim=1), expected, **TOL)
    assert cache.length == 10


def test_a_prompt_copied_to_several_rows_goes_on_alike(tmp_path):
    ours, _ = _pair(tmp_path)
    ids = _ids(rows=1, length=5)
    cache = ours.make_cache(3, 8)
    ours(ids, cache)
    cache.expand(3)
    step = ours(torch.tensor([[7], [7], [9]]), cache, last_only=True)
    torch.testing.assert_close(step[0], step[1])
    reference = ours(torch.cat([ids, torch.tensor([[9]])], dim=1), last_only=True)[0]
    torch.testing.assert_close(step[2], reference, **TOL)


def test_half_precision_upcasts_attention_when_the_config_asks(tmp_path):
    ours, _ = _pair(tmp_path, reorder_and_upcast_attn=True)
    full = ours(_ids())
    half = _load(tmp_path).to(torch.bfloat16)
    assert (half(_ids()).float() - full).abs().max() < 0.2


def test_hub_layout_without_prefix_with_mask_buffers_and_a_tied_head_copy_loads(tmp_path):
    ours, _ = _pair(tmp_path / "a")
    state = load_file(tmp_path / "a" / "model.safetensors")
    hub = {k.removeprefix("transformer."): v for k, v in state.items()}
    for layer in range(2):  # the buffers old files carry
        hub[f"h.{layer}.attn.bias"] = torch.ones(1, 1, MAX_POSITIONS, MAX_POSITIONS)
        hub[f"h.{layer}.attn.masked_bias"] = torch.tensor(-1e4)
    hub["lm_head.weight"] = state["transformer.wte.weight"].clone()
    (tmp_path / "b").mkdir()
    save_file(hub, tmp_path / "b" / "model.safetensors")
    (tmp_path / "b" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    torch.testing.assert_close(_load(tmp_path / "b")(_ids()), ours(_ids()))


def test_an_untied_head_is_read_from_the_file(tmp_path):
    ours, _ = _pair(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["lm_head.weight"] = torch.randn(VOCAB, 32)
    save_file(state, tmp_path / "model.safetensors")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}))
    untied = _load(tmp_path)
    hidden = untied.transformer(_ids())
    torch.testing.assert_close(untied(_ids()), hidden @ state["lm_head.weight"].T, **TOL)


def test_positions_beyond_the_model_are_an_input_error(tmp_path):
    ours, _ = _pair(tmp_path)
    with pytest.raises(InputError, match=f"at most {MAX_POSITIONS}"):
        ours(torch.zeros(1, MAX_POSITIONS + 1, dtype=torch.long))


def test_config_checks_and_describe():
    data = {"vocab_size": 10, "n_positions": 8, "n_embd": 12, "n_layer": 2, "n_head": 4}
    config = gpt2.GPT2Config.from_json(data)
    assert gpt2.describe(config) == {
        "layers": 2, "hidden_size": 12, "attention_heads": 4, "feed_forward_size": 48,
        "vocabulary_size": 10, "max_positions": 8,
    }
    with pytest.raises(CheckpointError, match="multiple of n_head"):
        gpt2.GPT2Config.from_json({**data, "n_head": 5})
    with pytest.raises(CheckpointError, match="activation_function"):
        gpt2.GPT2Config.from_json({**data, "activation_function": "swiglu"})


def test_conv1d_as_linear_is_the_same_map_sharing_its_tensors():
    torch.manual_seed(0)
    conv = gpt2.Conv1D(8, 12)
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
    linear = conv.as_linear()
    x = torch.randn(2, 5, 8)
    assert isinstance(linear, torch.nn.Linear) and linear.weight.shape == (12, 8)
    torch.testing.assert_close(linear(x), conv(x))
    assert linear.weight.data_ptr() == conv.weight.data_ptr()  # a view, not a copy
