"""The engine's layers, read from its source: tasks import the infrastructure and the models,
never the other way round, and nothing in the engine imports Qt or transformers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FRONT_ENDS = {"cli.py", "__main__.py", "batch.py"}  # the command line and batches drive tasks, as the app does


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def below_tasks(path: Path) -> list[str]:
    return sorted(m for m in imported_modules(path) if m == "engine.tasks" or m.startswith("engine.tasks."))


INFRASTRUCTURE = sorted(p for p in [*ENGINE.glob("*.py"), *ENGINE.glob("generation/*.py")] if p.name not in FRONT_ENDS)
MODELS = sorted((ENGINE / "models").glob("*.py"))


@pytest.mark.parametrize("path", INFRASTRUCTURE + MODELS, ids=lambda p: str(p.relative_to(ENGINE)))
def test_infrastructure_and_models_never_import_a_task(path):
    assert below_tasks(path) == []


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_model_files_do_no_io(path):
    assert not {"engine.hub", "huggingface_hub", "engine.tasks"} & imported_modules(path)


def test_the_engine_imports_neither_qt_nor_transformers():
    offenders = {
        str(p.relative_to(ENGINE)): sorted(m for m in imported_modules(p) if m.split(".")[0] in ("PySide6", "PyQt6", "transformers"))
        for p in ENGINE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_can_see_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def late():\n    from engine.tasks.base import Task\n")
    assert below_tasks(bad) == ["engine.tasks.base", "engine.tasks.base.Task"]
