"""Text in: a text file or a stream (stdin) read as UTF-8, never more than `MAX_TEXT_BYTES`.

The bound keeps a mistaken input (`@/dev/zero`, a log of several gigabytes, a video dropped on
the text box) from filling memory: it is far beyond what any text task reads usefully (the
models see 512 tokens at a time; 10 MB is a few thousand windows), yet it holds a long book.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from engine.errors import InputError

#: The largest text input read, in bytes of UTF-8.
MAX_TEXT_BYTES = 10_000_000


def read_text_file(path: str | Path) -> str:
    """The text of the UTF-8 file at `path`; an `InputError` for a missing file, a folder, an
    unreadable file, a file beyond `MAX_TEXT_BYTES` or bytes that are not UTF-8."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a text file")
    try:
        with path.open("rb") as stream:
            return read_text_stream(stream, str(path))
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except PermissionError:
        raise InputError(f"{path} cannot be read: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror or exc})") from None


def read_text_stream(stream: BinaryIO, name: str) -> str:
    """The UTF-8 text of a byte stream (a file, stdin), read up to `MAX_TEXT_BYTES`."""
    data = stream.read(MAX_TEXT_BYTES + 1)  # one byte more tells a file at the limit from a larger one
    if len(data) > MAX_TEXT_BYTES:
        raise InputError(
            f"{name} holds more than {MAX_TEXT_BYTES // 1_000_000} MB, the most a text input may hold"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text") from None
