"""What the two audio tabs share: a File / Microphone switch on the input side, the file drop zone,
the live panel and the `LiveFeeder` behind it, the sample recording, and the How-it-works
sentences on Wav2Vec2 and HuBERT.

A subclass says what a live session is (`make_session`) and how to draw its updates
(`show_live`); files go through the base tab's Run like every other task.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import QCoreApplication, Slot
from PySide6.QtWidgets import QButtonGroup, QFileDialog, QHBoxLayout, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from app.audio_input import AudioBackend, AudioUnavailable, FileBackend, InputDevice, SoundDeviceBackend
from app.live_audio import LiveFeeder
from app.tabs.base import TaskTab
from app.tabs.batch_mixin import BatchMixin
from app.worker import Outcome
from app.widgets.audio_file_input import AUDIO_FILTER, AudioFileInput
from app.widgets.audio_progress import AudioRunProgress
from app.widgets.live_audio_panel import LiveAudioPanel

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
SAMPLE_SPEECH = SAMPLES / "austen.wav"  # a human reader (LibriVox); speech.wav is synthesised

_ENCODERS = {
    "wav2vec2": (
        "<b>Wav2Vec2</b> (Baevski et al., 2020) listens to the raw waveform at 16,000 samples a "
        "second. Seven 1-D convolutions shrink it to one vector every 20 ms (320 samples), each "
        "looking at about 25 ms of sound. A wide convolution over those vectors tells each one "
        "where it sits, and a Transformer then lets every 20 ms frame attend to every other frame "
        "of the recording. The model learned what speech sounds like from unlabelled audio, by "
        "guessing hidden frames, before it was taught its task."
    ),
    "hubert": (
        "<b>HuBERT</b> (Hsu et al., 2021) has Wav2Vec2's shape: seven 1-D convolutions turn the "
        "16 kHz waveform into one vector every 20 ms, a wide convolution adds position, and a "
        "Transformer lets every frame attend to the whole recording. It differs in how it learned "
        "speech from unlabelled audio: by predicting, for hidden frames, which of a set of sound "
        "clusters they belong to."
    ),
}
_GENERIC = (
    "A stack of convolutions turns the 16 kHz waveform into one vector every 20 ms, and a "
    "Transformer lets every frame attend to the whole recording."
)


def encoder_paragraph(info: dict[str, Any] | None) -> str:
    info = info or {}
    text = _ENCODERS.get(info.get("model_type"), _GENERIC)
    if info.get("normalize_input"):
        text += " Each input is first scaled to zero mean and unit variance, as in training."
    return f"<p>{text}</p>"


# a segmented switch: the chosen mode is filled with the accent colour, in either palette
_SWITCH_STYLE = """
QWidget#modeSwitch QPushButton { padding: 4px 16px; border: 1px solid palette(mid); background: palette(button); }
QWidget#modeSwitch QPushButton:checked { background: palette(highlight); color: palette(highlighted-text); border-color: palette(highlight); }
"""


class AudioTab(BatchMixin, TaskTab):
    """A task tab whose input is an audio file or a live input; a folder of recordings runs as
    a batch (app/tabs/batch_mixin.py)."""

    modality = "audio"
    file_filter = AUDIO_FILTER
    batch_kind = "audio"
    live_hint: ClassVar[str] = ""
    run_verb: ClassVar[str] = "Working"  # what the long-file bar says is being done
    options_in_live: ClassVar[bool] = False  # whether the run options also steer live mode

    # ----- for subclasses ---------------------------------------------------------------------

    def make_session(self, rate: int) -> Any:
        """The worker-side session of one live run, for input at `rate`."""
        raise NotImplementedError

    def show_live(self, value: Any) -> None:
        """Draw one update of the live session (`session.feed`'s value)."""
        raise NotImplementedError

    def live_started(self) -> None:
        """A live run began: clear what the previous result showed."""

    def make_run_progress(self) -> AudioRunProgress:
        """The bar of a long file's run, for the tab to place on its result side."""
        self.run_progress = AudioRunProgress(self.run_verb)
        self.run_progress.cancel_requested.connect(self.cancel)
        return self.run_progress

    def show_run_progress(self, done: float, total: float | None, message: str) -> None:
        """Seconds done of the file's seconds, in the tab's own bar with the time left."""
        self.run_progress.update_progress(float(done), float(total) if total else None)

    def end_run_progress(self) -> None:
        self.run_progress.hide()

    # ----- input side -------------------------------------------------------------------------

    def build_input(self) -> QWidget:
        self.feeder: LiveFeeder | None = None
        self._backend: AudioBackend | None = None
        self._devices_listed = False
        self.file_input = AudioFileInput()
        self.file_input.changed.connect(self._on_file_changed)
        self.file_input.file_error.connect(lambda message: self.banner.show_message("error", message))
        self.file_input.open_requested.connect(self.open_file)
        self.file_input.open_folder_requested.connect(self.open_folder)
        self.file_input.folder_dropped.connect(lambda folder: self.run_folder(Path(folder)))
        self.live_panel = LiveAudioPanel(self.live_hint)
        self.live_panel.start_requested.connect(self.start_live)
        self.live_panel.stop_requested.connect(self.stop_live)
        self.live_panel.refresh_requested.connect(self.refresh_devices)
        self.live_panel.save_recording_requested.connect(lambda: self.save_recording())
        app = QCoreApplication.instance()
        if app is not None:  # a microphone left open would hold the device after the window closes
            app.aboutToQuit.connect(self.stop_live)
        self.input_stack = QStackedWidget()
        self.input_stack.addWidget(self.file_input)
        self.input_stack.addWidget(self.live_panel)

        self.mode_buttons = QButtonGroup(self)
        switch_box = QWidget()
        switch_box.setObjectName("modeSwitch")
        switch_box.setStyleSheet(_SWITCH_STYLE)
        switch = QHBoxLayout(switch_box)
        switch.setContentsMargins(0, 0, 0, 0)
        switch.setSpacing(0)
        for index, (text, tip) in enumerate(
            (("File", "Transcribe or classify an audio file"), ("Microphone", "Listen live"))
        ):
            button = QPushButton(text)
            button.setCheckable(True)
            button.setToolTip(tip)
            self.mode_buttons.addButton(button, index)
            switch.addWidget(button)
        switch.addStretch(1)
        self.mode_buttons.idClicked.connect(lambda index: self.set_mode("live" if index else "file"))
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(switch_box)
        layout.addWidget(self.input_stack, 1)
        layout.addWidget(self.build_batch())
        self.mode_buttons.button(0).setChecked(True)
        return holder

    def mode(self) -> str:
        return "live" if self.input_stack.currentIndex() == 1 else "file"

    def set_mode(self, mode: str) -> None:
        live = mode == "live"
        if not live and self.is_live():  # one input at a time: the result view shows one thing
            self.stop_live()
        self.mode_buttons.button(1 if live else 0).setChecked(True)
        self.input_stack.setCurrentIndex(1 if live else 0)
        for widget in (self.run_button, self.cancel_button, self.busy_label):
            widget.setVisible(not live)
        self.options_form.setVisible(bool(self.options_form.names()) and (self.options_in_live or not live))
        if live and not self._devices_listed:
            self.refresh_devices()  # the first look at the microphones loads PortAudio, so only now

    def run(self) -> None:
        """Run (Ctrl+Enter) transcribes or classifies the file; in Microphone mode it starts
        and stops listening."""
        if self.mode() == "file":
            super().run()
        elif self.is_live():
            self.stop_live()
        else:
            self.start_live()

    def current_input(self) -> str | None:
        return str(self.file_input.path) if self.file_input.path is not None else None

    def open_path(self, path: Path) -> None:
        self.set_mode("file")
        self.file_input.load(path)

    def load_sample(self) -> None:
        if SAMPLE_SPEECH.is_file():
            self.set_mode("file")
            self.file_input.blockSignals(True)  # a sample is shown, not run: the caller decides
            self.file_input.load(SAMPLE_SPEECH)
            self.file_input.blockSignals(False)
            self.input_changed()

    def show_batch_file(self, path: Path, outcome: Outcome | None) -> None:
        """A batch's recording in the file view with its result, or run again without one."""
        self.set_mode("file")
        if outcome is None:
            self.open_path(path)
            return
        self.file_input.blockSignals(True)  # shown, not run: the batch ran it
        self.file_input.load(path)
        self.file_input.blockSignals(False)
        self.last_outcome, self.last_input = outcome, str(path)
        self.present(outcome.result)
        self._update_actions()
        self.status_changed.emit()

    def start_live_sample(self) -> Callable[[], bool] | None:
        """Play the sample recording into live mode, as a microphone would (for screenshots);
        returns a test for the moment the view shows live results, or None."""
        if not SAMPLE_SPEECH.is_file() or self.meta is None:
            return None
        self.set_audio_backend(FileBackend([SAMPLE_SPEECH], speed=2.0))
        self.set_mode("live")
        if not self.start_live():
            return None
        feeder = self.feeder
        return lambda: feeder.done or self.live_picture_ready()

    def live_picture_ready(self) -> bool:
        return True

    def empty_input_message(self) -> str:
        return "Drop an audio file on the tab, open one with Ctrl+O, or switch to Microphone."

    def _on_file_changed(self, _path: str) -> None:
        self.input_changed()
        if self.meta is not None:
            self.run()

    def _update_actions(self) -> None:
        super()._update_actions()
        if hasattr(self, "input_stack"):  # the base class calls this before the tab is built
            self.live_panel.setEnabled(self.meta is not None)

    # ----- live input ---------------------------------------------------------------------------

    def set_audio_backend(self, backend: AudioBackend) -> None:
        """Where live input comes from (the machine's microphones unless told otherwise)."""
        self._backend = backend
        self._devices_listed = False
        if self.mode() == "live":
            self.refresh_devices()

    def audio_backend(self) -> AudioBackend:
        if self._backend is None:
            self._backend = SoundDeviceBackend()
        return self._backend

    def refresh_devices(self) -> None:
        self._devices_listed = True
        try:
            devices = self.audio_backend().input_devices()
        except AudioUnavailable as exc:
            self.live_panel.set_unavailable(str(exc))
            return
        self.live_panel.set_devices(devices)
        self.live_panel.set_notice(self.live_hint)

    def is_live(self) -> bool:
        return self.feeder is not None and not self.feeder.done

    def start_live(self, device: InputDevice | None = None) -> bool:
        """Open `device` (or the one picked) and start a live session; False when it could
        not start, with the reason in the banner."""
        if self.meta is None or self.is_live():
            return False
        device = device or self.live_panel.current_device()
        if device is None:
            self.banner.show_message("error", self.live_panel.notice.text() or "No input is available.")
            return False
        self.ensure_loaded()  # queued before the first block, so the status bar names the model
        try:
            source = self.audio_backend().open(device)
        except AudioUnavailable as exc:
            self.banner.show_message("error", str(exc))
            return False
        feeder = LiveFeeder(self.engine, self.spec(), source, self.make_session(source.rate), parent=self)
        try:
            feeder.start()
        except AudioUnavailable as exc:
            feeder.release()
            feeder.deleteLater()
            self.banner.show_message("error", str(exc))
            return False
        if self.feeder is not None:
            self.feeder.release()
            self.feeder.deleteLater()
        self.feeder = feeder
        feeder.level.connect(self._on_level)
        feeder.updated.connect(self.show_live)
        feeder.finished.connect(self._on_live_finished)
        feeder.failed.connect(self._on_live_failed)
        self.banner.clear()
        self.live_panel.set_running(True)
        self.live_panel.save.setEnabled(False)
        self.live_panel.set_elapsed(0.0)
        self.live_started()
        return True

    def stop_live(self) -> None:
        if self.feeder is not None and self.feeder.is_running():
            self.feeder.stop()
            self.live_panel.set_finishing()

    def save_recording(self, path: Path | None = None) -> Path | None:
        recording = self.feeder.recording if self.feeder is not None else None
        if recording is None or not recording.is_file():
            return None
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save recording", "recording.wav", "WAV audio (*.wav)")
            if not chosen:
                return None
            path = Path(chosen)
        try:
            shutil.copyfile(recording, path)
        except OSError as exc:
            self.banner.show_message("error", f"Could not save {path}: {exc.strerror or exc}")
            return None
        return Path(path)

    @Slot(float, float)
    def _on_level(self, rms: float, peak: float) -> None:
        self.live_panel.show_level(rms, peak)
        if self.feeder is not None:
            self.live_panel.set_elapsed(self.feeder.seconds, self.feeder.behind_s)

    @Slot(object)
    def _on_live_finished(self, outcome: Outcome) -> None:
        self.live_panel.set_running(False)
        self.live_panel.save.setEnabled(self.feeder is not None and self.feeder.recording is not None)
        if self.feeder is not None:
            self.live_panel.set_elapsed(self.feeder.seconds)
            if self.feeder.source.dropped:
                lost = self.feeder.source.dropped / self.feeder.rate
                self.warnings.show_message("warning", f"{lost:.1f} s of audio were lost: the app was frozen")
        self.last_outcome = outcome
        self.last_input = str(self.feeder.recording) if self.feeder and self.feeder.recording else None
        self.present(outcome.result)
        self._update_actions()
        self.status_changed.emit()

    @Slot(str)
    def _on_live_failed(self, message: str) -> None:
        self.banner.show_message("error", f"{message.rstrip('.')}. Audio files still work.")
        if self.feeder is not None and self.feeder.done:
            self.live_panel.set_running(False)
            self.live_panel.save.setEnabled(self.feeder.recording is not None)
        else:
            self.live_panel.set_finishing()  # the audio heard so far is still being decoded
