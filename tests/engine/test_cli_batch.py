"""Batches on the CLI: a folder, a glob or several inputs through one loaded model; a broken
file is an error line and the run goes on; JSON Lines printed as each input is done; exit codes
0 (all ok), 3 (some failed) and 2 (none gave a result); --output-dir with files of the same name
from different folders. `engine.cli.main` runs in this process, which keeps the tests fast."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from engine import cli
from engine.tasks.image_classification import ImageClassification
from tests.engine.image_samples import photo


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    from tests.engine.tasks.test_image_classification import save_vit

    return save_vit(tmp_path_factory.mktemp("vit"))


@pytest.fixture
def photos(tmp_path):
    """A folder of three pictures, a broken one among them, and a text file (not a picture)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, seed in (("a.png", 1), ("c.jpg", 2)):
        Image.fromarray(photo(40, 60, seed=seed)).save(folder / name)
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def main(capsys, *args: str) -> tuple[int, str, list[str]]:
    code = cli.main([*args, "--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_a_folder_runs_every_picture_and_reports_the_broken_one(capsys, vit, photos):
    code, out, err = main(capsys, "image-classification", str(photos), "--model", str(vit), "--top-k", "1")
    assert code == 3  # some failed
    results = json.loads(out)
    assert len(results) == 3 and results[1] == {"input": str(photos / "b.png"), "error": results[1]["error"]}
    expected = ImageClassification.load(vit, device="cpu").run(photos / "a.png", top_k=1).to_json()
    assert results[0] == expected and len(results[2]) == 1
    assert err == [f"error: {photos / 'b.png'}: {results[1]['error']}"]


def test_jsonl_streams_one_record_per_input_as_it_is_done(capsys, vit, photos, monkeypatch):
    printed_before: list[int] = []
    stdout = io.StringIO()
    real_run = ImageClassification.run

    def run(self, *args, **kwargs):
        printed_before.append(stdout.getvalue().count("\n"))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(ImageClassification, "run", run)
    monkeypatch.setattr("sys.stdout", stdout)
    code = cli.main(["image-classification", str(photos / "*.png"), str(photos / "c.jpg"), "--jsonl",
                     "--model", str(vit), "--device", "cpu"])
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert code == 3 and printed_before == [0, 1, 2]  # each record was out before the next input began
    assert [line["input"] for line in lines] == [str(photos / n) for n in ("a.png", "b.png", "c.jpg")]
    assert set(lines[0]) == {"input", "result"} and set(lines[1]) == {"input", "error"}
    assert lines[0]["result"][0].keys() == {"label", "score"}


def test_exit_codes_say_whether_all_some_or_none_succeeded(capsys, vit, photos):
    model = ("--model", str(vit))
    assert main(capsys, "image-classification", str(photos / "a.png"), str(photos / "c.jpg"), *model)[0] == 0
    code, out, err = main(capsys, "image-classification", str(photos / "b.png"), "missing.png", "--jsonl", *model)
    assert code == 2 and len(out.splitlines()) == 2 and len(err) == 2
    assert all(line.startswith("error: ") for line in err) and "missing.png" in err[1]


def test_one_input_keeps_the_pipelines_shape_and_its_refusal(capsys, vit, photos):
    code, out, err = main(capsys, "image-classification", str(photos / "a.png"), "--model", str(vit))
    assert code == 0 and isinstance(json.loads(out), list) and json.loads(out)[0].keys() == {"label", "score"}
    code, out, err = main(capsys, "image-classification", str(photos / "b.png"), "--model", str(vit))
    assert code == 2 and out == "" and len(err) == 1


def test_a_folder_of_one_picture_is_still_a_batch(capsys, vit, photos, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    shutil.copy(photos / "a.png", single / "a.png")
    code, out, _ = main(capsys, "image-classification", str(single), "--model", str(vit))
    assert code == 0 and len(json.loads(out)) == 1 and isinstance(json.loads(out)[0], list)


def test_subfolders_only_with_recursive(capsys, vit, photos):
    deeper = photos / "more"
    deeper.mkdir()
    shutil.copy(photos / "a.png", deeper / "d.png")
    _, out, _ = main(capsys, "image-classification", str(photos), "--jsonl", "--model", str(vit))
    assert len(out.splitlines()) == 3
    _, out, _ = main(capsys, "image-classification", str(photos), "--jsonl", "--recursive", "--model", str(vit))
    assert json.loads(out.splitlines()[-1])["input"] == str(deeper / "d.png")


def test_nothing_to_run_is_one_line_before_any_model_loads(capsys, photos):
    code, out, err = main(capsys, "image-classification", str(photos / "*.gif"), "--model", "/nowhere")
    assert code == 2 and out == "" and err == [f"error: no file matches {photos / '*.gif'}"]


def test_progress_names_each_input_when_asked(capsys, vit, photos):
    _, _, err = main(capsys, "image-classification", str(photos), "--progress", "--model", str(vit))
    assert [line for line in err if not line.startswith("error")] == ["1/3 a.png", "2/3 b.png", "3/3 c.jpg"]


def test_several_texts_are_a_batch_too(capsys, tmp_path):
    from transformers import DistilBertForSequenceClassification

    from tests.engine.models.tiny_text import distilbert_config, save_model

    save_model(DistilBertForSequenceClassification, distilbert_config(labels=["NEGATIVE", "POSITIVE"]), tmp_path)
    code, out, err = main(capsys, "text-classification", "good", "   ", "@missing.txt", "--jsonl", "--model", str(tmp_path))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 3 and [line["input"] for line in lines] == ["good", "   ", "@missing.txt"]
    assert "result" in lines[0] and "error" in lines[1] and "no such file" in lines[2]["error"]



def test_a_folder_of_texts_after_an_at_sign_is_a_batch_of_its_text_files(capsys, tmp_path):
    from transformers import DistilBertForSequenceClassification

    from engine.tasks.text_classification import TextClassification
    from tests.engine.models.tiny_text import distilbert_config, save_model

    model = tmp_path / "model"
    save_model(DistilBertForSequenceClassification, distilbert_config(labels=["NEGATIVE", "POSITIVE"]), model)
    reviews = tmp_path / "reviews"
    (reviews / "older").mkdir(parents=True)
    (reviews / "b.txt").write_text("Terrible service, cold food.")
    (reviews / "a.md").write_text("What a lovely evening.")
    (reviews / "table.csv").write_text("not,a,text,file")
    (reviews / "older" / "c.txt").write_text("Fine.")
    code, out, _ = main(capsys, "text-classification", f"@{reviews}", "--jsonl", "--model", str(model))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["input"] for line in lines] == [f"@{reviews / 'a.md'}", f"@{reviews / 'b.txt'}"]
    expected = TextClassification.load(model, device="cpu").run("Terrible service, cold food.").to_json()
    assert lines[1]["result"] == expected
    _, out, _ = main(capsys, "text-classification", f"@{reviews}", "--recursive", "--jsonl", "--model", str(model))
    assert len(out.splitlines()) == 3
    _, out, _ = main(capsys, "text-classification", f"@{reviews}/*.txt", "--jsonl", "--model", str(model))
    assert [json.loads(line)["input"] for line in out.splitlines()] == [f"@{reviews / 'b.txt'}"]


def test_a_folders_name_as_text_is_read_as_text_with_a_note(capsys, tmp_path):
    from transformers import DistilBertForSequenceClassification

    from tests.engine.models.tiny_text import distilbert_config, save_model

    save_model(DistilBertForSequenceClassification, distilbert_config(labels=["NEGATIVE", "POSITIVE"]), tmp_path)
    code, out, err = main(capsys, "text-classification", str(tmp_path), "--model", str(tmp_path))
    assert code == 0 and len(json.loads(out)) == 2  # one text's labels, not a batch
    assert any(line.startswith("note:") and f"@{tmp_path}" in line for line in err)
    code, _, err = main(capsys, "text-classification", f"@{tmp_path / 'empty'}/*.txt", "--model", str(tmp_path))
    assert code == 2 and err[-1].startswith("error: no file matches")

def test_output_dir_names_files_from_two_folders_apart(capsys, tmp_path):
    from tests.engine.models.tiny_segformer import save_tiny_segformer

    model = tmp_path / "segformer"
    save_tiny_segformer(model, seed=1, processor={"size": {"height": 32, "width": 32}})
    for folder, seed in (("x", 1), ("y", 2)):
        (tmp_path / folder).mkdir()
        Image.fromarray(photo(30, 40, seed=seed)).save(tmp_path / folder / "street.png")
    code, out, _ = main(capsys, "image-segmentation", str(tmp_path / "[xy]/street.png"), "--jsonl",
                        "--subtask", "semantic", "--model", str(model), "--output-dir", str(tmp_path / "out"))
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0 and first["input"].endswith("x/street.png") and second["input"].endswith("y/street.png")
    assert all(Path(e["mask"]).name.startswith("street-") and "street-2-" not in e["mask"] for e in first["result"])
    assert all(Path(e["mask"]).name.startswith("street-2-") for e in second["result"])
    assert all(Path(e["mask"]).is_file() for e in first["result"] + second["result"])


def test_long_audio_reports_progress_through_the_cli(capsys, tmp_path, tmp_path_factory):
    from tests.app.tiny_audio import noise_file
    from tests.engine.models.tiny_wav2vec2 import checkpoint

    model = checkpoint("cls-weighted", tmp_path_factory.getbasetemp() / "tiny-wav2vec2")
    clip = noise_file(tmp_path / "long.wav", 3.0)
    capsys.readouterr()  # transformers' words while saving the checkpoint
    code, out, err = main(capsys, "audio-classification", str(clip), "--chunk-length-s", "1", "--progress",
                          "--model", str(model), "--top-k", "1")
    assert code == 0 and json.loads(out)[0].keys() == {"label", "score"}
    assert err and all(line.startswith("classifying ") and line.endswith("%") for line in err)


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["image-classification", "--help"])
    text = capsys.readouterr().out
    assert "--jsonl" in text and "--recursive" in text and "3  some inputs gave a result" in text


def test_a_folder_of_recordings_gets_one_subtitle_file_each(capsys, tmp_path, tmp_path_factory):
    from tests.app.tiny_audio import recording
    from tests.engine.models.tiny_wav2vec2 import checkpoint

    model = checkpoint("ctc-group", tmp_path_factory.getbasetemp() / "tiny-wav2vec2")
    for folder in ("monday", "tuesday"):
        (tmp_path / folder).mkdir()
        recording(tmp_path / folder / "talk.wav", 1.0, seed=len(folder))
    (tmp_path / "monday" / "broken.wav").write_bytes(b"RIFF....WAVEfmt ")
    capsys.readouterr()
    code, out, err = main(capsys, "automatic-speech-recognition", str(tmp_path / "*day"), "--jsonl",
                          "--model", str(model), "--output-dir", str(tmp_path / "subs"))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 3 and [Path(line["input"]).name for line in lines] == ["broken.wav", "talk.wav", "talk.wav"]
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'monday' / 'broken.wav'}: ")
    assert [Path(line["result"]["subtitles"]).name for line in lines[1:]] == ["talk.srt", "talk-2.srt"]
    assert all(Path(line["result"]["subtitles"]).is_file() for line in lines[1:])


def test_on_a_terminal_progress_is_one_line_rewritten_and_cleared(capsys):
    line = cli.StatusLine(enabled=True, terminal=True)
    line.begin(11, 240, "photo.jpg")
    line.running(30, 120, "classifying")
    line.clear()
    line.clear()  # nothing left to take away
    err = capsys.readouterr().err
    assert err == "\r\x1b[K12/240 photo.jpg\r\x1b[K12/240 photo.jpg: classifying 25%\r\x1b[K"
    quiet = cli.StatusLine(enabled=False, terminal=True)
    quiet.begin(0, 1, "a.png")
    quiet.clear()
    assert capsys.readouterr().err == ""
