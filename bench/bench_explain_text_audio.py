"""The cost of `explain` (the "Inside the model" internals) for the text and audio tasks at real
sizes, on the CPU: random bert-base checkpoints (text classification and named entities at 128
and 512 tokens) and random wav2vec2-base ones (speech recognition and audio classification on
10 s of audio), each run with explain off and on in the same process.

    .venv/bin/python bench/bench_explain_text_audio.py [--runs N] [--threads N] [--only NAME,...]

Per case, in a subprocess of its own (this file with `--child NAME`): the median time with
explain off and on (runs alternate, so a busy machine slows both alike) and their ratio; the
peak resident memory after runs with explain off, and how much runs with it on raised it; the
size of the internals kept; and whether two runs with explain off give bit-identical results.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
FOLDERS = Path(tempfile.gettempdir()) / "task-studio-bench-explain"
SECONDS = 10.0

# name -> (task, checkpoint, input size: tokens or seconds)
CASES: dict[str, tuple[str, str, float]] = {
    "text-classification 128": ("text-classification", "bert-sequence", 128),
    "text-classification 512": ("text-classification", "bert-sequence", 512),
    "token-classification 128": ("token-classification", "bert-token", 128),
    "token-classification 512": ("token-classification", "bert-token", 512),
    "speech-recognition 10 s": ("automatic-speech-recognition", "wav2vec2-ctc", SECONDS),
    "audio-classification 10 s": ("audio-classification", "wav2vec2-weighted", SECONDS),
}


def save_checkpoint(kind: str, folder: Path) -> None:
    if (folder / "model.safetensors").is_file():
        return
    import torch
    import transformers

    sys.path.insert(0, str(ROOT))  # the tests' tokenizer and vocabulary builders
    from tests.engine.models import tiny_text, tiny_wav2vec2

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if kind.startswith("bert"):
        labels = tiny_text.NER_LABELS if kind == "bert-token" else ["NEGATIVE", "POSITIVE"]
        config = transformers.BertConfig(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
        head = "ForTokenClassification" if kind == "bert-token" else "ForSequenceClassification"
        getattr(transformers, "Bert" + head)(config).save_pretrained(folder)  # bert-base sizes by default
        tiny_text.save_tokenizer(folder, cased=True)
        settings_path = folder / "tokenizer_config.json"
        settings = json.loads(settings_path.read_text())
        settings_path.write_text(json.dumps({**settings, "model_max_length": 512}))
        return
    if kind == "wav2vec2-ctc":
        model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=len(tiny_wav2vec2.VOCAB)))
    else:
        labels = tiny_wav2vec2.LABELS
        config = transformers.Wav2Vec2Config(
            use_weighted_layer_sum=True, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}
        )
        model = transformers.Wav2Vec2ForSequenceClassification(config)
    model.save_pretrained(folder)  # wav2vec2-base sizes by default
    transformers.Wav2Vec2FeatureExtractor().save_pretrained(folder)
    if kind == "wav2vec2-ctc":
        (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tiny_wav2vec2.VOCAB)}))
        transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json")).save_pretrained(folder)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(name: str, runs: int, threads: int) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    torch.set_num_threads(threads)

    from engine import tasks

    task_name, kind, size = CASES[name]
    folder = FOLDERS / kind
    task = tasks.get(task_name).load(folder, device="cpu")  # dtype None: fp32
    if task_name.endswith("classification") and kind.startswith("bert"):
        given: Any = "the " * (int(size) - 2)  # one piece per word: exactly `size` tokens with [CLS], [SEP]
    else:
        given = (0.1 * np.random.default_rng(0).standard_normal(int(size * 16_000))).astype(np.float32)

    def once(explain: bool) -> tuple[float, Any]:
        began = time.perf_counter()
        result = task.run(given, explain=explain)
        return time.perf_counter() - began, result

    first, plain = once(False)
    again = task.run(given)
    identical = plain.to_json() == again.to_json() and again.internals == {}
    off_peak = _peak_mb()
    _, explained = once(True)  # warm, and the memory it adds
    on_peak = _peak_mb()
    kept = sum(a.nbytes for a in explained.internals.values()) / 2**20
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for explain in (False, True):
            times[explain].append(once(explain)[0])
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(json.dumps({
        "off_s": off, "on_s": on, "ratio": on / off, "peak_off_mb": off_peak, "extra_mb": on_peak - off_peak,
        "internals_mb": kept, "identical": identical,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--only", default="", help="cases to run, separated by commas (default: all)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.threads)
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CASES)
    for name in names:
        save_checkpoint(CASES[name][1], FOLDERS / CASES[name][1])
    header = f"{'case':<28}{'off':>9}{'on':>9}{'ratio':>8}{'peak off':>10}{'extra':>9}{'kept':>9}  off bit-identical"
    print(header)
    print("-" * len(header))
    for name in names:
        done = subprocess.run(
            [sys.executable, str(HERE), "--child", name, "--runs", str(args.runs), "--threads", str(args.threads)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:<28}{1000 * r['off_s']:>7.0f}ms{1000 * r['on_s']:>7.0f}ms{r['ratio']:>7.2f}x"
            f"{r['peak_off_mb']:>8.0f}MB{r['extra_mb']:>7.0f}MB{1024 * r['internals_mb']:>7.0f}KB  {r['identical']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
