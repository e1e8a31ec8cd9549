"""The text-generation task against transformers' own pipeline on a tiny GPT-2 whose
tokenizer is vocab.json + merges.txt, as the Hub's gpt2 ships it."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from engine.errors import Cancelled, CheckpointError, InputError
from engine.generation.stream import StreamedText
from engine.tasks.base import Hooks
from engine.tasks.text_generation import TextGeneration
from tests.engine.models.tiny_generative import MAX_POSITIONS, PROMPTS, save_gpt2

GREEDY = {"do_sample": False, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt2")
    save_gpt2(path)
    return path


@pytest.fixture(scope="module")
def task(folder):
    return TextGeneration.load(folder, device="cpu")


@pytest.fixture(scope="module")
def oracle(folder):
    from transformers import pipeline

    return pipeline("text-generation", model=str(folder), device="cpu")


@pytest.mark.parametrize("settings", [
    GREEDY,
    {**GREEDY, "return_full_text": False},
    {**GREEDY, "num_beams": 3, "num_return_sequences": 2, "no_repeat_ngram_size": 2},
    {**GREEDY, "repetition_penalty": 1.3, "min_new_tokens": 5},
], ids=["greedy", "new-text-only", "beams", "penalties"])
def test_same_output_as_the_pipeline(task, oracle, settings):
    for prompt in PROMPTS:
        assert task.run(prompt, **settings).to_json() == oracle(prompt, **settings), prompt


def test_sampling_with_a_seed_is_reproducible(task):
    draw = lambda seed: task.run(PROMPTS[0], max_new_tokens=10, do_sample=True, seed=seed).to_json()  # noqa: E731
    assert draw(3) == draw(3) != draw(4)


def test_the_stream_adds_up_to_the_final_text(task):
    partials: list[StreamedText] = []
    result = task.run(PROMPTS[1], hooks=Hooks(on_partial=partials.append), return_full_text=False, **GREEDY)
    final = result.sequences[0].text
    assert partials and not any(p.provisional for p in partials)
    assert "".join(p.delta for p in partials) == final == partials[-1].text
    assert all(b.text.startswith(a.text) for a, b in zip(partials, partials[1:]))


def test_beam_search_streams_provisional_best_hypotheses_then_the_result(task):
    partials: list[StreamedText] = []
    result = task.run(PROMPTS[0], hooks=Hooks(on_partial=partials.append), num_beams=3, **GREEDY)
    assert all(p.provisional for p in partials[:-1]) and not partials[-1].provisional
    assert partials[-1].text == result.sequences[0].text
    assert "".join(p.delta for p in partials) == result.sequences[0].text


def test_cancel_stops_before_the_next_step(task):
    cancel = threading.Event()
    forwards = []
    handle = task.model.register_forward_hook(lambda *_: forwards.append(1))

    def on_partial(partial):
        if len(forwards) == 3:
            cancel.set()

    try:
        with pytest.raises(Cancelled):
            task.run(PROMPTS[0], hooks=Hooks(on_partial=on_partial, cancel=cancel), do_sample=False, max_new_tokens=40)
    finally:
        handle.remove()
    assert len(forwards) == 3


def test_each_token_has_its_probability_and_alternatives(task):
    result = task.run(PROMPTS[0], **GREEDY)
    (sequence,) = result.sequences
    assert len(sequence.tokens) == 12 and result.prompt_tokens == len(task.tokenizer.encode(PROMPTS[0]).ids)
    for token in sequence.tokens:
        assert 0 < token.probability <= 1
        assert len(token.alternatives) == 5
        assert token.alternatives[0].id == token.id  # greedy takes the likeliest
        assert token.alternatives[0].probability == pytest.approx(token.probability)
        assert [a.probability for a in token.alternatives] == sorted((a.probability for a in token.alternatives), reverse=True)
    assert "".join(t.token for t in sequence.tokens) == sequence.text or "\ufffd" in "".join(t.token for t in sequence.tokens)


def test_an_empty_prompt_starts_from_the_beginning_of_text(task, oracle):
    assert task.run("", **GREEDY).to_json() == oracle("", **GREEDY)


def test_a_prompt_longer_than_the_positions_keeps_its_end(task, oracle):
    prompt = " ".join(PROMPTS * 8)
    ids = task.tokenizer.encode(prompt).ids
    assert len(ids) > MAX_POSITIONS
    result = task.run(prompt, return_full_text=False, **GREEDY)
    room = MAX_POSITIONS - 12
    assert result.prompt_tokens == room
    assert result.warnings == [f"the prompt was cut to its last {room} of {len(ids)} tokens, so that 12 new tokens fit in the model's {MAX_POSITIONS} positions"]
    kept = task.tokenizer.decode(ids[-room:])
    assert result.to_json() == oracle(kept, return_full_text=False, **GREEDY)
    with pytest.raises(InputError, match=f"fewer than {MAX_POSITIONS} new tokens"):
        task.run(prompt, max_new_tokens=MAX_POSITIONS)


def test_a_length_nobody_asked_for_is_capped_to_the_positions_left(task, oracle):
    prompt = PROMPTS[0]
    ids = task.tokenizer.encode(prompt).ids
    room = MAX_POSITIONS - len(ids)
    assert room < 256  # the pipeline's default, more than the tiny model's positions allow
    result = task.run(prompt, do_sample=False, num_beams=1)
    assert len(result.sequences[0].tokens) <= room
    assert result.warnings == [
        f"this model reads at most {MAX_POSITIONS} tokens: it writes at most {room} new tokens after this "
        "prompt (set max_new_tokens to write more of them after the prompt's end)"
    ]
    assert result.to_json() == oracle(prompt, do_sample=False, num_beams=1, max_new_tokens=room)


def test_a_checkpoint_without_a_generation_config_reads_config_json(folder, tmp_path):
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    (tmp_path / "generation_config.json").unlink()
    config = json.loads((tmp_path / "config.json").read_text())
    # the pipeline's task parameters in config.json, as the Hub's gpt2 has them
    config["task_specific_params"] = {"text-generation": {"do_sample": False, "max_length": 20}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    task = TextGeneration.load(tmp_path, device="cpu")
    result = task.run(PROMPTS[0])
    assert (result.settings.do_sample, result.settings.max_length, result.settings.eos_token_ids) == (False, 20, (0,))
    assert result.to_json() == TextGeneration.load(folder, device="cpu").run(PROMPTS[0], max_length=20, do_sample=False).to_json()


def test_options_are_checked(task):
    with pytest.raises(InputError, match="early-stopping"):
        task.run(PROMPTS[0], early_stopping="sometimes")
    with pytest.raises(InputError, match="string"):
        task.run(42)
    assert task.run(PROMPTS[0], num_beams=2, early_stopping=True, **GREEDY).settings.early_stopping is True


def test_info_and_other_architectures(task, tmp_path):
    info = task.info()
    assert (info["model_type"], info["layers"], info["hidden_size"], info["max_positions"]) == ("gpt2", 2, 32, MAX_POSITIONS)
    from tests.engine.models.tiny_text import bert_config, save_model
    from transformers import BertForSequenceClassification

    save_model(BertForSequenceClassification, bert_config(), tmp_path)
    with pytest.raises(CheckpointError, match="bert.*gpt2"):
        TextGeneration.load(tmp_path, device="cpu")
