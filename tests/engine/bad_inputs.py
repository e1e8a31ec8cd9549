"""What the bad-input catalogue (tests/engine/test_bad_inputs_*.py) shares: a tiny checkpoint
for every task, built once per test module, awkward files, and the checks that the CLI answers
every case as promised: strict JSON on stdout, or one line on stderr with exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.engine.image_samples import photo
from tests.engine.models.tiny_detr import save_tiny_detr
from tests.engine.models.tiny_text import bert_config, distilbert_config, save_model
from tests.engine.models.tiny_wav2vec2 import checkpoint, speech_like
from tests.engine.tasks.test_image_classification import save_vit

ROOT = Path(__file__).resolve().parents[2]
SENTIMENT = ["NEGATIVE", "POSITIVE"]


def build_models(folder: Path, wav2vec2_root: Path) -> dict[str, Path]:
    """name -> checkpoint folder, one per task and head (about two seconds in all):
    `sst` DistilBERT and `bert-sst` BERT sentence classifiers, `ner` a BERT token classifier,
    `vit` an image classifier, `detr` a detector, `ctc` and `keywords` Wav2Vec2 with the real
    convolution geometry (25 ms receptive field, 20 ms frames)."""
    from transformers import (
        BertForSequenceClassification,
        BertForTokenClassification,
        DetrImageProcessorPil,
        DistilBertForSequenceClassification,
    )

    made = {name: folder / name for name in ("sst", "bert-sst", "ner", "vit", "detr")}
    save_model(DistilBertForSequenceClassification, distilbert_config(labels=SENTIMENT), made["sst"])
    save_model(BertForSequenceClassification, bert_config(labels=SENTIMENT), made["bert-sst"])
    save_model(BertForTokenClassification, bert_config(labels=["O", "B-PER", "I-PER"]), made["ner"])
    save_vit(made["vit"])
    save_tiny_detr(made["detr"], num_labels=3)
    # small pictures keep the tiny detector quick; the size rules are the same at any scale
    DetrImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 128}).save_pretrained(made["detr"])
    made["ctc"] = checkpoint("ctc-group", wav2vec2_root)
    made["keywords"] = checkpoint("cls-last", wav2vec2_root)
    return made


def edited(source: Path, target: Path, **changes: Any) -> Path:
    """A copy of checkpoint `source` at `target` with config.json's keys set to `changes`."""
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config.update(changes)
    (target / "config.json").write_text(json.dumps(config))
    return target


def write_pictures(folder: Path) -> dict[str, Path]:
    """The same grey photo as 8-bit, 16-bit (PNG and TIFF) and 0..1 float (TIFF) files, an RGB
    photo, and pictures one pixel thin."""
    folder.mkdir(parents=True, exist_ok=True)
    grey = photo(48, 64, seed=7).mean(axis=-1).round().astype(np.uint8)
    pictures = {
        "grey8.png": Image.fromarray(grey),
        "grey16.png": Image.fromarray(grey.astype(np.uint16) * 257),  # the usual 8-to-16-bit widening
        "grey16.tif": Image.fromarray(grey.astype(np.uint16) * 257),
        "float.tif": Image.fromarray(grey.astype(np.float32) / 255),
        "photo.png": Image.fromarray(photo(48, 64)),
        "wide.png": Image.fromarray(photo(1, 10_000)),
        "tall.png": Image.fromarray(photo(10_000, 1)),
    }
    for name, picture in pictures.items():
        picture.save(folder / name)
    return {name: folder / name for name in pictures}


def write_sounds(folder: Path) -> dict[str, Path]:
    """One second of speech-like audio as a float WAV, and the same with absurd sample values."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    speech = speech_like(1.0)
    sounds = {"speech.wav": speech, "huge-1e20.wav": speech * 1e20, "huge-3e38.wav": np.sign(speech) * 3e38}
    for name, samples in sounds.items():
        soundfile.write(folder / name, samples.astype(np.float32), 16_000, subtype="FLOAT")
    return {name: folder / name for name in sounds}


# ---- the CLI ----------------------------------------------------------------------------------


def run_cli(*args: str, stdin: bytes | None = None, before: str = "") -> subprocess.CompletedProcess:
    """`python -m engine ARGS --device cpu`, offline; `before` is Python run first in the same
    process (to stand for a machine that differs from this one)."""
    code = f"import sys\n{before}\nfrom engine.cli import main\nsys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--device", "cpu"], cwd=ROOT, env=env, input=stdin, capture_output=True
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )


def strict_json(text: str) -> Any:
    """`text` parsed as JSON proper: NaN and Infinity (which Python's json writes) refused."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"the CLI printed {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def assert_refused(done: subprocess.CompletedProcess, *words: str) -> str:
    """The CLI refused the input as it should: exit code 2, nothing on stdout, one line on
    stderr that holds `words`. Returns the line."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "\x1b" not in done.stderr  # no terminal colour codes
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    return done.stderr


def assert_answered(done: subprocess.CompletedProcess) -> tuple[Any, list[str]]:
    """The CLI answered: exit code 0, strict JSON on stdout, and on stderr only one-line
    warnings. Returns (the JSON, the warnings)."""
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("warning: ") for line in lines), done.stderr
    return strict_json(done.stdout), [line.removeprefix("warning: ") for line in lines]
