"""Where checkpoints come from: a local folder, or a Hub id fetched into the user's standard
Hugging Face cache. The only module that talks to the Hub; `HF_HUB_OFFLINE=1` is honoured.

A cached snapshot with a config and weights is used without a download. If it lacks some of
the task's extra files (a model fetched once by `from_pretrained` has no tokenizer), those are
fetched into it; a file the Hub says the repo does not have is remembered in the cache, so the
next load asks nothing. Offline, or with the Hub out of reach, the snapshot is used as it is."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import Cancelled, CheckpointError, ModelUnavailable

if TYPE_CHECKING:
    from engine.runtime import CancelFlag  # only for annotations: engine.runtime imports torch

#: `on_progress(done, total, message)`: bytes, steps or (transcribing) seconds done, the total
#: when known.
ProgressFn = Callable[[float, "float | None", str], None]

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


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
        return _top_up(ref, cached, tuple(extra_files), on_progress, cancel)
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


def _top_up(
    repo_id: str,
    snapshot: Path,
    extra_files: tuple[str, ...],
    on_progress: ProgressFn | None,
    cancel: CancelFlag | None,
) -> Path:
    """`snapshot` with the extra files it lacks fetched into it, where the Hub can be asked.
    Offline or out of reach, the snapshot as it is: the task then names what it misses."""
    from huggingface_hub import constants, try_to_load_from_cache

    commit = snapshot.name  # snapshot folders are named by commit: fetch files of that one
    # The cache answers a path, a marker that the Hub said "no such file", or None: never asked.
    unknown = [
        f for f in extra_files if try_to_load_from_cache(repo_id, f, revision=commit) is None
    ]
    if not unknown or constants.HF_HUB_OFFLINE:
        return snapshot
    try:
        sizes = _list_repo(repo_id, commit)  # one request, no retries: is the Hub there at all?
    except ModelUnavailable:
        return snapshot
    total = sum(sizes.get(name) or 0 for name in unknown)
    transfer = _Transfer(repo_id, commit, total, on_progress, cancel)
    for name in unknown:
        try:
            transfer.get(name)
        except Cancelled:
            raise
        except Exception:  # the Hub went away or refused: asking for the rest would only wait
            break
    return snapshot


def _download(
    repo_id: str,
    extra_files: tuple[str, ...],
    on_progress: ProgressFn | None,
    cancel: CancelFlag | None,
) -> Path:
    sizes = _list_repo(repo_id)
    weights = _pick_weights(repo_id, sizes)
    total = sum(sizes.get(f) or 0 for f in ("config.json", weights, *extra_files))
    transfer = _Transfer(repo_id, None, total, on_progress, cancel)

    def get(name: str) -> Path | None:
        try:
            return transfer.get(name)
        except Cancelled:
            raise
        except Exception as exc:
            raise ModelUnavailable(f"downloading {name} of {repo_id} failed: {exc}") from None

    def need(name: str) -> Path:
        path = get(name)
        if path is None:
            raise ModelUnavailable(f"{repo_id} has no {name} on the Hugging Face Hub")
        return path

    folder = need("config.json").parent
    weights_path = need(weights)
    if weights.endswith(".index.json"):  # sharded: fetch the shards the index names
        shards = _shards(weights_path)
        transfer.total += sum(sizes.get(s) or 0 for s in shards)
        for shard in shards:
            need(shard)
    for name in extra_files:
        if name in sizes:
            get(name)
            continue
        # asked even though the listing lacks it: the Hub's "no such file" is then cached, and
        # the next load finds nothing left to ask. Only a courtesy, so a failure is no failure.
        try:
            transfer.get(name)
        except Cancelled:
            raise
        except Exception:
            pass
    return folder


class _Transfer:
    """`hf_hub_download` calls for one repo whose bytes add up to one running total for
    `on_progress`; raises `Cancelled` as soon as the flag is set, between files or within one."""

    def __init__(
        self,
        repo_id: str,
        revision: str | None,
        total: int,
        on_progress: ProgressFn | None,
        cancel: CancelFlag | None,
    ) -> None:
        self.repo_id = repo_id
        self.revision = revision
        self.total = total
        self.done = 0
        self._on_progress = on_progress
        self._cancel = cancel
        self._bar = _progress_bar_class(self._report)

    def get(self, name: str) -> Path | None:
        """The cached path of `name`, None when the Hub says the repo has no such file (the
        cache then remembers it, and asking again costs no request)."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import RemoteEntryNotFoundError

        self._report(0)
        try:
            path = hf_hub_download(self.repo_id, name, revision=self.revision, tqdm_class=self._bar)
        except RemoteEntryNotFoundError:
            return None
        return Path(path)

    def _report(self, n: int) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("download cancelled")
        self.done += n
        if self._on_progress is not None:
            self._on_progress(self.done, self.total or None, f"downloading {self.repo_id}")


def _list_repo(repo_id: str, revision: str | None = None) -> dict[str, int | None]:
    """File name -> size in bytes for the files of a Hub model, or a clear `ModelUnavailable`."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        # without a timeout, a connection nobody answers would hang the load for good
        info = HfApi().model_info(
            repo_id, revision=revision, files_metadata=True, timeout=constants.HF_HUB_ETAG_TIMEOUT
        )
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


def _pick_weights(repo_id: str, sizes: dict[str, int | None]) -> str:
    for name in WEIGHT_FILES:
        if name in sizes:
            return name
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
