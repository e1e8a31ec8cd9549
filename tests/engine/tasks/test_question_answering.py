"""The question-answering task against a reference written here from transformers 4.57's
question-answering pipeline (removed in 5.x), run on the transformers model's own logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.tasks.question_answering import QuestionAnswering
from tests.engine.models.tiny_text import bert_config, distilbert_config, save_model, save_tokenizer

CONTEXTS = [
    "Ada Lovelace wrote the first programme. She was born in London, the capital on the Thames river.",
    "Marie Curie was born in Warsaw and did the analysis of radium in Paris (1898)!",
    "Café 🙂 emoji 👍🏽 in Zürich: the mathematician lived there.",
    "مرحبا بالعالم في لندن and שלום עולם בפריז",
]
QUESTIONS = ["Who wrote the first programme?", "Where was she born?"]
LONG_CONTEXT = " ".join(CONTEXTS[:2]) * 8  # several windows of 64 tokens
MERGED: list[str] = []  # answers the reference found twice and merged


def reference_answers(model, tokenizer, question, context, *, top_k=1, doc_stride=16, max_answer_len=15,
                      max_seq_len=64, handle_impossible_answer=False):
    """What transformers 4.57's QuestionAnsweringPipeline returned, for a fast tokenizer whose
    padding side is right (question first). Since 4.54 each window offers top_k * 2 + 10
    candidates (with align_to_words, the default) before answers are merged."""
    candidates_per_window = top_k * 2 + 10
    encoded = tokenizer(
        text=question, text_pair=context, padding="do_not_pad", truncation="only_second",
        max_length=max_seq_len, stride=doc_stride, return_token_type_ids=True,
        return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True,
    )
    answers, min_null_score = [], 1000000
    for span in range(len(encoded["input_ids"])):
        ids = np.array(encoded["input_ids"][span])
        p_mask = np.array([s != 1 for s in encoded.sequence_ids(span)])
        p_mask[ids == tokenizer.cls_token_id] = 0
        inputs = {k: torch.tensor([encoded[k][span]]) for k in tokenizer.model_input_names}
        with torch.no_grad():
            out = model(**inputs)
        undesired = np.abs(p_mask.astype(int) - 1) & np.array(encoded["attention_mask"][span])
        start = np.where(undesired == 0, -10000.0, out.start_logits[0].numpy())
        end = np.where(undesired == 0, -10000.0, out.end_logits[0].numpy())
        start = np.exp(start - start.max()); start = start / start.sum()
        end = np.exp(end - end.max()); end = end / end.sum()
        if handle_impossible_answer:
            min_null_score = min(min_null_score, (start[0] * end[0]).item())
        start[0] = end[0] = 0.0
        candidates = np.tril(np.triu(np.matmul(start[:, None], end[None, :])), max_answer_len - 1)
        flat = candidates.flatten()
        if len(flat) < candidates_per_window:
            order = np.argsort(-flat)
        else:
            part = np.argpartition(-flat, candidates_per_window)[0:candidates_per_window]
            order = part[np.argsort(-flat[part])]
        starts, ends = np.unravel_index(order, candidates.shape)
        keep = np.isin(starts, undesired.nonzero()) & np.isin(ends, undesired.nonzero())
        encoding = encoded[span]
        for s, e in zip(starts[keep], ends[keep]):
            try:
                first = encoding.word_to_chars(encoding.token_to_word(s), sequence_index=1)[0]
                last = encoding.word_to_chars(encoding.token_to_word(e), sequence_index=1)[1]
            except Exception:
                first, last = encoding.offsets[s][0], encoding.offsets[e][1]
            target = context[first:last]
            same = [a for a in answers if a["answer"].lower() == target.lower()]
            if same:
                same[0]["score"] += candidates[s, e].item()
                MERGED.append(target)
            else:
                answers.append({"score": candidates[s, e].item(), "start": first, "end": last, "answer": target})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


def _favour_cls(model, inputs: dict) -> None:
    """Point the QA head at what sets the [CLS] token apart in `inputs`, so that "no answer"
    wins there."""
    base = getattr(model, "distilbert", None) or model.bert
    with torch.no_grad():
        hidden = base(**inputs).last_hidden_state[0]
        direction = hidden[0] - hidden[1:].mean(0)
        direction = direction / direction.norm()
        model.qa_outputs.weight.copy_(20.0 * direction.expand(2, -1))
        model.qa_outputs.bias.zero_()


@pytest.fixture(scope="module")
def setups(tmp_path_factory):
    from transformers import AutoTokenizer, BertForQuestionAnswering, DistilBertForQuestionAnswering

    made = {}
    for kind, cls, config, cased in (
        ("bert", BertForQuestionAnswering, bert_config(), True),
        ("distilbert", DistilBertForQuestionAnswering, distilbert_config(), False),
    ):
        folder = tmp_path_factory.mktemp(f"{kind}-qa")
        oracle = save_model(cls, config, folder, cased=cased)
        made[kind] = (QuestionAnswering.load(folder, device="cpu"), oracle, AutoTokenizer.from_pretrained(folder))
    folder = tmp_path_factory.mktemp("null-qa")
    save_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    oracle = DistilBertForQuestionAnswering(distilbert_config()).eval()
    _favour_cls(oracle, tokenizer(QUESTIONS[0], CONTEXTS[1], return_tensors="pt"))
    oracle.save_pretrained(folder)
    made["null"] = (QuestionAnswering.load(folder, device="cpu"), oracle, tokenizer)
    return made


def _assert_same(got, expected, context: str) -> None:
    got = got if isinstance(got, list) else [got]
    expected = expected if isinstance(expected, list) else [expected]
    assert [(a["answer"], a["start"], a["end"]) for a in got] == [
        (a["answer"], a["start"], a["end"]) for a in expected
    ], context
    for g, e in zip(got, expected):
        assert g["score"] == pytest.approx(e["score"], abs=1e-5), context


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_answers_match_the_reference(setups, kind):
    task, oracle, tokenizer = setups[kind]
    MERGED.clear()
    for context in CONTEXTS:
        for question in QUESTIONS:
            expected = reference_answers(oracle, tokenizer, question, context)
            got = task.run(context, question=question, max_seq_len=64, doc_stride=16).to_json()
            assert isinstance(got, dict)
            _assert_same(got, expected, f"{question} / {context}")
            assert context[got["start"] : got["end"]] == got["answer"]
    assert MERGED  # spans that widen to the same words were merged, so that path is compared


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
@pytest.mark.parametrize("settings", [
    dict(top_k=1, doc_stride=16),
    dict(top_k=4, doc_stride=20, max_answer_len=5),
    dict(top_k=3, doc_stride=8, handle_impossible_answer=True),
])
def test_long_contexts_match_the_reference_window_by_window(setups, kind, settings):
    task, oracle, tokenizer = setups[kind]
    expected = reference_answers(oracle, tokenizer, QUESTIONS[0], LONG_CONTEXT, **settings)
    result = task.run(LONG_CONTEXT, question=QUESTIONS[0], max_seq_len=64, **settings)
    assert result.windows > 3
    _assert_same(result.to_json(), expected, str(settings))
    assert len(result.answers) == settings["top_k"]


def test_the_null_answer_can_win_and_says_so(setups):
    task, oracle, tokenizer = setups["null"]
    context = CONTEXTS[1]
    expected = reference_answers(oracle, tokenizer, QUESTIONS[0], context, top_k=2, handle_impossible_answer=True)
    result = task.run(context, question=QUESTIONS[0], top_k=2, max_seq_len=64, doc_stride=16,
                      handle_impossible_answer=True)
    _assert_same(result.to_json(), expected, "null")
    assert result.no_answer
    assert result.to_json()[0] == {"score": pytest.approx(expected[0]["score"], abs=1e-5), "start": 0, "end": 0, "answer": ""}
    assert any("does not answer" in w for w in result.warnings)
    # without handle_impossible_answer the best span is returned all the same
    plain = task.run(context, question=QUESTIONS[0], max_seq_len=64, doc_stride=16)
    assert not plain.no_answer and plain.to_json()["answer"]


def test_a_100k_character_context_is_read_in_windows(setups):
    task, _, _ = setups["distilbert"]
    context = ("Ada Lovelace lived in London. " * 4000)[:100_000]
    seen = []
    from engine.tasks.base import Hooks

    result = task.run(context, question="Where did Ada live?", max_seq_len=64, doc_stride=0,
                      hooks=Hooks(on_progress=lambda done, total, message: seen.append((done, total))))
    assert result.windows > 400
    answer = result.answers[0]
    assert context[answer.start : answer.end] == answer.answer
    assert seen[-1] == (result.windows, result.windows)


def test_a_long_context_is_cancelled_between_windows(setups):
    import threading

    from engine.errors import Cancelled
    from engine.tasks.base import Hooks

    task, _, _ = setups["distilbert"]
    context = ("Ada Lovelace lived in London. " * 4000)[:50_000]
    stop, seen = threading.Event(), []

    def progress(done, total, message):
        seen.append(done)
        stop.set()  # after the first group of windows

    with pytest.raises(Cancelled):
        task.run(context, question="Where?", max_seq_len=64, doc_stride=0, hooks=Hooks(on_progress=progress, cancel=stop))
    assert len(seen) == 1 and seen[0] < 200


def test_default_windows_fit_a_model_shorter_than_384_tokens(setups):
    task, _, _ = setups["bert"]
    result = task.run(LONG_CONTEXT, question=QUESTIONS[1])
    assert any("max_seq_len lowered" in w for w in result.warnings)
    assert any("doc_stride lowered" in w for w in result.warnings)
    assert result.answers


def test_long_questions_are_cut_and_questions_too_long_for_a_window_refused(setups):
    task, _, _ = setups["bert"]
    question = "Who wrote the first programme in London " * 8
    result = task.run(CONTEXTS[0], question=question, max_seq_len=64, max_question_len=20)
    assert any("question cut" in w for w in result.warnings)
    with pytest.raises(InputError, match="shorter question"):
        task.run(CONTEXTS[0], question=question, max_seq_len=64, max_question_len=200)


@pytest.mark.parametrize("question", [None, "", "   ", "\u200b"])
def test_missing_or_empty_questions_are_input_errors(setups, question):
    task, _, _ = setups["bert"]
    options = {} if question is None else {"question": question}
    with pytest.raises(InputError, match="question"):
        task.run(CONTEXTS[0], **options)


@pytest.mark.parametrize("context", ["", " \n ", "\u200b"])
def test_empty_contexts_are_input_errors(setups, context):
    task, _, _ = setups["bert"]
    with pytest.raises(InputError):
        task.run(context, question=QUESTIONS[0])


def test_bad_numbers_are_input_errors(setups):
    task, _, _ = setups["bert"]
    for options in (dict(top_k=0), dict(max_answer_len=0), dict(doc_stride=-1), dict(max_seq_len="many")):
        with pytest.raises(InputError):
            task.run(CONTEXTS[0], question=QUESTIONS[0], **options)


def test_info_describes_the_model(setups):
    task, oracle, _ = setups["bert"]
    info = task.info()
    assert info["architecture"] == "BertForQuestionAnswering"
    assert info["layers"] == oracle.config.num_hidden_layers
    assert info["feed_forward_size"] == oracle.config.intermediate_size
    assert info["parameters"] == sum(p.numel() for p in oracle.parameters())


def test_a_checkpoint_for_another_task_is_named_in_the_error(setups):
    from engine.errors import CheckpointError
    from engine.tasks.text_classification import TextClassification

    task, _, _ = setups["bert"]
    with pytest.raises(CheckpointError, match="BertForQuestionAnswering; text classification needs"):
        TextClassification.load(task.folder, device="cpu")
