"""Reading config.json files into frozen dataclasses that hold only the fields the code reads.

`from_dict` checks every value it picks against the field's annotation, so a config with a
wrong-typed or impossible value fails when it is read, with the field named, instead of deep
inside a model's constructor. A config class lists the number fields that must be above zero
(sizes, counts, tuples of them) in a class-level `POSITIVE` set.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

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
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


def from_dict(cls: type[T], data: dict[str, Any], *, source: str = "config.json", **overrides: Any) -> T:
    """Build dataclass `cls` from the keys of `data` it knows; unknown keys are ignored and a
    missing key without a default is an error that names it. Every value given (from `data`
    or `overrides`) must fit its field's annotation, and the fields in `cls.POSITIVE` must be
    above zero; otherwise a `CheckpointError` names the field and the file (`source`)."""
    fields = dataclasses.fields(cls)
    known = {f.name for f in fields}
    picked = {k: v for k, v in data.items() if k in known}
    picked.update(overrides)
    missing = [
        f.name
        for f in fields
        if f.name not in picked
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CheckpointError(f"{source} lacks {', '.join(missing)} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    positive: frozenset[str] = getattr(cls, "POSITIVE", frozenset())
    checked = {}
    for name, value in picked.items():
        try:
            checked[name] = _fit(value, hints[name])
            if name in positive:
                _check_positive(checked[name])
        except _Misfit as misfit:
            raise CheckpointError(f"{source}: {name} {misfit}, not {_show(value)}") from None
    return cls(**checked)


class _Misfit(Exception):
    """What a value should have been ("must be an integer")."""


def _fit(value: Any, kind: Any) -> Any:
    """`value` as a field of type `kind` holds it (a JSON list becomes a tuple, an int a float
    where a float is wanted), or `_Misfit`."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                try:
                    return _fit(value, option)
                except _Misfit:
                    pass
        raise _Misfit("must be " + " or ".join(map(_describe, options)))
    if origin is tuple:
        return _fit_tuple(value, typing.get_args(kind))
    if kind is bool:
        if not isinstance(value, bool):
            raise _Misfit("must be true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Misfit("must be a whole number")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Misfit("must be a finite number")
        return float(value)
    if isinstance(kind, type) and not isinstance(value, kind):
        raise _Misfit(f"must be {_describe(kind)}")
    return value


def _fit_tuple(value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    any_length = len(args) == 2 and args[1] is Ellipsis
    what = f"must be a list of {'' if any_length else f'{len(args)} '}{_describe(args[0], plural=True)}"
    if not isinstance(value, (list, tuple)) or not (any_length or len(value) == len(args)):
        raise _Misfit(what)
    kinds = [args[0]] * len(value) if any_length else list(args)
    try:
        return tuple(_fit(item, kind) for item, kind in zip(value, kinds))
    except _Misfit:
        raise _Misfit(what) from None


def _check_positive(value: Any) -> None:
    items = value if isinstance(value, tuple) else (value,)
    if any(item is not None and item <= 0 for item in items):
        raise _Misfit("must be above zero" if not isinstance(value, tuple) else "must hold numbers above zero")


def _describe(kind: Any, plural: bool = False) -> str:
    """"a whole number", or with `plural` "whole numbers"."""
    names = {int: "whole number", float: "number", str: "string", bool: "boolean"}
    if kind is type(None):
        return "null"
    if typing.get_origin(kind) is tuple:
        return "lists" if plural else "a list"
    name = names[kind] if kind in names else str(getattr(kind, "__name__", kind))
    return name + "s" if plural else f"a {name}"


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, list, dict, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def id2label(data: dict[str, Any]) -> dict[int, str]:
    """The label table of a config.json, keyed by int (JSON keys are strings)."""
    table = data.get("id2label") or {}
    if not isinstance(table, dict):
        raise CheckpointError(f"config.json: id2label must map label ids to names, not {_show(table)}")
    labels = {}
    for key, name in table.items():
        try:
            labels[int(key)] = str(name)
        except ValueError:
            raise CheckpointError(f"config.json: id2label has a key that is not a whole number: {_show(key)}") from None
    return labels
