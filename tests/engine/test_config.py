"""engine.config: config.json values are fitted to the dataclass's annotations when read, and
every misfit names the field, the file and the value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest

from engine.config import from_dict, id2label
from engine.errors import CheckpointError


@dataclass(frozen=True)
class Sizes:
    POSITIVE: ClassVar[frozenset[str]] = frozenset({"width", "kernels", "vocab"})

    width: int
    kernels: tuple[int, ...] = (3, 3)
    pair: tuple[int, int] = (1, 1)
    eps: float = 1e-5
    act: str = "gelu"
    bias: bool = True
    vocab: int | None = None


def test_values_are_fitted_to_their_annotations():
    sizes = from_dict(Sizes, {"width": 8, "kernels": [5, 3, 1], "pair": [2, 4], "eps": 1, "bias": False, "other": "x"})
    assert sizes == Sizes(8, (5, 3, 1), (2, 4), 1.0, "gelu", False, None)
    assert isinstance(sizes.eps, float)  # a JSON int where a float is wanted
    assert from_dict(Sizes, {"width": 8, "vocab": None}).vocab is None
    assert from_dict(Sizes, {"width": 8}, vocab=30).vocab == 30  # overrides are checked too


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "config.json lacks width for Sizes"),
        ({"width": "8"}, 'config.json: width must be a whole number, not "8"'),
        ({"width": 8.0}, "width must be a whole number, not 8.0"),
        ({"width": True}, "width must be a whole number, not true"),
        ({"width": 0}, "width must be above zero, not 0"),
        ({"width": 8, "vocab": -1}, "vocab must be above zero, not -1"),
        ({"width": 8, "vocab": "big"}, 'vocab must be a whole number or null, not "big"'),
        ({"width": 8, "kernels": [3, 0]}, "kernels must hold numbers above zero, not [3, 0]"),
        ({"width": 8, "kernels": 3}, "kernels must be a list of whole numbers, not 3"),
        ({"width": 8, "pair": [1, 2, 3]}, "pair must be a list of 2 whole numbers, not [1, 2, 3]"),
        ({"width": 8, "eps": math.inf}, "eps must be a finite number, not Infinity"),
        ({"width": 8, "eps": "tiny"}, 'eps must be a finite number, not "tiny"'),
        ({"width": 8, "act": 3}, "act must be a string, not 3"),
        ({"width": 8, "bias": 1}, "bias must be true or false, not 1"),
        ({"width": "x" * 100}, 'not "' + "x" * 36 + "..."),  # long values are cut
    ],
)
def test_misfits_name_the_field_and_the_value(data, message):
    with pytest.raises(CheckpointError) as info:
        from_dict(Sizes, data)
    assert message in str(info.value)


def test_the_file_is_named():
    with pytest.raises(CheckpointError, match="^preprocessor_config.json: width"):
        from_dict(Sizes, {"width": -2}, source="preprocessor_config.json")


def test_label_tables():
    assert id2label({"id2label": {"1": "b", "0": "a"}}) == {0: "a", 1: "b"}
    assert id2label({}) == {}
    with pytest.raises(CheckpointError, match="id2label must map label ids to names"):
        id2label({"id2label": ["a", "b"]})
    with pytest.raises(CheckpointError, match='not a whole number: "zero"'):
        id2label({"id2label": {"zero": "a"}})
