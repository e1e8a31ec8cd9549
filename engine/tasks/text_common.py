"""What the three text tasks share: a BERT-family model with the task's head, the checkpoint's
tokenizer, windows over long inputs, batching, and the facts the app shows about the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tokenizers import Encoding

from engine.config import id2label
from engine.errors import InputError
from engine.models import bert, distilbert
from engine.probe import maybe_watching
from engine.runtime import CancelFlag, check_cancel
from engine.tasks.base import Family, Task, find_family
from engine.tasks.labels import label_name
from engine.tasks.text_inside import keep_attention, stack_attention
from engine.tokenization import load_tokenizer, tokenizer_settings


FAMILIES: dict[str, Family] = {
    "bert": Family("BERT", bert.BertConfig.from_json, bert.HEADS, bert.adapt, bert.describe),
    "distilbert": Family(
        "DistilBERT", distilbert.DistilBertConfig.from_json, distilbert.HEADS, distilbert.adapt, distilbert.describe
    ),
}

#: How many windows go through the model at once (long inputs are split into windows).
WINDOW_BATCH = 8

#: Characters past which a text's tokenising, a few seconds for a megabyte before the first
#: window runs, is announced through `Hooks.on_progress`.
LONG_TEXT = 100_000


class TextTask(Task):
    """A BERT or DistilBERT checkpoint with the head named by `head`, and its tokenizer."""

    modality = "text"
    input_kind = "text"
    extra_files = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
    head: ClassVar[str]  # a key of the model files' HEADS

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(folder, device, dtype)
        self.family = find_family(self.config, FAMILIES, self.head, self.title.lower())
        self.model_config = self.family.config(self.config)
        self.labels = id2label(self.config)
        num_labels = 2 if self.head == "question-answering" else len(self.labels) or 2
        self.model = self.family.load(self.head, self.folder, self.model_config, device, dtype, num_labels)
        self.tokenizer = load_tokenizer(self.folder)
        positions = self.model_config.max_position_embeddings
        # the tokenizer may allow fewer tokens than the model has positions, never more
        self.max_length = min(tokenizer_settings(self.folder).model_max_length or positions, positions)
        pad_id: int | None = self.tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad_id is None else pad_id
        self.unk_id: int | None = self.tokenizer.token_to_id(getattr(self.tokenizer.model, "unk_token", "[UNK]"))

    def label(self, index: int) -> str:
        return label_name(self.labels, index)

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "architecture": (self.config.get("architectures") or [type(self.model).__name__])[0],
            "model_type": self.config.get("model_type"),
        }
        facts.update(self.family.describe(self.model_config))
        facts["max_tokens"] = self.max_length
        facts["parameters"] = self.parameter_count()
        if self.head != "question-answering":  # a QA head's two outputs are not labels
            facts["labels"] = [self.label(i) for i in sorted(self.labels)]
        return {**facts, **self.runtime_facts()}

    # ----------------------------------------------------------------------- encoding

    def encode(self, text: str, pair: str | None = None) -> Encoding:
        """The whole text as one encoding, special tokens included, nothing truncated."""
        return self._encode_one(text, pair)

    def _encode_one(self, text: str, pair: str | None) -> Encoding:
        # encode_batch gives the same encoding as encode but lets go of the GIL while it works,
        # so a long text does not freeze the app's window while the worker tokenises it
        return self.tokenizer.encode_batch([text if pair is None else (text, pair)])[0]

    def encode_windows(
        self, text: str, pair: str | None = None, *, max_length: int, stride: int, only_second: bool = False
    ) -> list[Encoding]:
        """The text cut into windows of at most `max_length` tokens that share `stride` tokens
        with their neighbours, as the tokenizer's overflow does it. With a pair (a question
        first) only the second text is cut."""
        self.tokenizer.enable_truncation(
            max_length, stride=stride, strategy="only_second" if only_second else "longest_first"
        )
        try:
            first = self._encode_one(text, pair)
        except Exception as exc:  # the tokenizer's own explanation of an impossible window
            raise InputError(f"the text cannot be cut into windows of {max_length} tokens: {exc}") from None
        finally:
            self.tokenizer.no_truncation()
        return [first, *first.overflowing]

    # ----------------------------------------------------------------------- running

    def forward(
        self,
        encodings: Sequence[Encoding],
        cancel: CancelFlag | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        internals: dict[str, np.ndarray] | None = None,
    ) -> list[Any]:
        """The model's output for each encoding, in groups of `WINDOW_BATCH` padded on the right;
        each output is cut back to its encoding's length and moved to the CPU as float32.
        `on_progress(done, total)` follows the encodings; `cancel` is checked between groups.
        Given `internals` (explain), the first encoding's attention goes into it."""
        outputs: list[Any] = []
        per_token = self.head != "sequence-classification"
        for begin in range(0, len(encodings), WINDOW_BATCH):
            check_cancel(cancel)
            group = encodings[begin : begin + WINDOW_BATCH]
            watch = internals is not None and begin == 0
            keep = keep_attention(len(group[0].ids))
            with torch.inference_mode(), maybe_watching(watch, self.model, keep) as probe:
                result = self.model(**self._batch(group))
            if internals is not None and probe is not None:
                internals["attention"] = stack_attention(probe.records)
            for row, encoding in enumerate(group):
                outputs.append(_take_row(result, row, len(encoding.ids), per_token))
            if on_progress is not None:
                on_progress(len(outputs), len(encodings))
        return outputs

    def _batch(self, encodings: Sequence[Encoding]) -> dict[str, torch.Tensor]:
        width = max(len(e.ids) for e in encodings)
        ids = torch.full((len(encodings), width), self.pad_id, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = torch.tensor(encoding.ids)
            types[row, :n] = torch.tensor(encoding.type_ids)
            mask[row, :n] = 1
        to = self.device
        return {"input_ids": ids.to(to), "attention_mask": mask.to(to), "token_type_ids": types.to(to)}


def _take_row(result: Any, row: int, length: int, per_token: bool) -> Any:
    """Row `row` of a batched output (a tensor or a tuple of them), without the padding."""
    if isinstance(result, tuple):
        return tuple(_take_row(part, row, length, per_token) for part in result)
    part = result[row, :length] if per_token else result[row]
    return part.float().cpu()


def check_text(text: Any, what: str = "text") -> str:
    """The text itself, or an `InputError` when it is not a string or holds nothing to read."""
    if not isinstance(text, str):
        raise InputError(f"the {what} must be a string, not {type(text).__name__}")
    if not text.strip():
        raise InputError(f"the {what} is empty" if not text else f"the {what} holds only whitespace")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # half of a UTF-16 pair, e.g. an emoji cut in two
        raise InputError(f"the {what} holds an invalid character at position {exc.start}") from None
    return text


def require_tokens(encoding: Encoding, what: str = "text") -> None:
    """An `InputError` when the tokenizer found nothing in the text but special tokens (text
    made only of control or zero-width characters, for instance)."""
    if not any(mask == 0 for mask in encoding.special_tokens_mask):
        raise InputError(f"the {what} holds no readable characters")
