"""The summarization task against transformers' `generate` and `decode`, on a tiny BART laid
out as sshleifer/distilbart-cnn-12-6 is (pytorch_model.bin with the embedding's copies,
vocab.json + merges.txt, generation settings in config.json, no generation_config.json) and a
tiny T5 with t5-small's "summarize: " parameters. (transformers 5 has no summarization
pipeline; its 4.x pipeline applied these parameters.)"""

from __future__ import annotations

import functools
import json

import pytest
import torch

from engine.errors import InputError
from engine.tasks.summarization import Summarization
from tests.engine.models.tiny_generative import MAX_POSITIONS, save_bart, save_t5

ARTICLE = (
    "The analysis of London was born in the year 1843, said Ada Lovelace. The engine wrote the first "
    "programme; the river Thames runs through the city. Marie Curie was a physicist and chemist who worked in Paris."
)
TEXTS = [ARTICLE, "Café Noël à Zürich — naïve? 中文 text 🙂"]
CNN = {"early_stopping": True, "length_penalty": 2.0, "max_length": 20, "min_length": 8, "no_repeat_ngram_size": 3, "num_beams": 4}
T5 = {"early_stopping": True, "length_penalty": 2.0, "max_length": 16, "min_length": 4, "no_repeat_ngram_size": 3,
      "num_beams": 3, "prefix": "summarize: "}


@pytest.fixture(scope="module")
def distilbart(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distilbart")
    model = save_bart(folder)
    (folder / "generation_config.json").unlink()
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # the tied copies included
    config = json.loads((folder / "config.json").read_text())
    config.update({**CNN, "task_specific_params": {"summarization": CNN}, "force_bos_token_to_be_generated": True})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t5")
    save_t5(folder, flan=True, task_specific_params={"summarization": T5})
    return folder


@functools.cache
def _transformers(folder):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(folder), AutoModelForSeq2SeqLM.from_pretrained(folder).eval()


@functools.cache
def _ours(folder):
    return Summarization.load(folder, device="cpu")


def oracle(folder, text, prefix="", **settings):
    tokenizer, model = _transformers(folder)
    ids = tokenizer(prefix + text, return_tensors="pt", truncation=True).input_ids
    out = model.generate(ids, **settings)
    return [{"summary_text": tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False)} for row in out]


def test_distilbart_settings_come_from_config_json(distilbart):
    task = _ours(distilbart)
    for text in TEXTS:
        result = task.run(text)
        assert result.to_json() == oracle(distilbart, text, **CNN), text
    s = result.settings
    assert (s.num_beams, s.length_penalty, s.min_length, s.max_length, s.no_repeat_ngram_size, s.early_stopping) == (4, 2.0, 8, 20, 3, True)
    assert (s.forced_bos_token_id, s.forced_eos_token_ids, s.eos_token_ids, s.pad_token_id) == (0, (2,), (2,), 1)
    tokens = result.sequences[0].tokens
    assert tokens[0].id == 0 and tokens[-1].id == 2  # the forced <s> and </s>


def test_user_options_override_the_checkpoints(distilbart):
    task = _ours(distilbart)
    got = task.run(ARTICLE, num_beams=2, num_return_sequences=2, max_new_tokens=9, min_length=0, length_penalty=1.0)
    assert got.to_json() == oracle(distilbart, ARTICLE, **{**CNN, "num_beams": 2, "num_return_sequences": 2,
                                                            "max_new_tokens": 9, "min_length": 0, "length_penalty": 1.0})


def test_t5_summarises_after_its_prefix(t5):
    task = _ours(t5)
    settings = {k: v for k, v in T5.items() if k != "prefix"}
    for text in TEXTS:
        assert task.run(text).to_json() == oracle(t5, text, "summarize: ", **settings), text


def test_long_articles_are_cut_to_what_the_model_reads(distilbart):
    task = _ours(distilbart)
    article = " ".join([ARTICLE] * 6)
    result = task.run(article)
    total = len(task.tokenizer.encode(article).ids)
    assert result.prompt_tokens == MAX_POSITIONS
    assert result.warnings == [f"the input was cut to its first {MAX_POSITIONS} of {total} tokens, as many as the model reads"]
    assert result.to_json() == oracle(distilbart, article, **CNN)


def test_asking_for_more_than_the_decoder_holds_is_an_input_error(distilbart):
    with pytest.raises(InputError, match=f"at most {MAX_POSITIONS}"):
        _ours(distilbart).run(ARTICLE, max_new_tokens=MAX_POSITIONS + 5)


def test_info(distilbart):
    info = _ours(distilbart).info()
    assert (info["model_type"], info["decoder_layers"], info["max_input_tokens"]) == ("bart", 2, MAX_POSITIONS)
