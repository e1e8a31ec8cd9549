"""The live half of the audio tabs: pick an input, watch its level, start and stop, and save what
was recorded. The panel only shows state and asks; the tab owns the stream."""

from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.audio_input import InputDevice
from app.widgets.audio_file_input import clock
from app.widgets.level_meter import LevelMeter
from app.widgets.waveform import Waveform

SCOPE_S = 10.0  # the scope shows the last ten seconds of input
SCOPE_POINTS = 200


class LiveAudioPanel(QWidget):
    """Signals: `start_requested(InputDevice)`, `stop_requested()`, `refresh_requested()`,
    `save_recording_requested()`."""

    start_requested = Signal(object)
    stop_requested = Signal()
    refresh_requested = Signal()
    save_recording_requested = Signal()

    def __init__(self, hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.devices = QComboBox()
        self.devices.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.devices.setMinimumContentsLength(16)
        self.refresh = QPushButton("Refresh")
        self.refresh.setToolTip("Look for microphones again")
        self.refresh.clicked.connect(self.refresh_requested)
        self.meter = LevelMeter()
        self.scope = Waveform(normalise=False)
        self.scope.setToolTip(f"The last {SCOPE_S:g} seconds of input")
        self._peaks: deque[float] = deque([0.0] * SCOPE_POINTS, maxlen=SCOPE_POINTS)
        self.toggle = QPushButton("Start listening")
        self.toggle.setObjectName("primary")
        self.toggle.clicked.connect(self._on_toggle)
        self.elapsed = QLabel("")
        self.elapsed.setObjectName("hint")
        self.save = QPushButton("Save recording…")
        self.save.setToolTip("Save what the microphone heard as a WAV file")
        self.save.clicked.connect(self.save_recording_requested)
        self.save.setEnabled(False)
        self.notice = QLabel(hint)
        self.notice.setObjectName("hint")
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        input_label = QLabel("Input")
        input_label.setBuddy(self.devices)
        grid.addWidget(input_label, 0, 0)
        grid.addWidget(self.devices, 0, 1)
        grid.addWidget(self.refresh, 0, 2)
        grid.addWidget(QLabel("Level"), 1, 0)
        grid.addWidget(self.meter, 1, 1, 1, 2)
        grid.addWidget(self.scope, 2, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.toggle)
        buttons.addWidget(self.elapsed, 1)
        buttons.addWidget(self.save)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.notice)
        layout.addStretch(1)
        self._running = False
        self.set_devices([])

    def set_devices(self, devices: list[InputDevice]) -> None:
        self.devices.clear()
        for device in devices:
            rate = f"{device.rate / 1000:g} kHz"
            self.devices.addItem(f"{device.name} ({rate})" + (" · default" if device.is_default else ""), device)
        self._refresh_enabled()

    def show_level(self, rms: float, peak: float) -> None:
        """One block's level: the meter jumps to it and the scope scrolls by one point."""
        self.meter.set_level(rms, peak)
        self._peaks.append(peak)
        self.scope.set_envelope(np.array(self._peaks), SCOPE_S)

    def set_unavailable(self, message: str) -> None:
        """No input can be used; say why, and keep Refresh."""
        self.set_devices([])
        self.notice.setText(message)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)

    def current_device(self) -> InputDevice | None:
        return self.devices.currentData()

    def set_running(self, running: bool) -> None:
        self._running = running
        self.toggle.setText("Stop" if running else "Start listening")
        if running:
            self._peaks.extend([0.0] * SCOPE_POINTS)
            self.scope.set_envelope(np.array(self._peaks), SCOPE_S)
        else:
            self.meter.reset()
        self._refresh_enabled()

    def set_finishing(self) -> None:
        """Stopped, but the last words are still being decoded."""
        self._running = False
        self.toggle.setText("Finishing…")
        self.toggle.setEnabled(False)
        self.meter.reset()

    def set_elapsed(self, seconds: float, behind_s: float = 0.0) -> None:
        text = f"{clock(seconds)} heard"
        if behind_s >= 1.0:  # the model is busy: say so, and that nothing is being lost
            text += f" · {behind_s:.1f} s queued for the model"
        self.elapsed.setText(text)

    def is_running(self) -> bool:
        return self._running

    def _refresh_enabled(self) -> None:
        has_device = self.devices.count() > 0
        self.toggle.setEnabled(self._running or has_device)
        self.devices.setEnabled(not self._running)
        self.refresh.setEnabled(not self._running)

    def _on_toggle(self) -> None:
        if self._running:
            self.stop_requested.emit()
        elif self.current_device() is not None:
            self.start_requested.emit(self.current_device())
