"""The text tasks' internals (explain): pieces, attention equal to transformers'
`output_attentions=True`, NER piece probabilities and QA start/end logits equal to transformers'
logits; with explain off, the same result and nothing kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.tasks import text_inside
from engine.tasks.question_answering import QuestionAnswering
from engine.tasks.text_classification import TextClassification
from engine.tasks.token_classification import TokenClassification
from tests.engine.models.tiny_text import NER_LABELS, bert_config, distilbert_config, save_model

TEXT = "Ada Lovelace wrote the first programme in London."
CONTEXT = "Ada Lovelace wrote the first programme. She was born in London, the capital on the Thames river."
QUESTION = "Who wrote the first programme?"
LONG_TEXT = (TEXT + " ") * 12  # several windows of 64 tokens
HALF_ROUNDING = 5e-4  # attention is kept in float16: weights in [0, 1] move by at most this

HEADS = {
    "text": ("ForSequenceClassification", TextClassification, {}),
    "ner": ("ForTokenClassification", TokenClassification, {"labels": NER_LABELS}),
    "qa": ("ForQuestionAnswering", QuestionAnswering, {}),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import transformers

    made = {}
    for family, config in (("bert", bert_config), ("distilbert", distilbert_config)):
        for head, (suffix, _, settings) in HEADS.items():
            folder = tmp_path_factory.mktemp(f"{family}-{head}")
            model_class = getattr(transformers, ("Bert" if family == "bert" else "DistilBert") + suffix)
            save_model(model_class, config(**settings), folder, cased=True)
            made[family, head] = folder
    return made


def _oracle(folder, head):
    import transformers

    suffix = HEADS[head][0]
    return (
        getattr(transformers, "AutoModel" + suffix).from_pretrained(folder, attn_implementation="eager").eval(),
        transformers.AutoTokenizer.from_pretrained(folder),
    )


def _run(checkpoints, family, head, text=TEXT, **options):
    task = HEADS[head][1].load(checkpoints[family, head], device="cpu")
    if head == "qa":
        options.setdefault("question", QUESTION)
        text = CONTEXT if text is TEXT else text
    return task, task.run(text, **options)


def _reference(oracle, tokenizer, head, text=TEXT):
    pair = (QUESTION, CONTEXT) if head == "qa" else (text,)
    inputs = tokenizer(*pair, return_tensors="pt")
    if "token_type_ids" not in tokenizer.model_input_names:
        inputs.pop("token_type_ids", None)
    with torch.no_grad():
        return inputs, oracle(**inputs, output_attentions=True)


@pytest.mark.parametrize("family", ["bert", "distilbert"])
@pytest.mark.parametrize("head", list(HEADS))
def test_attention_and_pieces_equal_transformers(checkpoints, family, head):
    oracle, tokenizer = _oracle(checkpoints[family, head], head)
    task, result = _run(checkpoints, family, head, explain=True)
    inputs, expected = _reference(oracle, tokenizer, head)
    inside = result.internals
    assert inside["piece_ids"].tolist() == inputs["input_ids"][0].tolist()
    assert inside["pieces"].tolist() == tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    texts = (QUESTION, CONTEXT) if head == "qa" else (TEXT,)
    covered = [
        "" if s is None else texts[s][a:b] for s, (a, b) in zip(inputs.sequence_ids(0), inputs.encodings[0].offsets)
    ]
    assert inside["piece_texts"].tolist() == covered
    assert "Lovelace" in "".join(covered)
    attention = torch.stack(expected.attentions)[:, 0]  # (layers, heads, T, T)
    assert inside["attention"].dtype == np.float16
    assert inside["attention"].shape == attention.shape
    np.testing.assert_allclose(inside["attention"].astype(np.float32), attention.numpy(), atol=HALF_ROUNDING)
    if head == "text":
        np.testing.assert_allclose(inside["logits"], expected.logits[0].numpy(), atol=1e-5)
        assert inside["labels"].tolist() == [oracle.config.id2label[i] for i in range(oracle.config.num_labels)]
        np.testing.assert_allclose(inside["scores"], expected.logits[0].softmax(-1).numpy(), atol=1e-6)
    if head == "ner":
        probabilities = expected.logits[0].softmax(-1).numpy()
        np.testing.assert_allclose(inside["piece_probabilities"], probabilities, atol=1e-6)
        assert inside["text_pieces"].tolist() == inside["pieces"].tolist()
        assert inside["labels"].tolist() == NER_LABELS
    if head == "qa":
        context = np.array(inputs.sequence_ids(0)) == 1
        np.testing.assert_allclose(inside["start_logits"], expected.start_logits[0][context].numpy(), atol=1e-5)
        np.testing.assert_allclose(inside["end_logits"], expected.end_logits[0][context].numpy(), atol=1e-5)
        spans = inputs.encodings[0].offsets
        assert inside["context_spans"].tolist() == [list(spans[i]) for i in np.flatnonzero(context)]


@pytest.mark.parametrize("head", list(HEADS))
def test_explain_off_keeps_nothing_and_changes_nothing(checkpoints, head):
    task, plain = _run(checkpoints, "bert", head)
    explained = task.run(*_args(head), explain=True, **_options(head))
    again = task.run(*_args(head), explain=False, **_options(head))
    assert plain.internals == {} and again.internals == {}
    assert explained.internals
    assert plain.to_json() == again.to_json()  # bit for bit: the fused path, untouched
    # the explicit softmax path rounds differently, within float32 rounding
    assert explained.gist() == plain.gist()
    assert _scores(explained.to_json()) == pytest.approx(_scores(plain.to_json()), abs=1e-5)


def _scores(shown):
    items = shown if isinstance(shown, list) else [shown]
    return [item["score"] for item in items]


def _args(head):
    return (CONTEXT if head == "qa" else TEXT,)


def _options(head):
    return {"question": QUESTION} if head == "qa" else {}


def test_long_inputs_keep_the_first_pieces_of_the_first_window(checkpoints, monkeypatch):
    monkeypatch.setattr(text_inside, "ATTENTION_PIECES", 8)
    task, result = _run(checkpoints, "distilbert", "ner", LONG_TEXT, explain=True)
    inside = result.internals
    assert result.windows > 1
    assert inside["attention"].shape == (2, 4, 8, 8)
    whole = task.encode(LONG_TEXT)
    assert inside["text_pieces"].shape == (len(whole.ids),)
    assert inside["piece_probabilities"].shape == (len(whole.ids), len(NER_LABELS))
    assert not np.isnan(inside["piece_probabilities"]).any()
    np.testing.assert_allclose(inside["piece_probabilities"].sum(-1), 1.0, atol=1e-5)
    oracle, tokenizer = _oracle(task.folder, "ner")
    first = task.encode_windows(LONG_TEXT, max_length=task.max_length, stride=0)[0]  # any stride: the same first window
    with torch.no_grad():
        expected = oracle(torch.tensor([first.ids]), output_attentions=True).attentions
    top_left = torch.stack(expected)[:, 0, :, :8, :8].numpy()
    np.testing.assert_allclose(inside["attention"].astype(np.float32), top_left, atol=HALF_ROUNDING)


def test_qa_scores_cover_the_whole_context_once(checkpoints):
    context = CONTEXT * 6
    task, result = _run(checkpoints, "bert", "qa", context, explain=True, doc_stride=16, max_seq_len=48)
    inside = result.internals
    assert result.windows > 1
    starts = inside["context_spans"][:, 0]
    assert (np.diff(starts) > 0).all()  # along the context, each piece once
    assert inside["start_logits"].shape == inside["end_logits"].shape == starts.shape
    assert len(starts) == sum(1 for m in task.encode(context).special_tokens_mask if not m)
