"""Token classification (named entities): a label for every token, then tokens grouped into words
and entities exactly as transformers' token-classification pipeline groups them.

Long texts: the pipeline, by default, silently truncates to the model's length; given a
`stride` it reads the whole text in overlapping windows instead. We always read the whole
text that way (windows sharing `stride` tokens, entities from the overlaps merged as the
pipeline merges them), so results equal `pipeline(..., stride=stride)`. The pipeline refuses
windows with aggregation "none"; we allow them, with `index` counted over the whole text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Encoding

from engine.errors import CheckpointError, InputError
from engine.runtime import check_cancel
from engine.tasks.base import EXPLAIN, Hooks, Option, Result
from engine.tasks.text_common import LONG_TEXT, TextTask, check_text, require_tokens
from engine.tasks.text_inside import piece_internals

STRATEGIES = ("none", "simple", "first", "average", "max")


@dataclass
class Entity:
    label: str  # a token's label ("B-PER") for "none", else the entity type ("PER")
    score: float
    word: str
    start: int  # character offsets into the original text
    end: int
    index: int | None = None  # the token's position, for "none" only


@dataclass
class Entities(Result):
    entities: list[Entity]
    grouped: bool  # False for aggregation "none": one entry per token
    windows: int = 1

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for e in self.entities:
            item: dict[str, Any] = {"entity_group" if self.grouped else "entity": e.label, "score": e.score}
            if e.index is not None:
                item["index"] = e.index
            item.update(word=e.word, start=e.start, end=e.end)
            out.append(item)
        return out


@dataclass
class _Token:
    """One non-special token with its label scores, before any grouping."""

    word: str
    scores: np.ndarray  # (num_labels,) probabilities
    start: int
    end: int
    index: int
    is_subword: bool


class TokenClassification(TextTask):
    """Named entities with a BERT or DistilBERT token-classification checkpoint: every token's
    final vector through the classifier, softmax per token, then words and entities."""

    name = "token-classification"
    title = "Named entities"
    default_model = "dslim/bert-base-NER"
    suggested_models = ("dslim/bert-base-NER", "dslim/distilbert-NER")
    head = "token-classification"
    options = (
        Option(
            "aggregation_strategy",
            str,
            "simple",
            "how tokens become entities: none (every token), simple (adjacent tokens of one type), "
            "first, average or max (whole words first, by their first token, mean or best score)",
            STRATEGIES,
        ),
        Option("stride", int, 128, "tokens shared by neighbouring windows on texts longer than the model reads at once"),
        Option(
            "ignore_labels",
            str,
            "O",
            "labels left out of the result, separated by commas; empty keeps every label, O included",
        ),
        EXPLAIN,
    )

    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Entities:
        hooks = hooks or Hooks()
        if isinstance(options.get("ignore_labels"), (list, tuple, set)):  # as the pipeline takes it
            options = {**options, "ignore_labels": ",".join(options["ignore_labels"])}
        opts = self.resolve_options(options)
        strategy, stride = opts["aggregation_strategy"], opts["stride"]
        ignored = {label.strip() for label in opts["ignore_labels"].split(",") if label.strip()}
        if stride < 0:
            raise InputError("--stride must be 0 or more")
        text = check_text(input)
        if hooks.on_progress is not None and len(text) > LONG_TEXT:
            hooks.on_progress(0, None, "reading the text into tokens")
        whole = self.encode(text)
        require_tokens(whole)
        warnings: list[str] = []
        windows, step = [whole], 0
        if len(whole.ids) > self.max_length:
            content = self.max_length - self.tokenizer.num_special_tokens_to_add(False)
            if stride >= content:
                stride = content // 2
                warnings.append(f"stride lowered to {stride} tokens to fit windows of {self.max_length}")
            windows = self.encode_windows(text, max_length=self.max_length, stride=stride)
            step = content - stride
            warnings.append(
                f"the text ({len(whole.ids)} tokens) was read in {len(windows)} overlapping windows "
                f"of {self.max_length} tokens"
            )
        def progress(done: int, total: int) -> None:
            if hooks.on_progress is not None and total > 1:
                hooks.on_progress(done, total, f"reading window {done} of {total}")

        internals: dict[str, np.ndarray] | None = {} if opts["explain"] else None
        logits = self.forward(windows, cancel=hooks.cancel, on_progress=progress, internals=internals)
        probabilities = [_softmax(window_logits.numpy()) for window_logits in logits]
        if internals is not None:
            internals.update(piece_internals(self.tokenizer, windows[0], (text,)))
            internals.update(piece_internals(self.tokenizer, whole, (text,), "text_"))
            internals.update(self._piece_probabilities(whole, windows, probabilities, step))
        entities: list[dict[str, Any]] = []
        for number, (encoding, window_probabilities) in enumerate(zip(windows, probabilities)):
            check_cancel(hooks.cancel)  # grouping a long text's windows takes a while too
            tokens = self._tokens(text, encoding, window_probabilities, number * step)
            entities += [
                e for e in self._aggregate(tokens, strategy) if e["entity"] not in ignored
            ]
        if len(windows) > 1:
            entities = _merge_overlaps(entities)
        found = [
            Entity(e["entity"], float(e["score"]), e["word"], e["start"], e["end"], e.get("index"))
            for e in entities
        ]
        return Entities(
            found, grouped=strategy != "none", windows=len(windows), warnings=warnings, internals=internals or {}
        )

    def _piece_probabilities(
        self, whole: Encoding, windows: list[Encoding], probabilities: list[np.ndarray], step: int
    ) -> dict[str, np.ndarray]:
        """Every piece of the whole text with its label probabilities before any grouping
        (`piece_probabilities`, (pieces, labels)), and the label names. A piece that two windows
        read takes the first window's; the special pieces come from the first and last window."""
        table = np.full((len(whole.ids), probabilities[0].shape[-1]), np.nan, dtype=np.float32)
        for number, (encoding, scores) in enumerate(zip(windows, probabilities)):
            for i, special in enumerate(encoding.special_tokens_mask):
                at = i + number * step
                if not special and np.isnan(table[at, 0]):
                    table[at] = scores[i]
        table[0] = probabilities[0][0]
        table[-1] = probabilities[-1][-1]
        labels = np.array([self.label(i) for i in range(table.shape[1])], dtype=np.str_)
        return {"piece_probabilities": table, "labels": labels}

    # ----------------------------------------------------------------------- tokens

    def _tokens(self, text: str, encoding: Encoding, scores: np.ndarray, shift: int) -> list[_Token]:
        """The window's non-special tokens; `shift` turns window positions into positions in the
        whole text's tokens."""
        word_aware = bool(getattr(self.tokenizer.model, "continuing_subword_prefix", None))
        tokens = []
        for i, token_id in enumerate(encoding.ids):
            if encoding.special_tokens_mask[i]:
                continue
            start, end = encoding.offsets[i]
            piece = self.tokenizer.id_to_token(token_id)
            if piece is None:  # the ids are the tokenizer's own, so each is in its vocabulary
                raise CheckpointError(f"the tokenizer gave id {token_id} but has no token for it")
            original = text[start:end]
            if word_aware:
                # "##ing" covers 3 characters of the text: a piece that is not as long as the
                # text it covers continues the word before it
                is_subword = len(piece) != len(original)
            else:
                is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == self.unk_id:
                # show what the text says rather than "[UNK]"
                piece, is_subword = original, False
            tokens.append(_Token(piece, scores[i], start, end, i + shift, is_subword))
        return tokens

    def _join(self, pieces: list[str]) -> str:
        decoder = self.tokenizer.decoder
        return decoder.decode(pieces) if decoder is not None else " ".join(pieces)

    # ----------------------------------------------------------------------- grouping

    def _aggregate(self, tokens: list[_Token], strategy: str) -> list[dict[str, Any]]:
        if strategy in ("none", "simple"):
            labelled = []
            for t in tokens:
                best = int(t.scores.argmax())
                labelled.append(
                    {"entity": self.label(best), "score": t.scores[best], "index": t.index,
                     "word": t.word, "start": t.start, "end": t.end}
                )
        else:
            labelled = [self._word(group, strategy) for group in _words(tokens)]
        if strategy == "none":
            return labelled
        return [self._entity(run) for run in _runs(labelled)]

    def _word(self, pieces: list[_Token], strategy: str) -> dict[str, Any]:
        """One word from its tokens, with one label for the whole word."""
        if strategy == "first":
            scores = pieces[0].scores
        elif strategy == "max":
            scores = max(pieces, key=lambda t: t.scores.max()).scores
        else:  # average
            scores = np.nanmean(np.stack([t.scores for t in pieces]), axis=0)
        best = int(scores.argmax())
        return {
            "entity": self.label(best),
            "score": scores[best],
            "word": self._join([t.word for t in pieces]),
            "start": pieces[0].start,
            "end": pieces[-1].end,
        }

    def _entity(self, run: list[dict[str, Any]]) -> dict[str, Any]:
        """Adjacent labelled tokens or words of one type as one entity, with their mean score."""
        return {
            "entity": run[0]["entity"].split("-", 1)[-1],
            "score": np.nanmean([item["score"] for item in run]),
            "word": self._join([item["word"] for item in run]),
            "start": run[0]["start"],
            "end": run[-1]["end"],
        }


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _words(tokens: list[_Token]) -> list[list[_Token]]:
    """Tokens grouped into words: a sub-word token joins the word before it."""
    words: list[list[_Token]] = []
    for t in tokens:
        if words and t.is_subword:
            words[-1].append(t)
        else:
            words.append([t])
    return words


def _split_tag(label: str) -> tuple[str, str]:
    """("B", "PER") for "B-PER"; a label without a B-/I- prefix counts as a continuation."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _runs(labelled: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive items of the same type; a B- tag always starts a new run."""
    runs: list[list[dict[str, Any]]] = []
    for item in labelled:
        tag, kind = _split_tag(item["entity"])
        if runs and tag != "B" and kind == _split_tag(runs[-1][-1]["entity"])[1]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _merge_overlaps(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities found twice where windows overlap: of two that overlap, keep the longer one, or
    at equal length the higher score (the pipeline's rule for strided windows)."""
    if not entities:
        return entities
    ordered = sorted(entities, key=lambda e: e["start"])
    kept = []
    current = ordered[0]
    for e in ordered:
        if current["start"] <= e["start"] < current["end"]:
            longer = e["end"] - e["start"] - (current["end"] - current["start"])
            if longer > 0 or (longer == 0 and e["score"] > current["score"]):
                current = e
        else:
            kept.append(current)
            current = e
    kept.append(current)
    return kept
