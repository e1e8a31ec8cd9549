"""The load bar: a download counts bytes, a run's own progress counts its steps."""

from __future__ import annotations

from app.widgets.progress import LoadProgress


def test_a_download_is_counted_in_bytes(qtbot):
    bar = LoadProgress()
    qtbot.addWidget(bar)
    bar.begin("downloading model.safetensors")
    bar.update_progress(5_000_000, 20_000_000, "downloading model.safetensors")
    assert bar.detail().startswith("5.0 MB of 20.0 MB")


def test_a_runs_windows_are_counted_as_they_are(qtbot):
    bar = LoadProgress()
    qtbot.addWidget(bar)
    bar.begin("reading window 3 of 8")
    bar.update_progress(3, 8, "reading window 3 of 8", in_bytes=False)
    assert bar.detail().startswith("3 of 8")
    assert " B" not in bar.detail()
    bar.update_progress(12.5, 60, "transcribing", in_bytes=False)
    assert bar.detail().startswith("12.5 of 60")
