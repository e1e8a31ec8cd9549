"""Loading checkpoint files into models built on the meta device, strictly and without copies.

A model file supplies `build()` (its module tree mirrors the checkpoint's key names) and an
`adapt(state, expected)` that applies that model's legacy renames.

Buffers computed from the config rather than stored in the checkpoint (a relative position
index, a causal mask) follow one convention: the module that owns them registers them with
`register_buffer(name, tensor, persistent=False)` in `__init__`, where they are built on the
meta device like everything else, and recomputes them in a method
`init_buffers(self, device: torch.device) -> None`. `load_model` calls `init_buffers` on every
submodule that defines it once the checkpoint's tensors are assigned; a buffer still on the
meta device after that is a bug in the model and raises RuntimeError. No checkpoint key is
faked for them. Generation caches (keys and values of past tokens) are never registered
buffers: they belong to the task, which passes them into `forward`.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from engine.config import read_json
from engine.errors import CheckpointError

StateDict = dict[str, torch.Tensor]


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a checkpoint folder, safetensors first; shards in index order."""
    folder = Path(folder)
    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            shards = sorted(set(read_json(folder / index).get("weight_map", {}).values()))
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise CheckpointError(f"{folder} lacks the shards {', '.join(missing)}")
            return [folder / s for s in shards]
    raise CheckpointError(
        f"{folder} holds no weights: expected model.safetensors or pytorch_model.bin"
    )


def read_state_dict(folder: Path) -> StateDict:
    """Every tensor of the checkpoint in `folder`, memory-mapped where the format allows."""
    state: StateDict = {}
    for path in weight_files(folder):
        state.update(_read_safetensors(path) if path.suffix == ".safetensors" else _read_bin(path))
    return state


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path.name} is corrupt or truncated ({exc})") from None


def _read_bin(path: Path) -> StateDict:
    """A pickled checkpoint, read only through torch's weights-only unpickler. A refusal is
    one line that says what the file holds, without torch's advice to turn the check off."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not for people
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path.name} was refused by the weights-only reader ({_unpickler_reason(exc)}): reading "
            "it in full could run code from the file, so only plain tensors are read from .bin files"
        ) from None
    except Exception as exc:
        raise CheckpointError(
            f"{path.name} is not a PyTorch checkpoint or is damaged ({_one_line(exc)})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name} does not hold a state dict")
    return state


def _unpickler_reason(error: Exception) -> str:
    """The weights-only unpickler's own reason (e.g. "Unsupported global: GLOBAL
    datetime.date was not an allowed global by default") from torch's several paragraphs."""
    text = _plain(str(error))
    _, found, reason = text.partition("WeightsUnpickler error:")
    reason = reason.strip().split("\n")[0].split(". ")[0].strip() if found else ""
    return reason or _one_line(error)


def _one_line(error: Exception) -> str:
    lines = [line.strip() for line in _plain(str(error)).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # terminal colour codes


def rename_legacy_layer_norms(state: StateDict) -> StateDict:
    """Old BERT-style files call LayerNorm parameters gamma and beta."""
    renamed = {}
    for key, value in state.items():
        if "LayerNorm." in key:
            key = key.replace("LayerNorm.gamma", "LayerNorm.weight")
            key = key.replace("LayerNorm.beta", "LayerNorm.bias")
        renamed[key] = value
    return renamed


def drop_keys(state: StateDict, suffixes: Iterable[str]) -> StateDict:
    """Remove stray buffers that checkpoints carry but no model reads (e.g. `position_ids`)."""
    suffixes = tuple(suffixes)
    return {k: v for k, v in state.items() if not k.endswith(suffixes)}


def match_prefix(state: StateDict, expected: set[str], prefix: str) -> StateDict:
    """Add the base prefix (`bert.`, `wav2vec2.`) when the file was saved from the bare base
    model, or remove it when the model wants the bare names."""
    has = any(k.startswith(prefix) for k in state)
    wants = any(k.startswith(prefix) for k in expected)
    if wants and not has:
        return {(prefix + k if prefix + k in expected else k): v for k, v in state.items()}
    if has and not wants:
        return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    return state


def load_model(
    build: Callable[[], nn.Module],
    folder: Path,
    *,
    adapt: Callable[[StateDict, set[str]], StateDict] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Build the model on the meta device and assign the checkpoint's tensors to it.

    `adapt(state, expected_keys)` applies the model's own renames. Keys must then match
    exactly: the error names what is missing and what is left over. Then every submodule
    with an `init_buffers(device)` method computes its non-persistent buffers.
    """
    with torch.device("meta"), _SkipRandomInit():
        model = build()
    expected = model.state_dict()
    state = rename_legacy_layer_norms(read_state_dict(folder))
    if adapt is not None:
        state = adapt(state, set(expected))
    _check_keys(state, expected, folder)
    for key, value in state.items():
        want = expected[key]
        if value.shape != want.shape:
            raise CheckpointError(
                f"{key} has shape {tuple(value.shape)} in the checkpoint but the config "
                f"implies {tuple(want.shape)}"
            )
        if want.is_floating_point() != value.is_floating_point():
            raise CheckpointError(
                f"{key} holds {value.dtype} values in the checkpoint where the model expects "
                f"{'floating-point' if want.is_floating_point() else 'integer'} ones"
            )
        cast = dtype if value.is_floating_point() else value.dtype
        state[key] = value.to(device=device, dtype=cast)
    model.load_state_dict(state, strict=True, assign=True)
    device = torch.device(device)
    for module in model.modules():
        init_buffers = getattr(module, "init_buffers", None)  # see the module docstring
        if init_buffers is not None:
            init_buffers(device)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:  # a non-persistent buffer the model forgot to compute: a bug, not bad input
        raise RuntimeError(f"{type(model).__name__} left tensors on the meta device: {leftover}")
    return model.eval()


class _SkipRandomInit(TorchFunctionMode):
    """Leave parameters uninitialised while a model is built on the meta device: the values are
    never used, and random sampling there imports torch._dynamo (about a second)."""

    IN_PLACE = {"normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                "xavier_uniform_", "xavier_normal_", "orthogonal_"}
    FACTORIES = {"randn", "rand"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else kwargs.get("tensor")
        if name in self.IN_PLACE and isinstance(target, torch.Tensor):
            return target
        if name in self.FACTORIES:
            kwargs.pop("generator", None)
            return torch.empty(*args, **kwargs)
        return func(*args, **kwargs)


def _check_keys(state: StateDict, expected: dict, folder: Path) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    raise CheckpointError(f"the weights in {folder} do not fit this model: " + "; ".join(parts))


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (", …" if len(keys) > n else "")
