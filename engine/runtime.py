"""Choosing the device a model runs on, and the cancel flag (precisions: `engine.precision`)."""

from __future__ import annotations

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
