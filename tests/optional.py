"""Test modules that need a system library the test machine may lack skip, saying which."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


def import_or_skip(name: str) -> ModuleType:
    """Module `name`, or the calling test module skipped with the reason. Unlike
    `pytest.importorskip` this also catches OSError, which is how soundfile (libsndfile) and
    sounddevice (PortAudio) say that their shared library is missing."""
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as exc:
        pytest.skip(f"{name} cannot load here ({exc})", allow_module_level=True)
