"""The speech-recognition and audio-classification tabs end to end, on tiny Wav2Vec2 checkpoints
through the real engine worker: files, exports, long files with progress and cancel, and live
input from recordings played as if from a microphone (`FileInputStream`), including a model kept
busy on purpose, a device that fails mid-stream, and machines without PortAudio or a microphone.

Every expected value comes from the engine run directly on the same files.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.audio_input import FileBackend, FileInputStream, SoundDeviceBackend
from engine.tasks.live_transcription import LIVE_CHUNK_S, LIVE_STRIDE_S
from tests.app.conftest import close_window, open_window
from tests.app.tiny_audio import AUDIO_TASKS, build_audio_models, noise_file, recording
from tests.optional import import_or_skip

soundfile = import_or_skip("soundfile")  # libsndfile: bundled in its wheels, a system library elsewhere

WAIT_MS = 60_000
SPEED = 8.0  # recordings play eight times faster than a microphone would deliver them
ASR, CLS = AUDIO_TASKS


@pytest.fixture(scope="module")
def audio_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_audio_models(tmp_path_factory.mktemp("tiny-audio"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "speech": recording(folder / "speech.wav", 14.0, seed=3),  # longer than one live window
        "short": recording(folder / "short.wav", 3.0, seed=5),
        "stereo44": recording(folder / "stereo44.wav", 9.0, seed=7, rate=44_100, channels=2),
        "long": noise_file(folder / "long.wav", 300.0),
    }


@pytest.fixture(scope="module")
def oracle(audio_models):
    """The engine's own tasks, loaded in the test thread."""
    from engine.tasks.audio_classification import AudioClassification
    from engine.tasks.speech_recognition import SpeechRecognition

    return SimpleNamespace(
        asr=SpeechRecognition.load(audio_models[ASR], device="cpu"),
        cls=AudioClassification.load(audio_models[CLS], device="cpu"),
    )


@pytest.fixture
def window(qtbot, settings, audio_models):
    win = open_window(qtbot, settings, audio_models, tasks=AUDIO_TASKS)
    assert [tab.task for tab in win.tabs()] == list(AUDIO_TASKS)
    yield win
    for tab in win.tabs():
        if tab.feeder is not None and tab.feeder.is_running():
            tab.feeder.stop()
    close_window(win)


def open_tab(qtbot, window, task: str):
    window.select_task(task)
    tab = window.tab(task)
    qtbot.waitUntil(lambda: tab.loaded is not None and not tab.is_busy(), timeout=WAIT_MS)
    return tab


def open_and_wait(qtbot, tab, path: Path) -> None:
    tab.open_path(path)  # opening a file runs the model on it
    assert tab.is_busy()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)


def live(qtbot, tab, path: Path, stream: type[FileInputStream] = FileInputStream) -> list:
    """Play `path` into the tab's live mode until the session has finished; returns every live
    update the tab was sent, in order."""
    tab.set_audio_backend(FileBackend([path], speed=SPEED, stream=stream))
    tab.set_mode("live")
    assert tab.live_panel.toggle.isEnabled()
    assert tab.start_live()
    updates: list = []
    tab.feeder.updated.connect(updates.append)
    qtbot.waitUntil(lambda: tab.feeder.done, timeout=WAIT_MS)
    return updates


def file_samples(path: Path) -> np.ndarray:
    return soundfile.read(str(path), dtype="float32")[0]


# ----- speech recognition: files ------------------------------------------------------------


def test_transcribes_a_file_with_clickable_word_timings(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, ASR)
    assert tab.options_form.values() == {"chunk_length_s": 30.0, "stride_length_s": None, "return_timestamps": "word"}
    open_and_wait(qtbot, tab, clips["speech"])
    expected = oracle.asr.run(clips["speech"])
    assert tab.banner.text() == ""
    assert tab.last_outcome.result.to_json() == expected.to_json()
    assert expected.text and len(expected.chunks) > 3
    assert tab.transcript.words == [(c["text"], *c["timestamp"]) for c in expected.chunks]
    assert tab.transcript.toPlainText().split() == [c["text"] for c in expected.chunks]
    assert f"{len(expected.text.split())} words" in tab.summary.text()

    # a click on the third word says when it was said and marks it on the waveform
    word, start, end = tab.transcript.words[2]
    rect = tab.transcript.cursorRect(_anchor_cursor(tab.transcript, 2))
    inside_the_word = QPoint(rect.left() - 3, rect.center().y())
    QTest.mouseClick(tab.transcript.viewport(), Qt.MouseButton.LeftButton, pos=inside_the_word)
    qtbot.waitUntil(lambda: word in tab.word_info.text(), timeout=5_000)
    assert f"{start:.2f} s → {end:.2f} s" in tab.word_info.text()
    assert tab.file_input.waveform.marked() == (start, end)


def _anchor_cursor(view, index: int) -> QTextCursor | None:
    """A cursor just after the first character of word `index`'s link."""
    block = view.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().anchorHref() == f"#w{index}":
                cursor = QTextCursor(view.document())
                cursor.setPosition(fragment.position() + 1)
                return cursor
            it += 1
        block = block.next()
    return None


def test_exports_txt_srt_vtt_and_json(qtbot, window, clips, oracle, tmp_path):
    from engine.tasks import subtitles

    tab = open_tab(qtbot, window, ASR)
    assert not tab.save_button.isEnabled()
    open_and_wait(qtbot, tab, clips["speech"])
    assert tab.save_button.isEnabled() and tab.save_button.text() == "Export…"
    expected = oracle.asr.run(clips["speech"])
    writers = {"txt": subtitles.to_txt, "srt": subtitles.to_srt, "vtt": subtitles.to_vtt, "json": subtitles.to_json}
    for fmt, write in writers.items():
        assert tab.export_transcript(tmp_path / f"t.{fmt}")
        assert (tmp_path / f"t.{fmt}").read_text(encoding="utf-8") == write(expected)
    tab.export_json(tmp_path / "ctrl-s.vtt")  # what Ctrl+S calls, with the path already chosen
    assert (tmp_path / "ctrl-s.vtt").read_text(encoding="utf-8") == subtitles.to_vtt(expected)
    assert not tab.export_transcript(tmp_path / "t.docx")
    assert "docx" in tab.banner.text()


def test_a_bad_file_is_refused_and_the_last_one_kept(qtbot, window, clips, tmp_path):
    tab = open_tab(qtbot, window, ASR)
    tab.open_path(clips["short"])
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    tab.open_path(broken)
    assert "broken.wav cannot be read as audio" in tab.banner.text()
    assert tab.current_input() == str(clips["short"])
    assert not tab.is_busy()


def test_long_file_shows_progress_and_cancels(qtbot, window, clips):
    tab = open_tab(qtbot, window, ASR)
    tab.open_path(clips["short"])
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    before = tab.last_outcome
    tab.open_path(clips["long"])
    qtbot.waitUntil(lambda: tab.run_progress.isVisible() and tab.run_progress.bar.value() > 0, timeout=WAIT_MS)
    assert "of 5:00.0" in tab.run_progress.label.text()
    qtbot.waitUntil(lambda: tab.transcript.committed != "" or tab.run_progress.bar.value() > 100, timeout=WAIT_MS)
    tab.cancel()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    assert tab.busy_label.text() == "Cancelled"
    assert not tab.run_progress.isVisible()
    assert tab.last_outcome is before  # the last finished result is still the one to export


def test_a_long_file_is_classified_in_windows_with_progress_and_cancel(qtbot, window, clips):
    tab = open_tab(qtbot, window, CLS)
    tab.options_form.set_values({"chunk_length_s": 2.0})  # 150 windows: slow enough to cancel
    tab.open_path(clips["long"])
    qtbot.waitUntil(lambda: tab.run_progress.isVisible() and tab.run_progress.bar.value() > 0, timeout=WAIT_MS)
    assert tab.run_progress.label.text().startswith("Classifying… ") and "of 5:00.0" in tab.run_progress.label.text()
    tab.cancel()
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    assert tab.busy_label.text() == "Cancelled" and not tab.run_progress.isVisible()


# ----- speech recognition: live ---------------------------------------------------------------


def test_live_text_ends_as_the_whole_file_transcript(qtbot, window, clips, oracle, tmp_path):
    tab = open_tab(qtbot, window, ASR)
    updates = live(qtbot, tab, clips["speech"])
    expected = oracle.asr.run(clips["speech"], chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S)
    assert tab.last_outcome.result.to_json() == expected.to_json()
    assert tab.transcript.words == [(c["text"], *c["timestamp"]) for c in expected.chunks]
    # along the way: a lighter partial tail, and committed text that only ever grew
    assert any(u.partial for u in updates)
    assert any(u.committed for u in updates)
    committed = [u.committed for u in updates]
    assert all(b.startswith(a) for a, b in zip(committed, committed[1:]))
    assert expected.text.startswith(committed[-1])
    # every sample reached the transcriber, and the recording is the file itself
    n = len(file_samples(clips["speech"]))
    assert tab.feeder.captured == tab.feeder.sent == tab.feeder.session.fed == n
    saved = tab.save_recording(tmp_path / "rec.wav")
    assert saved is not None and tab.live_panel.save.isEnabled()
    as_recorded = soundfile.read(str(saved), dtype="int16")[0]
    assert np.array_equal(as_recorded, soundfile.read(str(clips["speech"]), dtype="int16")[0])
    assert tab.export_transcript(tmp_path / "live.srt")



def test_the_frame_strip_follows_the_microphone(qtbot, window, clips, oracle):
    """Open, the inside view shows the newest frames while the recording plays, scrolled to
    them, and keeps the last ones (the file's own, after the flush) when it ends."""
    tab = open_tab(qtbot, window, ASR)
    tab.inside_panel.set_open(True)
    strips: list[tuple[int, int]] = []
    tab.set_audio_backend(FileBackend([clips["speech"]], speed=SPEED))
    tab.set_mode("live")
    assert tab.start_live()
    tab.feeder.updated.connect(
        lambda u: strips.append((tab.frame_strip.frames(), tab.frame_strip.data.first_frame)) if u.frames else None
    )
    qtbot.waitUntil(lambda: tab.feeder.done, timeout=WAIT_MS)
    assert len(strips) >= 3 and strips[-1][0] > strips[0][0]  # the strip grew with the sound
    data = tab.frame_strip.data
    whole = oracle.asr.run(clips["speech"], chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S,
                           explain=True).internals
    shown = len(data.top_ids)
    assert data.first_frame == len(whole["frame_top_ids"]) - shown > 0  # 14 s: only the newest 10 s
    np.testing.assert_array_equal(data.top_ids, whole["frame_top_ids"][-shown:])
    assert "Live" in tab.frame_info.text()
    assert len(tab.frame_strip.envelope) == shown and tab.frame_strip.envelope.max() == 1  # the sound row
    assert tab.frame_strip.describe_frame(0).startswith(f"frame {data.first_frame + 1} at ")

def test_live_shows_the_partial_tail_lighter(qtbot, window, clips):
    tab = open_tab(qtbot, window, ASR)
    shown: list[tuple[str, str, str]] = []
    tab.set_audio_backend(FileBackend([clips["speech"]], speed=SPEED))
    tab.set_mode("live")
    assert tab.start_live()
    tab.feeder.updated.connect(lambda u: shown.append((u.partial, tab.transcript.partial, tab.transcript.toHtml())))
    qtbot.waitUntil(lambda: tab.feeder.done, timeout=WAIT_MS)
    drawn = [(partial, html) for partial, view_partial, html in shown if partial and partial == view_partial]
    assert drawn
    light = tab.transcript.palette().color(tab.transcript.palette().ColorRole.PlaceholderText).name()
    assert all(light in html for _, html in drawn)


def test_ctrl_enter_starts_and_stopping_flushes_the_last_words(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, ASR)
    tab.set_audio_backend(FileBackend([clips["speech"]], speed=1.0))  # as slow as a real microphone
    tab.set_mode("live")
    window.run_action.trigger()
    assert tab.is_live() and tab.live_panel.toggle.text() == "Stop"
    qtbot.waitUntil(lambda: tab.feeder.session.fed >= 3 * 16_000, timeout=WAIT_MS)
    window.run_action.trigger()
    assert tab.live_panel.toggle.text() == "Finishing…"
    qtbot.waitUntil(lambda: tab.feeder.done, timeout=WAIT_MS)
    heard = tab.feeder.captured
    assert 3 * 16_000 <= heard < len(file_samples(clips["speech"]))
    expected = oracle.asr.run(
        file_samples(clips["speech"])[:heard], chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S
    )
    assert tab.last_outcome.result.to_json() == expected.to_json()
    assert tab.live_panel.toggle.text() == "Start listening"


def test_live_resamples_a_44k_stereo_input_like_the_file_task(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, ASR)
    live(qtbot, tab, clips["stereo44"])
    expected = oracle.asr.run(clips["stereo44"], chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S)
    assert tab.feeder.rate == 44_100
    assert tab.last_outcome.result.text == expected.text


def test_nothing_is_dropped_while_the_model_is_busy(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, ASR)
    gate = threading.Event()
    tab.engine.call(tab.spec(), lambda task, hooks: gate.wait(WAIT_MS / 1000))  # the model is busy
    tab.set_audio_backend(FileBackend([clips["speech"]], speed=SPEED))
    tab.set_mode("live")
    assert tab.start_live()
    updates: list = []
    tab.feeder.updated.connect(updates.append)
    qtbot.waitUntil(lambda: "queued for the model" in tab.live_panel.elapsed.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tab.feeder.source.ended and not tab.feeder.is_running(), timeout=WAIT_MS)
    assert not tab.feeder.done and updates == []  # all of it heard, none of it decoded yet
    gate.set()
    qtbot.waitUntil(lambda: tab.feeder.done, timeout=WAIT_MS)
    n = len(file_samples(clips["speech"]))
    assert tab.feeder.source.dropped == 0
    assert tab.feeder.captured == tab.feeder.session.fed == n
    assert len(updates) <= 2  # the backlog went out as one block, not as a flood of small jobs
    expected = oracle.asr.run(clips["speech"], chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S)
    assert tab.last_outcome.result.text == expected.text


class UnpluggedAfterTwoSeconds(FileInputStream):
    """A recording that fails the way a microphone pulled out of its socket does."""

    def next_block(self) -> np.ndarray:
        if self.delivered >= 2 * self.rate:
            raise OSError("device unplugged")
        return super().next_block()


def test_a_device_failing_mid_stream_keeps_what_was_heard(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, ASR)
    live(qtbot, tab, clips["speech"], stream=UnpluggedAfterTwoSeconds)
    assert tab.banner.kind == "error"
    assert "stopped playing: device unplugged" in tab.banner.text()
    assert "Audio files still work" in tab.banner.text()
    heard = tab.feeder.source.delivered
    assert heard == 2 * 16_000 and tab.feeder.session.fed == heard
    expected = oracle.asr.run(file_samples(clips["speech"])[:heard])
    assert tab.last_outcome.result.text == expected.text
    assert tab.live_panel.toggle.isEnabled() and tab.live_panel.toggle.text() == "Start listening"
    tab.set_mode("file")
    open_and_wait(qtbot, tab, clips["short"])
    assert tab.last_outcome.result.text == oracle.asr.run(clips["short"]).text


def _no_portaudio():
    raise OSError("PortAudio library not found")


def _no_inputs():
    """What sounddevice reports on a machine whose only audio device is an output."""
    devices = [{"name": "HDMI 0", "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 48000.0}]
    return SimpleNamespace(query_devices=lambda: devices, default=SimpleNamespace(device=[-1, 0]))


@pytest.mark.parametrize(
    ("importer", "says"), [(_no_portaudio, "PortAudio library"), (_no_inputs, "No microphone found")]
)
def test_without_a_microphone_the_tab_says_so_and_files_work(qtbot, window, clips, oracle, importer, says):
    tab = open_tab(qtbot, window, ASR)
    tab.set_audio_backend(SoundDeviceBackend(importer=importer))
    tab.set_mode("live")
    assert says in tab.live_panel.notice.text()
    assert "Audio files still work" in tab.live_panel.notice.text()
    assert not tab.live_panel.toggle.isEnabled()
    assert not tab.start_live()
    assert tab.banner.kind == "error" and says in tab.banner.text()
    tab.set_mode("file")
    open_and_wait(qtbot, tab, clips["short"])
    assert tab.last_outcome.result.text == oracle.asr.run(clips["short"]).text


def test_sounddevice_is_imported_only_for_live_input(tmp_path):
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtCore import QSettings\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from app.tabs import available_tabs\n"
        "from app.window import MainWindow\n"
        "from app.worker import Engine\n"
        "tabs = [c for c in available_tabs() if c.modality == 'audio']\n"
        f"settings = QSettings({str(tmp_path / 'settings.ini')!r}, QSettings.Format.IniFormat)\n"
        "w = MainWindow(Engine([c.task for c in tabs]), settings, tabs)\n"
        "w.show(); app.processEvents()\n"
        "print(len(tabs), 'sounddevice' in sys.modules, 'torch' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False", "False"], out.stderr


# ----- audio classification -------------------------------------------------------------------


def test_classifies_a_dropped_file_as_the_engine_does(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, CLS)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clips["speech"]))])
    zone = tab.file_input
    drag = (QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    for event_type in (QDragEnterEvent, QDropEvent):  # a real drag delivers the drop only after the enter
        event = event_type(*drag)
        QApplication.sendEvent(zone, event)
        assert event.isAccepted()
    assert tab.is_busy()  # a dropped file runs at once
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT_MS)
    assert tab.current_input() == str(clips["speech"])
    expected = oracle.cls.run(clips["speech"], top_k=5).to_json()
    assert [label for label, _ in tab.bars.rows()] == [e["label"] for e in expected]
    assert np.allclose([score for _, score in tab.bars.rows()], [e["score"] for e in expected], atol=1e-6)
    assert expected[0]["label"] in tab.summary.text()
    assert not tab.history.isVisible()


def test_live_classification_follows_the_newest_window(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, CLS)
    updates = live(qtbot, tab, clips["speech"])
    labelled = [u for u in updates if u.labels]
    assert len(labelled) >= 2 and tab.updates >= 2
    assert len(labelled) <= 14.0 / 0.25 + 1  # one window per quarter second of sound at most
    assert all(b.heard_s - a.heard_s >= 0.25 for a, b in zip(labelled, labelled[1:]))
    final = tab.last_outcome.result
    assert tab.history.isVisible()
    assert tab.history.labels() == [h["label"] for h in final.history][-tab.history.slots :]
    last_second = file_samples(clips["speech"])[-16_000:]
    expected = oracle.cls.classify(last_second, 5).to_json()
    assert [label for label, _ in tab.bars.rows()] == [e["label"] for e in expected]
    assert np.allclose([score for _, score in tab.bars.rows()], [e["score"] for e in expected], atol=1e-6)



def test_the_inside_view_follows_the_microphone(qtbot, window, clips, oracle):
    """Open, the scores over time are the microphone's recent windows: every label's score in
    each, as the engine gives them for that second of sound, newest on the right."""
    tab = open_tab(qtbot, window, CLS)
    tab.inside_panel.set_open(True)
    updates = live(qtbot, tab, clips["speech"])
    labelled = [u for u in updates if u.labels] + [tab.last_outcome.result]
    view = tab.over_time
    assert len(view.times) == min(len(labelled), 40) and view.labels == oracle.cls.labels
    np.testing.assert_allclose(view.scores[-1], labelled[-1].scores)
    assert view.times[-1].tolist() == pytest.approx([labelled[-1].heard_s - 1.0, labelled[-1].heard_s])
    last_second = file_samples(clips["speech"])[-16_000:]
    expected = oracle.cls.scores(last_second).numpy()
    np.testing.assert_allclose(view.scores[-1], expected, atol=1e-6)
    assert "Live" in tab.over_time_note.text()


def test_live_classification_skips_windows_while_busy(qtbot, window, clips, oracle):
    tab = open_tab(qtbot, window, CLS)
    gate = threading.Event()
    tab.engine.call(tab.spec(), lambda task, hooks: gate.wait(WAIT_MS / 1000))
    tab.set_audio_backend(FileBackend([clips["speech"]], speed=SPEED))
    tab.set_mode("live")
    assert tab.start_live()
    updates: list = []
    tab.feeder.updated.connect(updates.append)
    qtbot.waitUntil(lambda: tab.feeder.source.ended and not tab.feeder.is_running(), timeout=WAIT_MS)
    gate.set()
    qtbot.waitUntil(lambda: tab.feeder.done, timeout=WAIT_MS)
    assert len(updates) <= 1 and len(tab.last_outcome.result.history) <= 2  # newest wins: no backlog of windows
    expected = oracle.cls.classify(file_samples(clips["speech"])[-16_000:], 5).to_json()
    assert [label for label, _ in tab.bars.rows()] == [e["label"] for e in expected]
