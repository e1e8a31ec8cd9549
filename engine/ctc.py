"""Greedy CTC decoding for character-vocabulary checkpoints (Wav2Vec2, HuBERT), giving the same
text, character and word offsets as transformers' `Wav2Vec2CTCTokenizer.decode` would.

Graves et al., "Connectionist Temporal Classification" (2006): one label per audio frame, a
blank label between emissions. Decoding: merge runs of the same label, then drop the blank
(the tokenizer's pad token). Merging first is what lets "LL" survive as L, blank, L.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from engine.config import read_json
from engine.errors import CheckpointError

#: What `clean_up_tokenization_spaces` removes, in the order transformers applies it.
_CLEANUPS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)  # fmt: skip


@dataclass(frozen=True)
class Span:
    """A character or word with the frames it covers: [start, end) in model frames."""

    text: str
    start: int
    end: int


class CTCVocabulary:
    """The token table of vocab.json and the decoding settings of tokenizer_config.json."""

    def __init__(
        self,
        tokens: dict[int, str],
        *,
        blank: str = "<pad>",
        unknown: str = "<unk>",
        word_delimiter: str | None = "|",
        delimiter_text: str = " ",
        lower_case: bool = False,
        clean_up_spaces: bool = False,
    ) -> None:
        self.tokens = tokens
        self.blank = blank
        self.unknown = unknown
        self.word_delimiter = word_delimiter
        self.delimiter_text = delimiter_text
        self.lower_case = lower_case
        self.clean_up_spaces = clean_up_spaces
        ids = {token: i for i, token in tokens.items()}
        self.blank_id = ids.get(blank)
        self.delimiter_id = ids.get(word_delimiter) if word_delimiter is not None else None

    @classmethod
    def from_folder(cls, folder: Path) -> CTCVocabulary:
        folder = Path(folder)
        path = folder / "vocab.json"
        if not path.is_file():
            raise CheckpointError(f"{folder} has no vocab.json, which CTC decoding needs")
        settings = _tokenizer_settings(folder)
        vocab = read_json(path)
        target = settings.get("target_lang")
        if vocab and all(isinstance(v, dict) for v in vocab.values()):  # one vocabulary per language
            if target not in vocab:
                raise CheckpointError(
                    f"vocab.json in {folder} holds one vocabulary per language; tokenizer_config.json "
                    f"must name one as target_lang (it names {target!r})"
                )
            vocab = vocab[target]
        try:
            tokens = {int(i): str(t) for t, i in vocab.items()}
        except (TypeError, ValueError):
            raise CheckpointError(f"vocab.json in {folder} does not map tokens to ids") from None
        for i, token in _added_tokens(folder, settings).items():
            tokens.setdefault(i, token)
        return cls(
            tokens,
            blank=_token_text(settings.get("pad_token"), "<pad>"),
            unknown=_token_text(settings.get("unk_token"), "<unk>"),
            word_delimiter=_token_text(settings.get("word_delimiter_token", "|"), None),
            delimiter_text=settings.get("replace_word_delimiter_char", " "),
            lower_case=bool(settings.get("do_lower_case", False)),
            clean_up_spaces=bool(settings.get("clean_up_tokenization_spaces", False)),
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def _groups(self, ids: Sequence[int]) -> list[Span]:
        """Runs of equal tokens as text and frame range, the blank runs included. Runs are of
        equal text, not ids: an unknown id next to the unknown token is one run."""
        spans, start = [], 0
        for text, run in groupby(self.tokens.get(int(i), self.unknown) for i in ids):
            length = sum(1 for _ in run)
            spans.append(Span(text, start, start + length))
            start += length
        return spans

    def char_spans(self, ids: Sequence[int]) -> list[Span]:
        """One span per emitted character (the delimiter already turned into its text)."""
        return [
            Span(self.delimiter_text if g.text == self.word_delimiter else g.text, g.start, g.end)
            for g in self._groups(ids)
            if g.text != self.blank
        ]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of per-frame argmax ids."""
        text = "".join(span.text for span in self.char_spans(ids)).strip()
        if self.lower_case:
            text = text.lower()
        if self.clean_up_spaces:
            for old, new in _CLEANUPS:
                text = text.replace(old, new)
        return text

    def word_spans(self, ids: Sequence[int]) -> list[Span]:
        """Words between delimiters, each from its first character's first frame to its last
        character's last frame (the characters as emitted, without lower-casing)."""
        words: list[Span] = []
        current: list[Span] = []
        for span in self.char_spans(ids) + [Span(self.delimiter_text, -1, -1)]:
            if span.text == self.delimiter_text:
                if current:
                    words.append(Span("".join(c.text for c in current), current[0].start, current[-1].end))
                current = []
            else:
                current.append(span)
        return words


def _tokenizer_settings(folder: Path) -> dict[str, Any]:
    """tokenizer_config.json over special_tokens_map.json, either of which may be absent."""
    settings: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            settings.update({k: v for k, v in read_json(folder / name).items() if v is not None})
    return settings


def _added_tokens(folder: Path, settings: dict[str, Any]) -> dict[int, str]:
    """Tokens added after training the vocabulary (ids past vocab.json), old or new format."""
    added: dict[int, str] = {}
    path = folder / "added_tokens.json"
    if path.is_file():
        try:
            added.update({int(i): str(t) for t, i in json.loads(path.read_text("utf-8")).items()})
        except (ValueError, TypeError, AttributeError):
            raise CheckpointError(f"added_tokens.json in {folder} is not a token-to-id table") from None
    for i, token in (settings.get("added_tokens_decoder") or {}).items():
        added[int(i)] = _token_text(token, "")
    return added


def _token_text(value: Any, default: str | None) -> str | None:
    """A special token written as a plain string or as {"content": ...}."""
    if isinstance(value, dict):
        return str(value.get("content", default))
    return default if value is None else str(value)
