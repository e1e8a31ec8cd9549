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
from pathlib import Path
from typing import Any, overload

import numpy as np

from engine.config import read_json
from engine.errors import CheckpointError

#: What `clean_up_tokenization_spaces` removes, in the order transformers applies it.
_CLEANUPS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)  # fmt: skip


#: Per-frame token ids: a list, or the argmax array a model gives.
TokenIds = Sequence[int] | np.ndarray


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
        # Runs are runs of equal *text* (an unknown id beside the unknown token is one run), so
        # every id maps to the index of its text in `_texts`, ids outside the table to unknown.
        self._texts = list(dict.fromkeys([*tokens.values(), unknown]))
        index = {text: i for i, text in enumerate(self._texts)}
        self._text_index = np.full(max(tokens, default=-1) + 1, index[unknown], dtype=np.int64)
        for i, text in tokens.items():
            if i >= 0:
                self._text_index[i] = index[text]
        self._unknown_index = index[unknown]
        self._blank_index = index.get(blank, -1)
        self._emitted = [delimiter_text if t == word_delimiter else t for t in self._texts]
        self._is_space = np.array([t == delimiter_text for t in self._emitted], dtype=bool)

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

    def _runs(self, ids: TokenIds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each run of equal tokens, blanks included: its text index, first frame, end frame."""
        frames = np.asarray(ids, dtype=np.int64).reshape(-1)
        inside = (frames >= 0) & (frames < len(self._text_index))
        texts = np.full(len(frames), self._unknown_index, dtype=np.int64)
        texts[inside] = self._text_index[frames[inside]]
        changes = np.ones(len(texts), dtype=bool)
        changes[1:] = texts[1:] != texts[:-1]
        starts = np.flatnonzero(changes)
        ends = np.append(starts[1:], len(texts))
        return texts[starts], starts, ends

    def char_spans(self, ids: TokenIds) -> list[Span]:
        """One span per emitted character (the delimiter already turned into its text)."""
        texts, starts, ends = self._runs(ids)
        keep = texts != self._blank_index
        return [
            Span(self._emitted[t], s, e)
            for t, s, e in zip(texts[keep].tolist(), starts[keep].tolist(), ends[keep].tolist())
        ]

    def decode(self, ids: TokenIds) -> str:
        """The text of per-frame argmax ids."""
        texts = self._runs(ids)[0]
        text = "".join(self._emitted[t] for t in texts[texts != self._blank_index].tolist()).strip()
        if self.lower_case:
            text = text.lower()
        if self.clean_up_spaces:
            for old, new in _CLEANUPS:
                text = text.replace(old, new)
        return text

    def word_spans(self, ids: TokenIds) -> list[Span]:
        """Words between delimiters, each from its first character's first frame to its last
        character's last frame (the characters as emitted, without lower-casing)."""
        texts, starts, ends = self._runs(ids)
        emitted = texts != self._blank_index
        chars, starts, ends = texts[emitted], starts[emitted], ends[emitted]
        in_word = ~self._is_space[chars]
        edges = np.diff(np.concatenate([[0], in_word.astype(np.int8), [0]]))
        firsts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # chars [first, stop)
        return [
            Span("".join(self._emitted[t] for t in chars[a:b].tolist()), int(starts[a]), int(ends[b - 1]))
            for a, b in zip(firsts.tolist(), stops.tolist())
        ]


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


@overload
def _token_text(value: Any, default: str) -> str: ...


@overload
def _token_text(value: Any, default: None) -> str | None: ...


def _token_text(value: Any, default: str | None) -> str | None:
    """A special token written as a plain string or as {"content": ...}."""
    if isinstance(value, dict):
        return str(value.get("content", default))
    return default if value is None else str(value)
