"""`python -m engine TASK INPUT... --model ID_OR_DIR`: run a task headless and print JSON.

One input prints the pipeline's JSON. Several inputs, a folder or a glob are a batch
(engine.batch): the model is loaded once, the files run one by one, a file that fails is
reported and skipped, and the results come as one JSON list at the end or, with --jsonl, as one
line per input the moment it is done.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from engine import batch, tasks
from engine.errors import EngineError
from engine.precision import CHOICES as PRECISIONS


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit code 2, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


EXIT_CODES = """\
exit codes:
  0  every input gave a result
  2  a usage error, a model that cannot be loaded, or no input gave a result
  3  some inputs gave a result and some failed (each failure is an "error:" line on stderr)
  130  interrupted (Ctrl+C)"""

#: A message for an answer that JSON cannot hold.
NOT_FINITE = (
    "the model's answer holds numbers that are not finite (NaN or infinity): its weights may be damaged"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m engine", description="Run a Task Studio task and print JSON.", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=_Parser)
    for name in tasks.available():
        task = tasks.get(name)
        p = sub.add_parser(
            name, help=task.title, description=f"{task.title}. Prints JSON.", epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if task.input_kind == "text":
            p.add_argument("inputs", nargs="+", metavar="INPUT",
                           help="text, @file, - for stdin, or @folder or @'glob' for many text files "
                           "(.txt, .md); more than one input is a batch")
        else:
            kind = task.input_kind
            p.add_argument(
                "inputs", nargs="+", metavar="INPUT",
                help=f"{kind} file, a folder (its {kind} files, sorted) or a quoted glob such as "
                f"'photos/*.jpg'; more than one input is a batch",
            )
        p.add_argument("--recursive", action="store_true",
                       help="take the files in folders' subfolders too, and let ** in a glob cross folders")
        p.add_argument("--jsonl", action="store_true",
                       help='print one JSON object per input as soon as it is done: {"input": ..., '
                       '"result": ...} or {"input": ..., "error": ...}')
        p.add_argument("--progress", action="store_true",
                       help="report progress on stderr even when it is not a terminal (on a terminal it always is)")
        p.add_argument("--model", default=task.default_model, help=f"Hub id or folder (default {task.default_model})")
        p.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
        p.add_argument(
            "--dtype", default=None, choices=PRECISIONS,
            help="precision: fp32 (default), bf16, fp16, int8, or auto (measured at load: the fastest "
            "that agrees with fp32)",
        )
        if task.output_files:
            p.add_argument("--output-dir", type=Path, default=None, metavar="DIR",
                           help=f"write {task.output_files} into DIR and add their paths to the JSON")
        for option in task.options:
            if option.name == "explain":  # the internals go to files: --explain DIR
                p.add_argument("--explain", type=Path, default=None, metavar="DIR", dest="explain_dir",
                               help="keep the model's internals for each input and write them into DIR as "
                               ".npy files, named in the JSON under \"internals\"")
            elif option.type is bool and option.default is False:
                p.add_argument(option.flag, dest=option.name, action="store_true", help=option.help)
            elif option.type is bool:  # unset (the model decides) or on by default: --x / --no-x
                p.add_argument(
                    option.flag, dest=option.name, action=argparse.BooleanOptionalAction,
                    default=option.default, help=option.help,
                )
            else:
                p.add_argument(
                    option.flag,
                    dest=option.name,
                    type=option.type,
                    default=option.default,
                    choices=option.choices or None,
                    help=f"{option.help} (default {option.default})",
                )
    return parser


class StatusLine:
    """Progress on stderr: on a terminal, one line rewritten in place ("12/240 photo.jpg:
    classifying 35%"); elsewhere, when asked for, a line per input and at most one a second
    within an input. Disabled, it writes nothing."""

    def __init__(self, enabled: bool, terminal: bool) -> None:
        self.enabled, self.terminal = enabled, terminal
        self.prefix = ""
        self._shown = False
        self._last = 0.0

    def begin(self, index: int, count: int, name: str) -> None:
        """Input `index` (from 0) of `count` starts."""
        self.prefix = f"{index + 1}/{count} {name}"
        self._write(self.prefix, every_time=True)

    def loading(self, done: float, total: float | None, message: str) -> None:
        """A download's or a load's progress, in bytes."""
        share = f" {100 * done / total:.0f}%" if total else ""
        self._write(f"{message}{share} ({done / 1e6:.1f} MB)")

    def running(self, done: float, total: float | None, message: str) -> None:
        """How far a run has got within one input (seconds of audio, windows of a text)."""
        share = f" {100 * done / total:.0f}%" if total else ""
        self._write(f"{self.prefix}: {message}{share}" if self.prefix else f"{message}{share}")

    def clear(self) -> None:
        """Take the terminal's line away, before other text goes to stderr."""
        if self._shown:
            sys.stderr.write("\r\033[K")
            self._shown = False

    def _write(self, text: str, every_time: bool = False) -> None:
        if not self.enabled:
            return
        if self.terminal:
            sys.stderr.write(f"\r\033[K{text}")
            self._shown = True
        else:
            now = time.monotonic()
            if not every_time and now - self._last < 1.0:
                return
            self._last = now
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


_status = StatusLine(enabled=False, terminal=False)


def _say(kind: str, message: str) -> None:
    """One line on stderr, whatever the message holds."""
    _status.clear()
    sys.stderr.write(f"{kind}: {' '.join(message.split())}\n")


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    _say("warning", str(message))  # a library's warning, as one line like the results' own


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    global _status
    args = build_parser().parse_args(argv)
    task_cls = tasks.get(args.task)
    terminal = sys.stderr.isatty()
    _status = StatusLine(enabled=terminal or args.progress, terminal=terminal)
    explain_dir = getattr(args, "explain_dir", None)
    options = {o.name: explain_dir is not None if o.name == "explain" else getattr(args, o.name) for o in task_cls.options}
    try:
        options = task_cls.resolve_options(options)
        if task_cls.input_kind == "text":
            values, grouped = batch.expand_text(args.inputs, recursive=args.recursive)
            for value in args.inputs:  # a folder's name given as a text is most likely a slip
                if not value.startswith("@") and value.strip() and Path(value).expanduser().is_dir():
                    _say("note", f"{value!r} is read as the text to work on; @{value} would be the "
                         "text files in that folder")
        else:
            values = [str(p) for p in batch.expand(args.inputs, task_cls.input_kind, recursive=args.recursive)]
            grouped = any(batch.is_pattern(v) or Path(v).expanduser().is_dir() for v in args.inputs)
        if args.jsonl or grouped or len(values) > 1:
            return _run_batch(_load(task_cls, args), values, options, args)
        item = task_cls.read_input(values[0])  # a bad input is refused before the model loads
        result = _load(task_cls, args).run(item, hooks=_hooks(), **options)
        _status.clear()
        output_dir = getattr(args, "output_dir", None)
        stem = batch.unique_stems(values)[0]
        printed = result.to_json() if output_dir is None else batch.write_files(result, output_dir, stem)
        if explain_dir is not None:
            printed = batch.with_internals(printed, batch.write_internals(result, explain_dir, stem))
        text = _dumps(printed, indent=2)
    except EngineError as exc:
        _say("error", str(exc))
        return 2
    except KeyboardInterrupt:
        _say("error", "interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, but say it is not the user's fault
        _say("error", f"internal {type(exc).__name__}: {exc}")
        return 1
    for warning in result.warnings:
        _say("warning", warning)
    sys.stdout.write(text + "\n")
    return 0


def _load(task_cls: Any, args: argparse.Namespace) -> Any:
    """The task's model, loaded once, with its precision's notes said on stderr."""
    from engine.tasks.base import Hooks

    task = task_cls.load(args.model, device=args.device, dtype=args.dtype, hooks=Hooks(on_progress=_status.loading))
    _status.clear()
    for note in (task.precision.note, task.precision.check):
        if note:
            _say("note", f"{task.precision.label()}: {note}")
    return task


def _hooks() -> Any:
    from engine.tasks.base import Hooks

    return Hooks(on_progress=_status.running)


def _dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN, no Infinity), or an `EngineError` saying why it cannot be."""
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError:
        raise EngineError(NOT_FINITE) from None


def _run_batch(task: Any, values: list[str], options: dict[str, Any], args: argparse.Namespace) -> int:
    """Every input through the loaded task in turn; a failed one is an "error:" line naming it.
    With --jsonl each record is printed as soon as it is done; else the results (a failed
    input's `{"input", "error"}` in its place) are printed as one list at the end. Returns the
    exit code (see EXIT_CODES)."""
    output_dir = getattr(args, "output_dir", None)
    collected: list[Any] = []
    failed = 0

    def started(index: int, name: str) -> None:
        _status.begin(index, len(values), Path(name).name if task.input_kind != "text" else _short(name))

    explain_dir = getattr(args, "explain_dir", None)
    records = batch.run_batch(
        task, values, options, hooks=_hooks(), output_dir=output_dir, explain_dir=explain_dir, on_start=started
    )
    for record in records:
        try:
            line = _dumps(record.to_json())
        except EngineError as exc:
            record = batch.Record(record.input, error=str(exc), seconds=record.seconds)
            line = _dumps(record.to_json())
        if record.ok:
            for warning in record.warnings:  # named after its input, unless it names it already
                _say("warning", warning if Path(record.input).name in warning else f"{record.input}: {warning}")
        else:
            failed += 1
            _say("error", f"{record.input}: {record.error}")
        _status.clear()
        if args.jsonl:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            entry = json.loads(line)
            shown = entry["result"] if record.ok else entry
            collected.append(batch.with_internals(shown, entry["internals"]) if "internals" in entry else shown)
    if not args.jsonl:
        sys.stdout.write(_dumps(collected, indent=2) + "\n")
    if not failed:
        return 0
    return 2 if failed == len(values) else 3


def _short(text: str, size: int = 40) -> str:
    """A text input as a progress line names it: its first words, on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"
