"""The engine worker: one QObject on one QThread that owns every loaded model.

The UI thread never imports torch. It hands jobs (load a model, run a task) to `Engine`, which
queues them; `EngineWorker.serve` takes them one at a time in its own thread and answers through
typed signals, which Qt delivers to the UI thread as queued calls. A job's id comes back with
every signal, so a tab listens only for its own jobs.

Every job ends with exactly one of `loaded` (load jobs), `result` (run and call jobs), `failed`
or `cancelled`. A call job runs `fn(task, hooks)` with the loaded task in the worker thread: live
sessions (a microphone's transcriber) keep their state there between calls. Cancelling sets the
job's `threading.Event`, which the engine checks between steps (`Hooks.cancel`); a job still
waiting is dropped at once. A job with a `key` replaces a waiting job with the same key, so live
inputs and repeated clicks keep only the newest request. Jobs and the records sent back are
defined in `app.jobs`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot

from app.jobs import EngineInfo, Job, JobQueue, Loaded, ModelSpec, Outcome, TaskMeta
from engine.errors import Cancelled, EngineError

log = logging.getLogger(__name__)

DEFAULT_CACHE_LIMIT_MB = 4096
_PROGRESS_INTERVAL_S = 0.05  # a download reports every chunk; the UI needs ~20 updates a second


#: `loader(spec, hooks)` builds the task object; tests pass a fake one.
Loader = Callable[[ModelSpec, Any], Any]


def load_engine_task(spec: ModelSpec, hooks: Any) -> Any:
    """The task in the precision asked for; one other than fp32 is also checked against fp32 on
    the task's samples, so the How-it-works panel can say how far the answers move."""
    from engine import tasks

    task_cls = tasks.get(spec.task)
    return task_cls.load(spec.ref, device=spec.device, dtype=spec.dtype, hooks=hooks, check_precision=True)


class EngineWorker(QObject):
    """Runs jobs from a `JobQueue` in its own thread and keeps loaded tasks in an LRU cache.

    The cache key is (task, ref, resolved device, dtype asked for). Past `cache_limit_mb` of parameters
    the least recently used tasks are dropped, never the one just used.
    """

    ready = Signal(object)  # EngineInfo, once, when the engine has been imported
    started = Signal(int)  # job id: the worker has taken the job
    progress = Signal(int, object, object, str)  # job id, done, total or None, message
    loaded = Signal(int, object)  # job id, Loaded (also sent by run jobs, before their result)
    partial = Signal(int, object)  # job id, a streamed partial result
    result = Signal(int, object)  # job id, Outcome
    failed = Signal(int, str, str)  # job id, error kind (e.g. "ModelUnavailable"), message
    cancelled = Signal(int)  # job id

    def __init__(
        self,
        queue: JobQueue,
        tasks: Iterable[str],
        *,
        loader: Loader = load_engine_task,
        cache_limit_mb: float = DEFAULT_CACHE_LIMIT_MB,
    ) -> None:
        super().__init__()
        self._queue = queue
        self._task_names = tuple(tasks)
        self._loader = loader
        self.cache_limit_mb = cache_limit_mb
        self._cache: OrderedDict[tuple[str, str, str, str], tuple[Any, Loaded, int]] = OrderedDict()

    @Slot()
    def serve(self) -> None:
        """The worker thread's whole life: describe the engine, then run jobs until closed."""
        self.ready.emit(self._describe())
        while (job := self._queue.take()) is not None:
            self._do(job)
        self._cache.clear()
        self.thread().quit()

    def cached_keys(self) -> list[tuple[str, str, str, str]]:
        """Keys of the loaded tasks, least recently used first (for tests and diagnostics)."""
        return list(self._cache)

    def _describe(self) -> EngineInfo:
        from engine import tasks
        from engine.runtime import available_devices

        metas, broken = {}, {}
        for name in self._task_names:
            try:
                cls = tasks.get(name)
                metas[name] = TaskMeta(
                    name, cls.title, cls.default_model, tuple(cls.suggested_models), tuple(cls.options)
                )
            except Exception as exc:  # a half-written task module must not take the app down
                log.exception("cannot import the %s task", name)
                broken[name] = f"{type(exc).__name__}: {exc}"
        return EngineInfo(tuple(available_devices()), metas, broken)

    def _do(self, job: Job) -> None:
        if job.cancel.is_set():
            self.cancelled.emit(job.id)
            return
        self.started.emit(job.id)
        try:
            task, model = self._task_for(job)
            self.loaded.emit(job.id, model)
            if job.kind in ("run", "call"):
                from engine.runtime import live_threads, threads

                began = time.perf_counter()
                with threads(live_threads(job.live) if job.live else None):
                    if job.kind == "run":
                        result = task.run(job.input, hooks=self._hooks(job), **job.options)
                    else:
                        result = job.input(task, self._hooks(job))
                latency_ms = (time.perf_counter() - began) * 1000
            if job.cancel.is_set():
                raise Cancelled()
        except Cancelled:
            self.cancelled.emit(job.id)
            return
        except EngineError as exc:
            self.failed.emit(job.id, type(exc).__name__, str(exc))
            return
        except MemoryError:
            self.failed.emit(job.id, "MemoryError", "out of memory: try a smaller model or input")
            return
        except Exception as exc:  # a bug: say so, keep serving
            log.exception("job %s failed", job.id)
            self.failed.emit(job.id, "internal", f"internal error ({type(exc).__name__}: {exc})")
            return
        if job.kind in ("run", "call"):
            self.result.emit(job.id, Outcome(result, latency_ms, model))

    def _hooks(self, job: Job) -> Any:
        from engine.tasks.base import Hooks

        last = 0.0

        def on_progress(done: float, total: float | None, message: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= _PROGRESS_INTERVAL_S or (total and done >= total):
                last = now
                self.progress.emit(job.id, done, total, message)

        return Hooks(
            on_progress=on_progress,
            on_partial=lambda value: self.partial.emit(job.id, value),
            cancel=job.cancel,
        )

    def _task_for(self, job: Job) -> tuple[Any, Loaded]:
        from engine.runtime import resolve_device

        spec = job.spec
        device = str(resolve_device(spec.device))
        ref = str(Path(spec.ref).expanduser().resolve()) if Path(spec.ref).expanduser().is_dir() else spec.ref
        key = (spec.task, ref, device, spec.dtype)
        if key in self._cache:
            self._cache.move_to_end(key)
            task, model, _ = self._cache[key]
            return task, Loaded(spec, model.device, model.dtype, model.info, 0.0)
        self.progress.emit(job.id, 0, None, f"loading {spec.ref}")
        began = time.perf_counter()
        task = self._loader(ModelSpec(spec.task, ref, device, spec.dtype), self._hooks(job))
        info = dict(task.info())
        # what runs, which differs from what was asked for with Auto or a fallback ("int8 (auto)")
        dtype = str(info.get("precision") or spec.dtype)
        model = Loaded(spec, device, dtype, info, time.perf_counter() - began)
        self._cache[key] = (task, model, task.parameter_bytes())
        self._evict(keep=key)
        return task, model

    def _evict(self, keep: tuple[str, str, str, str]) -> None:
        limit = self.cache_limit_mb * 1e6
        freed = False
        while sum(size for *_, size in self._cache.values()) > limit and len(self._cache) > 1:
            oldest = next(iter(self._cache))
            if oldest == keep:
                break
            del self._cache[oldest]
            freed = True
        if freed:
            _release_device_memory()


def _release_device_memory() -> None:
    import gc

    import torch

    gc.collect()  # the evicted task may sit in a reference cycle
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Engine(QObject):
    """The UI thread's handle on the worker: submit, cancel, stop. Owns the thread.

    Its signals repeat the worker's, re-emitted in the UI thread, so any slot connected to them
    (a lambda too) runs in the UI thread. `info` holds the `EngineInfo` once `ready` has fired.
    """

    ready = Signal(object)
    started = Signal(int)
    progress = Signal(int, object, object, str)
    loaded = Signal(int, object)
    partial = Signal(int, object)
    result = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int)

    def __init__(
        self,
        tasks: Iterable[str],
        *,
        loader: Loader = load_engine_task,
        cache_limit_mb: float = DEFAULT_CACHE_LIMIT_MB,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._queue = JobQueue()
        self._ids = itertools.count(1)
        self._live: dict[int, Job] = {}
        self.info: EngineInfo | None = None
        self.worker = EngineWorker(self._queue, tasks, loader=loader, cache_limit_mb=cache_limit_mb)
        self._worker_thread = QThread()
        self._worker_thread.setObjectName("engine-worker")
        self.worker.moveToThread(self._worker_thread)
        self._worker_thread.started.connect(self.worker.serve)
        queued = Qt.ConnectionType.QueuedConnection
        for name in ("ready", "started", "progress", "loaded", "partial", "result", "failed", "cancelled"):
            getattr(self.worker, name).connect(getattr(self, name), queued)
        self.ready.connect(self._on_ready)
        for done in (self.result, self.failed, self.cancelled):
            done.connect(self._forget)
        self.loaded.connect(self._on_loaded)

    def start(self) -> None:
        self._worker_thread.start()

    def is_running(self) -> bool:
        return self._worker_thread.isRunning()

    def load(self, spec: ModelSpec, *, key: str | None = None) -> int:
        return self._submit(Job(next(self._ids), "load", spec, key=key))

    def run(
        self, spec: ModelSpec, input: Any, options: dict[str, Any], *, key: str | None = None, live: str | None = None
    ) -> int:
        """Run the task of `spec` on `input`. `live` ("audio" or "video") marks live input, which
        runs on the few threads `engine.runtime.live_threads` gives it."""
        return self._submit(Job(next(self._ids), "run", spec, input, dict(options), key=key, live=live))

    def call(
        self, spec: ModelSpec, fn: Callable[[Any, Any], Any], *, key: str | None = None, live: str | None = None
    ) -> int:
        """Run `fn(task, hooks)` in the worker thread with the task of `spec` loaded; its return
        value comes back as the `Outcome.result` of `result`. `live` as for `run`."""
        return self._submit(Job(next(self._ids), "call", spec, fn, key=key, live=live))

    def cancel(self, job_id: int) -> None:
        """Stop a job: a waiting one is dropped now, a running one at its next check."""
        job = self._live.get(job_id)
        if job is None:
            return
        job.cancel.set()
        if self._queue.remove(job_id) is not None:
            self._announce_cancelled(job_id)

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for the worker thread to end; True when it did."""
        for job in self._queue.close():
            job.cancel.set()
        for job in self._live.values():
            job.cancel.set()
        if not self._worker_thread.isRunning():
            return True
        return self._worker_thread.wait(timeout_ms)

    def _submit(self, job: Job) -> int:
        self._live[job.id] = job
        for old in self._queue.put(job):
            old.cancel.set()
            self._announce_cancelled(old.id)
        return job.id

    def _announce_cancelled(self, job_id: int) -> None:
        # through the worker's signal, so it reaches every listener the way answers do: later,
        # never inside the caller's own call
        self.worker.cancelled.emit(job_id)

    @Slot(object)
    def _on_ready(self, info: EngineInfo) -> None:
        self.info = info

    @Slot(int, object)
    def _on_loaded(self, job_id: int, _model: Loaded) -> None:
        job = self._live.get(job_id)
        if job is not None and job.kind == "load":
            self._live.pop(job_id, None)

    @Slot(int)
    def _forget(self, job_id: int, *_: Any) -> None:
        self._live.pop(job_id, None)
