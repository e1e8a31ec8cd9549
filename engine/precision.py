"""The precisions a model can run in, and turning a loaded model into them.

fp32, fp16 and bf16 load the weights in that type and run the activations in it too.

int8 is dynamic quantisation with PyTorch's own kernels (`torch.ao.quantization.
quantize_dynamic`): once, at load, every `nn.Linear` gets int8 weights computed from the real
float32 ones, with one scale per output channel; the activations stay float32 between layers
and each linear layer quantises its input on the fly, with a scale read from that input.
Convolutions, embeddings and norms stay float32. These kernels exist on the CPU only (x86's
fbgemm/oneDNN, ARM's qnnpack). torchao's int8 configurations were measured too: on the CPU they
run several times slower than fp32 without `torch.compile`, and slower than fp32 with it.

torch quantises those inputs to 7 bits by default, because AVX2's 8-bit multiply-add saturates
its 16-bit sums; on CPUs with AVX512-VNNI, which sum in 32 bits, `quantize` uses all 8 bits,
which halves the rounding: on a real all-MiniLM-L6-v2 the sentence embeddings' cosine to fp32's
rises from 0.976 to 0.993 on average (bench/bench_precision.py).

bf16 is only fast where the processor computes it natively (AVX512-BF16 or AMX on x86, and
GPUs that support it); elsewhere torch converts every value in software, which is usually
slower than fp32, so asking for bf16 there runs fp32 and says why. `resolve_precision` takes
the capability check as an argument, so a test can pretend to be another machine.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from engine.errors import InputError

#: What a model can run in; "auto" (measured per model, `engine.tasks.precision_check`) is the
#: one choice beyond these.
NAMES = ("fp32", "bf16", "fp16", "int8")
CHOICES = ("auto", *NAMES)
_FLOATS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    """How a loaded model computes. `dtype` is the activations' type, which a task casts its
    inputs to: float32 for int8, whose weights alone are integers."""

    name: str  # what runs: one of NAMES
    requested: str = ""  # what the caller asked for, when that differs ("auto", or a fallback)
    note: str = ""  # for people: why a precision asked for does not run
    check: str = ""  # for people: how the answers compared with fp32's, when that was measured

    @property
    def dtype(self) -> torch.dtype:
        return _FLOATS.get(self.name, torch.float32)

    @property
    def quantized(self) -> bool:
        return self.name == "int8"

    def label(self) -> str:
        """Short, for a status bar: "int8", "int8 (auto)", "fp32 (bf16 unavailable)"."""
        if self.requested == "auto":
            return f"{self.name} (auto)"
        if self.requested and self.requested != self.name:
            return f"{self.name} ({self.requested} unavailable)"
        return self.name


FP32 = Precision("fp32")


def of_dtype(dtype: torch.dtype) -> Precision:
    """The precision of a model built directly with floating-point `dtype` (no quantisation)."""
    name = next((n for n, d in _FLOATS.items() if d == dtype), None)
    if name is None:
        raise InputError(f"no precision runs activations in {dtype}")
    return Precision(name)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware (and so faster than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "mps":
        return True  # torch runs bf16 on Apple GPUs from macOS 14: the user's choice there
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def int8_available(device: torch.device) -> bool:
    """Dynamic int8 kernels exist for the CPU only, and only in torch builds that ship them."""
    if device.type != "cpu":
        return False
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return bool(torch.backends.quantized.supported_engines)


Capability = Callable[[torch.device], bool]


def resolve_precision(
    name: str | None,
    device: torch.device,
    *,
    has_native_bf16: Capability | None = None,
    has_int8: Capability | None = None,
) -> Precision:
    """The precision that runs for the choice `name` on `device` (None is fp32). A choice this
    device cannot run fast or at all falls back to fp32 with a note; "auto" is not resolved
    here (it needs a model to measure) and is an error."""
    if name is None:
        return FP32
    if name == "auto":
        raise InputError("auto is measured on a model: pass it to Task.load, which does that")
    if name not in NAMES:
        raise InputError(f"unknown precision {name!r}: use {', '.join(NAMES)} or auto")
    if name == "bf16" and not (has_native_bf16 or native_bf16)(device):
        what = f"no bf16 on {device.type}"
        if device.type == "cpu":
            what = "this CPU has no native bf16 (AVX512-BF16 or AMX)"
        return Precision("fp32", requested=name, note=f"{what}: running fp32 instead")
    if name == "int8" and not (has_int8 or int8_available)(device):
        where = "in this torch build" if device.type == "cpu" else f"on {device.type} (CPU only)"
        return Precision("fp32", requested=name, note=f"no dynamic int8 {where}: running fp32 instead")
    return Precision(name)


def candidates(
    device: torch.device, *, has_native_bf16: Capability | None = None, has_int8: Capability | None = None
) -> list[Precision]:
    """What Auto tries on `device`, most exact first: fp32, then each faster precision the device
    runs natively. fp16 is left to GPUs, where it has kernels."""
    names = ["fp32", "bf16", *(["fp16"] if device.type in ("cuda", "mps") else []), "int8"]
    found = [resolve_precision(n, device, has_native_bf16=has_native_bf16, has_int8=has_int8) for n in names]
    return [p for p in found if not p.requested]


# --------------------------------------------------------------------------------- int8


def quantize(model: nn.Module, *, full_range: bool | None = None) -> nn.Module:
    """Replace every `nn.Linear` in `model` (in place) by a dynamically quantised one with
    int8 weights, one scale per output channel. Two conventions let a model file take part: a
    module that computes a linear map in a layout of its own (GPT-2's Conv1D) offers
    `as_linear()`, and is quantised as that; a module whose forward pass reads the weights of
    some of its submodules (to merge them) names those in `keep_float`, and they stay as they
    are. `full_range` quantises the inputs to 8 bits rather than 7; None decides by the CPU
    (`vnni`). The returned module is `model` itself."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    kept: list[str] = []
    for name, module in list(model.named_modules()):
        as_linear = getattr(module, "as_linear", None)
        if name and callable(as_linear):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, as_linear())
        kept += [f"{name}.{child}".lstrip(".") for child in getattr(module, "keep_float", ())]
    linear = [
        name for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not any(name == k or name.startswith(k + ".") for k in kept)
    ]

    mapping = {nn.Linear: _full_range_linear()} if (vnni() if full_range is None else full_range) else None
    with warnings.catch_warnings():
        # torch marks its eager quantisation API deprecated in favour of torchao, whose CPU
        # int8 path is slower today (module docstring); the API works in the torch we pin
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        spec = dict.fromkeys(linear, per_channel_dynamic_qconfig)
        return quantize_dynamic(model, spec, mapping=mapping, inplace=True)


def vnni() -> bool:
    """Whether this CPU sums 8-bit products in 32 bits (AVX512-VNNI), so 8-bit inputs cannot
    saturate torch's int8 kernels."""
    return bool(getattr(getattr(torch, "cpu", None), "_is_vnni_supported", lambda: False)())


@functools.cache
def _full_range_linear() -> type[nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    class FullRangeLinear(DynamicLinear):
        """torch's dynamic int8 linear layer, its input quantised to 8 bits instead of 7."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            packed = self._packed_params._packed_params
            return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)

    return FullRangeLinear


def apply_precision(model: nn.Module, precision: Precision) -> nn.Module:
    """Make a model loaded in `precision.dtype` compute in `precision`: int8 quantises its
    linear layers, the float precisions are already there."""
    return quantize(model) if precision.quantized else model


def quantized_layers(model: nn.Module) -> int:
    """How many layers of `model` hold int8 weights."""
    return sum(1 for module in model.modules() if _packed_weight(module) is not None)


def learned_tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every tensor that holds `model`'s learned numbers: its parameters and its int8 weights
    (which are neither parameters nor buffers)."""
    yield from model.parameters()
    for module in model.modules():
        packed = _packed_weight(module)
        if packed is not None:
            yield from packed


def _packed_weight(module: nn.Module) -> tuple[torch.Tensor, ...] | None:
    """The int8 weight (and float bias) of a dynamically quantised linear layer; None for any
    other module."""
    weight_of, bias_of = getattr(module, "weight", None), getattr(module, "bias", None)
    if not hasattr(module, "_packed_params") or not callable(weight_of) or not callable(bias_of):
        return None
    weight, bias = weight_of(), bias_of()
    return (weight,) if bias is None else (weight, bias)
