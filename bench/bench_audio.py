"""Wav2Vec2-base speech recognition, engine against transformers on the same saved checkpoint
(random weights): batch-1 latency for 10 s of audio, the real-time factor of a long file, and
the live transcriber's lag.

    .venv/bin/python bench/bench_audio.py [--runs N] [--minutes M] [--live-seconds S] [--device D] [--pipeline]
                                          [--dtypes fp32,bf16,int8] [--live-threads 1,2]

Latency interleaves the sides run by run and reports medians (input preparation included
on both: normalisation and the forward pass, argmax excluded); on the CPU the engine runs in
each of `--dtypes` against transformers' fp32, in the same run. The real-time factor is wall
time over audio time for `SpeechRecognition.run(file, chunk_length_s=30)`, file reading and
resampling included; `--pipeline` adds transformers' pipeline on the same samples. Live lag is
measured by playing a file into `LiveTranscriber` at real-time pace from a second thread: for
every 0.1 s block, the time from its arrival to the first partial text computed with it; one
row per precision and per thread count in `--live-threads` (the app's live audio uses one).
"""

from __future__ import annotations

import argparse
import functools
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FOLDER = Path(tempfile.gettempdir()) / "task-studio-bench-wav2vec2-base"
RATE = 16_000


def save_checkpoint(folder: Path) -> None:
    if (folder / "model.safetensors").is_file():
        return
    import json

    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    from tests.engine.models.tiny_wav2vec2 import VOCAB

    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(VOCAB))).save_pretrained(folder)  # base sizes by default
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    Wav2Vec2CTCTokenizer(str(folder / "vocab.json")).save_pretrained(folder)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    from tests.engine.models.tiny_wav2vec2 import speech_like

    return speech_like(seconds, seed=seed)


def latency(device: str, runs: int, dtype: str | None, engine_dtypes: tuple[str, ...] = ()) -> dict[str, float]:
    """Median seconds for 10 s of audio: transformers in `dtype`, the engine in `dtype` and in
    each of `engine_dtypes` (keys "engine" and "engine <dtype>"), all taking turns."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    from engine.tasks.speech_recognition import SpeechRecognition

    ours = {"engine": SpeechRecognition.load(FOLDER, device=device, dtype=dtype).model}
    for name in engine_dtypes:
        ours[f"engine {name}"] = SpeechRecognition.load(FOLDER, device=device, dtype=name).model
    torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype or "", torch.float32)
    theirs = Wav2Vec2ForCTC.from_pretrained(FOLDER, dtype=torch_dtype).to(device).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(FOLDER)
    samples = speech(10.0, seed=1)

    @torch.inference_mode()
    def transformers_once() -> None:
        values = extractor(samples, sampling_rate=RATE, return_tensors="pt").input_values
        theirs(values.to(device, torch_dtype)).logits.float().cpu()

    def timed(fn) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        began = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - began

    sides = {**{name: functools.partial(model, samples) for name, model in ours.items()},
             "transformers": transformers_once}
    for fn in sides.values():  # warm-up: allocator, kernels, caches
        fn()
        fn()
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(runs):
        for side, fn in sides.items():
            times[side].append(timed(fn))
    return {side: statistics.median(t) for side, t in times.items()}


def real_time_factor(minutes: float, device: str, with_pipeline: bool) -> dict[str, float]:
    import torch

    from engine import audio
    from engine.tasks.speech_recognition import SpeechRecognition

    path = Path(tempfile.gettempdir()) / f"task-studio-bench-{minutes:g}-minutes.wav"
    if not path.is_file():
        with audio.WavWriter(path, RATE) as out:
            for minute in range(int(np.ceil(minutes))):
                out.write(speech(min(60.0, minutes * 60 - minute * 60), seed=minute))
    seconds = audio.audio_info(path).duration
    task = SpeechRecognition.load(FOLDER, device=device)
    began, cpu_began = time.perf_counter(), time.process_time()
    task.run(path, chunk_length_s=30, return_timestamps="word")
    out = {"engine": (time.perf_counter() - began) / seconds, "seconds": seconds}
    # CPU time over all threads: what the wall time would be with the cores to ourselves
    out["engine_cpu"] = (time.process_time() - cpu_began) / torch.get_num_threads() / seconds
    if with_pipeline:
        from transformers import pipeline

        samples = audio.load_audio(path)
        pipe = pipeline("automatic-speech-recognition", model=str(FOLDER), device=device)
        began = time.perf_counter()
        pipe(samples, chunk_length_s=30, return_timestamps="word")
        out["transformers"] = (time.perf_counter() - began) / seconds
    return out


def live_lag(seconds: float, device: str, block_s: float = 0.1, dtype: str | None = None) -> dict[str, float]:
    """A producer thread delivers `block_s` blocks at real-time pace; the consumer, like the
    app's worker, takes everything queued, feeds it, and notes when partial text is ready."""
    from engine.tasks.live_transcription import LiveTranscriber
    from engine.tasks.speech_recognition import SpeechRecognition

    task = SpeechRecognition.load(FOLDER, device=device, dtype=dtype)
    samples = speech(seconds, seed=3)
    LiveTranscriber(task).feed(samples[: 3 * RATE])  # warm-up outside the measurement
    arrivals: queue.Queue = queue.Queue()
    block = int(block_s * RATE)

    def produce() -> None:
        start = time.perf_counter()
        for i, offset in enumerate(range(0, len(samples), block)):
            time.sleep(max(0.0, start + (i + 1) * block_s - time.perf_counter()))
            arrivals.put((time.perf_counter(), samples[offset : offset + block]))
        arrivals.put(None)

    transcriber = LiveTranscriber(task)
    updates = 0

    def count(committed: str, partial: str) -> None:
        nonlocal updates
        updates += 1

    transcriber.on_partial = count
    waiting: list[float] = []  # arrival times of blocks not yet in any partial decode
    lags: list[float] = []
    producer = threading.Thread(target=produce)
    producer.start()
    finished = False
    while not finished:
        items = [arrivals.get()]
        while not arrivals.empty():
            items.append(arrivals.get())
        finished = items[-1] is None
        items = [item for item in items if item is not None]
        if not items:
            continue
        waiting += [t for t, _ in items]
        before = transcriber.partial_decodes
        transcriber.feed(np.concatenate([b for _, b in items]))
        if transcriber.partial_decodes > before:
            done = time.perf_counter()
            lags += [done - t for t in waiting]
            waiting = []
    producer.join()
    transcriber.flush()
    lags.sort()
    return {
        "median": statistics.median(lags),
        "p95": lags[int(0.95 * (len(lags) - 1))],
        "max": lags[-1],
        "updates": updates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--live-seconds", type=float, default=60.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--pipeline", action="store_true", help="also time transformers' pipeline on the long file")
    parser.add_argument("--skip", nargs="*", default=[], choices=["latency", "rtf", "live"])
    parser.add_argument("--dtypes", default="fp32,bf16,int8",
                        help="the engine's precisions for latency and live lag (comma-separated)")
    parser.add_argument("--live-threads", default="",
                        help="torch threads for the live rows, comma-separated (default: --threads)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` and the test helpers importable

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    save_checkpoint(FOLDER)
    dtypes = tuple(d for d in args.dtypes.split(",") if d)
    print(f"wav2vec2-base (random weights), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if "latency" not in args.skip:
        print("\n| 10 s of audio, batch 1 | engine | transformers | engine / transformers |\n|---|---|---|---|")
        if args.device == "cpu":  # every precision against transformers' fp32, in one run
            t = latency(args.device, args.runs, None, tuple(d for d in dtypes if d != "fp32"))
            for side in [s for s in t if s.startswith("engine")]:
                label = f"cpu {side.removeprefix('engine').strip() or 'fp32'} vs fp32"
                print(f"| {label} | {t[side] * 1000:.0f} ms | {t['transformers'] * 1000:.0f} ms | "
                      f"{t[side] / t['transformers']:.2f}x |", flush=True)
        for dtype in (["fp32", "fp16"] if args.device.startswith("cuda") else []):
            t = latency(args.device, args.runs, dtype)
            label = f"{args.device} {dtype}"
            print(f"| {label} | {t['engine'] * 1000:.0f} ms | {t['transformers'] * 1000:.0f} ms | {t['engine'] / t['transformers']:.2f}x |", flush=True)
    if "rtf" not in args.skip:
        r = real_time_factor(args.minutes, args.device, args.pipeline)
        theirs = f" | {r['transformers']:.3f}" if "transformers" in r else ""
        head = " | transformers pipeline" if theirs else ""
        print(f"\n| real-time factor, {r['seconds'] / 60:.0f} min file, 30 s windows | engine (wall) | engine (CPU time / threads){head} |")
        print(f"|---|---|---{'|---' if theirs else ''}|")
        print(f"| {args.device} | {r['engine']:.3f} | {r['engine_cpu']:.3f}{theirs} |", flush=True)
    if "live" not in args.skip:
        threads = [int(n) for n in args.live_threads.split(",") if n] or [torch.get_num_threads()]
        print(f"\n| live lag ({args.live_seconds:.0f} s fed in 0.1 s blocks, 6 s windows) | threads | median | p95 | max | updates | load average |")
        print("|---|---|---|---|---|---|---|")
        for count in threads:
            torch.set_num_threads(count)
            for dtype in dtypes:
                lag = live_lag(args.live_seconds, args.device, dtype=dtype)
                print(f"| {args.device} {dtype} | {count} | {lag['median']:.2f} s | {lag['p95']:.2f} s | "
                      f"{lag['max']:.2f} s | {lag['updates']} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
