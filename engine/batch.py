"""Many files through one loaded model: what a folder or a glob stands for, a file-name stem per
input for the files a result writes, and the run itself, which turns a file that fails into a
record of its error rather than the end of the run.

No torch here, so the app can list a folder's files with the same rules as the CLI.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import Cancelled, EngineError, InputError

if TYPE_CHECKING:
    from engine.tasks.base import Hooks, Result, Task

#: File endings read as each kind of input (what PIL and libsndfile read), lower case.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "image": (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".tga"),
    "audio": (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"),
    "text": (".txt", ".md"),
}

#: The most files one folder or glob stands for: a slip (`/` for `photos/`) should not queue a
#: whole disk.
MAX_BATCH_FILES = 100_000

_GLOB_CHARACTERS = frozenset("*?[")


def is_pattern(value: str) -> bool:
    """Whether `value` is a glob (holds `*`, `?` or `[`) rather than one path."""
    return any(c in _GLOB_CHARACTERS for c in value)


def files_in(folder: str | Path, kind: str, *, recursive: bool = False, limit: int = MAX_BATCH_FILES) -> list[Path]:
    """The files of `kind` ("image" or "audio", by ending) in `folder`, sorted by path; with
    `recursive`, those in its subfolders too. Hidden files and folders are left out."""
    suffixes = SUFFIXES.get(kind, ())
    found: list[Path] = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith(".")) if recursive else []
        found.extend(Path(root) / n for n in names if not n.startswith(".") and Path(n).suffix.lower() in suffixes)
        if len(found) > limit:
            raise InputError(f"{folder} holds more than {limit:,} {kind} files; name a smaller folder")
    return sorted(found)


def expand(values: Iterable[str], kind: str, *, recursive: bool = False) -> list[Path]:
    """The files that the CLI's INPUTs name: a file as it is, a folder as its files of `kind`,
    a glob (quoted, so it works in any shell) as the files it matches, in sorted order; `**`
    in a glob and folders' subfolders are followed with `recursive`. A folder without such
    files or a glob that matches none is an `InputError`; a path that is not there is kept,
    for the run to report."""
    paths: list[Path] = []
    for value in values:
        path = Path(value).expanduser()
        if is_pattern(value) and not path.exists():
            matched = sorted(glob.glob(str(path), recursive=recursive))
            files = [Path(m) for m in matched if Path(m).is_file()]
            for folder in (Path(m) for m in matched if Path(m).is_dir()):
                files.extend(files_in(folder, kind, recursive=recursive))
            if not files:
                raise InputError(f"no file matches {value}")
            paths.extend(files)
        elif path.is_dir():
            inside = files_in(path, kind, recursive=recursive)
            if not inside:
                where = "or its subfolders " if recursive else ""
                endings = " ".join(SUFFIXES.get(kind, ()))
                raise InputError(f"{value} {where}holds no {kind} files ({endings})")
            paths.extend(inside)
        else:
            paths.append(path)
        if len(paths) > MAX_BATCH_FILES:
            raise InputError(f"the inputs name more than {MAX_BATCH_FILES:,} files; run them in parts")
    return paths


def expand_text(values: Iterable[str], *, recursive: bool = False) -> tuple[list[str], bool]:
    """Text tasks' INPUTs: `@folder` and `@'glob'` stand for the text files they hold or match
    (each as `@path`, read when its turn comes), everything else is kept as it is (a text,
    `@file`, `-`). Also whether any input stood for many files, which makes the run a batch."""
    out: list[str] = []
    grouped = False
    for value in values:
        name = value[1:] if value.startswith("@") else ""
        if name and (Path(name).expanduser().is_dir() or (is_pattern(name) and not Path(name).expanduser().exists())):
            out.extend(f"@{path}" for path in expand([name], "text", recursive=recursive))
            grouped = True
        else:
            out.append(value)
    return out, grouped


def unique_stems(values: Iterable[str | Path]) -> list[str]:
    """A file-name stem per input (`photo` for a/photo.jpg), made unique across folders:
    photo, photo-2, photo-3, ..."""
    stems: list[str] = []
    taken: set[str] = set()
    for value in values:
        stem = base = Path(value).stem or "input"
        count = 1
        while stem in taken:
            count += 1
            stem = f"{base}-{count}"
        stems.append(stem)
        taken.add(stem)
    return stems


@dataclass
class Record:
    """One input of a batch: its result, or why it has none."""

    input: str
    result: Result | None = None
    error: str = ""
    seconds: float = 0.0
    written: Any = None  # the result's JSON with the paths of the files it wrote, when it wrote any
    warnings: list[str] = field(default_factory=list)
    internals: dict[str, str] | None = None  # the paths of the internals written (--explain DIR)

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> dict[str, Any]:
        """One line of JSON Lines: `input`, then `result` (the pipeline's shape; `written`
        when it is set) or `error`, and `warnings` when there are any."""
        out: dict[str, Any] = {"input": self.input}
        if self.error:
            out["error"] = self.error
        else:
            out["result"] = self.written if self.written is not None or self.result is None else self.result.to_json()
        if self.internals is not None and not self.error:
            out["internals"] = dict(self.internals)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def run_batch(
    task: Task,
    inputs: list[Any],
    options: dict[str, Any],
    *,
    names: list[str] | None = None,
    hooks: Hooks | None = None,
    output_dir: Path | None = None,
    explain_dir: Path | None = None,
    on_start: Callable[[int, str], None] | None = None,
) -> Iterator[Record]:
    """Run `task` on each input in turn and yield its `Record` as soon as it is done. An input
    the task refuses (an `EngineError`: a corrupt file, one too short) becomes a record with
    its error and the run goes on, as does one that meets a bug ("internal ..."); a cancel
    (`Cancelled`) or Ctrl+C ends it. `on_start(index, name)` is
    called before each input; with `output_dir`, each result writes its files there, named by
    `unique_stems` of the names, and with `explain_dir` its internals (as `.npy` files)."""
    names = names if names is not None else [str(item) for item in inputs]
    stems = unique_stems(names)
    for index, (item, name) in enumerate(zip(inputs, names)):
        if on_start is not None:
            on_start(index, name)
        began = time.perf_counter()
        try:
            value = type(task).read_input(str(item)) if isinstance(item, (str, Path)) else item
            result = task.run(value, hooks=hooks, **options)
            record = Record(name, result, warnings=list(result.warnings))
            if output_dir is not None:
                record.written = write_files(result, output_dir, stems[index])
            if explain_dir is not None:
                record.internals = write_internals(result, explain_dir, stems[index])
        except Cancelled:
            raise
        except EngineError as exc:
            record = Record(name, error=str(exc))
        except MemoryError:
            record = Record(name, error="out of memory")
        except OSError as exc:
            record = Record(name, error=f"cannot be read ({exc.strerror or exc})")
        except Exception as exc:  # a bug met on this file: said as one, and the others still run
            record = Record(name, error=f"internal {type(exc).__name__}: {exc}")
        record.seconds = time.perf_counter() - began
        yield record


def write_internals(result: Result, folder: Path, stem: str) -> dict[str, str]:
    """`result.write_internals` into `folder` (made if need be), its failure an `InputError`."""
    try:
        return result.write_internals(folder, stem)
    except OSError as exc:
        raise InputError(f"cannot write into {folder}: {exc.strerror or exc}") from None


def with_internals(shown: Any, paths: dict[str, str]) -> Any:
    """A result's JSON with the paths of its internals under "internals": beside the other keys
    of an object, or as `{"result": ..., "internals": ...}` around a list (the pipeline's shape
    for many tasks)."""
    return {**shown, "internals": paths} if isinstance(shown, dict) else {"result": shown, "internals": paths}


def write_files(result: Result, folder: Path, stem: str) -> Any:
    """`result.write_files` into `folder` (made if need be), its failure an `InputError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return result.write_files(folder, stem)
    except OSError as exc:
        raise InputError(f"cannot write into {folder}: {exc.strerror or exc}") from None
