"""Settings for the whole suite, applied before any test module imports huggingface_hub:
tests never reach the network, and they read and write no user cache. pytest-qt is loaded
here only where Qt can load (see below)."""

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="task-studio-hf-"))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _qt_problem() -> str | None:
    """Why Qt's GUI module cannot load here (a missing OpenGL/EGL system library), or None."""
    try:
        import PySide6.QtGui  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


# pytest-qt is loaded from here, not by pytest itself (`-p no:pytest-qt` in pyproject.toml): it
# imports QtGui as it starts, which on a machine without Qt's system libraries would stop the
# engine's tests too. There, the app's tests are left out and the reason is said.
QT_PROBLEM = _qt_problem()
if QT_PROBLEM is None:
    pytest_plugins = ["pytestqt.plugin"]

APP_TESTS = Path(__file__).parent / "app"


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if QT_PROBLEM and (collection_path == APP_TESTS or APP_TESTS in collection_path.parents):
        return True
    return None


def _qt_skip_reason() -> str:
    return (
        f"tests/app skipped: Qt cannot load a system library it needs ({QT_PROBLEM}); on Debian "
        "and Ubuntu see the apt-get line in README.md (libegl1 libgl1 ...)"
    )


def pytest_addoption(parser) -> None:
    if QT_PROBLEM:  # pytest-qt's own setting, read by nothing without it
        parser.addini("qt_api", "the Qt binding pytest-qt uses")


def pytest_report_header() -> str | None:
    return _qt_skip_reason() if QT_PROBLEM else None


def pytest_terminal_summary(terminalreporter) -> None:
    if QT_PROBLEM:
        terminalreporter.write_line(_qt_skip_reason(), yellow=True)
