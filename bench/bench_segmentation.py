"""SegFormer-B0 at 512x512 and Mask2Former Swin-T panoptic at 384x384, engine against
transformers' image-segmentation pipeline on the same saved checkpoints (real sizes, random
weights): end-to-end batch-1 latency from a JPEG file, peak memory, and SegFormer's live path's
frames per second.

    .venv/bin/python -m bench segmentation
    .venv/bin/python bench/bench_segmentation.py [--device auto|cpu|cuda] [--runs N] [--threads N]
                                                 [--frames N] [--models segformer,mask2former]

End to end means what a user waits for: the JPEG is read and decoded, pre-processed, run
through the model and post-processed into the pipeline's answer, one segment per class present
in the upsampled argmax map. The engine side is `Task.run(path).to_json()` (label, area and box
per segment; a mask is cut from the class map when asked for); the transformers side is
`pipeline("image-segmentation")(path)` with the PIL-backend SegformerImageProcessor, which
makes every mask as an image. The two sides take turns run by run; the figure is the median
after warm-up.

Peak memory is measured in a fresh process per side (so neither inherits the other's heap):
the process's peak resident size while it segments the photo three times (the peak is reset
once the model is loaded and has run once), less its size at that point: the working memory
of one request; and the peak itself, which includes the libraries and the model (the
transformers side imports more). On CUDA it is torch's allocated device memory.

The checkpoint is written once to the temporary folder, by transformers, from SegformerConfig's
defaults (MiT-b0, decoder width 256) with ADE20k's 150 classes, and the preprocessor_config.json
of nvidia/segformer-b0-finetuned-ade-512-512. With random weights the class scores are nearly
flat, so many classes win somewhere: post-processing has more classes to upsample and more
segments to report than a trained checkpoint gives (a worst case for both sides).

Mask2Former's checkpoint is written the same way from the sizes of
facebook/mask2former-swin-tiny-coco-panoptic (Swin-T backbone, 100 queries, COCO's 133 classes)
with its preprocessor_config.json (384x384, multiples of 32), and segments an 800x600 JPEG (the
street photo, resized once) into panoptic segments with the pipeline's thresholds. transformers'
random class head is nearly flat, so no query would pass the 0.9 threshold and neither side
would build a segment: the class head is scaled by 30, so that some queries do and
post-processing does its real work. transformers' post-processing resizes all 100 queries' masks
to 384x384 and the kept ones to the photo; the engine resizes only the kept ones.

The live figure feeds 640x480 uint8 RGB frames (numpy arrays, as the camera delivers them) to
the task back to back, as the app's live mode does; the pipeline gets the same frames as PIL
images.
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
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
TASK = "image-segmentation"
PHOTO_800 = Path(tempfile.gettempdir()) / "task-studio-bench-street-800x600.jpg"


def save_segformer_b0(folder: Path) -> None:
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from bench.bench_vision import IMAGENET_MEAN, IMAGENET_STD, write_json

    torch.manual_seed(0)
    names = {i: f"class {i}" for i in range(150)}
    config = SegformerConfig(id2label=names, label2id={v: k for k, v in names.items()})
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    write_json(folder / "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "do_reduce_labels": True, "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD, "resample": 2, "size": 512,
    })


def save_mask2former_swin_t(folder: Path) -> None:
    import torch
    from transformers import Mask2FormerConfig, SwinConfig

    from bench.bench_vision import IMAGENET_MEAN, IMAGENET_STD, write_json

    torch.manual_seed(0)
    names = {i: f"class {i}" for i in range(133)}
    backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, id2label=names, label2id={v: k for k, v in names.items()})
    with _without_scipy():
        from transformers import Mask2FormerForUniversalSegmentation

        model = Mask2FormerForUniversalSegmentation(config).eval()
    with torch.no_grad():  # confident enough for some queries to pass 0.9 (see the docstring)
        model.class_predictor.weight.mul_(30)
        model.class_predictor.bias.mul_(30)
    model.save_pretrained(folder)
    write_json(folder / "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "do_reduce_labels": True, "ignore_index": 255,
        "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "resample": 2,
        "size": {"height": 384, "width": 384}, "size_divisor": 32,
    })


def _without_scipy() -> Any:
    """transformers' Mask2Former builds its training loss, which wants scipy, even for
    inference; the check is skipped (the loss never runs)."""
    return mock.patch("transformers.models.mask2former.modeling_mask2former.requires_backends")


def photo_800x600() -> Path:
    """The street photo resized to 800x600, written once."""
    if not PHOTO_800.is_file():
        from PIL import Image

        from bench.bench_vision import IMAGE

        with Image.open(IMAGE) as photo:
            photo.convert("RGB").resize((800, 600), Image.Resampling.LANCZOS).save(PHOTO_800, quality=92)
    return PHOTO_800


def street_photo() -> Path:
    from bench.bench_vision import IMAGE

    return IMAGE


@dataclass(frozen=True)
class Case:
    """One model as both sides run it."""

    title: str
    folder: Path
    save: Callable[[Path], None]
    processor: str  # transformers' PIL-backend image processor class
    photo: Callable[[], Path]
    options: dict[str, Any] = field(default_factory=dict)  # the run options, both sides


CASES = {
    "segformer": Case("SegFormer-B0 (random weights, 150 classes) at 512x512",
                      Path(tempfile.gettempdir()) / "task-studio-bench-segformer-b0", save_segformer_b0,
                      "SegformerImageProcessorPil", street_photo),
    "mask2former": Case("Mask2Former Swin-T panoptic (random weights, 133 classes) at 384x384",
                        Path(tempfile.gettempdir()) / "task-studio-bench-mask2former-swin-t", save_mask2former_swin_t,
                        "Mask2FormerImageProcessorPil", photo_800x600, {"subtask": "panoptic"}),
}


def ensure_saved(case: Case) -> Path:
    folder = case.folder
    if not ((folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file()):
        print(f"saving a random {case.title.split(' (')[0]} to {folder} (once)", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        case.save(folder)
    return folder


# ------------------------------------------------------------------------------ the two sides


def engine_side(case: Case, device: str, dtype: str) -> Callable[[Any], Any]:
    from engine import tasks

    task = tasks.get(TASK).load(ensure_saved(case), device=device, dtype=dtype)
    return lambda image: task.run(image, **case.options).to_json()


def transformers_side(case: Case, device: str, dtype: str) -> Callable[[Any], Any]:
    import torch
    import transformers

    folder = ensure_saved(case)
    processor = getattr(transformers, case.processor).from_pretrained(folder)
    with _without_scipy():
        pipe = transformers.pipeline(TASK, model=str(folder), image_processor=processor, device=device,
                                     dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[dtype])
    return lambda image: pipe(image, **case.options)


def sides(case: Case, device: str, dtype: str) -> dict[str, Callable[[Any], Any]]:
    return {"engine": engine_side(case, device, dtype), "transformers": transformers_side(case, device, dtype)}


def check_agreement(runs: dict[str, Callable[[Any], Any]], path: str) -> None:
    """Both sides must find the same segments with (nearly) the same areas, or the timing
    compares different work. A pixel whose two best classes (or queries) tie to float rounding
    may go either way, so areas may differ by a few pixels."""
    import numpy as np

    ours, theirs = (run(path) for run in runs.values())
    if [e["label"] for e in ours] != [e["label"] for e in theirs]:
        raise RuntimeError("engine and transformers find different segments")
    their_areas = [int((np.asarray(e["mask"]) == 255).sum()) for e in theirs]
    moved = sum(abs(e["area"] - area) for e, area in zip(ours, their_areas))
    if moved > max(10, 1e-4 * sum(their_areas)):
        raise RuntimeError(f"engine and transformers disagree: {moved} pixels change class")


def end_to_end(case: Case, device: str, dtype: str, runs: int) -> dict[str, list[float]]:
    """Milliseconds from JPEG path to answer, each run of each side; the sides take turns."""
    from bench.bench_vision import sync

    pair = sides(case, device, dtype)
    path = str(case.photo())
    if dtype == "fp32":
        check_agreement(pair, path)
    for _ in range(2):  # warm-up: allocator, oneDNN / cuDNN kernel choice, file cache
        for run in pair.values():
            run(path)
    times: dict[str, list[float]] = {side: [] for side in pair}
    for index in range(runs):
        for side in list(pair)[:: 1 if index % 2 == 0 else -1]:  # alternate who goes first
            sync(device)
            began = time.perf_counter()
            pair[side](path)
            sync(device)
            times[side].append((time.perf_counter() - began) * 1000)
    return times


# ------------------------------------------------------------------------------ memory


def _status_mb(field: str) -> float:
    """A size from /proc/self/status (VmRSS: resident now, VmHWM: the peak since the last
    reset), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_memory(case: Case, side: str, device: str, dtype: str) -> dict[str, float]:
    """Run in a fresh process (see `memory`): (MB) the working memory of a request and the
    peak, as the module docstring describes them. On Linux, writing 5 to clear_refs resets
    the process's peak resident size, so the peak is the requests' own."""
    import torch

    run = (engine_side if side == "engine" else transformers_side)(case, device, dtype)
    image = str(case.photo())
    run(image)  # loaded and warmed up
    if device == "cuda":
        torch.cuda.synchronize()
        loaded = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        loaded = _status_mb("VmRSS")
    for _ in range(3):
        run(image)
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _status_mb("VmHWM")
    return {"working": peak - loaded, "peak": peak}


def memory(key: str, side: str, device: str, dtype: str, threads: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--memory-of", side, "--models", key, "--device", device, "--dtype", dtype,
               "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ live path


def live(device: str, dtype: str, frames: int) -> dict[str, float]:
    """Frames per second of both sides on camera frames, and the engine's mean seconds per
    frame in each stage (`bench_vision.frames_per_second`)."""
    from bench.bench_vision import frames_per_second
    from engine import tasks

    case = CASES["segformer"]
    task = tasks.get(TASK).load(ensure_saved(case), device=device, dtype=dtype)
    return frames_per_second(task, transformers_side(case, device, dtype), device, frames)


# ------------------------------------------------------------------------------ report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: the CPU, and CUDA too when present")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, both sides")
    parser.add_argument("--frames", type=int, default=10, help="live frames per side (SegFormer); below 2 skips it")
    parser.add_argument("--models", default=",".join(CASES), help=f"which of {', '.join(CASES)}")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--memory-of", choices=["engine", "transformers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` and `bench` importable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    keys = [key.strip() for key in args.models.split(",") if key.strip()]
    unknown = sorted(set(keys) - set(CASES))
    if unknown:
        parser.error(f"unknown models {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.memory_of:  # the child process of `memory`
        print(json.dumps(measure_memory(CASES[keys[0]], args.memory_of, args.device, args.dtype)))
        return

    from PIL import Image

    from bench.bench_vision import FRAME_SIZE, devices_to_run, precisions, print_load

    devices = devices_to_run(args.device)
    load_before = os.getloadavg()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} CPU threads of {os.cpu_count()} cores")
    for key in keys:
        case = CASES[key]
        ensure_saved(case)
        photo_path = case.photo()
        with Image.open(photo_path) as photo:
            width, height = photo.size
        print(f"\n{case.title}, end to end, batch 1: {photo_path.name} ({width}x{height} JPEG) -> segments "
              f"{case.options or ''}; median of {args.runs} runs after 2 warm-ups")
        print(f"{'device/dtype':13} {'engine ms':>10} {'transformers ms':>16} {'ratio':>7} {'best-run ratio':>15}"
              f"   {'engine MB':>18} {'transformers MB':>18}")
        for device, dtype in precisions(devices):
            times = end_to_end(case, device, dtype, args.runs)
            ours, theirs = (statistics.median(times[s]) for s in ("engine", "transformers"))
            best = min(times["engine"]) / min(times["transformers"])
            held = {side: memory(key, side, device, dtype, args.threads) for side in ("engine", "transformers")}
            mb = {side: f"{m['working']:.0f} (peak {m['peak']:.0f})" for side, m in held.items()}
            print(f"{device + ' ' + dtype:13} {ours:10.1f} {theirs:16.1f} {ours / theirs:6.2f}x {best:14.2f}x"
                  f"   {mb['engine']:>18} {mb['transformers']:>18}", flush=True)
    print("  MB: working memory of one request (peak less the loaded, warmed-up process), and the "
          "peak resident size (CUDA: allocated device memory)")
    if args.frames > 1 and "segformer" in keys:
        print(f"\nlive path: {args.frames} frames of {FRAME_SIZE[0]}x{FRAME_SIZE[1]} fed back to back "
              "(frames/s; ratio is engine time over transformers time)")
        print(f"{'device/dtype':13} {'engine fps':>10} {'transformers fps':>16} {'ratio':>7}")
        for device, dtype in precisions(devices):
            fps = live(device, dtype, args.frames)
            print(f"{device + ' ' + dtype:13} {fps['engine']:10.2f} {fps['transformers']:16.2f} "
                  f"{fps['transformers'] / fps['engine']:6.2f}x   (engine per frame: pre-processing "
                  f"{fps['preprocess'] * 1000:.0f} ms, model {fps['model'] * 1000:.0f} ms, "
                  f"post-processing {fps['postprocess'] * 1000:.0f} ms)", flush=True)
    print_load(load_before, "engine <= 0.8x transformers' time, >= 5 live frames/s on the CPU")


if __name__ == "__main__":
    main()
