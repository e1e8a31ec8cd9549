"""Tiny Wav2Vec2 checkpoints (CTC and sequence classification) written by transformers, and
recordings written here, for the audio tab tests and the screenshots:

    python -c "from tests.app.tiny_audio import build_audio_models; build_audio_models('/tmp/tiny')"
    python -m app --screenshots shots --model-dir /tmp/tiny
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.engine.models.tiny_wav2vec2 import RATE, checkpoint, speech_like

AUDIO_TASKS = ("automatic-speech-recognition", "audio-classification")
_VARIANTS = {"automatic-speech-recognition": "ctc-group", "audio-classification": "cls-weighted"}


def build_audio_models(root: str | Path) -> dict[str, Path]:
    """One checkpoint folder per audio task under `root`, named by task."""
    import shutil

    root = Path(root)
    folders = {}
    for task, variant in _VARIANTS.items():
        folder = root / task
        if not (folder / "config.json").is_file():
            built = checkpoint(variant, root / "_variants")
            shutil.copytree(built, folder, dirs_exist_ok=True)
        folders[task] = folder
    return folders


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """16-bit PCM, as most recordings are; `samples` is (n,) or (n, channels) in [-1, 1]."""
    import soundfile

    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return path


def recording(path: Path, seconds: float, seed: int = 0, rate: int = RATE, channels: int = 1) -> Path:
    """Speech-like audio; extra channels are the first one made a little quieter each time."""
    mono = speech_like(seconds, seed=seed, rate=rate)
    frames = np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1) if channels > 1 else mono
    return write_wav(path, frames, rate)


def noise_file(path: Path, seconds: float, seed: int = 0) -> Path:
    """Quiet noise, cheap to make at any length (for the long-file tests)."""
    rng = np.random.default_rng(seed)
    return write_wav(path, (0.05 * rng.standard_normal(int(seconds * RATE))).astype(np.float32))
