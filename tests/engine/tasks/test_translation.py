"""The translation task against transformers' `generate` and `decode` on a tiny FLAN-style T5 whose
config.json carries t5-small's kind of task parameters, and a FLAN-style one without them.
(transformers 5 has no translation pipeline; its 4.x pipeline applied these parameters.)"""

from __future__ import annotations

import json
import shutil

import pytest

from engine import tasks
from engine.errors import InputError
from engine.generation.stream import StreamedText
from engine.tasks.base import Hooks
from engine.tasks.translation import Translation
from tests.engine.models.tiny_generative import MAX_POSITIONS, save_t5

TEXTS = ["The analysis of London was born in the year 1843.", "Marie Curie worked in Paris, said Ada.", "Café 🙂 中文"]
PAIRS = {
    f"translation_en_to_{target}": {"prefix": f"translate English to {name}: ", "num_beams": 3, "max_length": 16, "early_stopping": True}
    for target, name in (("de", "German"), ("fr", "French"), ("ro", "Romanian"))
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("t5")
    save_t5(path, flan=True, task_specific_params=PAIRS)
    return path


@pytest.fixture(scope="module")
def task(folder):
    return Translation.load(folder, device="cpu")


@pytest.fixture(scope="module")
def oracle(folder):
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = T5ForConditionalGeneration.from_pretrained(folder).eval()

    def translate(text, prefix, **settings):
        ids = tokenizer(prefix + text, return_tensors="pt", truncation=True).input_ids
        out = model.generate(ids, **settings)
        return [{"translation_text": tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False)} for row in out]

    return translate


def params(pair):
    settings = dict(PAIRS[pair])
    return settings.pop("prefix"), settings


@pytest.mark.parametrize("target", ["de", "fr", "ro"])
def test_each_pair_uses_its_prefix_and_settings(task, oracle, target):
    prefix, settings = params(f"translation_en_to_{target}")
    for text in TEXTS:
        got = task.run(text, src_lang="en", tgt_lang=target)
        assert got.to_json() == oracle(text, prefix, **settings), text
        assert got.settings.num_beams == 3 and got.settings.max_length == 16


def test_the_pipelines_pair_names_are_tasks_with_that_pair(folder, task):
    french = tasks.get("translation_en_to_fr")
    assert french.name == "translation_en_to_fr" and issubclass(french, Translation)
    assert french.load(folder, device="cpu").run(TEXTS[0]).to_json() == task.run(TEXTS[0], tgt_lang="fr").to_json()
    # without a pair, the first one config.json names
    assert task.run(TEXTS[0]).to_json() == task.run(TEXTS[0], src_lang="en", tgt_lang="de").to_json()


def test_user_options_override_the_task_parameters(task, oracle):
    prefix, settings = params("translation_en_to_de")
    got = task.run(TEXTS[1], tgt_lang="de", num_beams=1, max_new_tokens=8, repetition_penalty=1.5)
    assert got.to_json() == oracle(TEXTS[1], prefix, **{**settings, "num_beams": 1, "max_new_tokens": 8, "repetition_penalty": 1.5})


def test_flan_style_checkpoints_get_t5s_wording(folder, tmp_path, oracle):
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["task_specific_params"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    got = Translation.load(tmp_path, device="cpu").run(TEXTS[0], tgt_lang="ro")
    assert got.to_json() == oracle(TEXTS[0], "translate English to Romanian: ")
    assert got.settings.num_beams == 1 and got.settings.max_length == 21  # transformers' own defaults


def test_the_stream_adds_up_to_the_translation(task):
    partials: list[StreamedText] = []
    result = task.run(TEXTS[2], hooks=Hooks(on_partial=partials.append), num_beams=1, max_new_tokens=12)
    assert "".join(p.delta for p in partials) == result.sequences[0].text == partials[-1].text


def test_long_inputs_are_cut_to_what_the_model_reads(task, oracle):
    text = " ".join(TEXTS * 20)
    result = task.run(text, tgt_lang="fr")
    total = len(task.tokenizer.encode("translate English to French: " + text).ids)
    assert result.warnings == [f"the input was cut to its first {MAX_POSITIONS} of {total} tokens, as many as the model reads"]
    assert result.prompt_tokens == MAX_POSITIONS
    prefix, settings = params("translation_en_to_fr")
    assert result.to_json() == oracle(text, prefix, **settings)


@pytest.mark.parametrize("options, message", [
    ({"src_lang": "xx"}, "--src-lang"),
    ({"tgt_lang": "en"}, "same language"),
    ({"num_beams": 2, "num_return_sequences": 3}, "exceed"),
])
def test_bad_options_are_input_errors(task, options, message):
    with pytest.raises(InputError, match=message):
        task.run(TEXTS[0], **options)


@pytest.mark.parametrize("text", ["", "  \n"])
def test_nothing_to_translate_is_an_input_error(task, text):
    with pytest.raises(InputError):
        task.run(text)


def test_info(task):
    info = task.info()
    assert (info["model_type"], info["encoder_layers"], info["max_input_tokens"]) == ("t5", 2, MAX_POSITIONS)
