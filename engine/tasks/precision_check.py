"""Checking a faster precision against fp32 on the model at hand, and Auto: the fastest
precision whose answers agree with fp32's, measured rather than assumed.

A check runs the task on its check inputs (`Task.check_inputs`: the bundled samples, or fixed
sentences) in fp32 and in the other precision, built from the same checkpoint folder. The
answers agree when every result's `gist()` (the top label, the transcript, the entity spans,
...) equals fp32's and the outputs are finite; the model's raw outputs (logits, boxes) are
compared too, for the largest difference.

Auto does that for each candidate the device runs well (`engine.precision.candidates`: fp32,
then bf16 where the hardware has it, then int8 on the CPU), timing the check's run of the last
input (the ones before it are its warm-up; a single input is run once more). A less exact precision has to beat the current choice
by `MARGIN` to replace it, so noise in a timing never trades accuracy for nothing. The verdict
is remembered for the process by (task, folder, device): loading the same model again builds
the chosen precision without measuring twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from engine.precision import FP32, Capability, Precision, candidates
from engine.runtime import CancelFlag, check_cancel
from engine.tasks.base import CheckInput, Hooks, Task

T = TypeVar("T", bound=Task)

MARGIN = 1.1  # a less exact precision must be at least this many times faster to be chosen


@dataclass(frozen=True)
class Trial:
    """One precision's run on the check inputs, against fp32's."""

    precision: str
    inputs: int  # how many check inputs ran
    differing: int  # how many of them got another answer than in fp32
    max_difference: float | None  # largest |output - fp32 output| (None: forward never ran)
    seconds: float = math.nan  # one run of the last input, the others its warm-up (Auto only)

    @property
    def agrees(self) -> bool:
        return self.differing == 0 and (self.max_difference is None or math.isfinite(self.max_difference))

    def brief(self) -> str:
        """e.g. "same answers, outputs within 0.031" or "answers differ on 1 of 2, outputs
        within 0.29", for a list of trials."""
        found = f"answers differ on {self.differing} of {self.inputs}" if self.differing else "same answers"
        if self.max_difference is None:
            return found
        if not math.isfinite(self.max_difference):
            return found + ", outputs not finite"
        return found + f", outputs within {self.max_difference:.2g}"

    def summary(self) -> str:
        """e.g. "same answers as fp32 on 2 check inputs (largest output difference 0.031)"."""
        inputs = f"{self.inputs} check input{'s' if self.inputs != 1 else ''}"
        found = f"same answers as fp32 on {inputs}" if self.differing == 0 else (
            f"answers differ from fp32 on {self.differing} of {inputs}"
        )
        if self.max_difference is None:  # a model driven through methods other than forward
            return found
        return found + f" (largest output difference {self.max_difference:.3g})"


@dataclass(frozen=True)
class Verdict:
    """What Auto measured (fp32's trial first) and chose."""

    chosen: str
    trials: tuple[Trial, ...]

    def summary(self) -> str:
        if not self.trials:
            return "no check inputs for this task: kept fp32"
        base = self.trials[0].seconds
        speeds = ", ".join(f"{t.precision} {base / t.seconds:.1f}× ({t.brief()})" for t in self.trials[1:])
        chosen = next(t for t in self.trials if t.precision == self.chosen)
        found = chosen.summary() if chosen.precision != "fp32" else "kept fp32"
        return f"{found}; speed against fp32: {speeds or 'no faster precision on this device'}"


_VERDICTS: dict[tuple[str, str, str], Verdict] = {}


def choose_precision(
    cls: type[T],
    folder: Path,
    device: torch.device,
    hooks: Hooks | None = None,
    *,
    inputs: Sequence[CheckInput] | None = None,
    has_native_bf16: Capability | None = None,
    remember: bool = True,
) -> T:
    """The task built in the fastest precision that agrees with fp32 on `inputs` (by default
    `cls.check_inputs()`); its `precision.check` says what was measured."""
    hooks = hooks or Hooks()
    key = (cls.name, str(Path(folder).resolve()), str(device))
    verdict = _VERDICTS.get(key) if remember else None
    if verdict is not None:
        return cls.build(folder, device, _auto(verdict))
    inputs = list(cls.check_inputs() if inputs is None else inputs)
    tried = candidates(device, has_native_bf16=has_native_bf16)
    best = cls.build(folder, device, FP32)
    if not inputs:
        verdict = Verdict("fp32", ())
    else:
        reference = _run(best, inputs, None, hooks, timed=True)
        trials = [reference.trial]
        for step, precision in enumerate(tried[1:], start=1):
            check_cancel(hooks.cancel)
            _progress(hooks, step, len(tried), f"checking {precision.name} against fp32")
            task = cls.build(folder, device, precision)
            trials.append(_run(task, inputs, reference, hooks, timed=True).trial)
            if pick(trials).precision == precision.name:
                best = task
            del task  # a precision that lost is let go before the next is built
        verdict = Verdict(best.precision.name, tuple(trials))
    if remember:
        _VERDICTS[key] = verdict
    best.precision = _auto(verdict)
    return best


def pick(trials: Sequence[Trial]) -> Trial:
    """The fastest of `trials` (fp32's first, then less exact ones in order) that agrees with
    fp32; each later one must be `MARGIN` times faster than the choice so far to replace it."""
    best = trials[0]
    for trial in trials[1:]:
        if trial.agrees and trial.seconds * MARGIN < best.seconds:
            best = trial
    return best


def compare_with_fp32(
    task: Task, hooks: Hooks | None = None, *, inputs: Sequence[CheckInput] | None = None
) -> Trial | None:
    """Run `task` and an fp32 twin built from the same folder on `inputs` (by default the
    task's check inputs) and record in `task.precision.check` how the answers compare. None,
    and nothing recorded, when the task is fp32 or has no check inputs."""
    hooks = hooks or Hooks()
    inputs = list(type(task).check_inputs() if inputs is None else inputs)
    if task.precision.name == "fp32" or not inputs:
        return None
    _progress(hooks, 0, 1, f"checking {task.precision.name} against fp32")
    reference = _run(type(task).build(task.folder, task.device, FP32), inputs, None, hooks, timed=False)
    trial = _run(task, inputs, reference, hooks, timed=False).trial
    task.precision = replace(task.precision, check=trial.summary())
    return trial


def _auto(verdict: Verdict) -> Precision:
    return Precision(verdict.chosen, requested="auto", check=verdict.summary())


def _progress(hooks: Hooks, done: int, total: int, message: str) -> None:
    if hooks.on_progress is not None:
        hooks.on_progress(done, total, message)


@dataclass
class Record:
    """A task's answers on check inputs: each result's gist, the model's raw outputs (float32,
    on the CPU) in the order the model produced them, and the seconds each input took."""

    gists: list[Any]
    outputs: list[torch.Tensor]
    seconds: list[float]


def record(task: Task, inputs: Sequence[CheckInput], cancel: CancelFlag | None = None) -> Record:
    """Run `task` over `inputs`, keeping each result's gist and every output of its network."""
    answers = Record([], [], [])
    handle = task.network().register_forward_hook(lambda _m, _a, out: answers.outputs.extend(_tensors(out)))
    try:
        for value, options in inputs:
            began = time.perf_counter()
            answers.gists.append(task.run(value, hooks=Hooks(cancel=cancel), **options).gist())
            answers.seconds.append(time.perf_counter() - began)
    finally:
        handle.remove()
    return answers


@dataclass
class _Run:
    trial: Trial
    record: Record


def _run(task: Task, inputs: Sequence[CheckInput], reference: _Run | None, hooks: Hooks, *, timed: bool) -> _Run:
    """`record` `task` on `inputs` and (when `timed`) take the last input's time, a single input
    being run once more for it; compare with `reference` (None: this is the reference)."""
    answers = record(task, inputs, hooks.cancel)
    seconds = math.nan
    if timed:
        seconds = answers.seconds[-1] if len(inputs) > 1 else record(task, inputs, hooks.cancel).seconds[0]
    if reference is None:
        return _Run(Trial(task.precision.name, len(inputs), 0, 0.0, seconds), answers)
    differing = sum(a != b for a, b in zip(answers.gists, reference.record.gists))
    difference = max_difference(answers.outputs, reference.record.outputs)
    return _Run(Trial(task.precision.name, len(inputs), differing, difference, seconds), answers)


def _tensors(output: Any) -> list[torch.Tensor]:
    """The floating-point tensors in a model's output (a tensor or a tuple of them), as float32
    on the CPU."""
    if isinstance(output, torch.Tensor):
        return [output.detach().float().cpu()] if output.is_floating_point() else []
    if isinstance(output, (tuple, list)):
        return [t for part in output for t in _tensors(part)]
    return []


def max_difference(outputs: list[torch.Tensor], reference: list[torch.Tensor]) -> float | None:
    """The largest |a - b| between matching outputs; NaN when they do not match in number or
    shape, or hold a value that is not finite; None when neither side has any."""
    if not outputs and not reference:
        return None
    if len(outputs) != len(reference) or any(a.shape != b.shape for a, b in zip(outputs, reference)):
        return math.nan
    differences = [float((a - b).abs().max()) for a, b in zip(outputs, reference) if a.numel()]
    return math.nan if any(math.isnan(d) for d in differences) else max(differences, default=0.0)
