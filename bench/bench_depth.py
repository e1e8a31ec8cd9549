"""Depth-Anything-V2-Small at 518 and GLPN-NYU at 640x480, engine against transformers'
depth-estimation pipeline on the same saved checkpoints (real sizes, random weights):
end-to-end batch-1 latency from a JPEG file, and the webcam path's frames per second.

    .venv/bin/python -m bench depth
    .venv/bin/python bench/bench_depth.py [--device auto|cpu|cuda] [--runs N] [--threads N] [--frames N]
                                          [--models depth-anything,glpn]

End to end means what a user waits for: the JPEG is read and decoded, pre-processed, run
through the model and post-processed into the pipeline's answer: the depth resized bicubically
to the photo's size and its 8-bit picture. The engine side is `DepthEstimation.run(path)` (which
also keeps the decoder's four levels for the app); the transformers side is
`pipeline("depth-estimation")(path)` with the model's PIL-backend image processor, which the
engine reproduces exactly. The sides take turns run by run; the figure is the median after
warm-up.

Depth Anything reads street.jpg (1200x800; short side toward 518 with the shape kept, sides in
multiples of 14, bicubic: the model sees 518x770). Its checkpoint has the sizes of
depth-anything/Depth-Anything-V2-Small-hf (DINOv2 ViT-S/14: 384 wide, 12 layers, 6 heads; neck
48/96/192/384, fusion 64) and that repository's preprocessor_config.json. GLPN reads a 640x480
JPEG made once from street.jpg (the model sees 640x480: both sides are multiples of 32); its
checkpoint has the sizes of vinvino02/glpn-nyu (MiT-b4 encoder: depths 3/8/27/3, widths
64/128/320/512; decoder 64, max depth 10 m) and that repository's processor file (bilinear,
size_divisor 32, rescale only).

The webcam figure feeds 640x480 uint8 RGB frames (numpy arrays, as the camera delivers them)
to the task back to back, as the app's live mode does; the pipeline gets the same frames as
PIL images.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def save_depth_anything_small(folder: Path) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    from bench.bench_vision import IMAGENET_MEAN, IMAGENET_STD, write_json

    backbone = Dinov2Config(hidden_size=384, num_attention_heads=6, image_size=518, patch_size=14,
                            out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=384,
                                 neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    write_json(folder / "preprocessor_config.json", {
        "do_normalize": True, "do_pad": False, "do_rescale": True, "do_resize": True,
        "ensure_multiple_of": 14, "image_mean": IMAGENET_MEAN, "image_processor_type": "DPTImageProcessor",
        "image_std": IMAGENET_STD, "keep_aspect_ratio": True, "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"height": 518, "width": 518}, "size_divisor": None,
    })


def save_glpn_nyu(folder: Path) -> None:
    from transformers import GLPNConfig, GLPNForDepthEstimation

    from bench.bench_vision import write_json

    config = GLPNConfig(depths=[3, 8, 27, 3], hidden_sizes=[64, 128, 320, 512], num_attention_heads=[1, 2, 5, 8],
                        sr_ratios=[8, 4, 2, 1], decoder_hidden_size=64, max_depth=10)
    GLPNForDepthEstimation(config).save_pretrained(folder)
    write_json(folder / "preprocessor_config.json", {
        "do_rescale": True, "do_resize": True, "image_processor_type": "GLPNImageProcessor", "resample": 2,
        "size_divisor": 32,
    })


@dataclass(frozen=True)
class Spec:
    """One benchmarked depth model: its checkpoint, photo and transformers' processor class."""

    title: str
    folder: str
    save: Callable[[Path], None]
    processor: str
    photo_size: tuple[int, int] | None  # (width, height) the bench photo is resized to; None: as it is


MODELS = {
    "depth-anything": Spec("Depth-Anything-V2-S 518", "task-studio-bench-depth-anything-v2-small",
                           save_depth_anything_small, "DPTImageProcessorPil", None),
    "glpn": Spec("GLPN-NYU 640x480", "task-studio-bench-glpn-nyu", save_glpn_nyu, "GLPNImageProcessorPil",
                 (640, 480)),
}


def ensure_saved(key: str) -> Path:
    folder = Path(tempfile.gettempdir()) / MODELS[key].folder
    if not ((folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file()):
        import torch

        print(f"saving a random {MODELS[key].title} to {folder} (once)", flush=True)
        torch.manual_seed(0)
        folder.mkdir(parents=True, exist_ok=True)
        MODELS[key].save(folder)
    return folder


def photo(key: str) -> Path:
    """The JPEG this model is timed on: street.jpg, or a copy of it resized to the spec's size."""
    from PIL import Image

    from bench.bench_vision import IMAGE

    size = MODELS[key].photo_size
    if size is None:
        return IMAGE
    path = Path(tempfile.gettempdir()) / f"task-studio-bench-street-{size[0]}x{size[1]}.jpg"
    if not path.is_file():
        with Image.open(IMAGE) as image:
            image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(path, quality=90)
    return path


def sides(key: str, device: str, dtype: str) -> dict[str, Callable[[Any], Any]]:
    """name -> a function from an image (path or frame) to that side's answer."""
    import torch
    import transformers
    from PIL import Image

    from engine.tasks.depth_estimation import DepthEstimation

    folder = ensure_saved(key)
    task = DepthEstimation.load(folder, device=device, dtype=dtype)
    pipe = transformers.pipeline(
        "depth-estimation", model=str(folder), device=device,
        image_processor=getattr(transformers, MODELS[key].processor).from_pretrained(folder),
        dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[dtype],
    )

    def theirs(image: Any) -> Any:
        return pipe(Image.fromarray(image) if not isinstance(image, str) else image)  # it takes PIL images

    return {"engine": task.run, "transformers": theirs}


def check_agreement(run: dict[str, Callable[[Any], Any]], path: str) -> None:
    """Both sides must compute the same depth in float32, or the timing compares different work."""
    import numpy as np

    ours, theirs = run["engine"](path), run["transformers"](path)
    expected = theirs["predicted_depth"].float().cpu().numpy()
    gap = float(np.abs(ours.predicted_depth - expected).max())
    scale = float(np.abs(expected).max()) or 1.0
    if ours.predicted_depth.shape != expected.shape or gap > 1e-4 * scale + 1e-5:
        raise RuntimeError(f"engine and transformers disagree on the depth: largest gap {gap} (scale {scale})")


def webcam(run: dict[str, Callable[[Any], Any]], device: str, frames: int) -> dict[str, float]:
    """Frames per second of each side on webcam frames fed back to back (see
    `bench_vision.time_frames`)."""
    from bench.bench_vision import time_frames, webcam_frames

    stream = webcam_frames(frames)
    for side in run.values():
        side(stream[0])  # warm-up
    return time_frames(run, stream, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: the CPU, and CUDA too when present")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, both sides")
    parser.add_argument("--frames", type=int, default=10, help="webcam frames per side; below 2 skips it")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` and `bench` importable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers
    from PIL import Image

    from bench.bench_vision import FRAME_SIZE, devices_to_run, take_turns

    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    if not keys or any(k not in MODELS for k in keys):
        parser.error(f"--models: choose from {', '.join(MODELS)}")

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} CPU threads of {os.cpu_count()} cores")
    print(f"end to end, batch 1: JPEG -> depth at the photo's size and its 8-bit picture; median of "
          f"{args.runs} runs after 2 warm-ups")
    print(f"{'model':24} {'photo':9} {'device/dtype':13} {'engine ms':>10} {'transformers ms':>16} {'ratio':>7} "
          f"{'best-run ratio':>15}")
    fps_rows = []
    for key in keys:
        path = photo(key)
        with Image.open(path) as image:
            shape = f"{image.width}x{image.height}"
        title = MODELS[key].title
        for device in devices_to_run(args.device):
            for dtype in ["fp32"] + (["bf16"] if device == "cuda" else []):
                run = sides(key, device, dtype)
                if dtype == "fp32":
                    check_agreement(run, str(path))
                times = take_turns(run, str(path), device, args.runs)
                ours, theirs = (statistics.median(times[s]) for s in ("engine", "transformers"))
                best = min(times["engine"]) / min(times["transformers"])
                print(f"{title:24} {shape:9} {device + ' ' + dtype:13} {ours:10.1f} {theirs:16.1f} "
                      f"{ours / theirs:6.2f}x {best:14.2f}x", flush=True)
                if args.frames > 1:
                    fps_rows.append((title, device, dtype, webcam(run, device, args.frames)))
    if fps_rows:
        print(f"\nwebcam path: {args.frames} frames of {FRAME_SIZE[0]}x{FRAME_SIZE[1]} fed back to back "
              "(frames/s; ratio is engine time over transformers time)")
        print(f"{'':24} {'device/dtype':13} {'engine fps':>10} {'transformers fps':>16} {'ratio':>7}")
        for title, device, dtype, fps in fps_rows:
            print(f"{title + ' webcam':24} {device + ' ' + dtype:13} {fps['engine']:10.2f} "
                  f"{fps['transformers']:16.2f} {fps['transformers'] / fps['engine']:6.2f}x")
    load_after = os.getloadavg()
    print(f"\nload average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
          f"on {os.cpu_count()} cores; target: engine <= 0.9x transformers' time on the CPU")


if __name__ == "__main__":
    main()
