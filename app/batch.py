"""A batch in the app: every file of a folder through the engine worker in turn, one run job at a
time, so the model is loaded once (the worker caches it), a cancel stops at once, and the tab's
own runs can still go in between. A file that fails is recorded with its error and the batch
goes on. The records export as JSON Lines (the CLI's --jsonl lines) or CSV.

No widgets and no torch here: `BatchRun` speaks to `app.worker.Engine` through its signals, and
the panel that shows a batch is app/widgets/batch_panel.py.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.worker import Engine, ModelSpec, Outcome
from engine.batch import Record


@dataclass
class BatchItem:
    """One file of a batch: waiting, then its result's JSON (and, for the latest files, the
    whole outcome to show again) or the reason it has none."""

    path: Path
    outcome: Outcome | None = None  # let go for all but the batch's latest files
    json: Any = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    state: str = "waiting"  # waiting, running, done, failed or cancelled

    def record(self) -> Record:
        """The CLI's record of this file, for JSON Lines."""
        if self.state == "done":
            return Record(str(self.path), seconds=self.seconds, written=self.json, warnings=list(self.warnings))
        return Record(str(self.path), error=self.error or self.state)


class BatchRun(QObject):
    """Runs `paths` one after another with the task of `spec` and `options`.

    `item_started(index)` and `item_done(index)` follow the files (the item holds its outcome
    or error); `progress(index, done, total, message)` is a long file's own progress;
    `finished(completed)` ends the batch, `completed` False when it was cancelled. The whole
    outcomes of only the `keep` latest files are kept (a depth map is megabytes); every
    file's JSON stays."""

    item_started = Signal(int)
    item_done = Signal(int)
    progress = Signal(int, object, object, str)
    finished = Signal(bool)

    def __init__(
        self,
        engine: Engine,
        spec: ModelSpec,
        options: dict[str, Any],
        paths: list[Path],
        keep: int = 100,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine, self.spec, self.options, self.keep = engine, spec, dict(options), keep
        self.items = [BatchItem(Path(p)) for p in paths]
        self.index = -1
        self._job: int | None = None
        self._stopping = False
        engine.result.connect(self._on_result)
        engine.failed.connect(self._on_failed)
        engine.cancelled.connect(self._on_cancelled)
        engine.progress.connect(self._on_progress)

    @property
    def running(self) -> bool:
        return self._job is not None

    def counts(self) -> tuple[int, int]:
        """(files with a result, files that failed) so far."""
        return sum(i.state == "done" for i in self.items), sum(i.state == "failed" for i in self.items)

    def start(self) -> None:
        self._next()

    def cancel(self) -> None:
        """Stop the file under way and leave the rest: `finished(False)` follows."""
        if self._job is None:
            return
        self._stopping = True
        self.engine.cancel(self._job)

    def _next(self) -> None:
        self.index += 1
        if self.index >= len(self.items):
            self._end(True)
            return
        item = self.items[self.index]
        item.state = "running"
        self._job = self.engine.run(self.spec, str(item.path), self.options)
        self.item_started.emit(self.index)

    def _end(self, completed: bool) -> None:
        self._job = None
        for item in self.items:
            if item.state in ("waiting", "running"):
                item.state = "cancelled"
        self._disconnect()
        self.finished.emit(completed)

    def _disconnect(self) -> None:
        for signal, slot in (
            (self.engine.result, self._on_result),
            (self.engine.failed, self._on_failed),
            (self.engine.cancelled, self._on_cancelled),
            (self.engine.progress, self._on_progress),
        ):
            signal.disconnect(slot)

    @Slot(int, object)
    def _on_result(self, job_id: int, outcome: Outcome) -> None:
        if job_id == self._job:
            self._done(outcome=outcome)

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, kind: str, message: str) -> None:
        if job_id == self._job:
            self._done(error=message)

    def _done(self, outcome: Outcome | None = None, error: str = "") -> None:
        item = self.items[self.index]
        item.outcome, item.error = outcome, error
        item.state = "done" if outcome is not None else "failed"
        if outcome is not None:
            item.json, item.seconds = outcome.result.to_json(), outcome.latency_ms / 1000
            item.warnings = list(getattr(outcome.result, "warnings", []) or [])
        if self.index >= self.keep:
            self.items[self.index - self.keep].outcome = None
        self.item_done.emit(self.index)
        if self._stopping:  # the cancel came too late for this file; the next ones do not start
            self._end(False)
        else:
            self._next()

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._end(False)

    @Slot(int, object, object, str)
    def _on_progress(self, job_id: int, done: float, total: float | None, message: str) -> None:
        if job_id == self._job:
            self.progress.emit(self.index, done, total, message)


# ----- exports ----------------------------------------------------------------------------------


def top_label(data: Any) -> tuple[str, float | None]:
    """The best label of a result's JSON that holds labels (classification, detection), with
    its score; ("", None) for other results."""
    if isinstance(data, list):
        scored = [e for e in data if isinstance(e, dict) and "label" in e]
        if scored:
            best = max(scored, key=lambda e: e.get("score") if isinstance(e.get("score"), float) else -1.0)
            score = best.get("score")
            return str(best["label"]), score if isinstance(score, float) else None
    return "", None


def write_jsonl(items: list[BatchItem], path: Path) -> None:
    """One line per file, as `python -m engine ... --jsonl` prints them."""
    with Path(path).open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item.record().to_json(), ensure_ascii=False) + "\n")


CSV_COLUMNS = ("file", "label", "score", "summary", "seconds", "error")


def write_csv(items: list[BatchItem], path: Path, summaries: list[str]) -> None:
    """One row per file: its best label and score where the task gives labels, the tab's
    one-line summary, the run's seconds, and the error of a file that failed."""
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for item, summary in zip(items, summaries):
            done = item.state == "done"
            label, score = top_label(item.json) if done else ("", None)
            seconds = f"{item.seconds:.3f}" if done else ""
            error = "" if done else item.error or item.state
            writer.writerow([str(item.path), label, "" if score is None else f"{score:.6f}", summary, seconds, error])
