"""Incremental detokenisation: the pieces add up to what decoding every id at once gives, and
a character split across byte-level tokens comes out once, whole."""

from __future__ import annotations

import random

import pytest

from engine.generation.stream import REPLACEMENT, TextStream
from engine.tokenization import load_tokenizer
from tests.engine.models.tiny_generative import CORPUS, save_byte_level_bpe, save_unigram

TEXTS = ["Café 中文 🙂 and 👍🏽!", " the analysis of London", "ünïcödé ñ ç ß ø å", *CORPUS]


@pytest.fixture(scope="module", params=["gpt2", "bart", "t5"])
def tokenizer(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "t5":
        save_unigram(folder)
    else:
        save_byte_level_bpe(folder, roberta=request.param == "bart")
    return load_tokenizer(folder)


def pieces(tokenizer, ids):
    stream = TextStream(tokenizer)
    out = [stream.push(i) for i in ids]
    return [*out, stream.flush()], stream


def byte_ids(tokenizer, text):
    """One token per byte: every multi-byte character split across tokens."""
    from tokenizers.pre_tokenizers import ByteLevel

    symbols = "".join(word for word, _ in ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text))
    return [tokenizer.token_to_id(symbol) for symbol in symbols]  # one symbol per byte


@pytest.mark.parametrize("text", TEXTS)
def test_the_pieces_add_up_to_the_decoded_text(tokenizer, text):
    ids = tokenizer.encode(text).ids  # special tokens included where the tokenizer adds them
    out, stream = pieces(tokenizer, ids)
    assert "".join(out) == stream.text == tokenizer.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("tokenizer", ["gpt2", "bart"], indirect=True)  # the byte-level ones
def test_split_characters_come_out_whole(tokenizer):
    text = "Café 中文 🙂 👍🏽"
    ids = byte_ids(tokenizer, text)
    out, _ = pieces(tokenizer, ids)
    assert "".join(out) == text
    assert not any(REPLACEMENT in piece for piece in out)
    assert "🙂" in out and "👍" in out  # a four-byte character arrives as one piece


def test_random_ids_add_up_too(tokenizer):
    size = tokenizer.get_vocab_size()
    rng = random.Random(0)
    for _ in range(20):
        ids = [rng.randrange(size) for _ in range(rng.randrange(1, 30))]
        out, _ = pieces(tokenizer, ids)
        assert "".join(out) == tokenizer.decode(ids, skip_special_tokens=True)
