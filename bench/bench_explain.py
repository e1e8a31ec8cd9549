"""What the `explain` option costs the vision tasks at real sizes (random weights): ViT-B/16 at
224, ConvNeXT-T at 224 and DETR-R50 at 800×1066, each run with explain off and on.

    .venv/bin/python -m bench explain
    .venv/bin/python bench/bench_explain.py [--runs N] [--threads N] [--models vit,convnext,detr] [--no-memory]

Time: end to end from the photo to the answer (and, with explain, the internals), the two
settings taking turns run by run in one process, so load on a shared machine hits both alike;
the median after a warm-up run of each. The photo is resources/samples/street.jpg, for DETR
resized to 1066×800 so that its processor feeds the model 800×1066 pixels.

Memory: in a fresh process per setting, the peak resident size while the task runs the photo
three times, less the resident size once the model is loaded and has run once (the working
memory of a request, the kept internals included), as bench_segmentation measures it.

Explain off is the same code path as before the option existed (the probe is not even
created), so its times are those of bench_vision's engine fp32 rows; the ratio column is
explain on over explain off.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DETR_PHOTO = Path(tempfile.gettempdir()) / "task-studio-bench-street-1066x800.jpg"


def photo(key: str) -> str:
    """The photo each model runs: the street scene, at 1066×800 for DETR."""
    from bench.bench_vision import IMAGE

    if key != "detr":
        return str(IMAGE)
    if not DETR_PHOTO.is_file():
        from PIL import Image

        Image.open(IMAGE).convert("RGB").resize((1066, 800), Image.Resampling.BICUBIC).save(DETR_PHOTO, quality=95)
    return str(DETR_PHOTO)


def load(key: str) -> Any:
    from bench.bench_vision import MODELS, ensure_saved
    from engine import tasks

    return tasks.get(MODELS[key].task).load(ensure_saved(key), device="cpu", dtype="fp32")


def timings(key: str, runs: int) -> dict[bool, list[float]]:
    """Milliseconds per run with explain off (False) and on (True), taking turns."""
    task, path = load(key), photo(key)
    for explain in (False, True):
        task.run(path, explain=explain)  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for explain in (False, True):
            began = time.perf_counter()
            task.run(path, explain=explain)
            times[explain].append((time.perf_counter() - began) * 1000)
    return times


def kept_bytes(key: str) -> int:
    task = load(key)
    return sum(array.nbytes for array in task.run(photo(key), explain=True).internals.values())


def measure_memory(key: str, explain: bool) -> dict[str, float]:
    """In a fresh process (see `memory`): MB of a request's working memory and the peak."""
    from bench.bench_segmentation import _status_mb

    task, path = load(key), photo(key)
    task.run(path, explain=explain)  # loaded and warmed up
    with open("/proc/self/clear_refs", "w") as clear:  # the peak restarts from the present size
        clear.write("5")
    loaded = _status_mb("VmRSS")
    for _ in range(3):
        task.run(path, explain=explain)
    peak = _status_mb("VmHWM")
    return {"working": peak - loaded, "peak": peak}


def memory(key: str, explain: bool, threads: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--memory-of", key, "--threads", str(threads)] + (["--explain"] if explain else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 matches bench_vision's table)")
    parser.add_argument("--models", default="vit,convnext,detr")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` and `bench` importable

    import torch

    from bench.bench_vision import MODELS

    torch.set_num_threads(args.threads)
    if args.memory_of:
        print(json.dumps(measure_memory(args.memory_of, args.explain)))
        return
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.runs} runs\n")
    print("| model | explain off | explain on | on / off | kept internals | working memory off → on | peak RSS off → on |")
    print("|---|---|---|---|---|---|---|")
    for key in args.models.split(","):
        times = timings(key, args.runs)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        kept = kept_bytes(key) / 2**20
        mem = "—", "—"
        if not args.no_memory:
            without, with_ = memory(key, False, args.threads), memory(key, True, args.threads)
            mem = (f"{without['working']:.0f} → {with_['working']:.0f} MB",
                   f"{without['peak']:.0f} → {with_['peak']:.0f} MB")
        print(f"| {MODELS[key].title} | {off:.0f} ms | {on:.0f} ms | {on / off:.2f}x | {kept:.2f} MB | {mem[0]} | {mem[1]} |",
              flush=True)


if __name__ == "__main__":
    main()
