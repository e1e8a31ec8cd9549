"""The bar a long audio file's run shows in its tab: seconds done of the file's seconds and the
time left, with Cancel (the load bar has gone by then: the model is loaded)."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.widgets.audio_file_input import clock
from app.widgets.progress import human_seconds


class AudioRunProgress(QFrame):
    """Seconds of a long file done, of how many, and the time left, with Cancel; `verb` says
    what is being done ("Transcribing")."""

    cancel_requested = Signal()

    def __init__(self, verb: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.verb = verb
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.label = QLabel()
        self.label.setObjectName("hint")
        cancel = QPushButton("Cancel")
        cancel.setToolTip("Stop (Esc)")
        cancel.clicked.connect(self.cancel_requested)
        text = QVBoxLayout()
        text.setSpacing(4)
        text.addWidget(self.bar)
        text.addWidget(self.label)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(text, 1)
        layout.addWidget(cancel)
        self._began = 0.0
        self.hide()

    def update_progress(self, done_s: float, total_s: float | None) -> None:
        if not self.isVisible():
            self._began = time.monotonic()
            self.show()
        if not total_s:
            self.bar.setRange(0, 0)
            self.label.setText(f"{self.verb}… {clock(done_s)}")
            return
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(1000 * min(done_s, total_s) / total_s))
        text = f"{self.verb}… {clock(done_s)} of {clock(total_s)}"
        spent = time.monotonic() - self._began
        if done_s > 0 and spent > 0.5:
            text += f" · about {human_seconds(spent * (total_s - done_s) / done_s)} left"
        self.label.setText(text)
