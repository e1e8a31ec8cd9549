"""What travels between the UI thread and the engine worker: jobs, the queue they wait in, and
the plain records the worker sends back. No Qt and no torch here."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EngineInfo", "Job", "JobQueue", "Loaded", "ModelSpec", "Outcome", "TaskMeta"]


@dataclass(frozen=True)
class ModelSpec:
    """Which model a job needs: an engine task, a Hub id or folder, and where to run it."""

    task: str
    ref: str
    device: str = "auto"
    dtype: str = "fp32"


@dataclass
class Job:
    id: int
    kind: str  # "load", "run" or "call"
    spec: ModelSpec
    input: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    live: str | None = None  # "audio" or "video" for live input: it runs on few threads
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class TaskMeta:
    """What a tab needs to know about its engine task, read in the worker thread."""

    name: str
    title: str
    default_model: str
    suggested_models: tuple[str, ...]
    options: tuple[Any, ...]  # engine.tasks.base.Option


@dataclass(frozen=True)
class EngineInfo:
    """Sent once by `ready`: the devices present and the tasks the engine could import."""

    devices: tuple[str, ...]
    tasks: dict[str, TaskMeta]
    broken: dict[str, str]  # task name -> why its module could not be imported


@dataclass(frozen=True)
class Loaded:
    """The model a job used, as the status bar and the How-it-works panel show it."""

    spec: ModelSpec
    device: str  # resolved, e.g. "cpu" or "cuda"
    dtype: str
    info: dict[str, Any]
    load_seconds: float  # 0.0 when the model came from the cache


@dataclass(frozen=True)
class Outcome:
    result: Any  # the task's engine.tasks.base.Result
    latency_ms: float
    model: Loaded


class JobQueue:
    """Jobs waiting for the worker, oldest first; safe to use from any thread.

    `put` of a job whose key matches a waiting job takes that job's place and returns it;
    `take` blocks until there is a job, and returns None once the queue is closed.
    """

    def __init__(self) -> None:
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job: Job) -> list[Job]:
        with self._cond:
            if self._closed:
                return [job]
            replaced = [j for j in self._jobs if job.key is not None and j.key == job.key]
            if replaced:
                at = self._jobs.index(replaced[0])
                self._jobs = deque(j for j in self._jobs if j not in replaced)
                self._jobs.insert(at, job)
            else:
                self._jobs.append(job)
            self._cond.notify()
            return replaced

    def remove(self, job_id: int) -> Job | None:
        with self._cond:
            for job in self._jobs:
                if job.id == job_id:
                    self._jobs.remove(job)
                    return job
            return None

    def take(self) -> Job | None:
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            return None if self._closed else self._jobs.popleft()

    def close(self) -> list[Job]:
        """Stop serving; the jobs still waiting are returned so their callers hear of it."""
        with self._cond:
            self._closed = True
            left, self._jobs = list(self._jobs), deque()
            self._cond.notify_all()
            return left
