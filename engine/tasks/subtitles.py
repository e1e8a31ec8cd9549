"""Transcript export: plain text, SubRip (.srt), WebVTT (.vtt) and JSON with word timings.

Subtitle cues are built from word timings: a cue ends at a pause, when its line would grow
past a readable length, or when it has been on screen long enough.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.tasks.speech_recognition import Transcript

FORMATS = ("txt", "srt", "vtt", "json")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def words_of(transcript: Transcript) -> list[tuple[str, float, float]]:
    """(word, start_s, end_s) from a transcript made with word timestamps."""
    if transcript.chunks is None:
        raise InputError("subtitles need word timings: transcribe with return_timestamps='word'")
    return [(c["text"], float(c["timestamp"][0]), float(c["timestamp"][1])) for c in transcript.chunks]


def cues(
    words: list[tuple[str, float, float]],
    *,
    max_chars: int = 42,
    max_seconds: float = 6.0,
    max_pause: float = 0.8,
) -> list[Cue]:
    """Group words into cues of at most `max_chars` characters and `max_seconds`, breaking at
    pauses longer than `max_pause`. A single word longer than a line gets a cue of its own."""
    out: list[Cue] = []
    line: list[tuple[str, float, float]] = []
    for word in words:
        if line:
            text = " ".join(w for w, _, _ in line + [word])
            if (
                len(text) > max_chars
                or word[2] - line[0][1] > max_seconds
                or word[1] - line[-1][2] > max_pause
            ):
                out.append(Cue(line[0][1], line[-1][2], " ".join(w for w, _, _ in line)))
                line = []
        line.append(word)
    if line:
        out.append(Cue(line[0][1], line[-1][2], " ".join(w for w, _, _ in line)))
    return out


def to_txt(transcript: Transcript) -> str:
    return transcript.text + "\n"


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues(words_of(transcript)), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text}\n" for c in cues(words_of(transcript))]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(transcript: Transcript) -> str:
    data: dict[str, Any] = {"text": transcript.text}
    if transcript.chunks is not None:
        data["words"] = [{"word": w, "start": round(s, 3), "end": round(e, 3)} for w, s, e in words_of(transcript)]
    if transcript.duration:
        data["duration"] = round(transcript.duration, 3)
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def export(transcript: Transcript, path: str | Path, format: str | None = None) -> Path:
    """Write `transcript` to `path` in `format` (by default, the file's extension)."""
    path = Path(path)
    format = (format or path.suffix.lstrip(".")).lower()
    writers = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}
    if format not in writers:
        raise InputError(f"cannot export as {format or 'a file without extension'}: use {', '.join(FORMATS)}")
    try:
        path.write_text(writers[format](transcript), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _clock(seconds: float, separator: str) -> str:
    """HH:MM:SS,mmm (SubRip) or HH:MM:SS.mmm (WebVTT)."""
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"
