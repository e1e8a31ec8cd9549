"""Fixtures for the app tests: Qt offscreen, settings in a temp folder, the real engine worker,
and tiny checkpoints written by transformers (the oracle) for the three text tabs.

`build_text_models(folder)` also serves the screenshots:
    python -c "from tests.app.conftest import build_text_models; build_text_models('/tmp/tiny')"
    python -m app --screenshots shots --model-dir /tmp/tiny
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

TEXT_TASKS = ("text-classification", "token-classification", "question-answering")
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
MAX_POSITIONS = 128

_WORDS = [
    "the", "a", "of", "in", "on", "and", "to", "was", "is", "by", "with", "who", "what", "where",
    "library", "reading", "rooms", "good", "bad", "happy", "sad", "engine", "notes", "machine",
    "lon", "##don", "ada", "love", "##lace", "charles", "bab", "##bage", "science", "museum",
    "##s", "##ed", "##ing", "##er", "##ly",
]


def _vocabulary(cased: bool) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = letters + (letters.upper() if cased else "") + "0123456789.,;:!?'\"-()"
    words = _WORDS + ([w.capitalize() for w in _WORDS if not w.startswith("##")] if cased else [])
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for token in [*chars, *("##" + c for c in chars), *words]:
        if token not in vocab:
            vocab.append(token)
    return vocab


def _save_tokenizer(folder: Path, cased: bool) -> int:
    """A WordPiece tokenizer saved as transformers saves it; returns the vocabulary size."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _vocabulary(cased)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(
        vocab_file=str(folder / "vocab.txt"), do_lower_case=not cased, model_max_length=MAX_POSITIONS
    )
    tokenizer.save_pretrained(folder)
    return len(vocab)


def _labels(names: list[str]) -> dict:
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def build_text_models(root: str | Path) -> dict[str, Path]:
    """Tiny random checkpoints, one folder per text task under `root`, named by task."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertForTokenClassification,
        DistilBertConfig,
        DistilBertForQuestionAnswering,
    )

    root = Path(root)
    torch.manual_seed(0)
    bert = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=MAX_POSITIONS, initializer_range=0.3,
    )
    folders = {}

    folder = root / "text-classification"
    size = _save_tokenizer(folder, cased=False)
    model = BertForSequenceClassification(BertConfig(vocab_size=size, **bert, **_labels(["NEGATIVE", "POSITIVE"])))
    model.save_pretrained(folder)
    folders["text-classification"] = folder

    folder = root / "token-classification"
    size = _save_tokenizer(folder, cased=True)
    model = BertForTokenClassification(BertConfig(vocab_size=size, **bert, **_labels(NER_LABELS)))
    model.save_pretrained(folder)
    folders["token-classification"] = folder

    folder = root / "question-answering"
    size = _save_tokenizer(folder, cased=True)
    config = DistilBertConfig(
        vocab_size=size, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
        max_position_embeddings=MAX_POSITIONS, initializer_range=0.3,
    )
    DistilBertForQuestionAnswering(config).save_pretrained(folder)
    folders["question-answering"] = folder
    return folders


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_text_models(tmp_path_factory.mktemp("tiny-text"))


@pytest.fixture(scope="session")
def wrong_architecture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2: a real checkpoint, but of an architecture no text tab takes."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=64, n_positions=32)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def corrupt_checkpoint(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The text-classification checkpoint with its weights cut short."""
    import shutil

    folder = tmp_path_factory.mktemp("corrupt")
    for path in tiny_models["text-classification"].iterdir():
        shutil.copy(path, folder / path.name)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    return folder


@pytest.fixture(scope="session", autouse=True)
def _no_user_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Any QSettings made without a path lands in a temp folder, never in the user's."""
    folder = str(tmp_path_factory.mktemp("qsettings"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, folder)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """Settings in a temp folder, precision fp32: the tab tests compare what a tab shows with
    the engine's fp32 answer (the window tests try the other precisions, Auto included)."""
    kept = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    kept.setValue("runtime/dtype", "fp32")
    return kept


def stop_engine(engine) -> None:
    assert engine.stop(timeout_ms=30_000), "the worker thread did not end"
    assert not engine.is_running()


def open_window(qtbot, settings, models: dict[str, Path], loader=None, tasks: tuple[str, ...] = TEXT_TASKS):
    """The main window with the tabs of `tasks` (the three text tabs unless told), shown, its
    engine ready; each tab starts on its tiny checkpoint (saved as the tab's model), so no test
    reaches for the Hub by accident."""
    from app.tabs import available_tabs
    from app.window import MainWindow
    from app.worker import Engine, load_engine_task

    for task, folder in models.items():
        settings.setValue(f"tabs/{task}/model", str(folder))
    tab_classes = [cls for cls in available_tabs() if cls.task in tasks]
    engine = Engine([cls.task for cls in tab_classes], loader=loader or load_engine_task)
    win = MainWindow(engine, settings, tab_classes)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.ready, timeout=60_000):
        engine.start()
    qtbot.waitUntil(lambda: all(tab.meta is not None for tab in win.tabs()), timeout=10_000)
    return win


def close_window(win) -> None:
    win.close()
    stop_engine(win.engine)


@pytest.fixture
def window(qtbot, settings, tiny_models):
    win = open_window(qtbot, settings, tiny_models)
    yield win
    close_window(win)


def use_model(qtbot, tab, folder: Path) -> None:
    """Point `tab` at a checkpoint folder and wait until it is loaded (or failed)."""
    tab.picker.choose(str(folder))
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=60_000)
