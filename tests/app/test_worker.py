"""The engine worker on its real thread, driven with a fake task loader so each behaviour
(slow, failing, cancelled, cached) can be produced on purpose."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from PySide6.QtCore import QTimer
from torch import nn

from app.worker import Engine, ModelSpec
from engine.errors import Cancelled, InputError, ModelUnavailable
from tests.app.conftest import stop_engine

WAIT_MS = 20_000


@dataclass
class FakeResult:
    echo: str
    warnings: list

    def to_json(self) -> dict:
        return {"echo": self.echo}


class FakeTask:
    """Holds ~1 MB of parameters so the cache has something to weigh."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.model = nn.Linear(500, 500)  # 250,500 float32 parameters = 1.002 MB

    def info(self) -> dict:
        return {"model_type": "fake", "ref": self.spec.ref}

    def run(self, input, *, hooks=None, **options):
        if input == "bad":
            raise InputError("this input is bad on purpose")
        if input == "bug":
            raise RuntimeError("a bug on purpose")
        if input == "slow":
            # pure-Python work holding the GIL most of the time, for up to 10 s
            end = time.monotonic() + 10
            while time.monotonic() < end:
                if hooks is not None and hooks.cancel.is_set():
                    raise Cancelled()
                sum(i * i for i in range(20_000))
        return FakeResult(f"{input}{options.get('suffix', '')}", [])


class FakeLoader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, spec: ModelSpec, hooks) -> FakeTask:
        self.calls.append(spec.ref)
        if spec.ref == "nobody/missing":
            raise ModelUnavailable("nobody/missing is not cached and the Hub cannot be reached")
        hooks.on_progress(50, 100, "downloading")
        return FakeTask(spec)


SPEC = ModelSpec("fake", "a", "cpu", "fp32")


@pytest.fixture
def loader() -> FakeLoader:
    return FakeLoader()


@pytest.fixture
def fake_engine(qtbot, loader):
    engine = Engine((), loader=loader, cache_limit_mb=2.5)
    with qtbot.waitSignal(engine.ready, timeout=WAIT_MS):
        engine.start()
    yield engine
    stop_engine(engine)


def for_job(job_id_box: list):
    """A check_params_cb that accepts the signal only for the job id put in `job_id_box`."""
    return lambda job_id, *_: job_id == job_id_box[0]


def run_job(qtbot, engine, input, spec=SPEC, **options):
    box = [None]
    with qtbot.waitSignal(engine.result, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = engine.run(spec, input, options)
    return blocker.args[1]


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
        assert [o.name for o in meta.options] == ["top_k"]
        assert "no-such-task" in info.broken and "no-such-task" not in info.tasks
    finally:
        stop_engine(engine)


def test_load_then_run_reports_the_model_and_the_result(qtbot, fake_engine):
    progress = []
    fake_engine.progress.connect(lambda *args: progress.append(args))
    box = [None]
    with qtbot.waitSignal(fake_engine.loaded, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = fake_engine.load(SPEC)
    model = blocker.args[1]
    assert (model.device, model.dtype, model.info["model_type"]) == ("cpu", "fp32", "fake")
    assert (box[0], 50, 100, "downloading") in progress
    outcome = run_job(qtbot, fake_engine, "hello", suffix="!")
    assert outcome.result.to_json() == {"echo": "hello!"}
    assert outcome.latency_ms >= 0
    assert outcome.model.load_seconds == 0.0  # came from the cache


def test_cache_reuses_models_and_drops_the_least_recently_used(qtbot, fake_engine, loader):
    for ref in ("a", "b", "a", "c"):
        run_job(qtbot, fake_engine, "x", spec=ModelSpec("fake", ref, "cpu", "fp32"))
    assert loader.calls == ["a", "b", "c"]  # "a" the second time came from the cache
    # 2.5 MB holds two 1 MB models: "b" was used least recently
    assert [key[1] for key in fake_engine.worker.cached_keys()] == ["a", "c"]


def test_cancel_stops_a_running_job_and_the_next_job_runs(qtbot, fake_engine):
    box = [None]
    with qtbot.waitSignal(fake_engine.started, timeout=WAIT_MS, check_params_cb=for_job(box)):
        box[0] = fake_engine.run(SPEC, "slow", {})
    began = time.monotonic()
    with qtbot.waitSignal(fake_engine.cancelled, timeout=WAIT_MS, check_params_cb=for_job(box)):
        fake_engine.cancel(box[0])
    assert time.monotonic() - began < 5  # well before the 10 s the job would take
    assert run_job(qtbot, fake_engine, "next").result.echo == "next"


def test_waiting_jobs_are_cancelled_at_once_and_replaced_by_newer_ones(qtbot, fake_engine):
    cancelled, results = [], []
    fake_engine.cancelled.connect(cancelled.append)
    fake_engine.result.connect(lambda job_id, outcome: results.append(outcome.result.echo))
    slow = fake_engine.run(SPEC, "slow", {})
    waiting = fake_engine.run(SPEC, "waiting", {})
    first = fake_engine.run(SPEC, "frame 1", {}, key="live")
    second = fake_engine.run(SPEC, "frame 2", {}, key="live")
    fake_engine.cancel(waiting)
    qtbot.waitUntil(lambda: {waiting, first} <= set(cancelled), timeout=WAIT_MS)
    assert slow not in cancelled  # still running
    fake_engine.cancel(slow)
    qtbot.waitUntil(lambda: results == ["frame 2"], timeout=WAIT_MS)
    assert second not in cancelled


@pytest.mark.parametrize(
    ("spec", "input", "kind", "words"),
    [
        (SPEC, "bad", "InputError", "bad on purpose"),
        (SPEC, "bug", "internal", "RuntimeError: a bug on purpose"),
        (ModelSpec("fake", "nobody/missing", "cpu", "fp32"), "x", "ModelUnavailable", "nobody/missing"),
    ],
)
def test_a_failing_job_reports_its_message_and_the_next_job_runs(qtbot, fake_engine, spec, input, kind, words):
    box = [None]
    with qtbot.waitSignal(fake_engine.failed, timeout=WAIT_MS, check_params_cb=for_job(box)) as blocker:
        box[0] = fake_engine.run(spec, input, {})
    assert blocker.args[1] == kind
    assert words in blocker.args[2]
    assert run_job(qtbot, fake_engine, "fine").result.echo == "fine"


def test_the_ui_thread_keeps_turning_while_a_slow_job_runs(qtbot, fake_engine):
    """A QTimer in the UI thread measures the longest gap between its ticks."""
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    box = [None]
    probe.start()
    with qtbot.waitSignal(fake_engine.started, timeout=WAIT_MS, check_params_cb=for_job(box)):
        box[0] = fake_engine.run(SPEC, "slow", {})
    qtbot.waitUntil(lambda: len(ticks) > 2 and ticks[-1] - ticks[0] > 1.5, timeout=WAIT_MS)
    probe.stop()
    with qtbot.waitSignal(fake_engine.cancelled, timeout=WAIT_MS, check_params_cb=for_job(box)):
        fake_engine.cancel(box[0])
    longest = max(b - a for a, b in zip(ticks, ticks[1:]))
    assert longest < 0.1, f"the UI stalled for {longest * 1000:.0f} ms"


def test_stop_ends_the_thread_even_with_a_job_running(qtbot, loader):
    engine = Engine((), loader=loader)
    with qtbot.waitSignal(engine.ready, timeout=WAIT_MS):
        engine.start()
    with qtbot.waitSignal(engine.started, timeout=WAIT_MS):
        engine.run(SPEC, "slow", {})
    began = time.monotonic()
    stop_engine(engine)
    assert time.monotonic() - began < 5
