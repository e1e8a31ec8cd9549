"""Speech recognition: a file (with progress and Cancel for long ones) or the microphone in, a
transcript with word timings out. Click a word to see when it was said; export as text, SubRip,
WebVTT or JSON. Live, committed text is drawn solid and the provisional tail lighter."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app import theme
from app.batch import BatchItem
from app.live_audio import LiveText, TranscriptionSession
from app.tabs.audio_common import AudioTab, encoder_paragraph
from app.widgets.audio_file_input import clock
from app.widgets.frame_strip import CELL, FrameData, FrameStrip

EXPORT_FILTERS = {
    "txt": "Plain text (*.txt)",
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
    "json": "JSON with word timings (*.json)",
}


class TranscriptView(QTextBrowser):
    """Shows either a finished transcript, whose words are links (`word_clicked(index)`), or
    live text: the committed part solid, the partial tail lighter and in italics."""

    word_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setPlaceholderText("The transcript appears here.")
        self.anchorClicked.connect(self._on_anchor)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.12)
        self.setFont(font)
        self.words: list[tuple[str, float, float]] = []
        self.committed = ""
        self.partial = ""
        self._selected: int | None = None

    def show_live(self, committed: str, partial: str) -> None:
        self.words, self._selected = [], None
        self.committed, self.partial = committed, partial
        light = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        tail = f" <span style='color:{light}'><i>{html.escape(partial)}</i></span>" if partial else ""
        self.setHtml(f"<p>{html.escape(committed)}{tail}</p>")
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def show_words(self, words: list[tuple[str, float, float]], text: str, joiner: str = " ") -> None:
        """`words` as (text, start_s, end_s); without timings, `text` is shown as it is."""
        self.words, self.committed, self.partial = list(words), text, ""
        self._selected = None
        self._render(joiner)

    def select(self, index: int) -> None:
        self._selected = index
        self._render(" " if all(w[0].strip() for w in self.words) else "")

    def _render(self, joiner: str) -> None:
        if not self.words:
            self.setHtml(f"<p>{html.escape(self.committed)}</p>")
            return
        text = self.palette().color(QPalette.ColorRole.Text).name()
        mark = theme.answer_colour(self).name()
        self.document().setDefaultStyleSheet(f"a {{ color: {text}; text-decoration: none; }}")
        parts = []
        for i, (word, start, end) in enumerate(self.words):
            style = f" style='background:{mark}'" if i == self._selected else ""
            title = f"{start:.2f}–{end:.2f} s"
            parts.append(f"<a href='#w{i}' title='{title}'{style}>{html.escape(word)}</a>")
        self.setHtml("<p>" + joiner.join(parts) + "</p>")

    def _on_anchor(self, url: QUrl) -> None:
        fragment = url.fragment()
        if fragment.startswith("w") and fragment[1:].isdigit():
            self.word_clicked.emit(int(fragment[1:]))


class SpeechRecognitionTab(AudioTab):
    task = "automatic-speech-recognition"
    title = "Speech recognition"
    blurb = "Turn speech into text with the time of every word, from a file or live from a microphone."
    run_verb = "Transcribing"
    live_hint = (
        "Speak, and the text appears as you talk: solid text is final, the lighter tail may still "
        "change. Stop to finish the last words. Nothing heard is dropped while the model is busy."
    )

    def build_result(self) -> QWidget:
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.transcript = TranscriptView()
        self.transcript.word_clicked.connect(self.reveal_word)
        self.word_info = QLabel()
        self.word_info.setTextFormat(Qt.TextFormat.RichText)
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.make_run_progress())
        layout.addWidget(self.summary)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.word_info)
        self.save_button.setText("Export…")
        self.save_button.setToolTip("Export the transcript as text, subtitles (SRT, WebVTT) or JSON (Ctrl+S)")
        self.clear_result()
        return holder

    def build_inside(self) -> QWidget | None:
        hint = QLabel(
            "One cell per 20 ms frame: its most likely character, shaded and barred by its probability "
            "(· is the blank, ␣ the space between words, ◇ a special token). Below, what greedy CTC keeps: repeats "
            "merged and blanks dropped, each character under the frames it came from, then the words. "
            "Hover a frame to see its best characters and its word's frames."
        )
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        self.frame_strip = FrameStrip()
        self.frame_strip.frame_hovered.connect(self._on_frame_hovered)
        self.frame_scroll = QScrollArea()
        self.frame_scroll.setWidget(self.frame_strip)
        self.frame_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.frame_scroll.setFixedHeight(self.frame_strip.sizeHint().height() + 22)
        self.frame_info = QLabel()
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(hint)
        layout.addWidget(self.frame_scroll)
        layout.addWidget(self.frame_info)
        return holder

    def show_inside(self, result: Any) -> None:
        internals = getattr(result, "internals", None) or {}
        if "frame_top_ids" not in internals:
            self.frame_strip.set_frames(None)
            return
        if "first_frame" in internals:  # the microphone's newest frames
            self._show_live_frames(internals)
            return
        same_file = self.last_input is not None and self.current_input() == self.last_input
        envelope = self.file_input.waveform.envelope() if same_file else None
        self.frame_strip.set_frames(FrameData.from_internals(internals), envelope)
        self.frame_info.setText(f"{self.frame_strip.frames()} frames · hover one to see its best characters")

    def _show_live_frames(self, frames: dict[str, Any]) -> None:
        """The newest frames of the microphone, scrolled to the newest."""
        self.frame_strip.set_frames(FrameData.from_internals(frames), frames.get("frame_peaks"))
        count = self.frame_strip.frames()
        self.frame_info.setText(f"Live: the newest {count} frames ({count * float(frames['frame_seconds']):.0f} s) · "
                                "hover one to see its best characters")
        bar = self.frame_scroll.horizontalScrollBar()
        QTimer.singleShot(0, lambda: bar.setValue(bar.maximum()))  # once the strip's new width is laid out

    def _on_frame_hovered(self, frame: int) -> None:
        if frame >= 0:
            self.frame_info.setText(self.frame_strip.describe_frame(frame))

    def show_partial(self, value: Any) -> None:
        """A long file's text so far, window by window (it only grows)."""
        if isinstance(value, str):
            self.transcript.show_live(value, "")

    def make_session(self, rate: int) -> TranscriptionSession:
        return TranscriptionSession(rate)

    def live_started(self) -> None:
        self.last_outcome = None
        self.clear_result()
        self.transcript.show_live("", "")
        self.summary.setText("Listening…")
        self._update_actions()

    def live_picture_ready(self) -> bool:
        return bool(self.transcript.committed and self.transcript.partial)

    @Slot(object)
    def show_live(self, value: LiveText) -> None:
        self.transcript.show_live(value.committed, value.partial)
        self.summary.setText(f"Listening · {clock(value.heard_s)} transcribed")
        if value.frames is not None and self.inside_open():
            self._show_live_frames(value.frames)

    def show_result(self, result: Any) -> None:
        chunks = result.chunks or []
        words = [(c["text"], float(c["timestamp"][0]), float(c["timestamp"][1])) for c in chunks]
        per_char = any(not w.strip() for w, _, _ in words)  # char timestamps include the spaces
        self.transcript.show_words(words, result.text, joiner="" if per_char else " ")
        count = len(result.text.split())
        heard = f" · {clock(result.duration)} of audio" if getattr(result, "duration", 0) else ""
        words_said = f"{count} word{'s' if count != 1 else ''}" if result.text else "No speech recognised"
        self.summary.setText(words_said + heard)
        self.word_info.setText(
            "<span style='color:gray'>Click a word to see when it was said.</span>" if words else ""
        )

    def clear_result(self) -> None:
        self.transcript.show_words([], "")
        self.summary.clear()
        self.word_info.clear()
        self.file_input.waveform.clear_mark()

    def reveal_word(self, index: int) -> None:
        """Select word `index`: say when it was said and mark it on the file's waveform."""
        if not 0 <= index < len(self.transcript.words):
            return
        word, start, end = self.transcript.words[index]
        self.transcript.select(index)
        self.word_info.setText(f"<b>{html.escape(word)}</b> &nbsp;{start:.2f} s → {end:.2f} s")
        if self.last_input is not None and self.current_input() == self.last_input:
            self.file_input.waveform.mark(start, end)
        data = self.frame_strip.data
        if data is not None and [w for w, _, _ in self.transcript.words] == data.words:  # word timestamps
            self.frame_strip.highlight_word(index)
            self.frame_scroll.ensureVisible(int(data.word_frames[index, 0]) * CELL, 0, 200, 0)

    # ----- export -------------------------------------------------------------------------------

    def export_json(self, path: Path | None = None) -> None:
        """Ctrl+S: export the transcript; the format follows the file's extension."""
        if self.last_outcome is None:
            return
        if path is None:
            chosen, picked = QFileDialog.getSaveFileName(
                self, "Export transcript", "transcript.srt", ";;".join(EXPORT_FILTERS.values()), EXPORT_FILTERS["srt"]
            )
            if not chosen:
                return
            path = Path(chosen)
            if path.suffix.lstrip(".").lower() not in EXPORT_FILTERS:
                path = path.with_name(path.name + "." + next(k for k, v in EXPORT_FILTERS.items() if v == picked))
        self.export_transcript(path)

    def export_transcript(self, path: Path, format: str | None = None) -> bool:
        from engine.errors import EngineError
        from engine.tasks.subtitles import export  # string formatting only; the engine is loaded by now

        if self.last_outcome is None:
            return False
        try:
            export(self.last_outcome.result, path, format)
        except EngineError as exc:
            self.banner.show_message("error", str(exc))
            return False
        return True

    def batch_exports(self) -> list[tuple[str, str, str]]:
        return [("srt", "Save subtitles…", "One SubRip (.srt) file per recording, named after it, in a folder")]

    def export_batch_files(self, kind: str, items: list[BatchItem], target: Path | None = None) -> bool:
        """One subtitle file per transcribed recording of the batch, named after it (the
        same name in two folders gets -2), in the folder `target` (asked for when None)."""
        from engine.batch import unique_stems
        from engine.errors import EngineError
        from engine.tasks.speech_recognition import Transcript
        from engine.tasks.subtitles import export

        if target is None:
            chosen = QFileDialog.getExistingDirectory(self, "Save one subtitle file per recording into")
            if not chosen:
                return False
            target = Path(chosen)
        done = [item for item in items if item.state == "done"]
        try:
            for item, stem in zip(done, unique_stems(item.path for item in done)):
                transcript = Transcript(item.json["text"], item.json.get("chunks"))
                export(transcript, target / f"{stem}.{kind}", kind)
        except (EngineError, OSError) as exc:
            self.banner.show_message("error", f"Could not save the subtitles: {exc}")
            return False
        self.banner.show_message("info", f"Saved {len(done)} subtitle files in {target}.")
        return True

    def explain(self, info: dict[str, Any] | None) -> str:
        head = (
            "For speech recognition a linear <b>CTC head</b> (Graves et al., 2006) scores every "
            "character of the vocabulary, and a <i>blank</i>, for each 20 ms frame. Decoding takes "
            "the best-scoring character per frame, merges repeats, drops the blanks, and reads "
            "<code>|</code> as the space between words; a word's first and last frames give the "
            "time it was said."
        )
        long_files = (
            "Long files are read in overlapping windows (<i>Chunk length</i>, <i>Stride length</i>): "
            "each window hears some context on both sides but keeps only its middle frames, so a "
            "word cut by a window's edge still comes out whole, and memory stays at one window."
        )
        live = (
            "Live, the microphone's audio goes through the same kind of windows (6 s, with 1 s of "
            "context). Frames in the middle of a finished window are final: their text is "
            "<i>committed</i> and drawn solid. The window still filling is decoded again every "
            "half second; its text is the lighter tail, and may change as more sound arrives."
        )
        return encoder_paragraph(info) + f"<p>{head}</p><p>{long_files}</p><p>{live}</p>"
