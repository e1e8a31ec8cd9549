"""The headless CLI: JSON shaped like the pipelines' output, and for bad usage or input,
exit code 2 and one line on stderr."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.engine.models.tiny_text import bert_config, distilbert_config, save_model

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_no_task_is_one_line_and_exit_2():
    done = run_cli()
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:")


def test_unknown_task_is_one_line_and_exit_2():
    done = run_cli("no-such-task", "input")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no-such-task" in done.stderr


# --- the three text tasks end to end, on tiny checkpoints saved by transformers ---

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def text_models(tmp_path_factory):
    from transformers import (
        BertForTokenClassification,
        DistilBertForQuestionAnswering,
        DistilBertForSequenceClassification,
    )

    made = {name: tmp_path_factory.mktemp(name) for name in ("sst", "ner", "squad")}
    save_model(DistilBertForSequenceClassification, distilbert_config(labels=["NEGATIVE", "POSITIVE"]), made["sst"])
    save_model(BertForTokenClassification, bert_config(labels=NER_LABELS), made["ner"], cased=True, label_bias=[0, 1, 1, 1, 1])
    save_model(DistilBertForQuestionAnswering, distilbert_config(), made["squad"])
    return made


def run_json(*args: str) -> object:
    done = run_cli(*args, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_text_classification_prints_the_pipeline_shape(text_models):
    out = run_json("text-classification", "what a lovely day", "--model", str(text_models["sst"]))
    assert [sorted(item) for item in out] == [["label", "score"]] * 2
    assert {item["label"] for item in out} == {"NEGATIVE", "POSITIVE"}
    assert abs(sum(item["score"] for item in out) - 1) < 1e-5


def test_several_inputs_give_a_list_of_results(text_models):
    out = run_json("text-classification", "one", "two", "--top-k", "1", "--model", str(text_models["sst"]))
    assert len(out) == 2 and all(len(result) == 1 for result in out)


def test_token_classification_spans_point_into_the_text(text_models, tmp_path):
    text = "Ada Lovelace lived in London with Charles Babbage"
    source = tmp_path / "text.txt"
    source.write_text(text, encoding="utf-8")
    out = run_json("token-classification", f"@{source}", "--aggregation-strategy", "simple", "--model", str(text_models["ner"]))
    assert out, "the steered tiny model tags some words"
    for entity in out:
        assert {"entity_group", "score", "word", "start", "end"} <= set(entity)
        assert text[entity["start"] : entity["end"]].lower().replace(" ", "") == entity["word"].lower().replace(" ", "").replace("##", "")


def test_question_answering_answer_is_its_span(text_models):
    context = "The Analytical Engine was designed by Charles Babbage in London."
    out = run_json("question-answering", context, "--question", "Who designed it?", "--model", str(text_models["squad"]))
    assert set(out) >= {"answer", "score", "start", "end"}
    assert context[out["start"] : out["end"]] == out["answer"]


def test_explain_writes_the_text_internals_beside_the_answer(text_models, tmp_path):
    context = "The Analytical Engine was designed by Charles Babbage in London."
    out = run_json(
        "question-answering", context, "--question", "Who designed it?", "--model", str(text_models["squad"]),
        "--explain", str(tmp_path),
    )  # fmt: skip
    assert context[out["start"] : out["end"]] == out["answer"]
    attention = np.load(out["internals"]["attention"])
    assert attention.dtype == np.float16 and attention.shape[:2] == (2, 4)  # layers, heads
    pieces = np.load(out["internals"]["pieces"])
    assert attention.shape[2:] == (len(pieces), len(pieces))
    assert len(np.load(out["internals"]["start_logits"])) == len(np.load(out["internals"]["context_spans"]))


def test_int8_and_auto_give_the_same_shape_and_say_what_ran(text_models):
    model = str(text_models["squad"])
    context = "The Analytical Engine was designed by Charles Babbage in London."
    int8 = run_cli("question-answering", context, "--question", "Who?", "--model", model, "--dtype", "int8")
    auto = run_cli("question-answering", context, "--question", "Who?", "--model", model, "--dtype", "auto")
    assert int8.returncode == auto.returncode == 0, int8.stderr + auto.stderr
    assert set(json.loads(int8.stdout)) == set(json.loads(auto.stdout)) >= {"answer", "score", "start", "end"}
    assert "note:" not in int8.stderr
    assert auto.stderr.startswith("note: ") and "(auto): " in auto.stderr and "speed against fp32" in auto.stderr


def test_unknown_precision_is_a_usage_error(text_models):
    done = run_cli("text-classification", "hi", "--model", str(text_models["sst"]), "--dtype", "fp8")
    assert done.returncode == 2 and "--dtype" in done.stderr and "int8" in done.stderr


def test_bad_input_is_one_line_and_exit_2(text_models):
    done = run_cli("text-classification", "   ", "--model", str(text_models["sst"]))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_checkpoint_of_another_architecture_is_refused(text_models):
    done = run_cli("text-classification", "hello", "--model", str(text_models["squad"]))
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and done.stderr.count("\n") == 1


def test_missing_question_is_refused(text_models):
    done = run_cli("question-answering", "some context", "--model", str(text_models["squad"]))
    assert done.returncode == 2 and "question" in done.stderr


def test_offline_hub_id_not_cached_is_a_clear_error(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "engine", "text-classification", "hi", "--model", "someone/absent-model"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "someone/absent-model" in done.stderr and done.stderr.count("\n") == 1


# --- text generation: every generation option is a flag ---


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    from tests.engine.models.tiny_generative import save_gpt2

    folder = tmp_path_factory.mktemp("gpt2")
    save_gpt2(folder)
    return folder


def test_text_generation_prints_the_pipeline_shape(gpt2_folder):
    from engine.tasks.text_generation import TextGeneration

    args = ("The analysis of London", "--model", str(gpt2_folder), "--max-new-tokens", "5", "--no-do-sample")
    out = run_json("text-generation", *args)
    expected = TextGeneration.load(gpt2_folder, device="cpu").run("The analysis of London", max_new_tokens=5, do_sample=False)
    assert out == expected.to_json() and out[0]["generated_text"].startswith("The analysis of London")


def test_generation_flags_reach_the_search(gpt2_folder):
    beams = run_json("text-generation", "the", "--model", str(gpt2_folder), "--max-new-tokens", "4", "--num-beams", "3",
                     "--num-return-sequences", "2", "--early-stopping", "never", "--length-penalty", "0.5",
                     "--no-return-full-text")
    assert len(beams) == 2 and not any(item["generated_text"].startswith("the") for item in beams)
    sample = ("the", "--model", str(gpt2_folder), "--max-new-tokens", "6", "--do-sample", "--seed", "3", "--top-k", "20",
              "--top-p", "0.9", "--temperature", "0.8", "--repetition-penalty", "1.2", "--no-repeat-ngram-size", "2")
    assert run_json("text-generation", *sample) == run_json("text-generation", *sample)


def test_translation_under_the_pipelines_names(tmp_path):
    from tests.engine.models.tiny_generative import save_t5

    save_t5(tmp_path, flan=True)
    text = "The analysis of London"
    named = run_json("translation_en_to_fr", text, "--model", str(tmp_path), "--max-new-tokens", "6")
    flags = run_json("translation", text, "--src-lang", "en", "--tgt-lang", "fr", "--model", str(tmp_path), "--max-new-tokens", "6")
    assert named == flags and len(named) == 1 and set(named[0]) == {"translation_text"}


# --- depth estimation: what the numbers are, in three fields ---


def test_depth_estimation_prints_kind_min_and_max(tmp_path):
    from PIL import Image
    from transformers import DPTImageProcessorPil

    from tests.engine.image_samples import photo
    from tests.engine.models.tiny_depth_anything import save_tiny_depth_anything

    save_tiny_depth_anything(tmp_path, depth_estimation_type="metric", max_depth=20)
    DPTImageProcessorPil(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=7,
                         resample=3).save_pretrained(tmp_path)
    Image.fromarray(photo(61, 97)).save(tmp_path / "photo.png")
    out = run_json("depth-estimation", str(tmp_path / "photo.png"), "--model", str(tmp_path))
    assert set(out) == {"kind", "min", "max"} and out["kind"] == "metric"
    assert 0 < out["min"] < out["max"]
    written = run_json("depth-estimation", str(tmp_path / "photo.png"), "--model", str(tmp_path),
                       "--output-dir", str(tmp_path / "out"))
    assert written == {**out, "predicted_depth": str(tmp_path / "out" / "photo-depth.npy"),
                       "depth": str(tmp_path / "out" / "photo-depth.png"),
                       "point_cloud": str(tmp_path / "out" / "photo-depth.ply")}
    assert np.load(written["predicted_depth"]).shape == (61, 97)
    header = (tmp_path / "out" / "photo-depth.ply").read_bytes().split(b"end_header")[0].decode("ascii")
    assert "element vertex 5917" in header  # 61 x 97: every metric depth is above zero


# --- a task whose results write files: image segmentation with --output-dir ---


@pytest.fixture(scope="module")
def segmentation_model(tmp_path_factory):
    from tests.engine.models.tiny_segformer import save_tiny_segformer

    folder = tmp_path_factory.mktemp("segformer")
    save_tiny_segformer(folder, seed=1, processor={"size": {"height": 64, "width": 64}})
    return folder


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    from PIL import Image

    from tests.engine.image_samples import photo

    path = tmp_path_factory.mktemp("photos") / "street.jpg"
    Image.fromarray(photo(240, 320)).save(path)
    return path


def test_image_segmentation_prints_segments_without_masks(segmentation_model, photo_file):
    out = run_json("image-segmentation", str(photo_file), "--model", str(segmentation_model))
    assert out and all(set(entry) == {"score", "label", "area", "bbox"} for entry in out)
    assert all(entry["score"] is None for entry in out)
    assert sum(entry["area"] for entry in out) == 320 * 240


def test_output_dir_writes_one_mask_per_segment(segmentation_model, photo_file, tmp_path):
    from PIL import Image

    folder = tmp_path / "masks"  # made by the CLI
    out = run_json("image-segmentation", str(photo_file), str(photo_file), "--subtask", "semantic",
                   "--model", str(segmentation_model), "--output-dir", str(folder))
    first, second = out  # two inputs: a list per input, the files kept apart
    assert len(first) == len(second) and len({e["mask"] for e in first + second}) == 2 * len(first)
    for entry in first:
        assert entry["mask"].startswith(str(folder / "street-")) and entry["mask"].endswith(".png")
        with Image.open(entry["mask"]) as mask:
            pixels = np.asarray(mask)
            assert mask.mode == "L" and mask.size == (320, 240)
            assert set(np.unique(pixels)) <= {0, 255} and int((pixels == 255).sum()) == entry["area"]
            assert list(mask.getbbox()) == entry["bbox"]
    assert all(e["mask"].startswith(str(folder / "street-2-")) for e in second)


def test_output_dir_is_offered_only_where_results_write_files():
    assert "--output-dir DIR" in run_cli("image-segmentation", "--help").stdout
    assert "--output-dir" not in run_cli("image-classification", "--help").stdout
    done = run_cli("text-classification", "hello", "--output-dir", "x")
    assert done.returncode == 2 and "--output-dir" in done.stderr


def test_a_subtask_the_checkpoint_lacks_is_refused(segmentation_model, photo_file):
    done = run_cli("image-segmentation", str(photo_file), "--subtask", "panoptic",
                   "--model", str(segmentation_model), "--device", "cpu")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "semantic segmentation only" in done.stderr


def test_mask2former_prints_scored_segments_and_writes_their_masks(photo_file, tmp_path):
    from PIL import Image

    from tests.engine.models.tiny_mask2former import save_tiny_mask2former

    model = tmp_path / "mask2former"
    save_tiny_mask2former(model, seed=2, class_scale=8, mask_scale=30, processor={"size": {"height": 64, "width": 96}})
    plain = run_json("image-segmentation", str(photo_file), "--model", str(model), "--threshold", "0.5")
    assert plain and all(set(entry) == {"score", "label", "area", "bbox"} for entry in plain)
    assert all(isinstance(entry["score"], float) for entry in plain)
    inside = tmp_path / "inside"
    out = run_json("image-segmentation", str(photo_file), "--model", str(model), "--threshold", "0.5",
                   "--explain", str(inside))
    assert out["result"] == plain and set(out["internals"]) == {"query_masks", "query_logits"}
    assert np.load(out["internals"]["query_masks"]).shape[1:2] == np.load(out["internals"]["query_logits"]).shape[1:2]
    written = run_json("image-segmentation", str(photo_file), "--model", str(model), "--subtask", "instance",
                       "--threshold", "0.5", "--output-dir", str(tmp_path / "masks"))
    assert written and all(set(entry) == {"score", "label", "area", "bbox", "mask"} for entry in written)
    with Image.open(written[0]["mask"]) as mask:
        assert mask.mode == "L" and mask.size == (320, 240) and int((np.asarray(mask) == 255).sum()) == written[0]["area"]


def test_summarization_prints_the_pipeline_shape(tmp_path):
    from tests.engine.models.tiny_generative import save_bart

    save_bart(tmp_path)
    out = run_json("summarization", "The analysis of London was born in the year 1843.", "--model", str(tmp_path),
                   "--num-beams", "2", "--max-length", "8", "--min-length", "3")
    assert len(out) == 1 and set(out[0]) == {"summary_text"}
