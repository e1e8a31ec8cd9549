"""Transcript export: cue grouping and the text of each format."""

from __future__ import annotations

import json

import pytest

from engine.tasks import subtitles
from engine.errors import InputError
from engine.tasks.speech_recognition import Transcript


def _transcript() -> Transcript:
    words = [("HELLO", 0.5, 0.9), ("THERE", 1.0, 1.32), ("GENERAL", 3.0, 3.5), ("KENOBI", 3.6, 4.25)]
    chunks = [{"text": w, "timestamp": (s, e)} for w, s, e in words]
    return Transcript("HELLO THERE GENERAL KENOBI", chunks, duration=5.0)


def test_cues_break_at_pauses_length_and_duration():
    words = [("A", 0.0, 0.2), ("B", 0.3, 0.5), ("C", 2.0, 2.2)]
    assert [c.text for c in subtitles.cues(words)] == ["A B", "C"]  # a 1.5 s pause
    long_words = [(f"WORD{i}", i * 0.5, i * 0.5 + 0.4) for i in range(20)]
    cues = subtitles.cues(long_words, max_chars=20)
    assert all(len(c.text) <= 20 for c in cues) and " ".join(c.text for c in cues) == " ".join(w for w, _, _ in long_words)
    assert all(c.end - c.start <= 4.0 for c in subtitles.cues(long_words, max_seconds=4.0))
    assert [c.text for c in subtitles.cues([("X" * 60, 0, 1)])] == ["X" * 60]


def test_srt():
    assert subtitles.to_srt(_transcript()) == (
        "1\n00:00:00,500 --> 00:00:01,320\nHELLO THERE\n\n"
        "2\n00:00:03,000 --> 00:00:04,250\nGENERAL KENOBI\n"
    )


def test_vtt():
    assert subtitles.to_vtt(_transcript()) == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.320\nHELLO THERE\n\n00:00:03.000 --> 00:00:04.250\nGENERAL KENOBI\n"
    )


def test_json_and_txt():
    data = json.loads(subtitles.to_json(_transcript()))
    assert data["text"] == "HELLO THERE GENERAL KENOBI" and data["duration"] == 5.0
    assert data["words"][1] == {"word": "THERE", "start": 1.0, "end": 1.32}
    assert subtitles.to_txt(_transcript()) == "HELLO THERE GENERAL KENOBI\n"


def test_clock_past_an_hour():
    assert subtitles._clock(3723.4567, ",") == "01:02:03,457"


def test_export_picks_the_format_from_the_extension(tmp_path):
    for fmt in subtitles.FORMATS:
        path = subtitles.export(_transcript(), tmp_path / f"out.{fmt}")
        assert path.read_text(encoding="utf-8") == getattr(subtitles, f"to_{fmt}")(_transcript())
    with pytest.raises(InputError, match="docx"):
        subtitles.export(_transcript(), tmp_path / "out.docx")


def test_subtitles_need_word_timings():
    with pytest.raises(InputError, match="word"):
        subtitles.to_srt(Transcript("HELLO"))
    assert json.loads(subtitles.to_json(Transcript("HELLO"))) == {"text": "HELLO"}
