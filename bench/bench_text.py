"""BERT-base sequence classification, engine against transformers, on the CPU: batch-1 latency
at 128 tokens (the engine in fp32 and in each of `--precisions`, against transformers' fp32),
cold load time in a fresh process, and peak memory during that load.

    .venv/bin/python bench/bench_text.py [--runs N] [--precisions bf16,int8] [--skip-loads]

A random bert-base-size checkpoint (safetensors) is saved once to a temporary folder. Each
cold load runs in its own subprocess (this file with `--child`), so imports and the page cache
state are those of a fresh start with the file recently written.
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
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
FOLDER = Path(tempfile.gettempdir()) / "task-studio-bench-bert-base"
TOKENS = 128


def save_checkpoint(folder: Path) -> None:
    if (folder / "model.safetensors").is_file():
        return
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=2))  # bert-base sizes by default
    model.save_pretrained(folder)


def load_engine(folder: Path, precision: str = "fp32"):
    """The engine's model in `precision` as `Task.build` makes it: loaded in the activations'
    type, then quantised for int8."""
    from engine.checkpoint import load_model
    from engine.config import read_json
    from engine.models import bert
    from engine.precision import Precision, apply_precision

    config = bert.BertConfig.from_json(read_json(folder / "config.json"))
    chosen = Precision(precision)
    model = load_model(
        lambda: bert.BertForSequenceClassification(config, 2), folder, adapt=bert.adapt, dtype=chosen.dtype
    )
    return apply_precision(model, chosen)


def load_transformers(folder: Path):
    from transformers import BertForSequenceClassification

    return BertForSequenceClassification.from_pretrained(folder).eval()


LOADERS = {"engine": load_engine, "transformers": load_transformers}


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak) of this process, from /proc (Linux). Not getrusage:
    its maxrss survives exec, so a child would report its parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(side: str, folder: Path) -> None:
    """One cold load; prints a JSON line with its timings and memory."""
    began = time.perf_counter()
    import torch  # noqa: F401  (the import is part of what a user waits for)

    if side == "transformers":
        import transformers  # noqa: F401
    else:
        import engine.checkpoint  # noqa: F401
    imported = time.perf_counter()
    before = _memory_mb("VmRSS")
    model = LOADERS[side](folder)
    loaded = time.perf_counter()
    peak = _memory_mb("VmHWM")
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    print(json.dumps({
        "import_s": imported - began,
        "load_s": loaded - imported,
        "rss_before_load_mb": before,
        "peak_rss_mb": peak,
    }))


def cold_load(side: str, repeats: int) -> dict[str, float]:
    results = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, str(HERE), "--child", side, str(FOLDER)],
            capture_output=True, text=True, check=True, cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"},
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def latency(runs: int, precisions: tuple[str, ...] = ()) -> dict[str, float]:
    """Median milliseconds per forward pass, the models taking turns: the engine and
    transformers in fp32, and the engine in each of `precisions` ("engine <precision>")."""
    import torch

    models = {side: load(FOLDER) for side, load in LOADERS.items()}
    models.update({f"engine {name}": load_engine(FOLDER, name) for name in precisions})
    ids = torch.randint(1000, 30000, (1, TOKENS), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        ours = models["engine"](ids, mask)
        theirs = models["transformers"](input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(ours, theirs, atol=1e-4), "the two models disagree"
        times: dict[str, list[float]] = {side: [] for side in models}
        for _ in range(3):  # warm-up
            for side, model in models.items():
                model(input_ids=ids, attention_mask=mask)
        for _ in range(runs):
            for side, model in models.items():
                began = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                times[side].append((time.perf_counter() - began) * 1000)
    return {side: statistics.median(t) for side, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30, help="forward passes per side")
    parser.add_argument("--loads", type=int, default=3, help="cold loads per side (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--precisions", default="bf16,int8", help="the engine's precisions beside fp32 (latency)")
    parser.add_argument("--skip-loads", action="store_true", help="latency only")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` importable
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    save_checkpoint(FOLDER)
    weights_mb = (FOLDER / "model.safetensors").stat().st_size / 2**20
    precisions = tuple(p for p in args.precisions.split(",") if p)
    ms = latency(args.runs, precisions)
    print(f"BERT-base sequence classification, CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| latency, batch 1, {TOKENS} tokens, median of {args.runs} | ms | transformers fp32 ms | engine / transformers |")
    print("|---|---|---|---|")
    for side in [s for s in ms if s.startswith("engine")]:
        name = side.removeprefix("engine").strip() or "fp32"
        print(f"| engine {name} | {ms[side]:.1f} | {ms['transformers']:.1f} | {ms[side] / ms['transformers']:.2f}x |")
    if args.skip_loads:
        return
    loads = {side: cold_load(side, args.loads) for side in LOADERS}

    rows = [
        (f"latency, batch 1, {TOKENS} tokens (ms, median of {args.runs})", ms["engine"], ms["transformers"]),
        ("cold load: imports (s)", loads["engine"]["import_s"], loads["transformers"]["import_s"]),
        ("cold load: weights into the model (s)", loads["engine"]["load_s"], loads["transformers"]["load_s"]),
        ("cold load: total (s)", loads["engine"]["import_s"] + loads["engine"]["load_s"],
         loads["transformers"]["import_s"] + loads["transformers"]["load_s"]),
        ("peak RSS of the loading process (MB)", loads["engine"]["peak_rss_mb"], loads["transformers"]["peak_rss_mb"]),
        ("  of which added by the load (MB)",
         loads["engine"]["peak_rss_mb"] - loads["engine"]["rss_before_load_mb"],
         loads["transformers"]["peak_rss_mb"] - loads["transformers"]["rss_before_load_mb"]),
    ]
    print(f"BERT-base sequence classification, {weights_mb:.0f} MB of float32 weights (safetensors), "
          f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'':52} {'engine':>10} {'transformers':>13} {'ratio':>7}")
    for name, ours, theirs in rows:
        print(f"{name:52} {ours:10.3f} {theirs:13.3f} {ours / theirs:7.2f}x")
    print(f"targets: latency <= 1.0x, cold load <= 0.5x, peak during load <= weights + 300 MB "
          f"= {weights_mb + 300:.0f} MB")


if __name__ == "__main__":
    main()
