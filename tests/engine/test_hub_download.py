"""Downloads through the real `hub.fetch` and huggingface_hub, against a fake Hub on 127.0.0.1
(tests/engine/fake_hub.py): the cache layout, progress, cancel, sharded weights, clear errors,
and topping up a cached snapshot that lacks the task's extra files. Each fetch runs in a fresh
interpreter, because huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE at import."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE

from tests.engine.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[2]

CONFIG = json.dumps({"model_type": "bert", "hidden_size": 32}).encode()
# one chunk and a bit: huggingface_hub reads a download in chunks of DOWNLOAD_CHUNK_SIZE, so
# the weights arrive in two progress updates and a cancel can land between them
BIG_WEIGHTS = bytes(range(256)) * ((DOWNLOAD_CHUNK_SIZE + (1 << 20)) // 256)
TOKENIZER = b'{"version": "1.0", "model": {"type": "WordPiece"}}'
INDEX = json.dumps(
    {
        "metadata": {"total_size": 8},
        "weight_map": {
            "embeddings.weight": "model-00001-of-00002.safetensors",
            "encoder.weight": "model-00002-of-00002.safetensors",
            "pooler.weight": "model-00002-of-00002.safetensors",
        },
    }
).encode()

REPOS = {
    "tiny/bert": {
        "config.json": CONFIG,
        "model.safetensors": BIG_WEIGHTS,
        "tokenizer.json": TOKENIZER,
        "tokenizer_config.json": b'{"do_lower_case": true}',
        "README.md": b"# a model card nobody fetches",
    },
    "tiny/sharded": {
        "config.json": CONFIG,
        "model.safetensors.index.json": INDEX,
        "model-00001-of-00002.safetensors": b"first shard",
        "model-00002-of-00002.safetensors": b"second shard",
    },
    "tiny/tf-only": {"config.json": CONFIG, "tf_model.h5": b"keras weights"},
}
TEXT_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")  # the repo lacks vocab.txt

CHILD = """
import json, sys, threading
from engine import hub
from engine.errors import EngineError

ref, extra_files, cancel_after = json.loads(sys.argv[1])
events, cancel = [], threading.Event()

def on_progress(done, total, message):
    events.append([done, total])
    if cancel_after is not None and done > cancel_after:
        cancel.set()

try:
    result = {"folder": str(hub.fetch(ref, extra_files, on_progress=on_progress, cancel=cancel))}
except EngineError as e:
    result = {"error": type(e).__name__, "message": str(e)}
print(json.dumps({**result, "events": events}))
"""


@pytest.fixture
def hub():
    server = FakeHub(REPOS).start()
    yield server
    server.stop()


def fetch(
    hub: FakeHub,
    hf_home: Path,
    ref: str,
    extra_files=(),
    *,
    cancel_after: int | None = None,
    offline: bool = False,
) -> dict:
    """`hub.fetch` in a fresh interpreter pointed at the fake hub: its result or error, and
    every `on_progress` call as [done, total]. The cancel flag is set once `done` passes
    `cancel_after`."""
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith("HF_") or k.lower().endswith("_proxy"))
    }
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1" if offline else "0",  # the suite's conftest sets 1
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.pop("TRANSFORMERS_OFFLINE", None)
    argument = json.dumps([ref, list(extra_files), cancel_after])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, argument], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def snapshot_of(hub: FakeHub, hf_home: Path, repo_id: str) -> Path:
    """Where huggingface_hub keeps the files of the repo's commit under `hf_home`."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    return repo / "snapshots" / hub.commit(repo_id)


def files_got(hub: FakeHub) -> list[str]:
    """The file names the client downloaded (GET), in order."""
    downloads = [path for method, path in hub.requests if method == "GET" and "/resolve/" in path]
    return [path.rsplit("/", 1)[-1] for path in downloads]


def test_a_download_fills_the_standard_cache_and_is_used_without_requests(hub, tmp_path):
    got = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)
    folder = Path(got["folder"])
    assert folder == snapshot_of(hub, tmp_path, "tiny/bert")
    present = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert files_got(hub) == present  # not README.md, not the absent vocab.txt
    for name in present:
        assert (folder / name).read_bytes() == REPOS["tiny/bert"][name]
    assert not (folder / "vocab.txt").exists()
    assert ("HEAD", "/tiny/bert/resolve/main/vocab.txt") in hub.requests  # asked once...

    hub.requests.clear()
    assert fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)["folder"] == str(folder)
    assert hub.requests == []  # ...and the cache remembers the answer

    hub.stop()
    assert fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)["folder"] == str(folder)
    assert fetch(hub, tmp_path, "tiny/bert", TEXT_FILES, offline=True)["folder"] == str(folder)


def test_progress_grows_to_the_bytes_of_the_fetched_files(hub, tmp_path):
    events = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)["events"]
    files = REPOS["tiny/bert"]
    total = sum(len(files[f]) for f in ("config.json", "model.safetensors", *TEXT_FILES[:2]))
    done = [d for d, _ in events]
    assert {t for _, t in events} == {total}
    assert done == sorted(done)
    assert done[-1] == total
    assert len(set(done)) >= 5  # 0, the config, two chunks of weights, the tokenizer files


def test_cancel_mid_download_raises_and_a_later_fetch_completes(hub, tmp_path):
    # the flag goes up with the first chunk of weights; the second chunk then stops the job
    got = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES, cancel_after=len(CONFIG))
    assert got["error"] == "Cancelled"
    done = [d for d, _ in got["events"]]
    assert len(CONFIG) < done[-1] < len(CONFIG) + len(BIG_WEIGHTS)
    folder = snapshot_of(hub, tmp_path, "tiny/bert")
    assert not (folder / "model.safetensors").exists()
    assert not list((tmp_path / "hub").rglob("*.incomplete"))  # no half file left behind

    got = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)
    assert Path(got["folder"]) == folder
    assert (folder / "model.safetensors").read_bytes() == BIG_WEIGHTS


def test_a_sharded_checkpoint_brings_every_shard(hub, tmp_path):
    got = fetch(hub, tmp_path, "tiny/sharded")
    folder = Path(got["folder"])
    files = REPOS["tiny/sharded"]
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        assert (folder / name).read_bytes() == files[name]
    assert sorted(files_got(hub)) == sorted(files)
    done, total = got["events"][-1]
    assert done == total == sum(len(data) for data in files.values())


def test_an_unknown_repo_is_named(hub, tmp_path):
    got = fetch(hub, tmp_path, "nobody/nothing")
    assert got["error"] == "ModelUnavailable"
    assert "no model called 'nobody/nothing'" in got["message"]


def test_a_repo_without_pytorch_weights_says_so(hub, tmp_path):
    got = fetch(hub, tmp_path, "tiny/tf-only")
    assert got["error"] == "ModelUnavailable"
    assert "tiny/tf-only has no PyTorch weights" in got["message"]
    assert files_got(hub) == []


@pytest.fixture
def partial_cache(hub, tmp_path) -> Path:
    """The cache a bare `from_pretrained` leaves: config and weights, no tokenizer."""
    folder = Path(fetch(hub, tmp_path, "tiny/bert")["folder"])
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    hub.requests.clear()
    return folder


def test_a_partial_cache_gets_its_missing_files_once(hub, tmp_path, partial_cache):
    got = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)
    assert Path(got["folder"]) == partial_cache
    for name in TEXT_FILES[:2]:
        assert (partial_cache / name).read_bytes() == REPOS["tiny/bert"][name]
    commit = hub.commit("tiny/bert")
    at_commit = f"/tiny/bert/resolve/{commit}/"
    assert hub.requests == [
        ("GET", f"/api/models/tiny/bert/revision/{commit}"),
        ("HEAD", at_commit + "tokenizer.json"),
        ("GET", at_commit + "tokenizer.json"),
        ("HEAD", at_commit + "tokenizer_config.json"),
        ("GET", at_commit + "tokenizer_config.json"),
        ("HEAD", at_commit + "vocab.txt"),  # absent from the repo: asked once only
    ]
    tokenizer_bytes = sum(len(REPOS["tiny/bert"][f]) for f in TEXT_FILES[:2])
    assert got["events"][-1] == [tokenizer_bytes, tokenizer_bytes]

    hub.requests.clear()
    assert fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)["folder"] == str(partial_cache)
    assert hub.requests == []


def test_a_partial_cache_offline_is_used_as_it_is(hub, tmp_path, partial_cache):
    got = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES, offline=True)
    assert Path(got["folder"]) == partial_cache
    assert not (partial_cache / "tokenizer.json").exists()
    assert hub.requests == []


def test_a_partial_cache_is_used_at_once_when_the_hub_is_out_of_reach(hub, tmp_path, partial_cache):
    hub.stop()
    started = time.monotonic()
    got = fetch(hub, tmp_path, "tiny/bert", TEXT_FILES)
    # hf_hub_download alone would retry a refused connection for about 20 s before giving up
    assert time.monotonic() - started < 10
    assert Path(got["folder"]) == partial_cache
    assert not (partial_cache / "tokenizer.json").exists()
