"""ViT-base, ConvNeXT-tiny and DETR-R50, engine against transformers' pipelines on the same
saved checkpoints (real sizes, random weights): end-to-end batch-1 latency from a JPEG file,
and the webcam path's frames per second for DETR.

    .venv/bin/python -m bench vision
    .venv/bin/python bench/bench_vision.py [--device auto|cpu|cuda] [--runs N] [--models vit,convnext,detr]
                                           [--threads N] [--frames N] [--attn default|eager]

End to end means what a user waits for: the JPEG is read and decoded, pre-processed, run
through the model and post-processed into the pipeline's answer (top-5 labels; boxes above
0.5). The engine side is `Task.run(path)`; the transformers side is `pipeline(...)(path)` with
the PIL-backend image processor, which the engine reproduces exactly. The two sides take turns
run by run, so a busy machine slows both alike; the figure is the median after warm-up.

The checkpoints are written once to the temporary folder, by transformers, from configs with
the sizes of google/vit-base-patch16-224, facebook/convnext-tiny-224 and facebook/detr-resnet-50
(DETR with transformers' own ResNet-50, so timm is not needed), each with the Hub's
preprocessor_config.json. Weights are random; timing does not depend on them, except that a
random DETR finds no box above 0.5, so neither side spends time on boxes to report.

The webcam figure feeds 640x480 uint8 RGB frames (numpy arrays, as the camera delivers them)
to the object-detection task back to back, as the app's live mode does, and counts frames per
second; transformers' pipeline gets the same frames as PIL images.

On the CPU transformers runs in float32, and the engine in float32 and in each of `--dtypes`
(bf16, int8), all taking turns in the same run; `--webcam-threads 1,2` repeats the webcam rows
per torch thread count (the app's live video uses half of torch's threads). When CUDA is present
(or `--device cuda`), every model also runs there in float32 and in bfloat16, both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "resources" / "samples" / "street.jpg"
FRAME_SIZE = (640, 480)  # (width, height) of a webcam frame
CACHE = Path(tempfile.gettempdir())

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


# ------------------------------------------------------------------------------ checkpoints


def _labels(count: int, word: str) -> dict[str, Any]:
    names = {i: f"{word} {i}" for i in range(count)}
    return {"id2label": names, "label2id": {v: k for k, v in names.items()}}


def save_vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTForImageClassification

    # ViTConfig's defaults are ViT-B/16 at 224: 768 wide, 12 layers, 12 heads, MLP 3072
    ViTForImageClassification(ViTConfig(**_labels(1000, "class"))).save_pretrained(folder)
    # google/vit-base-patch16-224's preprocessor_config.json
    write_json(folder / "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224,
    })


def save_convnext(folder: Path) -> None:
    from transformers import ConvNextConfig, ConvNextForImageClassification

    config = ConvNextConfig(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768], **_labels(1000, "class"))
    ConvNextForImageClassification(config).save_pretrained(folder)
    # facebook/convnext-tiny-224's: short side to 224 / 0.875 = 256, centre crop 224, bicubic
    write_json(folder / "preprocessor_config.json", {
        "crop_pct": 0.875, "do_normalize": True, "do_resize": True, "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD, "resample": 3, "size": 224,
    })


def save_detr(folder: Path) -> None:
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    # ResNetConfig's defaults are ResNet-50; DetrConfig's are detr-resnet-50's transformer.
    # COCO's 91 ids (unused ones included), as the Hub config lists them.
    config = DetrConfig(
        backbone_config=ResNetConfig(out_features=["stage4"]),
        use_timm_backbone=False,
        **_labels(91, "object"),
    )
    DetrForObjectDetection(config).save_pretrained(folder)
    write_json(folder / "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "format": "coco_detection",
        "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "max_size": 1333, "size": 800,
    })


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2))


@dataclass(frozen=True)
class Spec:
    """One benchmarked model: its checkpoint and how each side runs it."""

    title: str
    folder: Path
    save: Callable[[Path], None]
    task: str  # the pipeline's and the engine's task name
    processor: str  # transformers' PIL-backend image processor class
    attention: bool  # whether the model has attention layers (ConvNeXT has none)


MODELS = {
    "vit": Spec("ViT-B/16 224", CACHE / "task-studio-bench-vit-base", save_vit,
                "image-classification", "ViTImageProcessorPil", True),
    "convnext": Spec("ConvNeXT-T 224", CACHE / "task-studio-bench-convnext-tiny", save_convnext,
                     "image-classification", "ConvNextImageProcessorPil", False),
    "detr": Spec("DETR-R50", CACHE / "task-studio-bench-detr-resnet-50", save_detr,
                 "object-detection", "DetrImageProcessorPil", True),
}


def ensure_saved(key: str) -> Path:
    folder = MODELS[key].folder
    if not ((folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file()):
        import torch

        print(f"saving a random {MODELS[key].title} to {folder} (once)", flush=True)
        torch.manual_seed(0)
        folder.mkdir(parents=True, exist_ok=True)
        MODELS[key].save(folder)
    return folder


# ------------------------------------------------------------------------------ the two sides


def engine_side(key: str, device: str, dtype: str) -> Callable[..., Any]:
    from engine import tasks

    task = tasks.get(MODELS[key].task).load(ensure_saved(key), device=device, dtype=dtype)
    return lambda image, **options: task.run(image, **options).to_json()


def transformers_side(key: str, device: str, dtype: str, attention: str) -> Callable[..., Any]:
    import torch
    import transformers

    spec = MODELS[key]
    folder = ensure_saved(key)
    processor = getattr(transformers, spec.processor).from_pretrained(folder)
    # transformers' default picks sdpa where the model has it (asking for sdpa by name fails
    # on DETR: its ResNet backbone has no attention); eager is accepted everywhere
    model_kwargs = {"attn_implementation": "eager"} if attention == "eager" and spec.attention else {}
    pipe = transformers.pipeline(
        spec.task, model=str(folder), image_processor=processor, device=device,
        dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[dtype], model_kwargs=model_kwargs,
    )
    return lambda image, **options: pipe(image, **options)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def check_agreement(key: str, sides: dict[str, Callable[..., Any]], path: str, device: str) -> None:
    """Both sides must compute the same thing in float32, or the timing compares different
    work. Random weights give near-uniform class scores, where a rounding difference (TF32
    convolutions on CUDA, the engine's folded norms) may swap two labels: labels are compared
    on the CPU only, except DETR's, and the scores everywhere (DETR's: every query's, sorted)."""
    if key == "detr":
        ours, theirs = (sorted(d["score"] for d in run(path, threshold=0.0)) for run in sides.values())
        same = len(ours) == len(theirs) and all(abs(a - b) < 1e-4 for a, b in zip(ours, theirs))
    else:
        ours, theirs = (run(path) for run in sides.values())
        same = all(abs(a["score"] - b["score"]) < 1e-4 for a, b in zip(ours, theirs))
        if device == "cpu":
            same = same and [e["label"] for e in ours] == [e["label"] for e in theirs]
    if not same:
        raise RuntimeError(f"engine and transformers disagree on {key}:\n{ours}\n{theirs}")


def end_to_end(
    key: str, device: str, dtype: str, runs: int, attention: str, engine_dtypes: tuple[str, ...] = ()
) -> dict[str, list[float]]:
    """Milliseconds from JPEG path to answer, each run of each side; the sides take turns.
    Besides "engine" (in `dtype`, as transformers), "engine <d>" runs in each of `engine_dtypes`."""
    sides = {"engine": engine_side(key, device, dtype),
             "transformers": transformers_side(key, device, dtype, attention)}
    path = str(IMAGE)
    if dtype == "fp32":
        check_agreement(key, sides, path, device)
    for name in engine_dtypes:
        sides[f"engine {name}"] = engine_side(key, device, name)
    return take_turns(sides, path, device, runs)


def take_turns(sides: dict[str, Callable[..., Any]], path: str, device: str, runs: int) -> dict[str, list[float]]:
    """Milliseconds each side takes on `path`, run by run after two warm-ups."""
    for _ in range(2):  # warm-up: allocator, oneDNN / cuDNN kernel choice, file cache
        for run in sides.values():
            run(path)
    times: dict[str, list[float]] = {side: [] for side in sides}
    for index in range(runs):
        # alternate who goes first, so neither always runs in the other's wake (caches,
        # frequency, a neighbour's burst of work)
        for side in list(sides)[:: 1 if index % 2 == 0 else -1]:
            run = sides[side]
            sync(device)
            began = time.perf_counter()
            run(path)
            sync(device)
            times[side].append((time.perf_counter() - began) * 1000)
    return times


# ------------------------------------------------------------------------------ webcam path


def webcam_frames(count: int) -> list[Any]:
    """`count` different 640x480 RGB frames: the sample photo scaled to VGA and panned a
    little each frame, as a camera held by hand would see it."""
    import numpy as np
    from PIL import Image

    with Image.open(IMAGE) as photo:
        scene = np.asarray(photo.convert("RGB").resize((FRAME_SIZE[0] + 8 * count, FRAME_SIZE[1])))
    return [np.ascontiguousarray(scene[:, 8 * i : 8 * i + FRAME_SIZE[0]]) for i in range(count)]


def webcam(device: str, dtype: str, frames: int, attention: str, engine_dtype: str | None = None) -> dict[str, float]:
    """Frames per second for DETR (see `frames_per_second`), the engine in `engine_dtype`
    (default `dtype`), transformers in `dtype`."""
    from engine.tasks.object_detection import ObjectDetection

    task = ObjectDetection.load(ensure_saved("detr"), device=device, dtype=engine_dtype or dtype)
    return frames_per_second(task, transformers_side("detr", device, dtype, attention), device, frames)


def frames_per_second(task: Any, pipe: Callable[[Any], Any], device: str, frames: int) -> dict[str, float]:
    """Frames per second of a loaded engine task and of a transformers pipeline, frames fed
    back to back, and the engine's mean seconds per frame in each stage its results time.
    Each side runs half the frames, then the other side, then the second half, so a change in
    load hits both."""
    from PIL import Image

    stages: dict[str, float] = {}

    def engine_run(frame: Any) -> None:
        for stage, seconds in task.run(frame).timings.items():  # takes the numpy frame as it is
            stages[stage] = stages.get(stage, 0.0) + seconds

    sides = {
        "engine": engine_run,
        "transformers": lambda frame: pipe(Image.fromarray(frame)),  # its pipeline takes PIL images
    }
    stream = webcam_frames(frames)
    for run in sides.values():
        run(stream[0])  # warm-up
    stages.clear()
    return {**time_frames(sides, stream, device),
            **{stage: seconds / len(stream) for stage, seconds in stages.items()}}


def time_frames(sides: dict[str, Callable[[Any], Any]], stream: list[Any], device: str) -> dict[str, float]:
    """Frames per second of each side, the frames fed back to back. Each side runs half the
    frames, then the other side, then the second half, so a change in load hits both."""
    elapsed = {side: 0.0 for side in sides}
    half = len(stream) // 2
    for chunk in (stream[:half], stream[half:]):
        for side, run in sides.items():
            sync(device)
            began = time.perf_counter()
            for frame in chunk:
                run(frame)
            sync(device)
            elapsed[side] += time.perf_counter() - began
    return {side: len(stream) / seconds for side, seconds in elapsed.items()}


# ------------------------------------------------------------------------------ report


def print_load(before: tuple[float, float, float], targets: str) -> None:
    """The machine's load around the measurements, and what they aim for."""
    after = os.getloadavg()
    print(f"\nload average (1 min) {before[0]:.1f} before, {after[0]:.1f} after, on {os.cpu_count()} cores; "
          f"target: {targets}")


def precisions(devices: list[str]) -> list[tuple[str, str]]:
    """(device, dtype) pairs to measure: float32 everywhere, and bfloat16 on CUDA."""
    return [(device, dtype) for device in devices for dtype in ["fp32"] + (["bf16"] if device == "cuda" else [])]


def devices_to_run(choice: str) -> list[str]:
    import torch

    if choice == "auto":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device here")
    return [choice]


def _models(value: str) -> list[str]:
    keys = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(MODELS)} (comma-separated)")
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: the CPU, and CUDA too when present")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side (median)")
    parser.add_argument("--models", type=_models, default=list(MODELS), help="vit,convnext,detr")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, both sides")
    parser.add_argument("--frames", type=int, default=10, help="webcam frames per side; below 2 skips it")
    parser.add_argument("--attn", default="default", choices=["default", "eager"],
                        help="transformers' attention: its default (sdpa) or eager")
    parser.add_argument("--dtypes", default="bf16,int8",
                        help="the engine's precisions beside fp32 on the CPU, against transformers' fp32")
    parser.add_argument("--webcam-threads", default="",
                        help="torch threads for the webcam rows, comma-separated (default: --threads)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` importable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers
    from PIL import Image

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # "Loading weights" bars would break the table
    torch.set_num_threads(args.threads)
    devices = devices_to_run(args.device)
    for key in args.models:
        ensure_saved(key)
    with Image.open(IMAGE) as photo:
        width, height = photo.size
    load_before = os.getloadavg()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} CPU threads of {os.cpu_count()} cores, "
          f"transformers attention: {'eager' if args.attn == 'eager' else 'its default (sdpa)'}")
    print(f"end to end, batch 1: {IMAGE.name} ({width}x{height} JPEG) -> answer; "
          f"median of {args.runs} runs after 2 warm-ups")
    # on a shared machine the median carries the other processes' load; the fastest run of
    # each side is closer to what either costs alone, so its ratio is shown too
    print(f"{'model':16} {'device/dtype':13} {'engine ms':>10} {'transformers ms':>16} {'ratio':>7} "
          f"{'best-run ratio':>15}")
    engine_dtypes = tuple(d for d in args.dtypes.split(",") if d)
    for device, dtype in precisions(devices):
        for key in args.models:
            times = end_to_end(key, device, dtype, args.runs, args.attn, engine_dtypes if device == "cpu" else ())
            theirs = statistics.median(times["transformers"])
            for side in [s for s in times if s.startswith("engine")]:
                ours = statistics.median(times[side])
                best = min(times[side]) / min(times["transformers"])
                label = f"{device} {side.removeprefix('engine').strip() or dtype}"
                print(f"{MODELS[key].title:16} {label:13} {ours:10.1f} {theirs:16.1f} "
                      f"{ours / theirs:6.2f}x {best:14.2f}x", flush=True)
    if args.frames > 1 and "detr" in args.models:
        print(f"\nwebcam path, DETR-R50: {args.frames} frames of {FRAME_SIZE[0]}x{FRAME_SIZE[1]} "
              "fed back to back (frames/s; ratio is engine time over transformers time)")
        print(f"{'':16} {'device/dtype':13} {'engine fps':>10} {'transformers fps':>16} {'ratio':>7}")
        threads = [int(n) for n in args.webcam_threads.split(",") if n] or [args.threads]
        for count in threads:
            torch.set_num_threads(count)
            for device, dtype in precisions(devices):
                for ours in [dtype, *(engine_dtypes if device == "cpu" else ())]:
                    fps = webcam(device, dtype, args.frames, args.attn, ours)
                    label = f"{device} {ours}" + (f" {count}t" if len(threads) > 1 else "")
                    print(f"{'DETR-R50 webcam':16} {label:13} {fps['engine']:10.2f} "
                          f"{fps['transformers']:16.2f} {fps['transformers'] / fps['engine']:6.2f}x"
                          f"   (engine per frame: pre-processing {fps['preprocess'] * 1000:.0f} ms, "
                          f"model and post-processing {fps['model'] * 1000:.0f} ms)", flush=True)
    print_load(load_before, "engine <= 1.0x transformers' time on the CPU")


if __name__ == "__main__":
    main()
