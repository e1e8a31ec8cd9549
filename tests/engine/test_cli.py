"""The headless CLI's contract for bad usage: exit code 2 and one line on stderr."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_no_task_is_one_line_and_exit_2():
    done = run_cli()
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:")


def test_unknown_task_is_one_line_and_exit_2():
    done = run_cli("no-such-task", "input")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no-such-task" in done.stderr
