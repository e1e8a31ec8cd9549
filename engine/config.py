"""Reading config.json files into frozen dataclasses that hold only the fields the code reads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from engine.errors import CheckpointError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or a `CheckpointError` that names the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{Path(path).name} is missing from {Path(path).parent}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


def from_dict(cls: type[T], data: dict[str, Any], **overrides: Any) -> T:
    """Build dataclass `cls` from the keys of `data` it knows; unknown keys are ignored and a
    missing key without a default is an error that names it."""
    known = {f.name for f in dataclasses.fields(cls)}
    picked = {k: v for k, v in data.items() if k in known}
    picked.update(overrides)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in picked
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CheckpointError(f"config.json lacks {', '.join(missing)} for {cls.__name__}")
    return cls(**picked)


def id2label(data: dict[str, Any]) -> dict[int, str]:
    """The label table of a config.json, keyed by int (JSON keys are strings)."""
    table = data.get("id2label") or {}
    return {int(k): str(v) for k, v in table.items()}
