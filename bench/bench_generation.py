"""Text generation, engine against transformers' `generate`, on the CPU, at real model sizes
with random weights (saved once to a temporary folder):

    gpt2          GPT-2 124M, greedy, 16-token prompt + 128 new tokens   target: >= 1.5x tokens/s
    distilbart    distilbart-cnn-12-6 sizes, 4 beams with its summarisation settings,
                  512 tokens in, 60 out                                    target: <= 0.8x time
    t5-small      t5-small sizes, greedy, 64 tokens in, 64 out             target: <= 0.8x time

    .venv/bin/python bench/bench_generation.py [--runs N] [--cases gpt2,t5-small]

Both sides first generate once and must give the same tokens. Times are medians of `--runs`
runs taking turns, so both see the same load. Time to first token is when the decoder's first
forward pass has returned (the prompt, or for encoder-decoders the encoder and the first
step). Peak memory is measured in a fresh process per side that loads and generates twice:
the resident set at its highest, and how much a generation adds to it (the second one, once
the memory-mapped weights are paged in).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
FOLDERS = Path(tempfile.gettempdir()) / "task-studio-bench-generation"
PRECISION = "fp32"  # the engine's (--dtype); transformers always runs float32


@dataclass(frozen=True)
class Case:
    """One benchmark: a model size, how long the input is, and the generation settings."""

    name: str
    title: str
    kind: str  # "gpt2", "bart" or "t5"
    config: dict[str, Any]
    input_tokens: int
    settings: dict[str, Any]
    target: str  # "speed" (tokens/s ratio at least) or "time" (time ratio at most)
    bound: float
    new_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "new_tokens", self.settings["max_new_tokens"])


CASES = {
    case.name: case
    for case in (
        Case("gpt2", "GPT-2 124M, greedy, 16 + 128 tokens", "gpt2", {}, 16,
             {"max_new_tokens": 128, "min_new_tokens": 128, "do_sample": False}, "speed", 1.5),
        Case("distilbart", "distilbart-cnn-12-6, 4 beams, 512 in, 60 out", "bart",
             {"vocab_size": 50264, "d_model": 1024, "encoder_layers": 12, "decoder_layers": 6,
              "encoder_attention_heads": 16, "decoder_attention_heads": 16, "encoder_ffn_dim": 4096,
              "decoder_ffn_dim": 4096, "max_position_embeddings": 1024},
             512,
             {"max_new_tokens": 60, "min_new_tokens": 60, "num_beams": 4, "length_penalty": 2.0,
              "no_repeat_ngram_size": 3, "early_stopping": True, "forced_bos_token_id": 0, "forced_eos_token_id": 2,
              "do_sample": False},
             "time", 0.8),
        Case("t5-small", "t5-small, greedy, 64 in, 64 out", "t5", {"decoder_start_token_id": 0}, 64,
             {"max_new_tokens": 64, "min_new_tokens": 64, "do_sample": False}, "time", 0.8),
    )
}

# --------------------------------------------------------------------------- the checkpoints


def folder_of(case: Case) -> Path:
    return FOLDERS / case.name


def save_checkpoint(case: Case) -> None:
    folder = folder_of(case)
    if (folder / "model.safetensors").is_file():
        return
    import torch
    import transformers

    classes = {
        "gpt2": (transformers.GPT2Config, transformers.GPT2LMHeadModel),
        "bart": (transformers.BartConfig, transformers.BartForConditionalGeneration),
        "t5": (transformers.T5Config, transformers.T5ForConditionalGeneration),
    }
    config_class, model_class = classes[case.kind]
    torch.manual_seed(0)
    model_class(config_class(**case.config)).save_pretrained(folder)


def prompt_of(case: Case):
    import torch

    vocab = json.loads((folder_of(case) / "config.json").read_text())["vocab_size"]
    return torch.randint(3, vocab, (case.input_tokens,), generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- the two sides


class Side:
    """A loaded model and a `generate()` giving the new token ids of the best sequence; the
    time its decoder's first forward pass returned is in `first_token`."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.prompt = prompt_of(case)
        self.first_token = 0.0
        self._started = 0.0

    def watch(self, decoder_stack) -> None:
        """Time the first forward pass of `decoder_stack` in each run."""
        def hook(*_: Any) -> None:
            if not self.first_token:
                self.first_token = time.perf_counter() - self._started
        decoder_stack.register_forward_hook(hook)

    def run(self) -> list[int]:
        self.first_token = 0.0
        self._started = time.perf_counter()
        return self.generate()

    def generate(self) -> list[int]:
        raise NotImplementedError


class Engine(Side):
    def __init__(self, case: Case) -> None:
        super().__init__(case)
        import torch

        from engine.tasks.generation_common import FAMILIES, model_generation_config

        folder = folder_of(case)
        config = json.loads((folder / "config.json").read_text())
        family = FAMILIES[config["model_type"]]
        from engine.precision import apply_precision, resolve_precision

        head = "causal-lm" if case.kind == "gpt2" else "seq2seq-lm"
        precision = resolve_precision(PRECISION, torch.device("cpu"))
        self.model: Any = family.load(head, folder, family.config(config), torch.device("cpu"), precision.dtype)
        apply_precision(self.model, precision)
        tokens = model_generation_config(folder, config)
        self.start, self.eos = tokens.get("decoder_start_token_id"), tokens["eos_token_id"]
        self.watch(decoder_stack(self.model, case.kind))

    def generate(self) -> list[int]:
        import torch

        from engine.generation.search import CachedDecoder, generate
        from engine.generation.settings import resolve

        settings = {**self.case.settings, "eos_token_id": self.eos}
        if self.case.kind == "gpt2":
            prompt = self.prompt
            step = lambda ids, cache: self.model(ids, cache, last_only=True)  # noqa: E731
        else:
            prompt = torch.tensor([self.start])
            with torch.inference_mode():
                memory = self.model.encode(self.prompt[None])
            step = lambda ids, cache: self.model.decode(ids, memory, cache, last_only=True)  # noqa: E731
        s = resolve([settings], prompt_length=len(prompt))
        decoder = CachedDecoder(step, self.model.make_cache(s.num_beams, s.max_length), watch=self.watcher())
        return generate(decoder, prompt, s)[0].tokens

    def watcher(self) -> Any:
        return None


class Explained(Engine):
    """The engine keeping each step's attention, as the generation tabs ask for it (`explain`):
    the cross-attention of T5 and BART, GPT-2's self-attention."""

    def generate(self) -> list[int]:
        from engine import probe
        from engine.generation.settings import resolve
        from engine.tasks.generation_common import _mean_over_heads
        from engine.tasks.text_generation import _last_query

        if self.case.kind == "gpt2":
            self.layers = self.model.attention_names()
            positions = resolve([{**self.case.settings, "eos_token_id": self.eos}], prompt_length=len(self.prompt))
            keep = _last_query(positions.max_length)
        else:
            self.layers, keep = self.model.cross_attention_names(), _mean_over_heads
        with probe.watching(self.model, keep, attention=self.layers) as self.probe:
            return super().generate()

    def watcher(self) -> Any:
        from engine.tasks.generation_common import step_attention

        return step_attention(self.probe, self.layers)


class Transformers(Side):
    def __init__(self, case: Case) -> None:
        super().__init__(case)
        import transformers

        model_class = {"gpt2": transformers.GPT2LMHeadModel, "bart": transformers.BartForConditionalGeneration,
                       "t5": transformers.T5ForConditionalGeneration}[case.kind]
        self.model = model_class.from_pretrained(folder_of(case)).eval()
        self.watch(decoder_stack(self.model, case.kind))

    def generate(self) -> list[int]:
        import torch

        settings = dict(self.case.settings)
        if self.case.kind == "gpt2":
            settings["pad_token_id"] = 50256
        with torch.inference_mode():
            out = self.model.generate(self.prompt[None], **settings)
        skip = len(self.prompt) if self.case.kind == "gpt2" else 1
        return out[0, skip:].tolist()


def decoder_stack(model: Any, kind: str) -> Any:
    """The module whose first forward pass gives the first token: the same names on both sides."""
    return {"gpt2": lambda: model.transformer, "bart": lambda: model.model.decoder, "t5": lambda: model.decoder}[kind]()


SIDES: dict[str, Callable[[Case], Side]] = {"engine": Engine, "transformers": Transformers}


# --------------------------------------------------------------------------- measuring


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak since the last reset) of this process, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(side: str, case_name: str) -> None:
    """In a fresh process: load, generate twice, and print as JSON the peak resident set and
    what the second generation added to the resident set it started from."""
    side_obj = SIDES[side](CASES[case_name])
    side_obj.run()  # the first run also pages in the memory-mapped weights
    first, before = _memory_mb("VmHWM"), _memory_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # the peak starts again from the present resident set
        f.write("5")
    side_obj.run()
    again = _memory_mb("VmHWM")
    print(json.dumps({"peak_mb": max(first, again), "added_mb": again - before}))


def memory(side: str, case: Case) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", side, case.name, "--dtype", PRECISION], capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def timings(case: Case, runs: int, explain: bool = False) -> dict[str, dict[str, float]]:
    """Median seconds per generation and to the first token, the sides taking turns (with
    `explain`, a third: the engine keeping each step's attention)."""
    makers = {**SIDES, "explained": Explained} if explain else SIDES
    sides = {name: make(case) for name, make in makers.items()}
    outputs = {name: side.run() for name, side in sides.items()}  # also the warm-up
    same = sum(a == b for a, b in zip(outputs["engine"], outputs["transformers"]))
    if PRECISION != "fp32":  # other arithmetic may choose other tokens: say how many agree
        print(f"  ({PRECISION}: {same} of {len(outputs['transformers'])} tokens as transformers' float32)")
    elif any(tokens != outputs["transformers"] for tokens in outputs.values()):
        raise SystemExit(f"{case.name}: the two sides generated different tokens")
    if len(outputs["engine"]) != case.new_tokens:
        raise SystemExit(f"{case.name}: {len(outputs['engine'])} tokens generated, not {case.new_tokens}")
    times: dict[str, list[float]] = {name: [] for name in sides}
    first: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, side in sides.items():
            began = time.perf_counter()
            side.run()
            times[name].append(time.perf_counter() - began)
            first[name].append(side.first_token)
    return {name: {"seconds": statistics.median(times[name]), "first_s": statistics.median(first[name])} for name in sides}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="generations per side (median)")
    parser.add_argument("--cases", default=",".join(CASES), help="which: " + ", ".join(CASES))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--explain", action="store_true",
                        help="also time the encoder-decoders keeping their cross-attention (the tabs' hover)")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "int8"),
                        help="the engine's precision (transformers stays float32)")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` importable
    global PRECISION
    PRECISION = args.dtype
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.child:
        child(*args.child)
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"Generation on the CPU, float32, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.runs} runs")
    print(f"{'':48} {'engine':>10} {'transformers':>13} {'ratio':>7}  target")
    for name in args.cases.split(","):
        case = CASES[name]
        save_checkpoint(case)
        measured = timings(case, args.runs, args.explain)
        ours, theirs = measured["engine"], measured["transformers"]
        print(case.title)
        if case.target == "speed":
            rate = [case.new_tokens / ours["seconds"], case.new_tokens / theirs["seconds"]]
            _row("  tokens per second", *rate, f">= {case.bound}x")
        else:
            _row("  seconds per generation", ours["seconds"], theirs["seconds"], f"<= {case.bound}x")
        _row("  time to first token (ms)", ours["first_s"] * 1000, theirs["first_s"] * 1000)
        if "explained" in measured:
            print(f"{'  with attention kept (explain): seconds, ratio':48} {measured['explained']['seconds']:10.2f} "
                  f"{'':13} {measured['explained']['seconds'] / ours['seconds']:6.2f}x")
        if not args.no_memory:
            peaks = {side: memory(side, case) for side in SIDES}
            _row("  peak RSS of the process (MB)", peaks["engine"]["peak_mb"], peaks["transformers"]["peak_mb"])
            # a few MB either way: no ratio of such small numbers
            _row("  added by one generation (MB)", peaks["engine"]["added_mb"], peaks["transformers"]["added_mb"], ratio=False)


def _row(name: str, ours: float, theirs: float, target: str = "", ratio: bool = True) -> None:
    shown = f"{ours / theirs:6.2f}x" if ratio else "      -"
    print(f"{name:48} {ours:10.2f} {theirs:13.2f} {shown}  {target}")


if __name__ == "__main__":
    main()
