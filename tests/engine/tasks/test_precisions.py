"""Every task in every precision, on tiny random checkpoints and the bundled samples (each
task's `check_inputs`): bf16 and int8 keep fp32's output shapes and labels, stay within a
stated distance of its outputs, and keep its answers where the tiny model is decisive; Auto
picks a precision by measuring; a CPU without bf16 falls back with a message.

The tolerances are relative to the largest fp32 output. Random weights give near-tied logits,
so a few rows (tokens, frames) flip between precisions where a trained model's would not: for
the tagger and the speech model the answers may differ, and at least 90% of the rows keep
their top-1. A generator's later steps read the tokens its
own precision chose, so only its first step (the prompt's logits) is compared, and its text
may differ; T5 and BART run through encode and decode, which record no outputs, and the depth model
through its parts, so theirs are compared by answers alone.
"""

import json
import math

import pytest
import torch

from engine import precision, tasks
from engine.tasks import precision_check
from engine.tasks.precision_check import Trial, choose_precision, pick, record
from tests.engine.models.tiny_wav2vec2 import single_thread  # noqa: F401 (a fixture, used below)
from tests.engine.tasks.tiny_checkpoints import CHECKPOINTS, checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")

TOLERANCE = {"bf16": 0.05, "int8": 0.2}  # max |Δ output| over max |fp32 output|
# seven random convolutions, each GELU'd, and two layer norms compound bf16's rounding: the
# speech model's logits on the bundled reading drift by about 7% of the largest
LOOSER = {("wav2vec2-ctc", "bf16"): 0.1}
NEAR_TIES = {"bert-ner", "wav2vec2-ctc"}  # answers may differ; 90% of rows keep their top-1
GENERATORS = {"gpt2", "flan-t5", "bart"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("precisions")


@pytest.fixture(scope="module")
def fp32(root):
    """name -> (task class, folder, fp32 task, its record on the check inputs)."""
    made = {}
    for name in CHECKPOINTS:
        task_name, folder = checkpoint(name, root)
        cls = tasks.get(task_name)
        task = cls.load(folder, device="cpu")
        made[name] = (cls, folder, task, record(task, cls.check_inputs()))
    return made


def test_every_task_has_check_inputs_from_the_samples():
    for name in tasks.available():
        inputs = tasks.get(name).check_inputs()
        assert inputs, f"{name} has nothing for Auto to check on"


def test_the_checkpoints_cover_every_task():
    covered = [tasks.get(task) for task, _ in CHECKPOINTS.values()]
    for name in tasks.available():  # translation_en_to_de and the like are translation
        assert any(issubclass(tasks.get(name), cls) for cls in covered), name


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_precision_keeps_shapes_labels_and_answers(fp32, name, dtype, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)  # whatever this CPU has
    cls, folder, reference_task, reference = fp32[name]
    task = cls.load(folder, device="cpu", dtype=dtype)
    assert task.precision.name == dtype and task.info()["precision"] == dtype
    got = record(task, cls.check_inputs())
    assert task.info().get("labels") == reference_task.info().get("labels")
    assert [type(g) for g in got.gists] == [type(g) for g in reference.gists]
    outputs, expected = got.outputs, reference.outputs
    if name in GENERATORS:
        outputs, expected = outputs[:1], expected[:1]
    assert [t.shape for t in outputs] == [t.shape for t in expected]
    if expected:
        scale = max(float(t.abs().max()) for t in expected)
        assert precision_check.max_difference(outputs, expected) <= LOOSER.get((name, dtype), TOLERANCE[dtype]) * scale
    if name in GENERATORS:
        return
    if name in NEAR_TIES:
        kept = [(a.argmax(-1) == b.argmax(-1)).float().mean() for a, b in zip(got.outputs, reference.outputs)]
        assert min(kept) >= 0.9
    else:
        assert got.gists == reference.gists


def test_int8_quantises_every_linear_layer_and_counts_its_weights(fp32):
    cls, folder, reference_task, _ = fp32["bert-squad"]
    task = cls.load(folder, device="cpu", dtype="int8")
    linear = sum(isinstance(m, torch.nn.Linear) for m in reference_task.network().modules())
    assert task.info()["int8_linear_layers"] == linear and linear > 0
    assert not any(isinstance(m, torch.nn.Linear) for m in task.network().modules())
    assert task.parameter_count() == reference_task.parameter_count()
    assert task.parameter_bytes() < 0.7 * reference_task.parameter_bytes()


def test_fp16_runs_every_task(fp32):
    for name, (cls, folder, reference_task, _) in fp32.items():
        value, options = cls.check_inputs()[0]
        result = cls.load(folder, device="cpu", dtype="fp16").run(value, **options)
        assert type(result) is type(reference_task.run(value, **options)), name
        json.dumps(result.to_json())


def test_bf16_on_a_cpu_without_it_runs_fp32_and_says_so(fp32, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    cls, folder, _, reference = fp32["vit"]
    task = cls.load(folder, device="cpu", dtype="bf16")
    assert task.precision.name == "fp32" and task.dtype == torch.float32
    assert "no native bf16" in task.info()["precision_note"]
    assert record(task, cls.check_inputs()).gists == reference.gists


def test_check_precision_says_how_the_answers_compare(fp32):
    cls, folder, _, _ = fp32["distilbert-sst"]
    task = cls.load(folder, device="cpu", dtype="int8", check_precision=True)
    assert task.info()["checked_against_fp32"].startswith("same answers as fp32 on 2 check inputs")
    assert "checked_against_fp32" not in cls.load(folder, device="cpu", dtype="int8").info()


# ---------------------------------------------------------------------------------- Auto


def trial(name, seconds, differing=0, difference=0.01):
    return Trial(name, 2, differing, difference, seconds)


def test_pick_takes_the_fastest_that_agrees_by_a_margin():
    assert pick([trial("fp32", 1.0), trial("bf16", 0.6), trial("int8", 0.3)]).precision == "int8"
    assert pick([trial("fp32", 1.0), trial("bf16", 0.6), trial("int8", 0.3, differing=1)]).precision == "bf16"
    assert pick([trial("fp32", 1.0), trial("int8", 0.95)]).precision == "fp32"  # within the noise
    assert pick([trial("fp32", 1.0), trial("int8", 0.2, difference=math.nan)]).precision == "fp32"



def test_the_verdict_gives_each_precisions_speed_answers_and_output_difference():
    verdict = precision_check.Verdict(
        "bf16", (trial("fp32", 1.0), trial("bf16", 0.4, difference=0.031), trial("int8", 0.5, 1, 0.29),
                 trial("fp16", 0.8, difference=math.inf))
    )
    assert verdict.summary() == (
        "same answers as fp32 on 2 check inputs (largest output difference 0.031); speed against fp32: "
        "bf16 2.5× (same answers, outputs within 0.031), int8 2.0× (answers differ on 1 of 2, outputs within 0.29), "
        "fp16 1.2× (same answers, outputs not finite)"
    )

def test_auto_measures_every_candidate_and_says_what_it_found(fp32):
    cls, folder, _, reference = fp32["distilbert-sst"]
    task = choose_precision(cls, folder, torch.device("cpu"), has_native_bf16=lambda device: True, remember=False)
    assert task.precision.requested == "auto" and task.precision.label() == f"{task.precision.name} (auto)"
    check = task.info()["checked_against_fp32"]
    assert "bf16" in check and "int8" in check and "speed against fp32" in check
    assert record(task, cls.check_inputs()).gists == reference.gists


def test_auto_keeps_fp32_where_the_answers_differ(fp32):
    cls, folder, _, _ = fp32["bert-ner"]  # its entities move in both bf16 and int8
    task = choose_precision(cls, folder, torch.device("cpu"), has_native_bf16=lambda device: True, remember=False)
    assert task.precision.name == "fp32"
    assert task.precision.check.count("answers differ") == 2


def test_auto_without_check_inputs_keeps_fp32(fp32):
    cls, folder, _, _ = fp32["vit"]
    task = choose_precision(cls, folder, torch.device("cpu"), inputs=[], remember=False)
    assert task.precision.name == "fp32" and "no check inputs" in task.precision.check


def test_auto_remembers_its_verdict_per_model(fp32, monkeypatch):
    cls, folder, _, _ = fp32["convnext"]
    first = cls.load(folder, device="cpu", dtype="auto")

    def measure_again(*args, **kwargs):
        raise AssertionError("the verdict was measured twice")

    monkeypatch.setattr(precision_check, "_run", measure_again)
    again = cls.load(folder, device="cpu", dtype="auto")
    assert again.precision == first.precision


# ---------------------------------------------------------------------------------- live paths


def test_live_paths_run_in_int8_and_keep_their_guarantees(fp32):
    """The microphone's transcriber still ends with the file task's text, the rolling
    classifier still classifies, and a webcam frame (an array) still gives detections."""
    import numpy as np

    from engine import audio
    from engine.tasks.audio_classification import RollingClassifier
    from engine.tasks.base import SAMPLES
    from engine.tasks.live_transcription import LIVE_CHUNK_S, LIVE_STRIDE_S, LiveTranscriber

    samples = audio.load_audio(SAMPLES / "speech.wav")
    cls, folder, _, _ = fp32["wav2vec2-ctc"]
    speech = cls.load(folder, device="cpu", dtype="int8")
    transcriber = LiveTranscriber(speech)
    for start in range(0, len(samples), 1600):
        transcriber.feed(samples[start : start + 1600])
    expected = speech.run(samples, chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S)
    assert transcriber.flush().text == expected.text

    cls, folder, reference_task, _ = fp32["wav2vec2-cls"]
    rolling = RollingClassifier(cls.load(folder, device="cpu", dtype="int8"), window_s=1.0)
    rolling.feed(samples[:32_000])
    assert {e["label"] for e in rolling.classify().to_json()} <= set(reference_task.info()["labels"])

    cls, folder, _, _ = fp32["detr"]
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    detections = cls.load(folder, device="cpu", dtype="int8").run(frame, threshold=0.0)
    assert len(detections.candidates) == 12  # one per query, as in fp32
