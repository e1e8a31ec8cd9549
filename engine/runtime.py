"""Choosing the device a model runs on and the CPU threads it uses, and the cancel flag
(precisions: `engine.precision`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch

from engine.errors import Cancelled, InputError


class CancelFlag(Protocol):
    """Anything with `is_set()`, such as `threading.Event`."""

    def is_set(self) -> bool: ...


def available_devices() -> list[str]:
    """Device kinds present on this machine, fastest first, always ending with "cpu"."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then MPS, then the CPU; an explicit name must exist here."""
    if name == "auto":
        return torch.device(available_devices()[0])
    kind = name.split(":")[0]
    if kind not in ("cuda", "mps", "cpu"):
        raise InputError(f"unknown device {name!r}: use auto, cuda, mps or cpu")
    if kind not in available_devices():
        raise InputError(f"device {name!r} is not available on this machine")
    return torch.device(name)


def check_cancel(cancel: CancelFlag | None) -> None:
    """Raise `Cancelled` when the caller has asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()


# Live inputs (a microphone, a webcam) need a bounded lag more than a short best case. torch
# splits each operation across its threads, and every thread waits for the slowest: when
# another program takes a core, the whole operation waits for that thread's next time slice.
# Measured on 2 cores with other programs keeping the load average near 6 (bench/README.md):
# live transcription lagged a median 0.6 s (int8) and 1.6 s (fp32) on one thread, 19-21 s on
# two, falling ever further behind; DETR on webcam frames took 1.3 s a frame (bf16) on one
# thread, 4.2 s on two. So live audio, whose windows are small, runs on one thread, and live
# video on half of torch's threads, which keeps one thread on a two-core machine and leaves
# cores to the camera, the window and the rest of the machine on a larger one.
LIVE_THREADS = {"audio": lambda cores: 1, "video": lambda cores: max(1, cores // 2)}
_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, the physical cores


def live_threads(kind: str, default: int | None = None) -> int:
    """How many torch threads live work of `kind` ("audio" or "video") runs on, out of
    `default` (torch's own count when None)."""
    return LIVE_THREADS[kind](default or _DEFAULT_THREADS)


@contextmanager
def threads(count: int | None) -> Iterator[None]:
    """Run the block on `count` torch threads (None: as they are), then restore the count."""
    before = torch.get_num_threads()
    if count is not None and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
