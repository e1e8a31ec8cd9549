"""What the bad-input catalogue (tests/engine/test_bad_inputs_*.py) shares: a tiny checkpoint
for every task, built once per test module, awkward files, a runner for the CLI cases, and the
checks that the CLI answers every case as promised: strict JSON on stdout, or one line on
stderr with exit code 2. tests/engine/test_cli.py checks the `python -m engine` process itself
(its exit code is `main`'s)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
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


# the fixtures of each catalogue module (imported there), built once per module


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"), tmp_path_factory.getbasetemp() / "tiny-wav2vec2")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    return write_pictures(tmp_path_factory.mktemp("pictures"))


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    return write_sounds(tmp_path_factory.mktemp("sounds"))


# ---- the CLI ----------------------------------------------------------------------------------


@dataclass
class CliCase:
    """One command line: `args` (`--device cpu` is added), bytes for stdin, and Python run just
    before and just after it in the same process (to stand for a machine unlike this one)."""

    args: list[str]
    stdin: bytes = b""
    before: str = ""
    after: str = ""


# Runs engine.cli.main once per case in one process, each with its own stdin, stdout and stderr:
# starting Python and torch once per module instead of once per case saves seconds a case.
_DRIVER = """
import base64, contextlib, io, json, sys
from engine.cli import main
answers = []
for case in json.load(sys.stdin):
    exec(case["before"])
    sys.stdin = io.TextIOWrapper(io.BytesIO(base64.b64decode(case["stdin"])), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(case["args"] + ["--device", "cpu"])
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code
    exec(case["after"])
    answers.append([code, out.getvalue(), err.getvalue()])
sys.__stdout__.write(json.dumps(answers))
"""


def run_cli(cases: dict[str, CliCase]) -> dict[str, subprocess.CompletedProcess]:
    """name -> what `python -m engine ARGS --device cpu` gave for each case (exit code, stdout,
    stderr), all run offline in one fresh process."""
    sent = [
        {"args": c.args, "stdin": base64.b64encode(c.stdin).decode(), "before": c.before, "after": c.after}
        for c in cases.values()
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER], cwd=ROOT, env=env, input=json.dumps(sent), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    return {
        name: subprocess.CompletedProcess(case.args, code, out, err)
        for (name, case), (code, out, err) in zip(cases.items(), answers)
    }


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
