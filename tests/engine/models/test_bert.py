"""BERT against transformers on the same tiny checkpoint files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError
from engine.models import bert
from tests.engine.models.tiny_text import bert_config

TOL = dict(atol=1e-5, rtol=1e-5)


def _batch(vocab_size: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """Two sequences, the second padded after 7 tokens, with both token types."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _load(head: str, folder, config_json: dict | None = None):
    import json

    data = config_json or json.loads((folder / "config.json").read_text())
    config = bert.BertConfig.from_json(data)
    num_labels = len(data.get("id2label", {})) or 2
    return load_model(lambda: bert.HEADS[head](config, num_labels), folder, adapt=bert.adapt)


def _oracle(cls_name: str, tmp_path, **config):
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(bert_config(**config)).eval()
    model.save_pretrained(tmp_path)
    return model


@pytest.fixture(scope="module")
def sequence_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert-seq")
    return _oracle("BertForSequenceClassification", folder, num_labels=3), folder


def test_sequence_classification_matches_transformers_on_a_padded_batch(sequence_checkpoint):
    oracle, folder = sequence_checkpoint
    batch = _batch(oracle.config.vocab_size)
    ours = _load("sequence-classification", folder)
    with torch.no_grad():
        expected = oracle(**batch).logits
    assert ours(**batch).shape == (2, 3)
    torch.testing.assert_close(ours(**batch), expected, **TOL)


def test_token_classification_matches_transformers(tmp_path):
    oracle = _oracle("BertForTokenClassification", tmp_path, num_labels=5)
    batch = _batch(oracle.config.vocab_size)
    ours = _load("token-classification", tmp_path)
    with torch.no_grad():
        expected = oracle(**batch).logits
    got = ours(**batch)
    valid = batch["attention_mask"].bool()  # padded positions carry no meaning
    torch.testing.assert_close(got[valid], expected[valid], **TOL)


def test_question_answering_matches_transformers(tmp_path):
    oracle = _oracle("BertForQuestionAnswering", tmp_path)
    batch = _batch(oracle.config.vocab_size)
    ours = _load("question-answering", tmp_path)
    with torch.no_grad():
        expected = oracle(**batch)
    start, end = ours(**batch)
    valid = batch["attention_mask"].bool()
    torch.testing.assert_close(start[valid], expected.start_logits[valid], **TOL)
    torch.testing.assert_close(end[valid], expected.end_logits[valid], **TOL)


def test_a_file_without_the_bert_prefix_loads_into_a_head(sequence_checkpoint, tmp_path):
    oracle, folder = sequence_checkpoint
    state = load_file(folder / "model.safetensors")
    assert any(k.startswith("bert.") for k in state)
    save_file({k.removeprefix("bert."): v for k, v in state.items()}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).logits
    torch.testing.assert_close(_load("sequence-classification", tmp_path)(**batch), expected, **TOL)


def test_the_bare_base_model_matches_transformers(tmp_path):
    from transformers import BertModel

    torch.manual_seed(0)
    oracle = BertModel(bert_config()).eval()
    oracle.save_pretrained(tmp_path)
    config = bert.BertConfig.from_json(oracle.config.to_dict())
    ours = load_model(lambda: bert.BertModel(config, with_pooler=True), tmp_path, adapt=bert.adapt)
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).last_hidden_state
    valid = batch["attention_mask"].bool()
    torch.testing.assert_close(ours(**batch)[valid], expected[valid], **TOL)


def test_legacy_gamma_beta_and_stray_buffers_load(sequence_checkpoint, tmp_path):
    oracle, folder = sequence_checkpoint
    state = load_file(folder / "model.safetensors")
    old = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
           for k, v in state.items()}
    assert any(k.endswith("LayerNorm.gamma") for k in old)
    old["bert.embeddings.position_ids"] = torch.arange(64)[None]
    old["bert.embeddings.token_type_ids"] = torch.zeros(1, 64, dtype=torch.long)
    save_file(old, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).logits
    torch.testing.assert_close(_load("sequence-classification", tmp_path)(**batch), expected, **TOL)


def test_a_pooler_in_a_token_classification_file_is_ignored(sequence_checkpoint, tmp_path):
    """NER checkpoints on the Hub come with or without `bert.pooler.*`."""
    oracle, folder = sequence_checkpoint
    state = load_file(folder / "model.safetensors")
    assert "bert.pooler.dense.weight" in state
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    model = _load("token-classification", tmp_path)
    assert "bert.pooler.dense.weight" not in model.state_dict()
    torch.testing.assert_close(model.classifier.weight, state["classifier.weight"])


def test_a_missing_head_is_a_checkpoint_error(tmp_path):
    from transformers import BertModel

    BertModel(bert_config()).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="classifier"):
        _load("sequence-classification", tmp_path)


def test_tanh_gelu_configs_match_transformers(tmp_path):
    oracle = _oracle("BertForSequenceClassification", tmp_path, hidden_act="gelu_new")
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).logits
    torch.testing.assert_close(_load("sequence-classification", tmp_path)(**batch), expected, **TOL)


def test_bad_configs_are_checkpoint_errors():
    good = bert_config().to_dict()
    with pytest.raises(CheckpointError, match="num_attention_heads"):
        bert.BertConfig.from_json({**good, "num_attention_heads": 5})
    with pytest.raises(CheckpointError, match="activation"):
        bert.BertConfig.from_json({**good, "hidden_act": "mystery"})
    with pytest.raises(CheckpointError, match="hidden_size"):
        bert.BertConfig.from_json({k: v for k, v in good.items() if k != "hidden_size"})


def test_describe_gives_the_config_sizes():
    config = bert.BertConfig.from_json(bert_config().to_dict())
    assert bert.describe(config) == {
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads,
        "feed_forward_size": config.intermediate_size,
        "vocabulary_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
    }
