"""The request's key-value cache: positions written once, rows copied and reordered."""

from __future__ import annotations

import pytest
import torch

from engine.generation.cache import KVCache, attend_shared


def _cache(rows: int = 3, capacity: int = 6) -> KVCache:
    return KVCache(2, rows, 1, 2, capacity, dtype=torch.float32, device="cpu")


def _step(cache: KVCache, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Store `values` (rows, new) as both keys and values of layer 0, as a model would."""
    new = values[:, None, :, None].expand(-1, 1, -1, 2).float()  # (rows, heads, new, head_dim)
    seen = cache.update(0, new, new)
    cache.update(1, new, new)
    cache.advance(values.shape[1])
    return seen


def test_positions_accumulate_and_the_prompt_reaches_every_row():
    cache = _cache()
    keys, _ = _step(cache, torch.tensor([[1, 2]]))  # the prompt, one row
    assert keys.shape == (1, 1, 2, 2) and cache.length == 2
    cache.expand(3)
    keys, values = _step(cache, torch.tensor([[3], [4], [5]]))
    assert keys[:, 0, :, 0].tolist() == [[1, 2, 3], [1, 2, 4], [1, 2, 5]]
    assert torch.equal(keys, values)


def test_reorder_makes_each_row_continue_another():
    cache = _cache()
    _step(cache, torch.tensor([[1], [2], [3]]))
    cache.reorder(torch.tensor([2, 2, 0]))
    keys, _ = _step(cache, torch.tensor([[7], [8], [9]]))
    assert keys[:, 0, :, 0].tolist() == [[3, 7], [3, 8], [1, 9]]
    assert cache.keys[1][:, 0, 0, 0].tolist() == [3, 3, 1]  # every layer follows


def test_cross_attention_is_computed_once_and_shared_by_the_rows():
    cache = _cache()
    calls = []

    def compute():
        calls.append(1)
        g = torch.Generator().manual_seed(0)
        return torch.randn(1, 2, 5, 4, generator=g), torch.randn(1, 2, 5, 4, generator=g)

    keys, values = cache.cross_attention(0, compute)
    assert cache.cross_attention(0, compute)[0] is keys and len(calls) == 1
    q = torch.randn(3, 2, 1, 4, generator=torch.Generator().manual_seed(1))  # three rows, one query each
    expected = torch.nn.functional.scaled_dot_product_attention(q, keys.expand(3, -1, -1, -1), values.expand(3, -1, -1, -1))
    torch.testing.assert_close(attend_shared(torch.nn.Identity(), q, keys, values), expected)


def test_writing_past_the_capacity_is_a_bug_that_says_so():
    cache = _cache(capacity=2)
    _step(cache, torch.tensor([[1, 2, 3]])[:, :2])
    with pytest.raises(RuntimeError, match="holds 2 positions"):
        _step(cache, torch.tensor([[4]]))
