"""Extractive question answering: the answer is a span of the text, found by scoring every token
as a start and as an end. Windows, masking, span choice and merging follow transformers 4.57's
question-answering pipeline (removed in 5.x), so answers and scores match it.

Two deliberate differences: `max_question_len` cuts long questions (the 4.57 pipeline ignored
it with fast tokenizers and failed when a question left no room), and windows that would not fit
(`max_seq_len` above the model's length, `doc_stride` above the room the question leaves) are
narrowed with a warning instead of failing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Encoding

from engine.errors import InputError
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, CheckInput, Hooks, Option, Result
from engine.tasks.text_common import LONG_TEXT, TextTask, check_text, require_tokens
from engine.tasks.text_inside import piece_internals

# Logit given to tokens that cannot be in the answer (the question, special tokens): far below
# any real logit, so their probability after the softmax is exactly zero.
MASKED_LOGIT = -10000.0


@dataclass
class Answer:
    answer: str
    score: float
    start: int  # character offsets into the text
    end: int


@dataclass
class Answers(Result):
    """The best answers, best first. An empty `answer` at 0..0 is the null answer: the text does
    not answer the question (only offered with `handle_impossible_answer`)."""

    answers: list[Answer]
    no_answer: bool  # the best answer is the null answer
    windows: int = 1

    def to_json(self) -> Any:
        items = [{"score": a.score, "start": a.start, "end": a.end, "answer": a.answer} for a in self.answers]
        return items[0] if len(items) == 1 else items


class QuestionAnswering(TextTask):
    """Answer a question from a text with a BERT or DistilBERT question-answering checkpoint."""

    name = "question-answering"
    title = "Question answering"
    default_model = "distilbert/distilbert-base-cased-distilled-squad"
    suggested_models = (
        "distilbert/distilbert-base-cased-distilled-squad",
        "deepset/bert-base-cased-squad2",
    )
    head = "question-answering"
    options = (
        Option("question", str, None, "the question to answer from the text (required)"),
        Option("top_k", int, 1, "how many answers to return, best first"),
        Option("doc_stride", int, 128, "tokens shared by neighbouring windows of a long text"),
        Option("max_answer_len", int, 15, "the longest answer, in tokens"),
        Option("max_seq_len", int, 384, "tokens per window, question included"),
        Option("max_question_len", int, 64, "the longest question, in tokens; longer ones are cut"),
        Option("handle_impossible_answer", bool, False, "allow the answer that the text holds no answer"),
        EXPLAIN,
    )

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Answers:
        hooks = hooks or Hooks()
        opts = self.resolve_options(options)
        if opts["question"] is None:
            raise InputError("question answering needs a question (--question)")
        for name in ("top_k", "max_answer_len", "max_seq_len", "max_question_len"):
            if opts[name] < 1:
                raise InputError(f"--{name.replace('_', '-')} must be 1 or more")
        if opts["doc_stride"] < 0:
            raise InputError("--doc-stride must be 0 or more")
        context = check_text(input)
        if hooks.on_progress is not None and len(context) > LONG_TEXT:
            hooks.on_progress(0, None, "reading the text into tokens")
        require_tokens(self.encode(context))
        warnings: list[str] = []
        question = self._fit_question(check_text(opts["question"], "question"), opts["max_question_len"], warnings)
        windows = self._windows(question, context, opts["max_seq_len"], opts["doc_stride"], warnings)

        def progress(done: int, total: int) -> None:
            if hooks.on_progress is not None:
                hooks.on_progress(done, total, f"reading window {done} of {total}")

        internals: dict[str, np.ndarray] | None = {} if opts["explain"] else None
        logits = self.forward(windows, cancel=hooks.cancel, on_progress=progress, internals=internals)
        if internals is not None:
            internals.update(piece_internals(self.tokenizer, windows[0], (question, context)))
            internals.update(_context_scores(windows, logits))
        found: list[Answer] = []
        null_score = 1e6  # the pipeline's starting value: any real score is lower
        for encoding, (start_logits, end_logits) in zip(windows, logits):
            check_cancel(hooks.cancel)
            spans, window_null = _best_spans(
                encoding, self.cls_id, start_logits.numpy(), end_logits.numpy(),
                opts["top_k"], opts["max_answer_len"],
            )
            null_score = min(null_score, window_null)
            for first, last, score in spans:
                start, end = _char_span(encoding, first, last)
                _add_answer(found, Answer(context[start:end], score, start, end))
        if opts["handle_impossible_answer"]:
            found.append(Answer("", null_score, 0, 0))
        found.sort(key=lambda a: a.score, reverse=True)
        found = found[: opts["top_k"]]
        no_answer = bool(found) and found[0].answer == "" and found[0].start == found[0].end == 0
        if no_answer:
            warnings.append("the most likely answer is that the text does not answer the question")
        return Answers(found, no_answer, windows=len(windows), warnings=warnings, internals=internals or {})

    @classmethod
    def check_inputs(cls) -> list[CheckInput]:
        context = (
            "Ada Lovelace was an English mathematician. In 1843 she published the first "
            "algorithm intended for Charles Babbage's Analytical Engine, which was never built."
        )
        questions = ("Who published the first algorithm?", "When was the algorithm published?")
        return [(context, {"question": question}) for question in questions]

    @property
    def cls_id(self) -> int | None:
        return self.tokenizer.token_to_id("[CLS]")

    def _fit_question(self, question: str, max_tokens: int, warnings: list[str]) -> str:
        """The question, cut after `max_tokens` tokens."""
        encoding = self.tokenizer.encode(question, add_special_tokens=False)
        if not encoding.ids:
            raise InputError("the question holds no readable characters")
        if len(encoding.ids) <= max_tokens:
            return question
        warnings.append(f"question cut to its first {max_tokens} tokens of {len(encoding.ids)}")
        return question[: encoding.offsets[max_tokens - 1][1]]

    def _windows(
        self, question: str, context: str, max_seq_len: int, stride: int, warnings: list[str]
    ) -> list[Encoding]:
        """Question first, then as much of the context as fits; long contexts in windows that
        share `stride` tokens."""
        if max_seq_len > self.max_length:
            warnings.append(f"max_seq_len lowered to the model's {self.max_length} tokens")
            max_seq_len = self.max_length
        question_tokens = len(self.tokenizer.encode(question, add_special_tokens=False).ids)
        room = max_seq_len - question_tokens - self.tokenizer.num_special_tokens_to_add(True)
        if room < 1:
            raise InputError(
                f"the question ({question_tokens} tokens) leaves no room for the text in "
                f"windows of {max_seq_len} tokens: ask a shorter question"
            )
        if stride >= room:
            stride = room // 2
            warnings.append(f"doc_stride lowered to {stride} tokens to fit the windows")
        windows = self.encode_windows(question, context, max_length=max_seq_len, stride=stride, only_second=True)
        if len(windows) > 1:
            warnings.append(f"the text was read in {len(windows)} overlapping windows of {max_seq_len} tokens")
        return windows


def _best_spans(
    encoding: Encoding,
    cls_id: int | None,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    top_k: int,
    max_answer_len: int,
) -> tuple[list[tuple[int, int, float]], float]:
    """The window's best (first token, last token, score) spans inside the context, `top_k * 2
    + 10` of them as transformers 4.54 and later take, and the score of the null answer (start
    and end both on the [CLS] token). Spans of probability zero are left out, where the
    pipeline could pad its list with them (impossible spans, in arbitrary order)."""
    # tokens of the context may be in the answer; so may [CLS], which stands for "no answer"
    allowed = np.array([sequence == 1 for sequence in encoding.sequence_ids])
    if cls_id is not None:
        allowed |= np.array(encoding.ids) == cls_id
    start = _softmax(np.where(allowed, start_logits, np.float32(MASKED_LOGIT)))
    end = _softmax(np.where(allowed, end_logits, np.float32(MASKED_LOGIT)))
    null_score = float(start[0] * end[0])
    start[0] = end[0] = 0.0  # the null answer is scored on its own, not as a span

    # pairs[i, j] = P(start at i) * P(end at j), kept only where i <= j < i + max_answer_len
    pairs = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = pairs.ravel()
    # more candidates than asked for: several spans widen to the same words and merge later
    count = min(top_k * 2 + 10, flat.size)
    best = np.argpartition(-flat, count - 1)[:count]
    best = best[np.argsort(-flat[best], kind="stable")]
    firsts, lasts = np.unravel_index(best, pairs.shape)
    spans = [
        (int(i), int(j), float(pairs[i, j]))
        for i, j in zip(firsts, lasts)
        if allowed[i] and allowed[j] and pairs[i, j] > 0
    ]
    return spans, null_score


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _char_span(encoding: Encoding, first: int, last: int) -> tuple[int, int]:
    """Characters of the context from the first token's word to the last token's word (whole
    words, as the pipeline's `align_to_words`), or from the tokens' own offsets when a token
    belongs to no word."""
    first_word, last_word = encoding.token_to_word(first), encoding.token_to_word(last)
    if first_word is not None and last_word is not None:
        begin = encoding.word_to_chars(first_word, 1)
        finish = encoding.word_to_chars(last_word, 1)
        if begin is not None and finish is not None:
            return begin[0], finish[1]
    return encoding.offsets[first][0], encoding.offsets[last][1]


def _add_answer(answers: list[Answer], new: Answer) -> None:
    """Add `new`, or add its score to an answer with the same text (ignoring case) that an
    overlapping window or a neighbouring span already found."""
    for answer in answers:
        if answer.answer.lower() == new.answer.lower():
            answer.score += new.score
            return
    answers.append(new)


def _context_scores(windows: list[Encoding], logits: list[Any]) -> dict[str, np.ndarray]:
    """The start and end logits of every piece of the context, along it: `context_spans`
    ((pieces, 2) characters of the context), `start_logits` and `end_logits` (pieces,). A
    piece that two windows read takes the first window's scores."""
    by_start: dict[tuple[int, int], tuple[float, float]] = {}
    for encoding, (start_logits, end_logits) in zip(windows, logits):
        for i, sequence in enumerate(encoding.sequence_ids):
            if sequence == 1:
                by_start.setdefault(encoding.offsets[i], (float(start_logits[i]), float(end_logits[i])))
    spans = sorted(by_start)
    return {
        "context_spans": np.array(spans, dtype=np.int32).reshape(-1, 2),
        "start_logits": np.array([by_start[span][0] for span in spans], dtype=np.float32),
        "end_logits": np.array([by_start[span][1] for span in spans], dtype=np.float32),
    }
