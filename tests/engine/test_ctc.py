"""Greedy CTC decoding against transformers' Wav2Vec2CTCTokenizer on the same id sequences:
text, character offsets and word offsets, with every tokenizer setting that changes them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.ctc import CTCVocabulary
from engine.errors import CheckpointError
from tests.engine.models.tiny_wav2vec2 import VOCAB

PAD, S, END, UNK, BAR = 0, 1, 2, 3, 4
E, T, A = VOCAB.index("E"), VOCAB.index("T"), VOCAB.index("A")
APOSTROPHE = VOCAB.index("'")

HAND_MADE = [
    [],
    [PAD, PAD, PAD],
    [BAR, BAR, PAD, BAR],
    [T, T, PAD, T, E, E, PAD, A],  # a repeat survives only across a blank
    [PAD, BAR, T, E, BAR, BAR, PAD, A, PAD, BAR, PAD],  # delimiters at both ends
    [T, BAR, PAD, BAR, E],  # two spaces between words
    [S, T, END, UNK, 99, PAD, 99, BAR, E],  # specials and an id outside the vocabulary stay
    [T, BAR, APOSTROPHE, BAR, E, BAR, APOSTROPHE, T],  # material for clean-up
]


def _random(seed: int, n: int = 300) -> list[int]:
    rng = np.random.default_rng(seed)
    weights = np.ones(len(VOCAB))
    weights[[PAD, BAR]] = [12, 4]  # blanks and delimiters as often as in speech
    ids = rng.choice(len(VOCAB), size=n, p=weights / weights.sum())
    return np.repeat(ids, rng.integers(1, 4, size=n)).tolist()  # runs of repeated frames


SEQUENCES = HAND_MADE + [_random(seed) for seed in range(6)]


def _folder(tmp_path, **tokenizer_settings):
    from transformers import Wav2Vec2CTCTokenizer

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), **tokenizer_settings)
    tokenizer.save_pretrained(tmp_path)
    return Wav2Vec2CTCTokenizer.from_pretrained(tmp_path), CTCVocabulary.from_folder(tmp_path)


SETTINGS = {
    "default": {},
    "lower-case": {"do_lower_case": True},
    "clean-up": {"clean_up_tokenization_spaces": True},
    "underscore-delimiter": {"replace_word_delimiter_char": "_"},
}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_text_and_offsets_equal_the_tokenizer(tmp_path, setting):
    oracle, ours = _folder(tmp_path, **SETTINGS[setting])
    for ids in SEQUENCES:
        assert ours.decode(ids) == oracle.decode(ids), ids
        if not ids:
            continue
        expected = oracle.decode(ids, output_char_offsets=True, output_word_offsets=True)
        chars = [(c["char"], c["start_offset"], c["end_offset"]) for c in expected["char_offsets"]]
        words = [(w["word"], w["start_offset"], w["end_offset"]) for w in expected["word_offsets"]]
        assert [(s.text, s.start, s.end) for s in ours.char_spans(ids)] == chars
        assert [(s.text, s.start, s.end) for s in ours.word_spans(ids)] == words


def test_decoding_accepts_numpy_ids(tmp_path):
    oracle, ours = _folder(tmp_path)
    ids = np.array(_random(7), dtype=np.int64)
    assert ours.decode(ids) == oracle.decode(ids.tolist())


def test_added_tokens_past_the_vocabulary_are_decoded(tmp_path):
    oracle, ours = _folder(tmp_path)
    oracle.add_tokens(["<new>"])
    oracle.save_pretrained(tmp_path)
    ours = CTCVocabulary.from_folder(tmp_path)
    ids = [T, len(VOCAB), PAD, E]
    assert ours.decode(ids) == oracle.decode(ids) == "T<new>E"


def test_special_tokens_written_as_objects_are_read(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"[PAD]": 0, "|": 1, "A": 2}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"pad_token": {"content": "[PAD]"}}))
    vocabulary = CTCVocabulary.from_folder(tmp_path)
    assert vocabulary.blank == "[PAD]" and vocabulary.blank_id == 0
    assert vocabulary.decode([2, 0, 2, 1, 2]) == "AA A"


def test_per_language_vocabularies_need_a_target(tmp_path):
    nested = {"eng": {"<pad>": 0, "|": 1, "A": 2}, "fra": {"<pad>": 0, "|": 1, "É": 2}}
    (tmp_path / "vocab.json").write_text(json.dumps(nested))
    with pytest.raises(CheckpointError, match="target_lang"):
        CTCVocabulary.from_folder(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"target_lang": "fra"}))
    assert CTCVocabulary.from_folder(tmp_path).decode([2, 1, 2]) == "É É"


def test_missing_vocabulary_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="vocab.json"):
        CTCVocabulary.from_folder(tmp_path)
