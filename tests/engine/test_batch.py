"""engine.batch: what a folder or a glob stands for, stems unique across folders, and a run that
turns a failing input into a record and goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import batch
from engine.errors import Cancelled, InputError
from engine.tasks.base import Result


def touch(folder: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        paths.append(path)
    return paths


def test_a_folder_is_its_files_of_the_kind_sorted_and_not_recursive_unless_asked(tmp_path):
    touch(tmp_path, "b.JPG", "a.png", "notes.txt", ".hidden.png", "sub/c.png", ".cache/d.png", "song.wav")
    assert batch.files_in(tmp_path, "image") == [tmp_path / "a.png", tmp_path / "b.JPG"]
    assert batch.files_in(tmp_path, "image", recursive=True) == [tmp_path / n for n in ("a.png", "b.JPG", "sub/c.png")]
    assert batch.files_in(tmp_path, "audio") == [tmp_path / "song.wav"]
    with pytest.raises(InputError, match="more than 1 image files"):
        batch.files_in(tmp_path, "image", limit=1)


def test_inputs_expand_folders_and_globs_and_keep_plain_paths(tmp_path):
    touch(tmp_path, "one/a.png", "one/b.png", "two/a.png", "two/deep/c.png", "two/x.txt")
    expanded = batch.expand([str(tmp_path / "one"), str(tmp_path / "t*/*.png"), "missing.png"], "image")
    assert expanded == [tmp_path / "one/a.png", tmp_path / "one/b.png", tmp_path / "two/a.png", Path("missing.png")]
    deep = batch.expand([str(tmp_path / "**/*.png")], "image", recursive=True)
    assert deep[-1] == tmp_path / "two/deep/c.png" and len(deep) == 4
    assert batch.expand([str(tmp_path / "two")], "image", recursive=True)[-1] == tmp_path / "two/deep/c.png"
    with pytest.raises(InputError, match="no file matches"):
        batch.expand([str(tmp_path / "*.jpg")], "image")
    with pytest.raises(InputError, match="holds no audio files"):
        batch.expand([str(tmp_path / "one")], "audio")


def test_a_file_whose_name_looks_like_a_glob_is_that_file(tmp_path):
    (path,) = touch(tmp_path, "shot[1].png")
    assert batch.expand([str(path)], "image") == [path]


def test_stems_are_unique_across_folders():
    assert batch.unique_stems(["a/photo.jpg", "b/photo.png", "photo-2.jpg", "c/photo.tif", ""]) == [
        "photo", "photo-2", "photo-2-2", "photo-3", "input"
    ]


class Echo(Result):
    def __init__(self, text: str) -> None:
        super().__init__(warnings=["loud"] if text == "shout" else [])
        self.text = text

    def to_json(self):
        return {"text": self.text}


class EchoTask:
    """Stands for a loaded task: refuses "bad", stops at "stop"."""

    input_kind = "text"

    @classmethod
    def read_input(cls, value):
        return value

    def run(self, value, hooks=None, **options):
        if value == "bad":
            raise InputError("bad is refused")
        if value == "stop":
            raise Cancelled()
        if value == "io":
            raise OSError(5, "Input/output error")
        if value == "bug":
            raise ZeroDivisionError("division by zero")
        return Echo(value)


def test_a_run_records_failures_and_goes_on():
    started = []
    names = ["a", "bad", "shout", "io", "bug"]
    records = list(batch.run_batch(EchoTask(), names, {}, on_start=lambda i, n: started.append((i, n))))
    assert started == list(enumerate(names))
    assert [r.to_json() for r in records] == [
        {"input": "a", "result": {"text": "a"}},
        {"input": "bad", "error": "bad is refused"},
        {"input": "shout", "result": {"text": "shout"}, "warnings": ["loud"]},
        {"input": "io", "error": "cannot be read (Input/output error)"},
        {"input": "bug", "error": "internal ZeroDivisionError: division by zero"},
    ]
    assert [r.ok for r in records] == [True, False, True, False, False]


def test_a_cancel_ends_the_run():
    run = batch.run_batch(EchoTask(), ["a", "stop", "b"], {})
    assert next(run).ok
    with pytest.raises(Cancelled):
        next(run)
