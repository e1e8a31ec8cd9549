"""What speech recognition keeps of one input for the app's "Inside the model" view (the
`explain` option): for every 20 ms frame, its best characters and their probabilities (the
softmax of the CTC head's logits), and how greedy CTC decoding collapses them into the text
(the characters and words with the frames they came from).

Per frame that is 3 ids and 3 probabilities, 24 bytes: an hour of audio (180,000 frames)
keeps about 4 MB.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.ctc import CTCVocabulary

#: How many of each frame's best characters are kept.
TOP = 3


def frame_tops(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(frames, TOP) best ids (int32) and their probabilities (float32) of (frames, vocabulary)
    logits."""
    best = logits.float().softmax(-1).topk(min(TOP, logits.shape[-1]), dim=-1)
    return best.indices.cpu().numpy().astype(np.int32), best.values.cpu().numpy()


class FrameTops:
    """Each frame's `TOP` best ids and probabilities, collected window by window."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.probabilities: list[np.ndarray] = []

    def add(self, logits: torch.Tensor) -> None:
        """Take the (frames, vocabulary) logits of consecutive frames."""
        ids, probabilities = frame_tops(logits)
        self.ids.append(ids)
        self.probabilities.append(probabilities)

    def internals(self, vocabulary: CTCVocabulary, ids: np.ndarray, frame_s: float) -> dict[str, np.ndarray]:
        """The arrays the view reads: `frame_top_ids` and `frame_top_probs` (frames, TOP), the
        `vocabulary` (its text by id; "" where vocab.json has no id) and its `blank_id`, the
        `frame_seconds`, and the decoded `chars` and `words` with their [start, end) frames
        (`char_frames`, `word_frames`) from the argmax `ids` that made the text."""
        width = TOP if not self.ids else self.ids[0].shape[-1]
        top_ids = np.concatenate(self.ids) if self.ids else np.zeros((0, width), dtype=np.int32)
        top_probs = np.concatenate(self.probabilities) if self.probabilities else np.zeros((0, width), np.float32)
        table = np.full(max(vocabulary.tokens, default=-1) + 1, "", dtype=object)
        for i, token in vocabulary.tokens.items():
            if i >= 0:
                table[i] = token
        chars, words = vocabulary.char_spans(ids), vocabulary.word_spans(ids)
        return {
            "frame_top_ids": top_ids,
            "frame_top_probs": top_probs,
            "vocabulary": table.astype(np.str_),
            "blank_id": np.array(-1 if vocabulary.blank_id is None else vocabulary.blank_id, dtype=np.int32),
            "frame_seconds": np.array(frame_s, dtype=np.float32),
            "chars": np.array([c.text for c in chars], dtype=np.str_),
            "char_frames": np.array([(c.start, c.end) for c in chars], dtype=np.int32).reshape(-1, 2),
            "words": np.array([w.text for w in words], dtype=np.str_),
            "word_frames": np.array([(w.start, w.end) for w in words], dtype=np.int32).reshape(-1, 2),
        }
