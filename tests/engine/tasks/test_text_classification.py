"""The text-classification task against transformers' own pipeline on the same tiny files."""

from __future__ import annotations

import json

import pytest
import torch

from engine.errors import CheckpointError, InputError
from engine.tasks.text_classification import TextClassification
from tests.engine.models.tiny_text import MAX_POSITIONS, bert_config, distilbert_config, save_model

TEXTS = [
    "What a lovely day in London, said Ada Lovelace.",
    "The analysis of Marie Curie's work was born in Paris!",
    "Café 🙂 emoji 👍🏽 text",
    "مرحبا بالعالم في لندن",
    "שלום עולם בפריז",
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import BertForSequenceClassification, DistilBertForSequenceClassification

    made = {}
    made["distilbert"] = tmp_path_factory.mktemp("distilbert-sst")
    save_model(DistilBertForSequenceClassification, distilbert_config(labels=["NEGATIVE", "POSITIVE"]), made["distilbert"])
    made["bert-cased"] = tmp_path_factory.mktemp("bert-3")
    save_model(BertForSequenceClassification, bert_config(labels=["low", "mid", "high"]), made["bert-cased"], cased=True)
    made["one-label"] = tmp_path_factory.mktemp("bert-1")
    save_model(BertForSequenceClassification, bert_config(num_labels=1), made["one-label"], seed=3)
    return made


def _pipeline(folder):
    from transformers import pipeline

    return pipeline("text-classification", model=str(folder), device="cpu")


@pytest.mark.parametrize("kind", ["distilbert", "bert-cased", "one-label"])
def test_scores_match_the_pipeline(folders, kind):
    task = TextClassification.load(folders[kind], device="cpu")
    oracle = _pipeline(folders[kind])
    for text in TEXTS:
        expected = oracle(text, top_k=None)
        got = task.run(text).to_json()
        assert [g["label"] for g in got] == [e["label"] for e in expected], text
        for g, e in zip(got, expected):
            assert g["score"] == pytest.approx(e["score"], abs=1e-5)
    assert task.run(TEXTS[0]).function == ("sigmoid" if kind == "one-label" else "softmax")


def test_top_k_keeps_the_best(folders):
    task = TextClassification.load(folders["bert-cased"], device="cpu")
    every = task.run(TEXTS[1]).to_json()
    assert len(every) == 3
    assert [s["score"] for s in every] == sorted((s["score"] for s in every), reverse=True)
    assert task.run(TEXTS[1], top_k=1).to_json() == every[:1]
    assert task.run(TEXTS[1], top_k="2").to_json() == every[:2]
    with pytest.raises(InputError):
        task.run(TEXTS[1], top_k=0)


def test_long_texts_are_truncated_and_say_so(folders):
    task = TextClassification.load(folders["distilbert"], device="cpu")
    text = ("the analysis of london " * 5000)[:100_000]
    result = task.run(text)
    total = len(task.tokenizer.encode(text).ids)
    assert result.warnings == [f"input truncated to {MAX_POSITIONS} tokens of {total}"]
    assert result.tokens == MAX_POSITIONS
    # the scores are those of the first MAX_POSITIONS tokens, as transformers truncates them
    oracle = _pipeline(folders["distilbert"])
    expected = oracle(text, top_k=None, truncation=True)
    assert result.to_json()[0]["label"] == expected[0]["label"]
    assert result.to_json()[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)


@pytest.mark.parametrize("text", ["", "   \n\t ", "\u200b\u200b"])
def test_empty_texts_are_input_errors(folders, text):
    task = TextClassification.load(folders["distilbert"], device="cpu")
    with pytest.raises(InputError):
        task.run(text)


def test_half_of_a_surrogate_pair_is_named_as_an_invalid_character(folders):
    task = TextClassification.load(folders["distilbert"], device="cpu")
    with pytest.raises(InputError, match="invalid character at position 4"):
        task.run("good\ud83d day")


def test_info_reports_the_config(folders):
    info = TextClassification.load(folders["distilbert"], device="cpu").info()
    assert info["architecture"] == "DistilBertForSequenceClassification"
    assert (info["layers"], info["hidden_size"], info["attention_heads"]) == (2, 32, 4)
    assert info["max_positions"] == MAX_POSITIONS
    assert info["labels"] == ["NEGATIVE", "POSITIVE"]
    assert info["parameters"] > 0


def test_other_architectures_are_refused(tmp_path, folders):
    config = json.loads((folders["distilbert"] / "config.json").read_text())
    config["model_type"] = "gpt2"
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((folders["distilbert"] / name).read_bytes())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="gpt2.*bert, distilbert"):
        TextClassification.load(tmp_path, device="cpu")


def test_bf16_gives_nearly_the_float32_scores(folders):
    full = TextClassification.load(folders["bert-cased"], device="cpu").run(TEXTS[0]).to_json()
    half = TextClassification.load(folders["bert-cased"], device="cpu", dtype="bf16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    got = half.run(TEXTS[0]).to_json()
    assert {g["label"]: g["score"] for g in got} == pytest.approx({f["label"]: f["score"] for f in full}, abs=0.05)
