"""Looking inside one forward pass, for the app's "Inside the model" views and the CLI's
`--explain DIR`.

A task asked to explain runs its model inside `watching(model, keep, taps=...)`. While that
lasts, every attention module that computes through `engine.models.common.attend` takes the
explicit softmax path and hands its weights (batch, heads, queries, keys) to the probe, and
each module named in `taps` hands over its output through a forward hook. The task's `keep`
function reduces each tensor at once to what a view needs (the [CLS] row, a mean over heads,
a downsampled map), so no layer's full tensors outlive the layer. With no probe active the
models run their fused attention, untouched: outputs are bit-identical and nothing is kept.

The probe lives in a context variable, so it belongs to the thread (the app's worker) that
runs the model and nothing else sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

#: Reduces one recorded tensor to what is kept under its module's name: the tensor itself, a
#: smaller one, or None to keep nothing. Attention weights arrive as (batch, heads, queries,
#: keys); a tap's output as the module returned it.
Keep = Callable[[str, Any], "Tensor | None"]

_ACTIVE: ContextVar[Probe | None] = ContextVar("engine_probe", default=None)


class Probe:
    """What one probed forward pass kept, by the name of the module that made it (its name in
    the model's module tree, `encoder.layer.3.attention.attention`)."""

    def __init__(self, model: nn.Module, keep: Keep | None = None, attention: Iterable[str] | None = None) -> None:
        self._names = {id(module): name for name, module in model.named_modules()}
        self._keep: Keep = keep or (lambda name, value: value)
        self._attention = None if attention is None else set(attention)
        self.records: dict[str, Tensor] = {}

    def watches(self, module: nn.Module) -> bool:
        """Whether `module`'s attention is recorded: it belongs to the probed model (a model
        run inside another's probe is not recorded under wrong names) and is among the
        attention modules asked for (all, unless `watching` named some)."""
        name = self._names.get(id(module))
        return name is not None and (self._attention is None or name in self._attention)

    def record(self, module: nn.Module, value: Any) -> None:
        name = self._names[id(module)]
        with torch.no_grad():
            kept = self._keep(name, value)
        if kept is not None:
            self.records[name] = kept.detach()

    def arrays(self, dtype: np.dtype | type = np.float32) -> dict[str, np.ndarray]:
        """The records as numpy arrays of `dtype` on the CPU, for a result's `internals`."""
        return {name: value.float().cpu().numpy().astype(dtype, copy=False) for name, value in self.records.items()}


def active() -> Probe | None:
    """The probe of the forward pass running in this thread, if any."""
    return _ACTIVE.get()


@contextmanager
def watching(
    model: nn.Module, keep: Keep | None = None, *, taps: Iterable[str] = (), attention: Iterable[str] | None = None
) -> Iterator[Probe]:
    """Record `model`'s attention weights (of every attention module, or only of those named
    in `attention`: the others keep their fused kernel), and the outputs of its modules named
    in `taps`, through `keep`, until the block ends."""
    attention = None if attention is None else list(attention)
    probe = Probe(model, keep, attention)
    modules = dict(model.named_modules())
    missing = [name for name in [*taps, *(attention or ())] if name not in modules]
    if missing:
        raise KeyError(f"the model has no module {', '.join(missing)}")
    handles = [
        modules[name].register_forward_hook(lambda module, args, output: probe.record(module, output))
        for name in taps
    ]
    token = _ACTIVE.set(probe)
    try:
        yield probe
    finally:
        _ACTIVE.reset(token)
        for handle in handles:
            handle.remove()


@contextmanager
def maybe_watching(
    enabled: bool,
    model: nn.Module,
    keep: Keep | None = None,
    *,
    taps: Iterable[str] = (),
    attention: Iterable[str] | None = None,
) -> Iterator[Probe | None]:
    """`watching` when `enabled`, else nothing at all (the fast path): yields None."""
    if not enabled:
        yield None
        return
    with watching(model, keep, taps=taps, attention=attention) as probe:
        yield probe
