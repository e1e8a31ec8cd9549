"""The engine worker on its real thread, driving the real text tasks on the tiny checkpoints of
`tests/app/conftest.py` through the default loader. Every behaviour comes from a real input or
a real checkpoint: a slow job is a question over a very long text, a failing job is an empty
text, a text the tokenizer cannot take, a Hub id that is not cached, or a broken checkpoint.
What the worker answers is compared with what the engine task answers in the test thread."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from app.worker import Engine, ModelSpec
from tests.app.conftest import TEXT_TASKS, stop_engine
from tests.app.ui_probe import UiProbe

WAIT_MS = 60_000
SENTENCE = "Ada Lovelace met Charles Babbage in London at the Science Museum. "
SHORT_TEXT = "Ada Lovelace loved the reading rooms of the library in London."
QUESTION = "Who met Babbage?"
# one small, quick job per task, for the tests that only need a job to end well
QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "text-classification": (SHORT_TEXT, {}),
    "token-classification": (SHORT_TEXT, {}),
    "question-answering": (SHORT_TEXT, {"question": QUESTION}),
}


def cpu(task: str, folder: Path | str) -> ModelSpec:
    return ModelSpec(task, str(folder), "cpu", "fp32")


def parameter_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


@pytest.fixture(scope="module")
def engine_tasks(tiny_models: dict[str, Path]) -> dict[str, Any]:
    """The engine's own tasks on the tiny checkpoints, run in the test thread as the oracle."""
    from engine import tasks

    return {name: tasks.get(name).load(str(folder), device="cpu") for name, folder in tiny_models.items()}


@pytest.fixture(scope="module")
def slow_question(engine_tasks: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A question over ~24,000 tokens of text, read in windows of 32 tokens that advance one
    token at a time: about 24,000 windows, seconds of work on any machine, checked for cancel
    every 8 windows. Slow by size, so a cancel finds it running however loaded the CPU is."""
    qa = engine_tasks["question-answering"]
    window = 32
    question_tokens = len(qa.tokenizer.encode(QUESTION, add_special_tokens=False).ids)
    room = window - question_tokens - qa.tokenizer.num_special_tokens_to_add(True)
    # the widest stride the task accepts as given: neighbouring windows differ by one token
    return SENTENCE * 2000, {"question": QUESTION, "max_seq_len": window, "doc_stride": room - 1}


@pytest.fixture
def text_engine(qtbot):
    engine = Engine(TEXT_TASKS)
    with qtbot.waitSignal(engine.ready, timeout=WAIT_MS):
        engine.start()
    yield engine
    stop_engine(engine)


def for_job(job_id_box: list):
    """A check_params_cb that accepts the signal only for the job id put in `job_id_box`."""
    return lambda job_id, *_: job_id == job_id_box[0]


def reading_for_job(job_id_box: list):
    """A check_params_cb for the progress a text task reports while its model reads windows."""
    return lambda job_id, done, total, message: job_id == job_id_box[0] and message.startswith("reading window")


def run_job(qtbot, engine: Engine, spec: ModelSpec, input: Any, **options: Any) -> tuple[int, Any]:
    box = [None]
    with qtbot.waitSignal(engine.result, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = engine.run(spec, input, options)
    return box[0], blocker.args[1]


def start_slow_job(qtbot, engine: Engine, tiny_models, slow_question) -> int:
    """Submit the slow question and return once its model is reading windows."""
    text, options = slow_question
    box = [None]
    with qtbot.waitSignal(engine.progress, timeout=WAIT_MS, check_params_cb=reading_for_job(box)):
        box[0] = engine.run(cpu("question-answering", tiny_models["question-answering"]), text, options)
    return box[0]


def test_ready_reports_devices_and_task_metadata(qtbot):
    engine = Engine(("text-classification", "no-such-task"))
    with qtbot.waitSignal(engine.ready, timeout=60_000) as blocker:
        engine.start()
    info = blocker.args[0]
    try:
        assert info.devices[-1] == "cpu"
        meta = info.tasks["text-classification"]
        assert meta.title == "Text classification"
        assert meta.default_model
        assert [o.name for o in meta.options] == ["top_k", "explain"]
        assert "no-such-task" in info.broken and "no-such-task" not in info.tasks
    finally:
        stop_engine(engine)


def test_load_then_run_reports_the_model_and_the_result(qtbot, text_engine, tiny_models, engine_tasks):
    progress = []
    text_engine.progress.connect(lambda *args: progress.append(args))
    ner = cpu("token-classification", tiny_models["token-classification"])
    box = [None]
    with qtbot.waitSignal(text_engine.loaded, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = text_engine.load(ner)
    model = blocker.args[1]
    oracle = engine_tasks["token-classification"]
    assert (model.device, model.dtype, model.info) == ("cpu", "fp32", oracle.info())
    assert model.load_seconds > 0
    assert (box[0], 0, None, f"loading {ner.ref}") in progress

    text = SENTENCE * 30  # ~360 tokens: several windows of the model's 128
    expected = oracle.run(text, stride=32)
    assert expected.windows > 1
    job, outcome = run_job(qtbot, text_engine, ner, text, stride=32)
    assert outcome.result.to_json() == expected.to_json()
    assert outcome.result.warnings == expected.warnings
    last = expected.windows
    assert (job, last, last, f"reading window {last} of {last}") in progress
    assert outcome.latency_ms > 0
    assert outcome.model.load_seconds == 0.0  # came from the cache
    assert outcome.model.info == oracle.info()


def test_cache_reuses_models_and_drops_the_least_recently_used(qtbot, tiny_models, engine_tasks):
    a, b, c = TEXT_TASKS
    sizes = [parameter_bytes(engine_tasks[task].model) for task in (a, b, c)]
    # room for any two of the three tiny models, never for all three
    limit_bytes = sum(sizes) - min(sizes) / 2
    engine = Engine(TEXT_TASKS, cache_limit_mb=limit_bytes / 1e6)
    with qtbot.waitSignal(engine.ready, timeout=WAIT_MS):
        engine.start()
    loads = []  # the worker says "loading <ref>" only when it reads a model from disk

    def note_load(job_id: int, done: Any, total: Any, message: str) -> None:
        if message.startswith("loading "):
            loads.append(message.removeprefix("loading "))

    engine.progress.connect(note_load)
    try:
        for task in (a, b, a, c):
            text, options = QUICK[task]
            _, outcome = run_job(qtbot, engine, cpu(task, tiny_models[task]), text, **options)
            assert outcome.result.to_json() == engine_tasks[task].run(text, **options).to_json()
        assert loads == [str(tiny_models[task]) for task in (a, b, c)]  # `a` came back from the cache
        # `b` was used least recently, so it made room for `c`
        assert [key[0] for key in engine.worker.cached_keys()] == [a, c]
    finally:
        stop_engine(engine)


def test_the_cache_counts_an_audio_model_by_its_weights_and_evicts_it(qtbot, tiny_models, engine_tasks, tmp_path):
    from engine import tasks
    from tests.engine.models.tiny_wav2vec2 import checkpoint

    audio_folder = checkpoint("cls-weighted", tmp_path)
    audio = tasks.get("audio-classification").load(str(audio_folder), device="cpu")
    audio_bytes = parameter_bytes(audio.model.module)
    text_bytes = parameter_bytes(engine_tasks["text-classification"].model)
    assert audio.parameter_bytes() == audio_bytes > 0
    # room for either model alone, never for both
    engine = Engine(("audio-classification", "text-classification"), cache_limit_mb=max(audio_bytes, text_bytes) * 1.5 / 1e6)
    assert audio_bytes + text_bytes > engine.worker.cache_limit_mb * 1e6
    with qtbot.waitSignal(engine.ready, timeout=WAIT_MS):
        engine.start()
    try:
        for spec in (cpu("audio-classification", audio_folder), cpu("text-classification", tiny_models["text-classification"])):
            with qtbot.waitSignal(engine.loaded, timeout=WAIT_MS):
                engine.load(spec)
        assert [key[0] for key in engine.worker.cached_keys()] == ["text-classification"]
    finally:
        stop_engine(engine)


def test_cancel_stops_a_running_job_and_the_next_job_runs(qtbot, text_engine, tiny_models, engine_tasks, slow_question):
    progress, finished = [], []
    text_engine.progress.connect(lambda *args: progress.append(args))
    text_engine.result.connect(lambda job_id, outcome: finished.append(job_id))
    slow = start_slow_job(qtbot, text_engine, tiny_models, slow_question)
    with qtbot.waitSignal(text_engine.cancelled, timeout=WAIT_MS, check_params_cb=for_job([slow])):
        text_engine.cancel(slow)
    read = [(done, total) for job, done, total, message in progress if job == slow and message.startswith("reading window")]
    total = read[0][1]
    assert total > 20_000  # the input really is slow: tens of thousands of windows
    # the model reported every window it read; it stopped well short of the last one
    assert max(done for done, _ in read) < total
    assert slow not in finished

    _, outcome = run_job(qtbot, text_engine, cpu("text-classification", tiny_models["text-classification"]), SHORT_TEXT)
    assert outcome.result.to_json() == engine_tasks["text-classification"].run(SHORT_TEXT).to_json()


def test_waiting_jobs_are_cancelled_at_once_and_replaced_by_newer_ones(
    qtbot, text_engine, tiny_models, engine_tasks, slow_question
):
    cancelled, results = [], {}
    text_engine.cancelled.connect(cancelled.append)
    text_engine.result.connect(lambda job_id, outcome: results.__setitem__(job_id, outcome))
    text, options = slow_question
    classify = cpu("text-classification", tiny_models["text-classification"])
    slow = text_engine.run(cpu("question-answering", tiny_models["question-answering"]), text, options)
    waiting = text_engine.run(classify, "the waiting job", {})
    first = text_engine.run(classify, "frame 1 of the library", {}, key="live")
    second = text_engine.run(classify, "frame 2 of the library", {}, key="live")
    text_engine.cancel(waiting)
    qtbot.waitUntil(lambda: {waiting, first} <= set(cancelled), timeout=WAIT_MS)
    assert slow not in cancelled and slow not in results  # still running
    text_engine.cancel(slow)
    qtbot.waitUntil(lambda: list(results) == [second], timeout=WAIT_MS)
    assert slow in cancelled  # the worker answered the slow job before it took the next one
    assert second not in cancelled
    expected = engine_tasks["text-classification"].run("frame 2 of the library")
    assert results[second].result.to_json() == expected.to_json()


@pytest.mark.parametrize(
    ("ref", "input", "kind", "words"),
    [
        ("tiny", "", "InputError", "the text is empty"),
        # a lone surrogate (half of an emoji, say) is a str the tokenizer cannot take
        ("tiny", "a broken \ud83d emoji", "InputError", "invalid character at position 9"),
        ("nobody/missing", SHORT_TEXT, "ModelUnavailable", "nobody/missing"),
        ("wrong_architecture", SHORT_TEXT, "CheckpointError", "gpt2"),
        ("corrupt_checkpoint", SHORT_TEXT, "CheckpointError", "corrupt or truncated"),
    ],
    ids=["empty-text", "lone-surrogate", "not-cached-offline", "wrong-architecture", "corrupt-weights"],
)
def test_a_failing_job_reports_its_message_and_the_next_job_runs(
    qtbot, request, text_engine, tiny_models, engine_tasks, ref, input, kind, words
):
    if ref == "tiny":
        ref = tiny_models["text-classification"]
    elif ref in ("wrong_architecture", "corrupt_checkpoint"):
        ref = request.getfixturevalue(ref)
    box = [None]
    with qtbot.waitSignal(text_engine.failed, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = text_engine.run(cpu("text-classification", ref), input, {})
    assert blocker.args[1] == kind
    assert words in blocker.args[2]

    _, outcome = run_job(qtbot, text_engine, cpu("text-classification", tiny_models["text-classification"]), "fine")
    assert outcome.result.to_json() == engine_tasks["text-classification"].run("fine").to_json()


def test_a_bug_in_code_the_worker_runs_is_reported_as_internal_and_the_next_job_runs(
    qtbot, text_engine, tiny_models, engine_tasks
):
    spec = cpu("text-classification", tiny_models["text-classification"])

    def scores_per_label(task, hooks):  # a real call job with a real bug: no label is zero
        return {label: 1 / 0 for label in task.info()["labels"]}

    box = [None]
    with qtbot.waitSignal(text_engine.failed, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = text_engine.call(spec, scores_per_label)
    assert blocker.args[1] == "internal"
    assert "ZeroDivisionError" in blocker.args[2]

    _, outcome = run_job(qtbot, text_engine, spec, "fine")
    assert outcome.result.to_json() == engine_tasks["text-classification"].run("fine").to_json()


def test_the_ui_thread_keeps_turning_while_a_slow_job_runs(qtbot, text_engine, tiny_models, slow_question):
    """A UI-thread timer measures the longest gap between its ticks while the model reads
    windows; a UI thread that waited on the worker would stall for the whole second. (Measured
    from the first window: the tokenizer itself lets go of the GIL, but turning this job's 24,000
    windows into Python objects holds it for about 0.2 s here, a pause no text of a realistic
    length comes near.)"""
    slow = start_slow_job(qtbot, text_engine, tiny_models, slow_question)
    with UiProbe() as probe:
        qtbot.waitUntil(lambda: probe.span() > 1.0, timeout=WAIT_MS)
    with qtbot.waitSignal(text_engine.cancelled, timeout=WAIT_MS, check_params_cb=for_job([slow])):
        text_engine.cancel(slow)
    probe.assert_kept_turning()


def test_stop_ends_the_thread_even_with_a_job_running(qtbot, tiny_models, slow_question):
    engine = Engine(TEXT_TASKS)
    with qtbot.waitSignal(engine.ready, timeout=WAIT_MS):
        engine.start()
    start_slow_job(qtbot, engine, tiny_models, slow_question)
    began = time.monotonic()
    stop_engine(engine)
    assert time.monotonic() - began < 5


def test_live_jobs_run_on_their_few_threads_and_others_on_all(qtbot, text_engine, tiny_models, monkeypatch):
    import torch

    from engine import runtime

    monkeypatch.setattr(runtime, "_DEFAULT_THREADS", 8)  # as on an eight-core machine
    spec = cpu("text-classification", tiny_models["text-classification"])

    def count(live: str | None) -> int:
        box = [None]
        with qtbot.waitSignal(text_engine.result, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
            box[0] = text_engine.call(spec, lambda task, hooks: torch.get_num_threads(), live=live)
        return blocker.args[1].result

    before = count(None)
    assert (count("audio"), count("video"), count(None)) == (1, 4, before)
