"""engine.probe and common.attend: the explicit path equals the fused one, records only what
`keep` keeps, and leaves nothing behind when the block ends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import probe
from engine.models.common import attend
from engine.tasks.base import Result


class Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(8, 8)

    def forward(self, q, k, v, mask=None, scale=None):
        return attend(self, q, k, v, mask, scale)


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = Heads()
        self.second = Heads()


def qkv(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 5, 4, generator=g) for _ in range(3)]


@pytest.mark.parametrize("kind", ["none", "bool", "float", "scale"])
def test_the_explicit_path_equals_the_fused_one_and_hands_over_the_weights(kind):
    q, k, v = qkv()
    mask, scale = None, None
    if kind == "bool":
        mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
        mask[..., 3:] = False
    elif kind == "float":
        mask = torch.randn(2, 1, 5, 5)
    elif kind == "scale":
        scale = 1.0
    model = Pair()
    fused = model.first(q, k, v, mask, scale)
    with probe.watching(model) as seen:
        explicit = model.first(q, k, v, mask, scale)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)
    weights = seen.records["first"]
    assert weights.shape == (2, 3, 5, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    if kind == "bool":
        assert weights[..., 3:].abs().max() == 0


def test_without_a_probe_attend_is_the_fused_kernel_bit_for_bit():
    q, k, v = qkv(1)
    assert torch.equal(Heads()(q, k, v), F.scaled_dot_product_attention(q, k, v))
    assert probe.active() is None


def test_keep_reduces_each_record_and_none_keeps_nothing():
    q, k, v = qkv(2)
    model = Pair()
    keep = lambda name, w: w[:, :, 0].mean(1) if name == "first" else None  # noqa: E731
    with probe.watching(model, keep) as seen:
        model.first(q, k, v)
        model.second(q, k, v)
    assert list(seen.records) == ["first"]
    assert seen.records["first"].shape == (2, 5)
    assert seen.arrays()["first"].dtype == np.float32
    assert probe.active() is None


def test_a_module_of_another_model_is_not_recorded_and_taps_record_outputs():
    q, k, v = qkv(3)
    model, stranger = Pair(), Heads()
    with probe.watching(model, taps=["first.inner"]) as seen:
        model.first.inner(torch.ones(1, 8))
        stranger(q, k, v)
    assert list(seen.records) == ["first.inner"]
    assert not model.first.inner._forward_hooks  # the hook is gone after the block


def test_an_unknown_tap_is_named():
    with pytest.raises(KeyError, match="no module nowhere"):
        with probe.watching(Pair(), taps=["nowhere"]):
            pass


def test_maybe_watching_off_yields_nothing_and_keeps_the_fast_path():
    with probe.maybe_watching(False, Pair()) as seen:
        assert seen is None and probe.active() is None


@dataclass
class Scores(Result):
    label: str


def test_internals_stay_out_of_the_json_and_write_as_npy(tmp_path):
    result = Scores("cat", internals={"encoder.layer.0": np.arange(6, dtype=np.float32).reshape(2, 3)})
    assert result.to_json() == {"label": "cat"}
    paths = result.write_internals(tmp_path / "out", "photo")
    assert list(paths) == ["encoder.layer.0"]
    np.testing.assert_array_equal(np.load(paths["encoder.layer.0"]), result.internals["encoder.layer.0"])
    assert Scores("dog").internals == {}
