"""The contract every task follows: load a model reference onto a device, then map an input
and options to a result that serialises to JSON. The CLI, the app and the tests all drive
tasks through this class."""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from engine import hub
from engine.checkpoint import StateDict, load_model
from engine.config import read_json
from engine.errors import CheckpointError, InputError
from engine.precision import (
    Precision,
    apply_precision,
    learned_tensors,
    of_dtype,
    quantized_layers,
    resolve_precision,
)
from engine.runtime import CancelFlag, resolve_device
from engine.text import read_text_file, read_text_stream

T = TypeVar("T", bound="Task")

#: The repository's sample files, which Auto precision checks answers on (absent in a bare
#: install of the engine, where Auto keeps fp32).
SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"

#: One input of a task with its run options, as `Task.check_inputs` lists them.
CheckInput = tuple[Any, dict[str, Any]]


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


#: The run option of the tasks that can show the model's internals ("Inside the model"; the
#: CLI's `--explain DIR`).
EXPLAIN = Option(
    "explain", bool, False, "keep the model's internals for this input (attention, maps, scores per step)"
)


@dataclass
class Result:
    """Base of every task's result. `to_json()` gives the shape transformers' pipeline gives.

    `internals` holds what a run with `explain` kept of the model's inner workings (see
    `engine.probe`), by name, each already reduced to what a view shows; empty otherwise."""

    warnings: list[str] = field(default_factory=list, kw_only=True)
    internals: dict[str, np.ndarray] = field(default_factory=dict, kw_only=True, repr=False)

    def to_json(self) -> Any:
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("warnings", "internals")
        }

    def write_internals(self, folder: Path, stem: str) -> dict[str, str]:
        """Write each of `internals` as `STEM-NAME.npy` into `folder` (made if missing); their
        paths by name, for the CLI's `--explain DIR`."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, array in self.internals.items():
            path = folder / f"{stem}-{name.replace('/', '-')}.npy"
            np.save(path, array)
            paths[name] = str(path)
        return paths

    def write_files(self, folder: Path, stem: str) -> Any:
        """Write what this result holds beyond JSON (masks, depth maps) into `folder`, named
        after `stem`, and return `to_json()` with the files' paths in it. Results of tasks
        whose `output_files` is empty write nothing and return `to_json()`."""
        return self.to_json()

    def gist(self) -> Any:
        """What must not change when only the arithmetic's precision does: labels, words and
        spans, not scores. Auto precision compares it with fp32's. By default, the JSON
        without its floats."""
        return _without_floats(self.to_json())


def _plain(value: Any) -> Any:
    """`value` as `dataclasses.asdict` turns a field into JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _without_floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_floats(v) for k, v in value.items() if not isinstance(v, float)}
    if isinstance(value, (list, tuple)):
        return [_without_floats(v) for v in value if not isinstance(v, float)]
    return value


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
        self.dtype = dtype  # the activations' type, which inputs are cast to
        self.precision = of_dtype(dtype)  # how the model computes; `load` may quantise it
        self.config = read_json(self.folder / "config.json")

    @classmethod
    def load(
        cls: type[T],
        ref: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        hooks: Hooks | None = None,
        check_precision: bool = False,
    ) -> T:
        """Fetch `ref` (a folder or a Hub id) and build the task's model on `device` in the
        precision `dtype` (`engine.precision.CHOICES`; None is fp32, "auto" the fastest that
        agrees with fp32 on the task's check inputs, measured here). With `check_precision`,
        a precision other than fp32 is compared with fp32 on those inputs too, and
        `info()` says how the answers compare."""
        hooks = hooks or Hooks()
        torch_device = resolve_device(device)
        precision = None if dtype == "auto" else resolve_precision(dtype, torch_device)
        folder = hub.fetch(
            str(ref), cls.extra_files, on_progress=hooks.on_progress, cancel=hooks.cancel
        )
        from engine.tasks import precision_check

        if precision is None:
            task = precision_check.choose_precision(cls, folder, torch_device, hooks)
        else:
            task = cls.build(folder, torch_device, precision)
            if check_precision:
                precision_check.compare_with_fp32(task, hooks)
        task.ref = str(ref)
        return task

    @classmethod
    def build(cls: type[T], folder: Path, device: torch.device, precision: Precision) -> T:
        """The task on a checkpoint folder already here, its model computing in `precision`:
        loaded in the activations' type, then quantised when the precision asks for it."""
        task = cls(folder, device, precision.dtype)
        task.precision = precision
        apply_precision(task.network(), precision)
        return task

    @abstractmethod
    def run(self, input: Any, *, hooks: Hooks | None = None, **options: Any) -> Result:
        """Map one input to a result."""

    def info(self) -> dict[str, Any]:
        """Facts about the loaded model for people (layers, hidden size, labels, ...); a
        task's own `info()` ends with `**self.runtime_facts()`."""
        return {"model_type": self.config.get("model_type"), **self.runtime_facts()}

    def runtime_facts(self) -> dict[str, Any]:
        """Where and how the model computes: the device, the precision (with the number of
        int8 layers) and, when the precision is not the one asked for, why."""
        facts: dict[str, Any] = {"device": str(self.device), "precision": self.precision.label()}
        if self.precision.quantized:
            facts["int8_linear_layers"] = quantized_layers(self.network())
        if self.precision.note:
            facts["precision_note"] = self.precision.note
        if self.precision.check:
            facts["checked_against_fp32"] = self.precision.check
        return facts

    @classmethod
    def check_inputs(cls) -> list[CheckInput]:
        """Inputs on which Auto precision compares a faster precision's answers with fp32's:
        two sentences for text, two photographs for images, the recorded speech for audio
        (from `SAMPLES`); a task whose input is something else overrides this."""
        if cls.input_kind == "text":
            return [(text, {}) for text in _CHECK_SENTENCES]
        names = {"image": ("cat.jpg", "astronaut.jpg"), "audio": ("speech.wav",)}.get(cls.input_kind, ())
        return [(SAMPLES / name, {}) for name in names if (SAMPLES / name).is_file()]

    def network(self) -> nn.Module:
        """The torch module holding this task's weights; tasks keep it in `self.model`."""
        model = getattr(self, "model", None)
        if not isinstance(model, nn.Module):
            raise TypeError(f"{type(self).__name__} keeps no nn.Module in .model: override network()")
        return model

    def parameter_count(self) -> int:
        """How many numbers the model learned (int8 weights included)."""
        return sum(t.numel() for t in learned_tensors(self.network()))

    def parameter_bytes(self) -> int:
        """Bytes of the model's weights and buffers: what the app's model cache counts."""
        tensors = [*learned_tensors(self.network()), *self.network().buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    @classmethod
    def read_input(cls, value: str) -> Any:
        """The CLI's INPUT: text tasks take the text itself, `@path` for a file, `-` for
        stdin; file tasks take a path."""
        if cls.input_kind == "text":
            return read_text_argument(value)
        path = Path(value).expanduser()
        if path.is_dir():
            raise InputError(f"{value} is a folder, not an {cls.input_kind} file")
        if not path.is_file():
            raise InputError(f"no such file: {value}")
        return path

    @classmethod
    def resolve_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; unknown names, wrong types and values outside the choices
        are `InputError`s. Numbers are taken as they are or from their text ("5"), never from
        a bool; an int option refuses a float (1.7 is not read as 1) and a float option
        refuses NaN and infinity."""
        known = {o.name: o for o in cls.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"{cls.name} has no option {', '.join(unknown)}")
        resolved = {}
        for name, option in known.items():
            value = given.get(name, option.default)
            if value is not None:
                value = _option_value(option, value)
            if option.choices and value is not None and value not in option.choices:
                choices = ", ".join(map(str, option.choices))
                raise InputError(f"{option.flag} must be one of {choices}")
            resolved[name] = value
        return resolved


_CHECK_SENTENCES = (
    "The film was a quiet delight: clever, warm and beautifully acted.",
    "Ada Lovelace wrote the first program for Charles Babbage's engine in London in 1843.",
)


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _option_value(option: Option, value: Any) -> Any:
    """`value` as `option.type`, or an `InputError` that names the flag."""
    wanted = option.type
    problem = f"{option.flag} must be {_KINDS.get(wanted, wanted.__name__)}, not {value!r}"
    if wanted is bool:
        if not isinstance(value, bool):
            raise InputError(problem)
        return value
    if wanted in (int, float):
        kind = numbers.Integral if wanted is int else numbers.Real  # numpy's numbers included
        if isinstance(value, bool) or not isinstance(value, (kind, str)):
            raise InputError(problem)
        number: Any = value.strip() if isinstance(value, str) else value
        try:
            value = wanted(number)
        except (TypeError, ValueError, OverflowError):
            raise InputError(problem) from None
        if wanted is float and not math.isfinite(value):
            raise InputError(f"{option.flag} must be a finite number, not {value!r}")
        return value
    if not isinstance(value, wanted):
        try:
            return wanted(value)
        except (TypeError, ValueError):
            raise InputError(problem) from None
    return value


def read_text_argument(value: str) -> str:
    """The CLI's text INPUT: the text itself, `@path` for a file's text, `-` for stdin; files
    and stdin are read as UTF-8 up to `engine.text.MAX_TEXT_BYTES`."""
    import sys

    if value == "-":
        return read_text_stream(sys.stdin.buffer, "the standard input")
    if value.startswith("@"):
        return read_text_file(value[1:])
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


#: How transformers names a checkpoint trained with each head: the endings of the class names
#: in config.json's `architectures` (Wav2Vec2's CTC head was called ForMaskedLM at first).
TRAINED_AS: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("ForSequenceClassification",),
    "token-classification": ("ForTokenClassification",),
    "question-answering": ("ForQuestionAnswering",),
    "image-classification": ("ForImageClassification",),
    "object-detection": ("ForObjectDetection",),
    "ctc": ("ForCTC", "ForMaskedLM"),
    "audio-classification": ("ForSequenceClassification",),
}


def find_family(config: dict[str, Any], families: Mapping[str, Family], head: str, task: str) -> Family:
    """The family of this checkpoint's `model_type`, when it has `head` and the checkpoint was
    trained with that head; else a clear error that names what the checkpoint is and what
    `task` can run.

    A checkpoint trained for another task can have exactly the weights this head expects (a
    BERT token classifier loads a sentence classifier's file once the pooler is dropped), so
    config.json's `architectures`, when present, must name a class with the head."""
    supported = {name: family for name, family in families.items() if head in family.heads}
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    architectures = [str(a) for a in (architectures if isinstance(architectures, list) else [architectures])]
    if not isinstance(model_type, str) or model_type not in supported:
        raise CheckpointError(
            f"this checkpoint is a {model_type or 'model of unknown type'} "
            f"({', '.join(architectures) or 'unknown architecture'}); "
            f"{task} here needs one of: {', '.join(sorted(supported))}"
        )
    wanted = TRAINED_AS.get(head, ())
    if wanted and architectures and not any(a.endswith(wanted) for a in architectures):
        raise CheckpointError(
            f"this checkpoint is a {', '.join(architectures)}; {task} needs a model trained with its "
            f"head (a class name ending in {' or '.join(wanted)})"
        )
    return supported[model_type]
