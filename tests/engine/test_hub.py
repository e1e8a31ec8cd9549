"""Model references: local folders, the standard HF cache, and offline errors. No network:
every test runs with HF_HUB_OFFLINE=1 in a private cache, in a fresh interpreter (the Hub
library reads its settings at import)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_fetch(ref: str, hf_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}
    env.pop("HF_HUB_CACHE", None)
    code = (
        "import sys\n"
        "from engine import hub\n"
        "from engine.errors import EngineError\n"
        "try:\n"
        f"    print(hub.fetch({ref!r}))\n"
        "except EngineError as e:\n"
        "    print(type(e).__name__, e, file=sys.stderr); sys.exit(2)\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def fake_cached_model(hf_home: Path, repo_id: str) -> Path:
    """The layout huggingface_hub writes: blobs, a snapshot folder, and refs/main."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (snapshot / "model.safetensors").write_bytes(b"stand-in")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    return snapshot


def test_local_folder_is_used_as_it_is(tmp_path):
    from engine import hub

    assert hub.fetch(str(tmp_path)) == tmp_path


def test_offline_and_not_cached_names_the_model_and_the_way_out(tmp_path):
    done = run_fetch("someone/not-cached-model", tmp_path)
    assert done.returncode == 2
    message = done.stderr.strip()
    assert message.startswith("ModelUnavailable")
    assert "someone/not-cached-model" in message
    assert "local folder" in message
    assert "Traceback" not in done.stderr


def test_offline_uses_the_standard_cache(tmp_path):
    snapshot = fake_cached_model(tmp_path, "someone/cached-model")
    done = run_fetch("someone/cached-model", tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve() == snapshot.resolve()


@pytest.mark.parametrize("ref", ["not a model id!", "../../nowhere/at/all/x"])
def test_neither_folder_nor_hub_id(ref):
    from engine import hub
    from engine.errors import CheckpointError

    with pytest.raises(CheckpointError, match="neither a folder nor"):
        hub.fetch(ref)
