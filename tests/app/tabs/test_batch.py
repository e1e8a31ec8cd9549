"""Folders as batches in the vision and audio tabs, on tiny checkpoints through the real engine
worker: every file run in turn, a broken file recorded and skipped, the table's rows showing each
file's result, cancel in the middle, the CSV and JSON Lines exports and the speech tab's
subtitles. Every expected value comes from the engine run directly on the same files."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from tests.app.conftest import close_window, open_window
from tests.app.tabs.vision_fixtures import file_mime, tab_of, vision_models  # noqa: F401 (a fixture)
from tests.app.tabs.vision_models import SAMPLES
from tests.app.tiny_audio import AUDIO_TASKS, build_audio_models, recording
from tests.optional import import_or_skip

WAIT_MS = 60_000
IMAGES = "image-classification"
ASR, CLS = AUDIO_TASKS


@pytest.fixture
def photos(tmp_path):
    """Two photographs, a broken picture and a text file that is no picture at all."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(SAMPLES / "street.jpg", folder / "a_street.jpg")
    shutil.copy(SAMPLES / "still_life.jpg", folder / "c_still_life.jpg")
    (folder / "b_broken.png").write_bytes(bytes(range(256)) * 8)
    (folder / "notes.txt").write_text("not a picture")
    return folder


@pytest.fixture
def vision_tab(qtbot, settings, vision_models):  # noqa: F811 (the fixture imported above)
    models = {t: vision_models[t] for t in ("image-classification", "object-detection")}
    win = open_window(qtbot, settings, models, tasks=(IMAGES,))
    yield tab_of(qtbot, win, IMAGES)
    close_window(win)


def finish(qtbot, tab) -> None:
    qtbot.waitUntil(lambda: tab.folder_run is not None and not tab.folder_run.running, timeout=WAIT_MS)


def test_a_folder_runs_every_picture_and_records_the_broken_one(qtbot, vision_tab, photos, tmp_path):
    from engine.tasks.image_classification import ImageClassification

    tab = vision_tab
    assert tab.run_folder(photos)
    assert tab.is_busy() and tab.batch_panel.isVisible() and tab.cancel_button.isEnabled()
    finish(qtbot, tab)
    items = tab.folder_run.items
    assert [i.path.name for i in items] == ["a_street.jpg", "b_broken.png", "c_still_life.jpg"]
    assert [i.state for i in items] == ["done", "failed", "done"] and "b_broken.png" in items[1].error
    oracle = ImageClassification.load(tab.loaded.spec.ref, device="cpu")
    options = tab.options_form.values()
    for item in (items[0], items[2]):
        assert item.outcome.result.to_json() == oracle.run(item.path, **options).to_json()
    table = tab.batch_panel.table
    assert table.rowCount() == 3 and table.item(0, 1).text() == tab.batch_summary(items[0].json)
    assert table.item(1, 1).text() == items[1].error and table.item(2, 2).text().endswith(" s")
    assert "2 of 3 files done, 1 failed" in tab.batch_panel.status.text()
    assert tab.batch_panel.export_buttons["csv"].isEnabled() and not tab.is_busy()

    # a row shows its picture with its result, without running it again
    started = []
    tab.engine.started.connect(started.append)
    tab.batch_panel.table.selectRow(2)
    qtbot.waitUntil(lambda: tab.current is not None and tab.current.preview is not None, timeout=WAIT_MS)
    assert tab.current.name == "c_still_life.jpg" and tab.last_outcome is items[2].outcome
    tab.batch_panel.table.selectRow(1)
    assert tab.banner.kind == "error" and "b_broken.png" in tab.banner._text.text()
    assert started == [] and not tab.is_busy()

    assert tab.export_batch("csv", tmp_path / "out.csv") and tab.export_batch("jsonl", tmp_path / "out.jsonl")
    with (tmp_path / "out.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    best = items[0].outcome.result.to_json()[0]
    assert rows[0]["file"] == str(items[0].path) and rows[0]["label"] == best["label"]
    assert float(rows[0]["score"]) == pytest.approx(best["score"], abs=1e-6)
    assert rows[1]["label"] == "" and rows[1]["error"] == items[1].error
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"input": str(items[0].path), "result": items[0].outcome.result.to_json()}
    assert lines[1] == {"input": str(items[1].path), "error": items[1].error}


def test_only_the_latest_results_are_kept_whole_and_older_rows_run_again(qtbot, vision_tab, photos):
    tab = vision_tab
    tab.batch_kept_outcomes = 1
    tab.run_folder(photos)
    finish(qtbot, tab)
    first, _, last = tab.folder_run.items
    assert first.outcome is None and first.json and last.outcome is not None
    started = []
    tab.engine.started.connect(started.append)
    tab.batch_panel.table.selectRow(0)
    qtbot.waitUntil(lambda: tab.current is not None and tab.current.outcome is not None, timeout=WAIT_MS)
    assert tab.current.name == "a_street.jpg" and len(started) == 1
    assert tab.current.outcome.result.to_json() == first.json


def test_a_dropped_folder_is_a_batch(qtbot, vision_tab, photos):
    vision_tab.take_mime(file_mime(photos))
    finish(qtbot, vision_tab)
    assert [i.state for i in vision_tab.folder_run.items] == ["done", "failed", "done"]
    assert vision_tab.pictures == []  # the strip is for pictures opened one by one


def test_cancel_in_the_middle_stops_the_batch(qtbot, vision_tab, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(8):
        shutil.copy(SAMPLES / "street.jpg", folder / f"street_{i}.jpg")
    tab = vision_tab
    tab.run_folder(folder)
    run = tab.folder_run
    run.item_done.connect(lambda index: tab.cancel() if index == 0 else None)  # Esc, after the first
    with qtbot.waitSignal(run.finished, timeout=WAIT_MS) as finished:
        pass
    assert finished.args == [False]
    states = [i.state for i in run.items]
    assert states[0] == "done" and states.count("done") <= 2 and states[-1] == "cancelled"
    assert "Cancelled" in tab.batch_panel.status.text() and not tab.is_busy()
    assert not tab.batch_panel.cancel_button.isEnabled()
    tab.run_folder(folder)  # a new batch starts afresh
    finish(qtbot, tab)
    assert [i.state for i in tab.folder_run.items] == ["done"] * 8


def test_an_empty_folder_says_so(qtbot, vision_tab, tmp_path):
    assert not vision_tab.run_folder(tmp_path)
    assert vision_tab.banner.kind == "info" and "holds no image files" in vision_tab.banner._text.text()


# ---- audio ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audio_models(tmp_path_factory):
    import_or_skip("soundfile")
    return build_audio_models(tmp_path_factory.mktemp("tiny-audio"))


@pytest.fixture
def recordings(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    recording(folder / "one.wav", 1.5, seed=1)
    (folder / "two.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE broken")
    recording(folder / "three.wav", 2.0, seed=2)
    return folder


@pytest.fixture
def audio_window(qtbot, settings, audio_models):
    win = open_window(qtbot, settings, audio_models, tasks=AUDIO_TASKS)
    yield win
    close_window(win)


def test_a_dropped_folder_of_recordings_is_classified(qtbot, audio_window, recordings):
    from engine.tasks.audio_classification import AudioClassification

    tab = tab_of(qtbot, audio_window, CLS)
    tab.file_input.folder_dropped.emit(str(recordings))
    finish(qtbot, tab)
    items = tab.folder_run.items
    assert [i.path.name for i in items] == ["one.wav", "three.wav", "two.wav"]
    assert [i.state for i in items] == ["done", "done", "failed"]
    oracle = AudioClassification.load(tab.loaded.spec.ref, device="cpu")
    expected = oracle.run(items[1].path, **tab.options_form.values()).to_json()
    assert items[1].outcome.result.to_json() == expected
    tab.batch_panel.table.selectRow(1)
    assert tab.file_input.path == items[1].path and tab.last_outcome is items[1].outcome
    assert expected[0]["label"] in tab.summary.text() and not tab.is_busy()


def test_the_speech_tab_writes_one_subtitle_file_per_recording(qtbot, audio_window, recordings, tmp_path):
    tab = tab_of(qtbot, audio_window, ASR)
    assert tab.run_folder(recordings)
    finish(qtbot, tab)
    assert "srt" in tab.batch_panel.export_buttons
    out = tmp_path / "subtitles"
    out.mkdir()
    assert tab.export_batch("srt", out)
    assert sorted(p.name for p in out.iterdir()) == ["one.srt", "three.srt"]
    assert tab.batch_panel.table.item(2, 1).text() == tab.folder_run.items[2].error


def test_the_tabs_own_words_for_a_batch_row():
    from app.tabs.depth_estimation import DepthEstimationTab
    from app.tabs.object_detection import ObjectDetectionTab
    from app.tabs.speech_recognition import SpeechRecognitionTab

    boxes = [{"label": label, "score": 0.9, "box": {}} for label in ("cat", "dog", "cat", "cup", "sofa", "tv", "cat")]
    assert ObjectDetectionTab.batch_summary(None, boxes) == "7 objects: 3 cat, dog, cup, sofa…"
    assert ObjectDetectionTab.batch_summary(None, boxes[:1]) == "1 object: cat"
    assert ObjectDetectionTab.batch_summary(None, []) == "no objects"
    depth = {"kind": "metric", "min": 0.51234, "max": 20.0}
    assert DepthEstimationTab.batch_summary(None, depth) == "metric depth 0.512 to 20"
    assert SpeechRecognitionTab.batch_summary(None, {"text": " HELLO  THERE "}) == "HELLO THERE"
    assert SpeechRecognitionTab.batch_summary(None, {"text": ""}) == "(nothing heard)"
    assert SpeechRecognitionTab.batch_summary(None, [{"label": "yes", "score": 0.25}]) == "yes · 25.0 %"
