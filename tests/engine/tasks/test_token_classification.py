"""The token-classification task against transformers' own pipeline on the same tiny files."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.tasks.token_classification import STRATEGIES, TokenClassification
from tests.engine.models.tiny_text import NER_LABELS, bert_config, distilbert_config, save_model

TEXTS = [
    "Ada Lovelace wrote the first programme in London with Marie Curie.",
    "the analysis of PARIS, Berlin and the Thames river (1843)!",
    "Café Noël 🙂 emoji 👍🏽 Zürich",
    "مرحبا بالعالم في لندن",
    "שלום עולם בפריז",
]
# labels evenly spread, "O" a little ahead: entities of several tokens, and "O" to drop
NER_BIAS = [0.2, 0.0, 0.1, 0.0, 0.1, 0.0, 0.1, 0.0, 0.1]
LONG_TEXT = " ".join(TEXTS[:2]) * 12  # several windows of 64 tokens


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import BertForTokenClassification, DistilBertForTokenClassification

    bert_folder = tmp_path_factory.mktemp("bert-ner")
    save_model(BertForTokenClassification, bert_config(labels=NER_LABELS), bert_folder, cased=True, label_bias=NER_BIAS)
    distil_folder = tmp_path_factory.mktemp("distilbert-ner")
    save_model(DistilBertForTokenClassification, distilbert_config(labels=NER_LABELS), distil_folder, seed=1, label_bias=NER_BIAS)
    return {"bert": bert_folder, "distilbert": distil_folder}


@pytest.fixture(scope="module")
def loaded(folders):
    from transformers import pipeline

    return {
        kind: (TokenClassification.load(folder, device="cpu"), pipeline("token-classification", model=str(folder), device="cpu"))
        for kind, folder in folders.items()
    }


def _assert_same(got: list[dict], expected: list[dict], context: str) -> None:
    assert len(got) == len(expected), context
    for g, e in zip(got, expected):
        assert list(g) == list(e), context  # same keys in the same order
        for key in e:
            if key == "score":
                assert g[key] == pytest.approx(float(e[key]), abs=1e-5), context
            else:
                assert g[key] == e[key], f"{context}: {key}"


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_entities_match_the_pipeline(loaded, kind, strategy):
    task, oracle = loaded[kind]
    found_any = False
    for text in TEXTS:
        expected = oracle(text, aggregation_strategy=strategy)
        got = task.run(text, aggregation_strategy=strategy).to_json()
        _assert_same(got, expected, f"{strategy}: {text}")
        found_any |= bool(got)
        for entity in got:
            assert entity["end"] > entity["start"]
    assert found_any  # the tiny model does label something other than "O"


def test_the_texts_exercise_grouping(loaded):
    """Guards the parity tests above: the tiny model must give entities of several tokens,
    words of several pieces and "O" tokens, or those tests would compare trivial output."""
    task, _ = loaded["bert"]
    tokens = [e for t in TEXTS for e in task.run(t, aggregation_strategy="none").entities]
    groups = [e for t in TEXTS for e in task.run(t, aggregation_strategy="simple").entities]
    words = [e for t in TEXTS for e in task.run(t, aggregation_strategy="first").entities]
    assert len(groups) < len(tokens)
    assert any(" " in e.word for e in groups)
    assert any(len(e.word) > 4 and "#" not in e.word for e in words)
    all_tokens = sum(len(task.tokenizer.encode(t).ids) - 2 for t in TEXTS)
    assert len(tokens) < all_tokens  # some tokens were "O"


@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
@pytest.mark.parametrize("ignored", ["O", ""])
def test_long_texts_match_the_pipeline_with_a_stride(loaded, strategy, ignored):
    task, oracle = loaded["bert"]
    expected = oracle(LONG_TEXT, aggregation_strategy=strategy, stride=16, ignore_labels=[ignored] if ignored else [])
    result = task.run(LONG_TEXT, aggregation_strategy=strategy, stride=16, ignore_labels=ignored)
    assert result.windows > 3
    assert any("windows" in w for w in result.warnings)
    _assert_same(result.to_json(), expected, strategy)
    assert max(e["end"] for e in result.to_json()) > len(LONG_TEXT) - 40  # the end was read too


def test_windows_without_aggregation_index_the_whole_text(loaded):
    task, _ = loaded["distilbert"]
    result = task.run(LONG_TEXT, aggregation_strategy="none", stride=16)
    assert result.windows > 3
    whole = task.tokenizer.encode(LONG_TEXT)
    assert result.entities
    for entity in result.entities:
        assert whole.offsets[entity.index] == (entity.start, entity.end)
    indices = [e.index for e in result.entities]
    assert indices == sorted(set(indices))  # each token once, in order


def test_a_stride_too_large_for_the_windows_is_lowered(loaded):
    task, _ = loaded["bert"]
    result = task.run(LONG_TEXT, stride=500)
    assert any("stride lowered" in w for w in result.warnings)


def test_a_100k_character_text_is_read_whole(loaded):
    from engine.tasks.base import Hooks

    task, _ = loaded["distilbert"]
    text = ("Ada Lovelace lived in London. " * 4000)[:100_000]
    seen = []
    result = task.run(text, stride=0, hooks=Hooks(on_progress=lambda done, total, _: seen.append((done, total))))
    assert result.windows > 300
    assert seen[-1] == (result.windows, result.windows)
    assert all(text[e.start : e.end].strip() for e in result.entities)
    assert result.entities[-1].end > len(text) - 100


@pytest.mark.parametrize("text", ["", " \t\n ", "\u200b"])
def test_empty_texts_are_input_errors(loaded, text):
    task, _ = loaded["bert"]
    with pytest.raises(InputError):
        task.run(text)


def test_unknown_strategies_are_input_errors(loaded):
    task, _ = loaded["bert"]
    with pytest.raises(InputError, match="aggregation-strategy"):
        task.run(TEXTS[0], aggregation_strategy="longest")


def test_info_lists_the_labels(loaded):
    task, _ = loaded["bert"]
    info = task.info()
    assert info["labels"] == NER_LABELS
    assert info["architecture"] == "BertForTokenClassification"
    assert info["vocabulary_size"] == task.config["vocab_size"]


def test_cancelling_stops_between_windows(loaded):
    import threading

    from engine.errors import Cancelled
    from engine.tasks.base import Hooks

    task, _ = loaded["bert"]
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        task.run(LONG_TEXT, hooks=Hooks(cancel=stop))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ignored", [[], ["O", "B-PER"], ["PER", "LOC"]])
def test_ignore_labels_match_the_pipeline(loaded, strategy, ignored):
    task, oracle = loaded["bert"]
    for text in TEXTS[:3]:
        expected = oracle(text, aggregation_strategy=strategy, ignore_labels=ignored)
        as_list = task.run(text, aggregation_strategy=strategy, ignore_labels=ignored).to_json()
        as_text = task.run(text, aggregation_strategy=strategy, ignore_labels=", ".join(ignored)).to_json()
        _assert_same(as_list, expected, f"{strategy} {ignored}: {text}")
        assert as_text == as_list


def test_an_empty_ignore_list_keeps_the_o_tokens(loaded):
    task, _ = loaded["bert"]
    every = task.run(TEXTS[0], aggregation_strategy="none", ignore_labels="").entities
    assert any(e.label == "O" for e in every)
    assert len(every) == len(task.tokenizer.encode(TEXTS[0]).ids) - 2  # every token but [CLS], [SEP]
