"""Where checkpoints come from: a local folder, or a Hub id fetched into the user's standard
Hugging Face cache. The only module that talks to the Hub; `HF_HUB_OFFLINE=1` is honoured."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from engine.errors import Cancelled, CheckpointError, ModelUnavailable
from engine.runtime import CancelFlag

#: `on_progress(done, total, message)`: bytes (or steps) done, the total when known.
ProgressFn = Callable[[int, "int | None", str], None]

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def is_local(ref: str) -> bool:
    return Path(ref).expanduser().is_dir()


def fetch(
    ref: str,
    extra_files: Iterable[str] = (),
    *,
    on_progress: ProgressFn | None = None,
    cancel: CancelFlag | None = None,
) -> Path:
    """A local folder holding config.json, the weights and whichever of `extra_files` the
    model has (tokenizer and processor files). A folder `ref` is returned as it is."""
    local = Path(ref).expanduser()
    if local.is_dir():
        return local
    if not _HUB_ID.match(ref):
        raise CheckpointError(f"{ref!r} is neither a folder nor a Hugging Face model id")
    cached = _cached_snapshot(ref)
    if cached is not None:
        return cached
    return _download(ref, tuple(extra_files), on_progress, cancel)


def _cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of `repo_id` if it already holds a config and weights."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached: every flavour of "not found locally"
        return None
    if (folder / "config.json").is_file() and any((folder / f).is_file() for f in WEIGHT_FILES):
        return folder
    return None


def _download(
    repo_id: str,
    extra_files: tuple[str, ...],
    on_progress: ProgressFn | None,
    cancel: CancelFlag | None,
) -> Path:
    from huggingface_hub import hf_hub_download

    sizes = _list_repo(repo_id)
    wanted = ["config.json", *_pick_weights(repo_id, sizes), *(f for f in extra_files if f in sizes)]
    total = sum(sizes.get(f) or 0 for f in wanted)
    done = 0

    def report(n: int) -> None:
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise Cancelled("download cancelled")
        done += n
        if on_progress is not None:
            on_progress(done, total or None, f"downloading {repo_id}")

    bar = _progress_bar_class(report)

    def get(name: str) -> Path:
        report(0)
        try:
            return Path(hf_hub_download(repo_id, name, tqdm_class=bar))
        except Cancelled:
            raise
        except Exception as exc:
            raise ModelUnavailable(f"downloading {name} of {repo_id} failed: {exc}") from None

    folder = get("config.json").parent
    for name in wanted[1:]:
        path = get(name)
        if name.endswith(".index.json"):  # sharded: fetch the shards the index names
            shards = _shards(path)
            total += sum(sizes.get(s) or 0 for s in shards)
            for shard in shards:
                get(shard)
    return folder


def _list_repo(repo_id: str) -> dict[str, int | None]:
    """File name -> size in bytes for the files of a Hub model, or a clear `ModelUnavailable`."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        info = HfApi().model_info(repo_id, files_metadata=True)
    except GatedRepoError:
        raise ModelUnavailable(
            f"{repo_id} is gated: accept its licence on the Hub and log in with `hf auth login`"
        ) from None
    except RepositoryNotFoundError:
        raise ModelUnavailable(f"no model called {repo_id!r} on the Hugging Face Hub") from None
    except Exception:
        raise ModelUnavailable(
            f"{repo_id} is not in the Hugging Face cache and the Hub cannot be reached "
            "(offline?). Connect once to download it, or choose a local folder that holds "
            "its config.json and weights."
        ) from None
    return {s.rfilename: s.size for s in info.siblings or ()}


def _pick_weights(repo_id: str, sizes: dict[str, int | None]) -> list[str]:
    for name in WEIGHT_FILES:
        if name in sizes:
            return [name]
    raise ModelUnavailable(f"{repo_id} has no PyTorch weights (model.safetensors or pytorch_model.bin)")


def _shards(index_file: Path) -> list[str]:
    from engine.config import read_json

    return sorted(set(read_json(index_file).get("weight_map", {}).values()))


def _progress_bar_class(report: Callable[[int], None]) -> type:
    """A silent tqdm that forwards each update to `report` (which may raise `Cancelled`)."""
    from tqdm.auto import tqdm

    class _Forwarding(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            report(int(n or 0))
            return None

    return _Forwarding
