"""DistilBERT against transformers on the same tiny checkpoint files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.errors import CheckpointError
from engine.models import distilbert
from tests.engine.models.tiny_text import distilbert_config

TOL = dict(atol=1e-5, rtol=1e-5)


def _batch(vocab_size: int) -> dict[str, torch.Tensor]:
    """Three sequences, two of them padded."""
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, vocab_size, (3, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def _load(head: str, folder):
    data = json.loads((folder / "config.json").read_text())
    config = distilbert.DistilBertConfig.from_json(data)
    num_labels = len(data.get("id2label", {})) or 2
    return load_model(lambda: distilbert.HEADS[head](config, num_labels), folder, adapt=distilbert.adapt)


def _oracle(cls_name: str, folder, **config):
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(distilbert_config(**config)).eval()
    model.save_pretrained(folder)
    return model


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_sequence_classification_matches_transformers(tmp_path, activation):
    oracle = _oracle("DistilBertForSequenceClassification", tmp_path, num_labels=3, activation=activation)
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).logits
    torch.testing.assert_close(_load("sequence-classification", tmp_path)(**batch), expected, **TOL)


def test_token_classification_matches_transformers(tmp_path):
    oracle = _oracle("DistilBertForTokenClassification", tmp_path, num_labels=9, sinusoidal_pos_embds=True)
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).logits
    valid = batch["attention_mask"].bool()
    # token types mean nothing to DistilBERT: the task layer may pass them all the same
    got = _load("token-classification", tmp_path)(**batch, token_type_ids=torch.ones_like(batch["input_ids"]))
    torch.testing.assert_close(got[valid], expected[valid], **TOL)


def test_question_answering_matches_transformers(tmp_path):
    oracle = _oracle("DistilBertForQuestionAnswering", tmp_path)
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch)
    start, end = _load("question-answering", tmp_path)(**batch)
    valid = batch["attention_mask"].bool()
    torch.testing.assert_close(start[valid], expected.start_logits[valid], **TOL)
    torch.testing.assert_close(end[valid], expected.end_logits[valid], **TOL)


def test_files_without_the_prefix_or_with_legacy_names_load(tmp_path):
    oracle = _oracle("DistilBertForSequenceClassification", tmp_path / "a")
    state = load_file(tmp_path / "a" / "model.safetensors")
    old = {
        k.removeprefix("distilbert.").replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in state.items()
    }
    old["embeddings.position_ids"] = torch.arange(64)[None]
    assert "embeddings.LayerNorm.gamma" in old
    (tmp_path / "b").mkdir()
    save_file(old, tmp_path / "b" / "model.safetensors")
    (tmp_path / "b" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).logits
    torch.testing.assert_close(_load("sequence-classification", tmp_path / "b")(**batch), expected, **TOL)


def test_the_bare_model_matches_transformers(tmp_path):
    from transformers import DistilBertModel

    torch.manual_seed(0)
    oracle = DistilBertModel(distilbert_config()).eval()
    oracle.save_pretrained(tmp_path)
    config = distilbert.DistilBertConfig.from_json(oracle.config.to_dict())
    ours = load_model(lambda: distilbert.DistilBertModel(config), tmp_path, adapt=distilbert.adapt)
    batch = _batch(oracle.config.vocab_size)
    with torch.no_grad():
        expected = oracle(**batch).last_hidden_state
    valid = batch["attention_mask"].bool()
    torch.testing.assert_close(ours(**batch)[valid], expected[valid], **TOL)


def test_bad_configs_are_checkpoint_errors():
    good = distilbert_config().to_dict()
    with pytest.raises(CheckpointError, match="n_heads"):
        distilbert.DistilBertConfig.from_json({**good, "n_heads": 5})
    with pytest.raises(CheckpointError, match="activation"):
        distilbert.DistilBertConfig.from_json({**good, "activation": "mystery"})


def test_describe_gives_the_config_sizes():
    config = distilbert.DistilBertConfig.from_json(distilbert_config().to_dict())
    assert distilbert.describe(config) == {
        "layers": config.n_layers,
        "hidden_size": config.dim,
        "attention_heads": config.n_heads,
        "feed_forward_size": config.hidden_dim,
        "vocabulary_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
    }
