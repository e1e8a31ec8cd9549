"""The file half of the audio tabs: drop or open an audio file; it shows what the file is and
its waveform. Only the header and (for files up to 15 minutes) a loudness overview are read
here; decoding and resampling happen in the engine."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets.progress import human_seconds
from app.widgets.waveform import Waveform, envelope

AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.oga *.mp3 *.aiff *.aif *.au);;All files (*)"


_ENCODINGS = {
    "PCM_U8": "8-bit",
    "PCM_S8": "8-bit",
    "PCM_16": "16-bit",
    "PCM_24": "24-bit",
    "PCM_32": "32-bit",
    "FLOAT": "32-bit float",
    "DOUBLE": "64-bit float",
    "VORBIS": "Vorbis",
    "OPUS": "Opus",
    "MPEG_LAYER_III": "MP3",
}


def describe(rate: int, channels: int, subtype: str, duration: float) -> str:
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")
    encoding = _ENCODINGS.get(subtype, subtype.replace("_", " "))
    return f"{clock(duration)} · {rate / 1000:g} kHz · {layout} · {encoding}"


def clock(seconds: float) -> str:
    """m:ss.s for short spans, h:mm:ss for long ones."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class AudioFileInput(QFrame):
    """`changed(path)` fires when a readable file is chosen; `file_error(message)` when a
    dropped or opened file cannot be read (the previous file stays); `folder_dropped(path)`
    when a folder is dropped (a batch); `open_requested` and `open_folder_requested` for the
    Open… buttons."""

    changed = Signal(str)
    file_error = Signal(str)
    folder_dropped = Signal(str)
    open_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setStyleSheet("QFrame#dropZone { border: 1px dashed palette(mid); border-radius: 6px; }")
        self.setAcceptDrops(True)
        self.path: Path | None = None
        self.duration = 0.0
        self._name = QLabel("Drop an audio file here")
        self._name.setObjectName("sectionLabel")
        self._name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._details = QLabel("WAV, FLAC, OGG or MP3, any rate and channels · or Open… (Ctrl+O)")
        self._details.setObjectName("hint")
        self._details.setWordWrap(True)
        self.waveform = Waveform()
        open_button = QPushButton("Open…")
        open_button.setToolTip("Open an audio file (Ctrl+O)")
        open_button.clicked.connect(self.open_requested)
        folder_button = QPushButton("Open folder…")
        folder_button.setToolTip("Run every audio file of a folder, one after another")
        folder_button.clicked.connect(self.open_folder_requested)
        head = QHBoxLayout()
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self._name)
        text.addWidget(self._details)
        head.addLayout(text, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(folder_button)
        head.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addLayout(head)
        layout.addWidget(self.waveform, 1)
        layout.addStretch(1)

    def load(self, path: str | Path) -> bool:
        import soundfile

        path = Path(path)
        try:
            info = soundfile.info(str(path))
            peaks = envelope(path)
        except Exception as exc:  # soundfile's errors for missing, corrupt and non-audio files
            reason = str(exc).split(": ", 1)[-1]
            self.file_error.emit(f"{path.name} cannot be read as audio ({reason})")
            return False
        if info.frames == 0:
            self.file_error.emit(f"{path.name} holds no audio (0 samples)")
            return False
        self.path = path
        self.duration = info.frames / info.samplerate
        self._name.setText(html.escape(path.name))
        self._details.setText(describe(info.samplerate, info.channels, info.subtype, self.duration))
        if peaks is None:
            self._details.setText(self._details.text() + f" · no overview past {human_seconds(15 * 60)}")
        self.waveform.set_envelope(peaks, self.duration)
        self.changed.emit(str(path))
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _local_path(event) is not None:
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:
        if _local_path(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = _local_path(event)
        if path is not None:
            event.acceptProposedAction()
            if path.is_dir():
                self.folder_dropped.emit(str(path))
            else:
                self.load(path)


def _local_path(event: QDropEvent) -> Path | None:
    """The one local file or folder a drag carries, else None."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    local = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
    return local[0] if len(local) == 1 and (local[0].is_file() or local[0].is_dir()) else None
