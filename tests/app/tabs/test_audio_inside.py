"""The audio tabs' "Inside the model" views through the real worker: speech recognition's frame
strip (each frame's best character, the kept characters and words, a hovered frame's word
highlighted) and audio classification's scores over time and layer weights; closed, runs keep
nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.widgets.frame_strip import BLANK_MARK, CELL
from tests.app.conftest import close_window, open_window
from tests.app.tiny_audio import AUDIO_TASKS, build_audio_models, recording
from tests.optional import import_or_skip

import_or_skip("soundfile")

WAIT_MS = 60_000
ASR, CLS = AUDIO_TASKS


@pytest.fixture(scope="module")
def audio_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_audio_models(tmp_path_factory.mktemp("tiny-audio"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recording(tmp_path_factory.mktemp("clips") / "speech.wav", 3.0, seed=3)


@pytest.fixture
def window(qtbot, settings, audio_models):
    win = open_window(qtbot, settings, audio_models, tasks=AUDIO_TASKS)
    yield win
    close_window(win)


def _run_with_the_view_open(qtbot, window, task, clip):
    window.select_task(task)
    tab = window.tab(task)
    qtbot.waitUntil(lambda: tab.loaded is not None and not tab.is_busy(), timeout=WAIT_MS)
    tab.inside_panel.set_open(False)
    tab.open_path(clip)
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    assert tab.last_outcome.result.internals == {}
    tab.inside_panel.set_open(True)  # the shown result has no internals: the input runs again
    qtbot.waitUntil(lambda: not tab.is_busy() and bool(tab.last_outcome.result.internals), timeout=WAIT_MS)
    return tab, tab.last_outcome.result


def test_the_frame_strip_shows_each_frame_and_the_words(qtbot, window, clip):
    tab, result = _run_with_the_view_open(qtbot, window, ASR, clip)
    strip, inside = tab.frame_strip, result.internals
    data = strip.data
    assert strip.frames() == len(inside["frame_top_ids"]) > 100
    assert strip.width() == strip.frames() * CELL
    assert len(strip.envelope) == strip.frames()  # the file's loudness, one value per frame
    blank = int(inside["blank_id"])
    shown = [data.shown(int(i)) for i in inside["frame_top_ids"][:, 0]]
    assert shown.count(BLANK_MARK) == int((inside["frame_top_ids"][:, 0] == blank).sum())
    assert data.words == [c["text"] for c in result.chunks]

    strip.resize(strip.sizeHint())
    before = strip.grab().toImage()
    start, end = data.word_frames[1].tolist()
    strip.hover_frame(start)
    assert strip.hovered_word == 1
    assert "%" in tab.frame_info.text() and f"frame {start + 1}" in tab.frame_info.text()
    assert strip.grab().toImage() != before
    strip.hover_frame(None)
    assert strip.hovered_word is None
    tab.reveal_word(2)  # a word clicked in the transcript is found in the strip too
    assert strip.hovered_word == 2

    tab.inside_panel.set_open(False)
    tab.run()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    assert tab.last_outcome.result.internals == {}


def test_audio_classification_shows_scores_over_time_and_layer_weights(qtbot, window, clip):
    tab, result = _run_with_the_view_open(qtbot, window, CLS, clip)
    inside = result.internals
    heat = tab.over_time
    assert heat.scores.shape == inside["window_scores"].shape == (len(inside["window_times"]), len(inside["labels"]))
    winner = int(inside["window_scores"][0].argmax())
    assert heat.rows[0] == winner
    heat.resize(500, heat.height())
    before = heat.grab().toImage()
    heat.hover((0, 1))
    assert heat.grab().toImage() != before
    np.testing.assert_allclose(tab.layer_weights.weights, inside["layer_weights"])
    assert tab.layer_weights.weights.sum() == pytest.approx(1.0)
    assert not tab.layer_weights.isHidden()
    tab.inside_panel.set_open(False)


def test_live_rows_keep_their_places_as_windows_scroll_away(qtbot):
    from app.widgets.audio_inside import ScoresOverTime

    view = ScoresOverTime()
    qtbot.addWidget(view)
    scores = np.array([[0.1, 0.7, 0.2], [0.1, 0.2, 0.7]], dtype=np.float32)  # label 1 wins, then label 2
    times = np.array([[0, 1], [0.25, 1.25]], dtype=np.float32)
    view.set_scores(times, scores, ["a", "b", "c"])
    assert view.rows[:2] == [1, 2]
    view.set_scores(times[1:], scores[1:], ["a", "b", "c"], first=[1, 2])  # label 1's window is gone
    assert view.rows[:2] == [1, 2]
    view.set_scores(times[1:], scores[1:], ["a", "b", "c"])  # without the order: the visible winner first
    assert view.rows[0] == 2
