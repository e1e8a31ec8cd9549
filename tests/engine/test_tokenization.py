"""Our WordPiece tokenizers against transformers' fast BertTokenizer on the same files."""

from __future__ import annotations

import pytest

from engine.errors import CheckpointError
from engine.tokenization import load_tokenizer, tokenizer_settings
from tests.engine.models.tiny_text import MAX_POSITIONS, save_tokenizer

TEXTS = [
    "Ada Lovelace wrote the first programme in London.",
    "the analysis of   PARIS, Berlin and Marie Curie's mathematician!",
    "Café Noël à Zürich (1843) — naïve?",
    "مرحبا بالعالم في لندن",  # Arabic, right to left
    "שלום עולם בפריז",  # Hebrew, right to left
    "emoji 🙂👍🏽 and 中文 text",
    "tabs\tand\nnewlines\r\nand\u200bzero-width\u0007bell",
    "Thames river",
]
QUESTION = "Who wrote the first programme?"


@pytest.fixture(scope="module", params=["json-uncased", "json-cased", "vocab-uncased", "vocab-cased"])
def folder(request, tmp_path_factory):
    source, casing = request.param.split("-")
    path = tmp_path_factory.mktemp(request.param)
    save_tokenizer(path, cased=casing == "cased", with_json=source == "json")
    return path


def test_ids_offsets_and_masks_match_transformers(folder):
    from transformers import AutoTokenizer

    oracle = AutoTokenizer.from_pretrained(folder)
    assert oracle.is_fast
    ours = load_tokenizer(folder)
    for text in TEXTS:
        expected = oracle(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        got = ours.encode(text)
        assert got.ids == expected["input_ids"], text
        assert got.offsets == [tuple(o) for o in expected["offset_mapping"]], text
        assert got.special_tokens_mask == expected["special_tokens_mask"], text
        assert len(got.ids) > 4  # real words split into several pieces


def test_pairs_match_transformers(folder):
    from transformers import AutoTokenizer

    oracle = AutoTokenizer.from_pretrained(folder)
    ours = load_tokenizer(folder)
    expected = oracle(QUESTION, TEXTS[0], return_offsets_mapping=True, return_token_type_ids=True)
    got = ours.encode(QUESTION, TEXTS[0])
    assert got.ids == expected["input_ids"]
    assert got.type_ids == expected["token_type_ids"]
    assert got.offsets == [tuple(o) for o in expected["offset_mapping"]]


def test_decoding_tokens_matches_transformers(folder):
    from transformers import AutoTokenizer

    oracle = AutoTokenizer.from_pretrained(folder)
    ours = load_tokenizer(folder)
    for text in TEXTS[:3]:
        tokens = [ours.id_to_token(i) for i in ours.encode(text, add_special_tokens=False).ids]
        assert ours.decoder.decode(tokens) == oracle.convert_tokens_to_string(tokens)


def test_settings_come_from_tokenizer_config(folder):
    settings = tokenizer_settings(folder)
    assert settings.model_max_length == MAX_POSITIONS
    assert settings.do_lower_case == ("uncased" in folder.name)


def test_a_folder_without_a_tokenizer_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_tokenizer(tmp_path)


# --- byte-level BPE from vocab.json + merges.txt (GPT-2, and RoBERTa-style for BART) ---

BPE_TEXTS = [*TEXTS, " leading space", "", "<|endoftext|> between <s> specials </s>", "a <mask> here"]


@pytest.fixture(scope="module", params=["gpt2", "gpt2-named", "roberta", "bart-named"])
def bpe_folder(request, tmp_path_factory):
    from tests.engine.models.tiny_generative import save_byte_level_bpe

    named = {"gpt2-named": "GPT2Tokenizer", "bart-named": "BartTokenizer"}.get(request.param)
    path = tmp_path_factory.mktemp(request.param)
    save_byte_level_bpe(path, roberta=request.param in ("roberta", "bart-named"), tokenizer_class=named)
    # without tokenizer_class, transformers picks the class from config.json, as for the Hub's files
    model_type = "gpt2" if request.param.startswith("gpt2") else "bart"
    (path / "config.json").write_text(f'{{"model_type": "{model_type}"}}')
    return path


def test_byte_level_bpe_matches_transformers(bpe_folder):
    from transformers import AutoTokenizer

    oracle = AutoTokenizer.from_pretrained(bpe_folder)
    ours = load_tokenizer(bpe_folder)
    for text in BPE_TEXTS:
        expected = oracle(text)["input_ids"]
        assert ours.encode(text).ids == expected, text
        assert ours.decode(expected, skip_special_tokens=True) == oracle.decode(expected, skip_special_tokens=True)
        assert ours.decode(expected, skip_special_tokens=False) == oracle.decode(expected)


def test_a_vocabulary_without_merges_is_no_tokenizer(tmp_path):
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_tokenizer(tmp_path)
