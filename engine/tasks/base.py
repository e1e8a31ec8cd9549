"""The contract every task follows: load a model reference onto a device, then map an input
and options to a result that serialises to JSON. The CLI, the app and the tests all drive
tasks through this class."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from engine import hub
from engine.checkpoint import StateDict, load_model
from engine.config import read_json
from engine.errors import CheckpointError, InputError
from engine.runtime import CancelFlag, resolve_device, resolve_dtype

T = TypeVar("T", bound="Task")


@dataclass(frozen=True)
class Option:
    """One run option. `name` is the pipeline's parameter name (`top_k`); the CLI flag is
    derived from it (`--top-k`)."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class Hooks:
    """Callbacks and the cancel flag a caller hands to `load` and `run`; all optional."""

    on_progress: hub.ProgressFn | None = None
    on_partial: Callable[[Any], None] | None = None  # streamed partial results
    cancel: CancelFlag | None = None


@dataclass
class Result:
    """Base of every task's result. `to_json()` gives the shape transformers' pipeline gives."""

    warnings: list[str] = field(default_factory=list, kw_only=True)

    def to_json(self) -> Any:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "warnings"}

    def write_files(self, folder: Path, stem: str) -> Any:
        """Write what this result holds beyond JSON (masks, depth maps) into `folder`, named
        after `stem`, and return `to_json()` with the files' paths in it. Results of tasks
        whose `output_files` is empty write nothing and return `to_json()`."""
        return self.to_json()


class Task(ABC):
    """A model of one architecture family loaded for one task."""

    name: ClassVar[str]  # the pipeline's name, e.g. "text-classification"
    title: ClassVar[str]  # for people, e.g. "Text classification"
    modality: ClassVar[str]  # "text", "vision" or "audio"
    input_kind: ClassVar[str]  # "text", "image" or "audio"
    default_model: ClassVar[str]
    suggested_models: ClassVar[tuple[str, ...]] = ()
    extra_files: ClassVar[tuple[str, ...]] = ()  # Hub files needed beyond config and weights
    options: ClassVar[tuple[Option, ...]] = ()
    # what the results can write with `Result.write_files`, for people ("one mask PNG per
    # segment"); the CLI offers --output-dir where this is set
    output_files: ClassVar[str] = ""
    ref: str  # what `load` fetched: a folder or a Hub id; unset on a task built directly

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.folder = Path(folder)
        self.device = device
        self.dtype = dtype
        self.config = read_json(self.folder / "config.json")

    @classmethod
    def load(
        cls: type[T],
        ref: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        hooks: Hooks | None = None,
    ) -> T:
        """Fetch `ref` (a folder or a Hub id) and build the task's model on `device`."""
        hooks = hooks or Hooks()
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype)
        folder = hub.fetch(
            str(ref), cls.extra_files, on_progress=hooks.on_progress, cancel=hooks.cancel
        )
        task = cls(folder, torch_device, torch_dtype)
        task.ref = str(ref)
        return task

    @abstractmethod
    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Result:
        """Map one input to a result."""

    def info(self) -> dict[str, Any]:
        """Facts about the loaded model for people (layers, hidden size, labels, ...)."""
        return {"model_type": self.config.get("model_type")}

    def network(self) -> nn.Module:
        """The torch module holding this task's weights; tasks keep it in `self.model`."""
        model = getattr(self, "model", None)
        if not isinstance(model, nn.Module):
            raise TypeError(f"{type(self).__name__} keeps no nn.Module in .model: override network()")
        return model

    def parameter_count(self) -> int:
        """How many numbers the model learned."""
        return sum(p.numel() for p in self.network().parameters())

    def parameter_bytes(self) -> int:
        """Bytes of the model's parameters and buffers: what the app's model cache counts."""
        tensors = [*self.network().parameters(), *self.network().buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    @classmethod
    def read_input(cls, value: str) -> Any:
        """The CLI's INPUT: text tasks take the text itself, `@path` for a file, `-` for
        stdin; file tasks take a path."""
        if cls.input_kind == "text":
            return read_text_argument(value)
        path = Path(value).expanduser()
        if not path.is_file():
            raise InputError(f"no such file: {value}")
        return path

    @classmethod
    def resolve_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; unknown names, wrong types and values outside the choices
        are `InputError`s."""
        known = {o.name: o for o in cls.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"{cls.name} has no option {', '.join(unknown)}")
        resolved = {}
        for name, option in known.items():
            value = given.get(name, option.default)
            if value is not None and option.type is not bool and not isinstance(value, option.type):
                try:
                    value = option.type(value)
                except (TypeError, ValueError):
                    raise InputError(f"{option.flag} must be a {option.type.__name__}") from None
            if option.choices and value not in option.choices:
                choices = ", ".join(map(str, option.choices))
                raise InputError(f"{option.flag} must be one of {choices}")
            resolved[name] = value
        return resolved


def read_text_argument(value: str) -> str:
    import sys

    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"no such file: {path}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text") from None
    return value


Adapt = Callable[[StateDict, set[str]], StateDict]


@dataclass(frozen=True)
class Family:
    """One architecture as the tasks build it, found by config.json's `model_type`.

    Each modality declares its families once (text_common, vision_common, speech_common):
    `config` reads config.json (a model file's `Config.from_json`), `heads` maps a head's name
    to the model class that carries it, `adapt` is the model file's `adapt`, `describe` its
    How-it-works numbers, and `processor` what the modality's input processing needs to know
    about this family (None where nothing differs)."""

    title: str
    config: Callable[[dict[str, Any]], Any]
    heads: Mapping[str, Callable[..., nn.Module]]
    adapt: Adapt
    describe: Callable[[Any], dict[str, Any]]
    processor: Any = None

    def load(
        self, head: str, folder: Path, model_config: Any, device: torch.device, dtype: torch.dtype, *args: Any
    ) -> nn.Module:
        """The model with `head`, built from `model_config` (and `args`), weights from `folder`."""
        build = self.heads[head]
        return load_model(
            lambda: build(model_config, *args), folder, adapt=self.adapt, device=device, dtype=dtype
        )


def find_family(config: dict[str, Any], families: Mapping[str, Family], head: str, task: str) -> Family:
    """The family of this checkpoint's `model_type`, when it has `head`; else a clear error
    that names the model types `task` can run."""
    supported = {name: family for name, family in families.items() if head in family.heads}
    model_type = config.get("model_type")
    if model_type in supported:
        return supported[model_type]
    arch = ", ".join(config.get("architectures") or []) or "unknown architecture"
    raise CheckpointError(
        f"this checkpoint is a {model_type or 'model of unknown type'} ({arch}); "
        f"{task} here needs one of: {', '.join(sorted(supported))}"
    )
