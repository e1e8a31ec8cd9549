"""What the text tasks keep of one input for the app's "Inside the model" view (the `explain`
option): the word pieces the tokenizer made, with their ids and characters, and the attention
of every layer and head between them, for a head view in the manner of bertviz.

Attention is kept for the first window only (the one the view shows), and within it for the
first `ATTENTION_PIECES` pieces: every layer and head in float16, (layers, heads, T, T). A
BERT-base window of 512 pieces would be 75 MB; 256 pieces are 19 MB, and more lines than a
head view can show legibly anyway. Rows cut this way no longer sum to one: the weights on
pieces past the cut are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tokenizers import Encoding, Tokenizer

#: The most pieces whose attention is kept (queries and keys alike).
ATTENTION_PIECES = 256


def piece_internals(
    tokenizer: Tokenizer, encoding: Encoding, texts: tuple[str, ...], prefix: str = ""
) -> dict[str, np.ndarray]:
    """`pieces` (the tokenizer's strings), `piece_ids`, `piece_spans` (each piece's characters,
    [start, end), in the text it came from) and `piece_texts` (those characters: what an
    [UNK] piece stands for; empty for special pieces) of one encoding of `texts` (one text, or
    a question and its context); `prefix` starts the names (NER keeps the whole text's pieces
    beside the first window's)."""
    covered = [
        "" if sequence is None else texts[sequence][start:end]
        for sequence, (start, end) in zip(encoding.sequence_ids, encoding.offsets)
    ]
    return {
        f"{prefix}pieces": np.array([tokenizer.id_to_token(i) or "" for i in encoding.ids], dtype=np.str_),
        f"{prefix}piece_ids": np.array(encoding.ids, dtype=np.int32),
        f"{prefix}piece_spans": np.array(encoding.offsets, dtype=np.int32).reshape(-1, 2),
        f"{prefix}piece_texts": np.array(covered, dtype=np.str_),
    }


def keep_attention(pieces: int) -> Any:
    """A probe `keep` for the first row of a batch: its first `pieces` queries and keys, every
    head, in float16 (a copy, so the layer's full weights are freed at once)."""
    shown = min(pieces, ATTENTION_PIECES)

    def keep(name: str, weights: torch.Tensor) -> torch.Tensor:
        # (batch, heads, queries, keys) -> (heads, shown, shown)
        return weights[0, :, :shown, :shown].to(torch.float16, copy=True)

    return keep


def stack_attention(records: dict[str, torch.Tensor]) -> np.ndarray:
    """The records of the layers, in order, as one (layers, heads, T, T) float16 array."""
    return torch.stack(list(records.values())).cpu().numpy()
