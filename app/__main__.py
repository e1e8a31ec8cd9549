"""`python -m app` (or `make run`): open Task Studio.

The window shows before torch is imported: this module imports only Qt and the tab modules,
and the engine worker imports the engine in its own thread once the window is on screen.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

_STARTED = time.perf_counter()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description="Task Studio")
    parser.add_argument("--theme", choices=("system", "light", "dark"), default="system")
    parser.add_argument(
        "--screenshots", type=Path, metavar="DIR", help="render every tab with sample input to DIR/*.png and exit"
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        metavar="DIR",
        default=os.environ.get("TASK_STUDIO_MODEL_DIR"),
        help="with --screenshots: DIR/<task-name>/ is the checkpoint folder to use for that task",
    )
    parser.add_argument(
        "--startup-time", action="store_true", help="print the seconds until the window shows, then quit"
    )
    return parser.parse_args(argv)


#: What Qt needs from a bare Debian or Ubuntu system, as README.md's apt-get line installs it.
QT_SYSTEM_LIBRARIES = (
    "libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 "
    "libxcb-xinerama0 libegl1 libgl1 libglib2.0-0 libfontconfig1"
)


def qt_missing() -> str | None:
    """Why Qt's widgets cannot load here (a system library missing), or None."""
    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = qt_missing()
    if missing is not None:
        sys.stderr.write(
            f"Task Studio cannot open its window: Qt needs a system library that is missing ({missing}). "
            f"On Debian or Ubuntu: sudo apt-get install {QT_SYSTEM_LIBRARIES}\n"
        )
        return 1
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app import theme
    from app.tabs import available_tabs
    from app.window import MainWindow
    from app.worker import DEFAULT_CACHE_LIMIT_MB, Engine

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("TaskStudio")
    app.setApplicationName("Task Studio")
    theme.apply(app, args.theme)
    if args.screenshots:
        # screenshots must neither depend on nor change the user's saved state
        scratch = tempfile.TemporaryDirectory(prefix="task-studio-")
        settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    else:
        settings = QSettings("TaskStudio", "Task Studio")
    tab_classes = available_tabs()
    # models stay loaded until their parameters pass this many MB (a QSettings key, no UI yet)
    limit_mb = float(settings.value("engine/cache_limit_mb", DEFAULT_CACHE_LIMIT_MB))
    engine = Engine([cls.task for cls in tab_classes], cache_limit_mb=limit_mb)
    window = MainWindow(engine, settings, tab_classes)
    window.show()
    app.processEvents()  # paint the window before the worker starts importing torch
    if args.startup_time:
        print(f"window shown {_since_process_start():.3f} s after the process started")
        print(f"torch imported before the window showed: {'torch' in sys.modules}")
        window.close()
        return 0
    engine.start()
    if args.screenshots:
        from app.screenshots import render_all

        code = render_all(window, args.screenshots, args.model_dir)
        window.close()
        return code
    QTimer.singleShot(0, window.raise_)
    code = app.exec()
    engine.stop()
    return code


def _since_process_start() -> float:
    """Seconds since the OS created this process (Linux); elsewhere since this module loaded."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
        return boot_uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _STARTED


if __name__ == "__main__":
    sys.exit(main())
