"""The live transcriber: a recording fed in real-time-sized blocks ends with exactly the text
of transcribing the file, committed text is never rewritten, and the partial tail moves."""

from __future__ import annotations

import numpy as np
import pytest

from engine import audio
from engine.errors import InputError
from engine.tasks.live_transcription import LIVE_CHUNK_S, LIVE_STRIDE_S, LiveTranscriber
from engine.tasks.speech_recognition import SpeechRecognition
from tests.engine.models.tiny_wav2vec2 import checkpoint, speech_like
from tests.engine.models.tiny_wav2vec2 import single_thread  # noqa: F401 (a fixture, used below)
from tests.optional import import_or_skip

soundfile = import_or_skip("soundfile")  # libsndfile: bundled in its wheels, a system library elsewhere

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return SpeechRecognition.load(checkpoint("ctc-group", tmp_path_factory.getbasetemp() / "tiny-wav2vec2"), device="cpu")


def _feed(transcriber: LiveTranscriber, samples: np.ndarray, block: int) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    transcriber.on_partial = lambda committed, partial: events.append((committed, partial))
    for i in range(0, len(samples), block):
        transcriber.feed(samples[i : i + block])
    return events


def _assert_never_rewritten(events: list[tuple[str, str]], final: str) -> None:
    committed = [c for c, _ in events]
    for before, after in zip(committed, committed[1:]):
        assert after.startswith(before), (before, after)
    assert final.startswith(committed[-1])


@pytest.mark.parametrize("block_s", [0.1, 0.5])
def test_a_recording_fed_in_blocks_ends_with_the_files_text(task, tmp_path, block_s):
    path = tmp_path / "recording.wav"
    soundfile.write(path, speech_like(15.0, seed=8), 16_000, subtype="PCM_16")
    expected = task.run(path, chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S)
    transcriber = LiveTranscriber(task)
    events = _feed(transcriber, audio.load_audio(path), int(block_s * 16_000))
    committed_before_flush = transcriber.committed
    result = transcriber.flush()
    assert result.text == expected.text and result.chunks == expected.chunks
    assert transcriber.committed == expected.text and transcriber.partial == ""
    _assert_never_rewritten(events + [(transcriber.committed, "")], expected.text)
    assert committed_before_flush  # words were committed while the audio was still arriving
    assert len({p for _, p in events}) > 5  # and the partial tail kept changing


def test_a_recording_shorter_than_a_window_ends_with_the_one_pass_text(task):
    from transformers import pipeline

    samples = speech_like(4.0, seed=9)
    pipe = pipeline("automatic-speech-recognition", model=str(task.folder), device="cpu")
    transcriber = LiveTranscriber(task)
    events = _feed(transcriber, samples, 1_600)
    assert transcriber.committed == "" and events  # nothing final yet, only partials
    assert transcriber.flush().text == pipe(samples.copy())["text"] == task.run(samples, chunk_length_s=0).text


def test_block_sizes_do_not_change_anything(task):
    samples = speech_like(11.0, seed=10)
    texts = set()
    for block in (160, 4_321, len(samples)):  # 10 ms, odd sizes, and everything at once
        transcriber = LiveTranscriber(task, chunk_length_s=4, stride_length_s=0.5, partial_every_s=5)
        _feed(transcriber, samples, block)
        texts.add(transcriber.flush().text)
    assert len(texts) == 1


def test_a_48k_microphone_is_resampled_on_the_fly(task):
    samples_48k = speech_like(8.0, seed=12, rate=48_000)
    transcriber = LiveTranscriber(task, sample_rate=48_000, partial_every_s=5)
    _feed(transcriber, samples_48k, 4_800)
    result = transcriber.flush()
    expected = task.run(
        audio.resample(samples_48k, 48_000), chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S
    )
    assert result.text == expected.text
    assert result.duration == pytest.approx(8.0, abs=0.01)


def test_stereo_blocks_are_downmixed(task):
    mono = speech_like(3.0, seed=13)
    stereo = np.stack([mono, mono], axis=1)
    a, b = LiveTranscriber(task, partial_every_s=5), LiveTranscriber(task, partial_every_s=5)
    _feed(a, mono, 1_600)
    _feed(b, stereo, 1_600)
    assert a.flush().text == b.flush().text


def test_partial_text_appears_within_one_interval(task):
    transcriber = LiveTranscriber(task, partial_every_s=0.3)
    transcriber.feed(speech_like(0.2, seed=14))
    assert transcriber.partial == ""  # not enough new audio yet for a decode
    transcriber.feed(speech_like(0.2, seed=15))
    assert transcriber.partial != "" and transcriber.text == transcriber.partial


def test_misuse_is_refused(task):
    transcriber = LiveTranscriber(task)
    with pytest.raises(InputError, match="not numbers"):
        transcriber.feed(np.array([0.0, np.nan], dtype=np.float32))
    transcriber.feed(speech_like(1.0))
    transcriber.flush()
    with pytest.raises(RuntimeError, match="flush"):
        transcriber.feed(speech_like(0.1))
    with pytest.raises(RuntimeError, match="already"):
        transcriber.flush()
    with pytest.raises(InputError, match="twice the stride"):
        LiveTranscriber(task, chunk_length_s=2, stride_length_s=1)


class _Spy:
    """Stands in for the task's model and notes the length of every window decoded."""

    def __init__(self, model) -> None:
        self.model, self.lengths = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, samples):
        self.lengths.append(len(samples))
        return self.model(samples)


def test_provisional_decodes_read_only_the_newest_seconds(task):
    transcriber = LiveTranscriber(task, chunk_length_s=6, stride_length_s=1, partial_window_s=2, partial_every_s=0.5)
    spy = transcriber.model = _Spy(task.model)
    for i in range(0, 16 * 16_000, 4_000):
        transcriber.feed(speech_like(16.0, seed=16)[i : i + 4_000])
    finals = [n for n in spy.lengths if n == 6 * 16_000]
    partials = [n for n in spy.lengths if n != 6 * 16_000]
    assert len(finals) == 3  # the windows at 0, 4 and 8 s, complete once 6, 10 and 14 s had arrived
    assert len(partials) == transcriber.partial_decodes == 32  # one every 0.5 s
    assert max(partials) == partials[-1] == 2 * 16_000  # never more than the newest 2 s
    assert transcriber.partial


def test_frames_describe_the_newest_final_and_provisional_frames(task, tmp_path):
    """While the audio arrives, `frames()` holds the newest frames' best characters (final and
    provisional) as the file task's inside view holds a recording's; after the flush its frames
    are the file's, probabilities included."""
    from engine.tasks.live_transcription import SHOWN_FRAMES

    samples = speech_like(12.0, seed=8)
    transcriber = LiveTranscriber(task)
    _feed(transcriber, samples, 1_600)
    during = transcriber.frames()
    total = transcriber._final_frames + len(transcriber._provisional)
    assert int(during["first_frame"]) + len(during["frame_top_ids"]) == total
    assert len(during["frame_top_ids"]) == min(total, SHOWN_FRAMES)
    top = during["frame_top_ids"][:, 0]
    assert len(during["chars"]) and all(  # each kept character is its frames' best
        {during["vocabulary"][i].replace("|", " ") for i in top[a:b]} == {c}
        for c, (a, b) in zip(during["chars"], during["char_frames"])
    )
    first = int(during["first_frame"])
    loudest = np.abs(samples[: len(samples) // 320 * 320]).reshape(-1, 320).max(axis=1)
    shown = loudest[first : first + len(top)]
    np.testing.assert_array_equal(during["frame_peaks"][: len(shown)], shown)  # the sound under each frame
    transcriber.flush()
    after = transcriber.frames()
    whole = task.run(samples, chunk_length_s=LIVE_CHUNK_S, stride_length_s=LIVE_STRIDE_S, explain=True).internals
    shown = len(after["frame_top_ids"])
    assert int(after["first_frame"]) == len(whole["frame_top_ids"]) - shown
    np.testing.assert_array_equal(after["frame_top_ids"], whole["frame_top_ids"][-shown:])
    np.testing.assert_allclose(after["frame_top_probs"], whole["frame_top_probs"][-shown:], atol=1e-6)
