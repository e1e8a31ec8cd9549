"""`python -m engine TASK INPUT... --model ID_OR_DIR`: run a task headless and print JSON."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from engine import tasks
from engine.errors import EngineError, InputError
from engine.precision import CHOICES as PRECISIONS


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit code 2, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="Run a Task Studio task and print JSON.")
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=_Parser)
    for name in tasks.available():
        task = tasks.get(name)
        p = sub.add_parser(name, help=task.title, description=f"{task.title}. Prints JSON.")
        what = {"text": "text, @file or - for stdin"}.get(task.input_kind, f"{task.input_kind} file")
        p.add_argument("inputs", nargs="+", metavar="INPUT", help=what)
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


def _progress(done: float, total: float | None, message: str) -> None:
    if sys.stderr.isatty():
        share = f" {100 * done / total:.0f}%" if total else ""
        sys.stderr.write(f"\r{message}{share} ({done / 1e6:.1f} MB)")


def _say(kind: str, message: str) -> None:
    """One line on stderr, whatever the message holds."""
    sys.stderr.write(f"{kind}: {' '.join(message.split())}\n")


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    _say("warning", str(message))  # a library's warning, as one line like the results' own


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    from engine.tasks.base import Hooks

    args = build_parser().parse_args(argv)
    task_cls = tasks.get(args.task)
    explain_dir = getattr(args, "explain_dir", None)
    options = {o.name: explain_dir is not None if o.name == "explain" else getattr(args, o.name) for o in task_cls.options}
    try:
        options = task_cls.resolve_options(options)
        inputs = [task_cls.read_input(value) for value in args.inputs]
        task = task_cls.load(args.model, device=args.device, dtype=args.dtype, hooks=Hooks(on_progress=_progress))
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
        for note in (task.precision.note, task.precision.check):
            if note:
                sys.stderr.write(f"note: {task.precision.label()}: {note}\n")
        results = [task.run(item, **options) for item in inputs]
        output_dir = getattr(args, "output_dir", None)
        if output_dir is None:
            printed = [result.to_json() for result in results]
        else:
            printed = write_files(results, _stems(args.inputs), output_dir)
        if explain_dir is not None:
            printed = with_internals(printed, results, _stems(args.inputs), explain_dir)
    except EngineError as exc:
        _say("error", str(exc))
        return 2
    except KeyboardInterrupt:
        _say("error", "interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, but say it is not the user's fault
        _say("error", f"internal {type(exc).__name__}: {exc}")
        return 1
    out: Any = printed[0] if len(printed) == 1 else printed
    try:
        text = json.dumps(out, ensure_ascii=False, indent=2, allow_nan=False)  # strict JSON: no NaN
    except ValueError:
        _say("error", "the model's answer holds numbers that are not finite (NaN or infinity): "
             "its weights may be damaged")
        return 2
    for result in results:
        for warning in result.warnings:
            _say("warning", warning)
    sys.stdout.write(text + "\n")
    return 0


def write_files(results: list[Any], stems: list[str], folder: Path) -> list[Any]:
    """Each result's files written into `folder` (made if need be), named after its input's
    stem; their JSON with the paths."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return [result.write_files(folder, stem) for result, stem in zip(results, stems)]
    except OSError as exc:
        raise InputError(f"cannot write into {folder}: {exc.strerror or exc}") from None


def with_internals(printed: list[Any], results: list[Any], stems: list[str], folder: Path) -> list[Any]:
    """Each result's internals written into `folder` as .npy files, their paths added to its
    JSON under "internals": beside the other keys of an object, or as
    `{"result": ..., "internals": ...}` around a list (the pipeline's shape for many tasks)."""
    try:
        written = [result.write_internals(folder, stem) for result, stem in zip(results, stems)]
    except OSError as exc:
        raise InputError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    return [
        {**shown, "internals": paths} if isinstance(shown, dict) else {"result": shown, "internals": paths}
        for shown, paths in zip(printed, written)
    ]


def _stems(values: list[str]) -> list[str]:
    """A file-name stem per input (`photo` for photo.jpg), made unique: photo, photo-2, ..."""
    stems: list[str] = []
    for value in values:
        stem = base = Path(value).stem or "input"
        count = 1
        while stem in stems:
            count += 1
            stem = f"{base}-{count}"
        stems.append(stem)
    return stems
