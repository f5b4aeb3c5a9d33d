"""Checkpoints: a from_pretrained-loadable model directory plus everything needed to resume, written
atomically, verified, and read back without running code from the run directory.

Layout of a run directory::

    run/checkpoints/step-00000200/
        model/              what save_pretrained writes, nothing else: config.json, model.safetensors,
                            generation_config.json, tokenizer files; the directory to upload
        training/           what only resuming needs:
            dcp/            model and optimizer through torch.distributed.checkpoint (DCP)
            trainer_state.pt  scheduler, RNG, step, data position
        manifest.json       every file of both (``model/config.json``, ``training/dcp/.metadata``, ...) with
                            its size, written last
    run/checkpoints/step-00000400/  ...

``model/`` is what ``CoEForCausalLM.from_pretrained``, ``coe eval`` and ``coe generate`` read (they take
``step-N``, ``step-N/model`` or the run directory alike), and what to upload as it is; ``coe export`` writes a
directory that also loads where coe is not installed. With several ranks it is gathered onto rank 0. Resuming
reads ``training/dcp/``, which each rank writes its own shards into and any number of ranks can read back: a
run saved on N ranks resumes on M (one process included).

Checkpoints written before this layout hold everything in ``step-N/`` itself (the weights beside ``dcp/``,
``trainer_state.pt`` and ``manifest.json``); they load and resume as they are
(:func:`coe.layout.weights_dir`, :func:`training_dir`).

What a crash, a full disk or a signal can do to it:

- A checkpoint is written only when every weight is finite, into a hidden ``.tmp-step-N`` beside the others,
  verified there (:func:`verify_checkpoint`: every file of the manifest at its size, every header readable),
  and renamed into place by rank 0 after every rank has written. A checkpoint of the same step is first
  renamed aside (``.trash-*``), so one complete copy exists at every moment; a failed save removes its
  temporary directory.
- Only then are checkpoints beyond the newest ``keep_last`` pruned, each renamed aside before it is deleted.
- On start-up (:func:`clean_checkpoints`) leftover ``.trash-*`` directories are deleted and a ``.tmp-step-N``
  is renamed into place when it verifies and step N is missing (a crash between the two renames), deleted
  otherwise.
- Resuming (:func:`resume_checkpoint`) takes the newest checkpoint that verifies, with a warning naming each
  newer one that does not.

Nothing read back is unpickled: trainer_state.pt holds tensors, numbers and strings only (loaded with
``torch.load(weights_only=True)``), and DCP's metadata and non-tensor items go through unpicklers that
build only DCP's own metadata classes and plain data. A run directory from elsewhere cannot run code.
With several nodes the run directory must be on a file system they all see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import io
import json
import logging
import os
import pathlib
import pickle
import random
import re
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from safetensors import SafetensorError, safe_open
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint import metadata as dcp_metadata
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from coe.checks import FileError
from coe.layout import MODEL_DIR, weights_dir
from coe.modeling import CoEForCausalLM, check_checkpoint_files, index_files
from coe.nn.expert_parallel import local_tensor
from coe.train.distributed import Parallel

log = logging.getLogger(__name__)

TRAINING_DIR = "training"  # beside MODEL_DIR ("model"): dcp/ and trainer_state.pt
STATE_FILE = "trainer_state.pt"
DCP_DIR = "dcp"
MANIFEST = "manifest.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")
_TMP_DIR = re.compile(r"^\.tmp-(step-\d{8})$")
_TRASH = ".trash-"


class NonFiniteError(RuntimeError):
    """A loss or a weight became NaN or infinite; no checkpoint was written, the last good one is kept."""


def checkpoint_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run, oldest first (complete as their names say; :func:`verify_checkpoint` checks)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    steps = [p for p in root.iterdir() if _STEP_DIR.match(p.name)]
    found = [p for p in steps if (training_dir(p) / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def checkpoint_of(path: str | os.PathLike) -> Path:
    """The checkpoint directory ``step-N`` for ``step-N/model`` or ``step-N/training``; any other path as it
    is."""
    p = Path(path)
    if p.name in (MODEL_DIR, TRAINING_DIR) and (p.parent / TRAINING_DIR / STATE_FILE).is_file():
        return p.parent
    return p


def training_dir(checkpoint: Path) -> Path:
    """Where a checkpoint's training state (dcp/, trainer_state.pt) lies: ``training/``, or the checkpoint
    itself in the flat layout of older checkpoints."""
    return checkpoint / TRAINING_DIR if (checkpoint / TRAINING_DIR).is_dir() else checkpoint


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The model directory (it holds config.json) that ``path`` names: ``path`` itself when it holds one (a
    checkpoint's ``model/``, a checkpoint of the flat layout, an export), a checkpoint's ``model/``, or a run
    directory's newest checkpoint's; FileError when ``path`` is none of these."""
    p = weights_dir(checkpoint_of(path))
    if (p / "config.json").is_file():
        return p
    latest = latest_checkpoint(p)
    if latest is None:
        raise FileError(p, "no config.json and no checkpoints: neither a checkpoint nor a run directory")
    return weights_dir(latest)


def run_of(checkpoint: str | os.PathLike) -> Path | None:
    """The run directory a checkpoint was written into (``RUN/checkpoints/step-N``, or its ``model/`` or
    ``training/``), else None."""
    path = checkpoint_of(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else None


# ------------------------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's generator states as tensors and numbers (loadable with weights_only)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # The current device only: touching every GPU would give each rank of a node a context on all of them.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` (or the pickled tuples of checkpoints written before it)."""
    python, numpy = state["python"], state["numpy"]
    if isinstance(python, dict):
        python = (python["version"], tuple(python["state"].tolist()), python["gauss"])
    random.setstate(python)
    if isinstance(numpy, dict):
        numpy = (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    np.random.set_state(numpy)
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, list):  # checkpoints that saved every device
            torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
        else:
            torch.cuda.set_rng_state(cuda)


# ---------------------------------------------------------------------------------------------- saving


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    *,
    model,
    tokenizer,
    optimizer,
    scheduler,
    trainer_state: dict[str, Any],
    keep_last: int,
    par: Parallel | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically, verify it, then prune all but the newest ``keep_last``. Returns
    its path. NonFiniteError, before anything is written, when a weight is not finite; on any failure the
    temporary directory is removed and the checkpoints already there are left as they were.

    With several ranks every rank must call this; ``trainer_state`` is rank 0's.
    """
    par = par or Parallel()
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}"
    if not weights_finite(model, par):
        raise NonFiniteError(
            f"non-finite weights at step {step}: no checkpoint written, the newest one "
            f"({latest_checkpoint(run_dir)}) is kept. Lower optim.lr, keep optim.grad_clip on or check the "
            "data."
        )
    try:
        if par.is_main:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / TRAINING_DIR).mkdir(parents=True)
        par.barrier()
        error = None
        try:
            _write(tmp, model, tokenizer, optimizer, scheduler, trainer_state, par)
            if par.is_main:
                verify_checkpoint(tmp)
        except (Exception, CheckpointException) as e:  # DCP's CheckpointException is a BaseException
            error = _plain_error(e, tmp)
        if par.any(error is not None):  # every rank fails together, none waits at a barrier alone
            raise error or FileError(tmp, "another rank failed to write its part")
        if par.is_main:
            _swap_into_place(tmp, final)
            for old in checkpoint_dirs(run_dir)[:-keep_last]:
                if old != final:
                    _delete(old)
    except BaseException:
        if par.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    par.barrier()
    return final


def _write(tmp: Path, model, tokenizer, optimizer, scheduler, trainer_state: dict, par: Parallel) -> None:
    """The layout of the module's docstring in ``tmp``: every rank's DCP shards, then (rank 0) ``model/``,
    the trainer state and the manifest."""
    model_state, optim_state = get_state_dict(model, optimizer)
    with _single_process(par):
        dcp.save(
            {"model": model_state, "optim": optim_state},
            checkpoint_id=tmp / TRAINING_DIR / DCP_DIR,
            no_dist=not par.enabled,
        )
    full = _full_state_dict(model, par)
    if not par.is_main:
        return
    if full is None:
        model.save_pretrained(tmp / MODEL_DIR)
    else:
        _save_pretrained(model.config, full, tmp / MODEL_DIR)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp / MODEL_DIR)
    state = {"scheduler": scheduler.state_dict(), "rng": rng_state(), "world_size": par.world_size}
    torch.save({**state, **trainer_state}, tmp / TRAINING_DIR / STATE_FILE)
    _write_manifest(tmp)


def _write_manifest(directory: Path) -> None:
    """Every file's size in ``manifest.json`` (paths relative to ``directory``, subdirectories included),
    written last; each file is flushed to disk first, so that a checkpoint with a manifest is complete after
    a power loss too."""
    sizes = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        with open(file, "rb") as f:
            os.fsync(f.fileno())
        sizes[file.relative_to(directory).as_posix()] = file.stat().st_size
    (directory / MANIFEST).write_text(json.dumps({"files": sizes}, indent=1) + "\n")


def _plain_error(e: BaseException, tmp: Path) -> BaseException:
    """DCP wraps what failed on each rank in a CheckpointException: the first failure itself (an OSError keeps
    its file name), for a one-line message."""
    if isinstance(e, CheckpointException):
        for inner, _ in e.failures.values():
            return inner if isinstance(inner, OSError | FileError) else FileError(tmp, f"{inner!r}")
        return FileError(tmp, "writing the distributed checkpoint failed")
    return e


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an existing ``final`` (the same step saved again) is renamed aside first
    and deleted after, so that a complete copy exists at every moment."""
    if final.exists():
        aside = final.with_name(f"{_TRASH}{final.name}-{uuid.uuid4().hex[:8]}")
        final.rename(aside)
        tmp.rename(final)
        shutil.rmtree(aside)
    else:
        tmp.rename(final)


def _delete(directory: Path) -> None:
    """Rename aside, then delete: a crash half-way leaves a ``.trash-*`` directory (deleted on the next
    start), never a half-deleted checkpoint under a real name."""
    aside = directory.with_name(f"{_TRASH}{directory.name}-{uuid.uuid4().hex[:8]}")
    directory.rename(aside)
    shutil.rmtree(aside)


def clean_checkpoints(run_dir: str | os.PathLike) -> None:
    """Tidy what a crash left in ``run_dir/checkpoints`` (rank 0, before anything reads it): delete
    ``.trash-*`` directories, rename a ``.tmp-step-N`` that verifies into place when step N is missing and
    delete the other ones."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    for path in sorted(root.iterdir()):
        if path.name.startswith(_TRASH):
            shutil.rmtree(path, ignore_errors=True)
            continue
        match = _TMP_DIR.match(path.name)
        if match is None:
            continue
        final = root / match.group(1)
        if not final.exists():
            try:
                verify_checkpoint(path)
            except FileError:
                pass
            else:
                path.rename(final)
                log.warning("recovered checkpoint %s (complete in %s when the run stopped)", final, path.name)
                continue
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _single_process(par: Parallel):
    """DCP warns whenever it runs without a process group; for one process that is the intent."""
    with warnings.catch_warnings():
        if not par.enabled:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


@torch.no_grad()
def weights_finite(model, par: Parallel) -> bool:
    """Whether every floating-point weight and buffer of ``model`` (each rank's shards) is finite, on every
    rank: one host sync."""
    tensors = [local_tensor(t) for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    finite = bool(torch.stack([t.isfinite().all() for t in tensors]).all()) if tensors else True
    return not par.any(not finite)


def _full_state_dict(model, par: Parallel) -> dict[str, torch.Tensor] | None:
    """The whole model's state dict gathered on rank 0's CPU (a collective); None for one process (the model
    saves itself) and on the other ranks."""
    if not par.enabled:
        return None
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return full if par.is_main else None


def _save_pretrained(config, state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """save_pretrained of a plain model holding ``state_dict``, built on the meta device (no initialisation,
    no copies): the same files a single process writes, whatever wraps the sharded model."""
    with torch.device("meta"):
        plain = CoEForCausalLM(config)
    plain.load_state_dict(state_dict, assign=True)
    plain.save_pretrained(path)


# ------------------------------------------------------------------------------------------- verifying


def verify_checkpoint(checkpoint: str | os.PathLike) -> None:
    """Check that ``checkpoint`` (``step-N``, or its ``model/`` or ``training/``; either layout) is complete
    and readable without loading its tensors: every file its manifest lists, at its size (without a
    manifest, from before manifests or a save stopped just before it: the files resuming needs), the JSON
    files, the safetensors headers, DCP's metadata and the files and byte ranges it points to, and the
    trainer state. FileError naming the first file that fails."""
    path = checkpoint_of(checkpoint)
    model, training = weights_dir(path), training_dir(path)
    manifest = path / MANIFEST
    if manifest.is_file():
        try:
            sizes = json.loads(manifest.read_text())["files"]
        except (ValueError, KeyError, TypeError) as e:
            raise FileError(manifest, f"unreadable ({e!r})") from e
        for name, size in sizes.items():
            file = path / name
            if not file.is_file():
                raise FileError(file, "missing")
            if file.stat().st_size != size:
                raise FileError(file, f"{file.stat().st_size} bytes, {size} when it was written (truncated?)")
    check_checkpoint_files(model)
    for file in sorted(model.glob("*.json")):
        try:
            json.loads(file.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise FileError(file, f"not valid JSON ({e})") from e
    index = model / "model.safetensors.index.json"
    weights = index_files(index) if index.is_file() else [model / "model.safetensors"]
    for file in weights:
        try:
            with safe_open(file, "pt") as f:
                f.keys()
        except (SafetensorError, OSError) as e:
            raise FileError(file, f"unreadable safetensors file ({e})") from e
    state = load_trainer_state(path)
    if (training / DCP_DIR).is_dir():
        _verify_dcp(training / DCP_DIR)
    elif "optimizer" not in state:
        raise FileError(training / DCP_DIR, "missing")


def _verify_dcp(directory: Path) -> None:
    metadata = _read_dcp_metadata(directory / ".metadata")
    for info in metadata.storage_data.values():
        file = directory / info.relative_path
        if not file.is_file():
            raise FileError(file, "missing (named by .metadata)")
        if file.stat().st_size < info.offset + info.length:
            raise FileError(file, f"{file.stat().st_size} bytes, shorter than .metadata says (truncated?)")


# ------------------------------------------------------------------------------------ reading, safely


# Plain-data globals of the trainer states written before RNG states were tensors (NumPy's pickled as an
# array): array reconstruction only, no callable of the checkpoint's choosing.
_LEGACY_NUMPY = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_trainer_state(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The scheduler, RNG and trainer state of ``checkpoint`` (either layout), read with ``weights_only=True``
    (tensors, numbers, strings and containers only); FileError for a missing, truncated or disallowed file."""
    file = training_dir(checkpoint_of(checkpoint)) / STATE_FILE
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY):
            state = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise FileError(file, "missing") from e
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise FileError(file, f"unreadable or not plain data ({str(e).splitlines()[0]})") from e
    if not isinstance(state, dict) or not {"step", "scheduler", "rng"} <= state.keys():
        raise FileError(file, "not a trainer state")
    return state


def _dcp_globals() -> dict[tuple[str, str], Any]:
    """What DCP's metadata may name: its own metadata classes, torch's sizes, dtypes and layouts, paths."""
    allowed = {
        (cls.__module__, cls.__qualname__): cls
        for cls in vars(dcp_metadata).values()
        if isinstance(cls, type)
        and cls.__module__ == dcp_metadata.__name__
        and (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum))
    }
    allowed[(_StorageInfo.__module__, _StorageInfo.__qualname__)] = _StorageInfo
    allowed[("torch", "Size")] = torch.Size
    allowed[("torch.serialization", "_get_layout")] = torch.serialization._get_layout
    for cls in (pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath):
        allowed[("pathlib", cls.__name__)] = cls
    return allowed


class _MetadataUnpickler(pickle.Unpickler):
    """Builds DCP metadata from allowed classes only (``pickle``'s documented way of restricting globals)."""

    allowed = _dcp_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return self.allowed[module, name]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype | torch.layout):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in checkpoint metadata")


def _read_dcp_metadata(file: Path) -> dcp_metadata.Metadata:
    try:
        with open(file, "rb") as f:
            metadata = _MetadataUnpickler(f).load()
    except FileNotFoundError as e:
        raise FileError(file, "missing") from e
    except Exception as e:  # whatever a truncated or crafted pickle raises
        raise FileError(file, f"unreadable or not DCP metadata ({e!r})") from e
    if not isinstance(metadata, dcp_metadata.Metadata) or not isinstance(metadata.storage_data, dict):
        raise FileError(file, "not DCP metadata")
    for info in metadata.storage_data.values():
        name = getattr(info, "relative_path", None)
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise FileError(file, f"names a data file {name!r} outside its directory")
    return metadata


class _SafeReader(FileSystemReader):
    """DCP's file reader with the metadata read by :class:`_MetadataUnpickler`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> dcp_metadata.Metadata:
        rank = kwargs.get("rank")
        name = ".metadata" if rank is None else f"__{rank}.metadata"
        metadata = _read_dcp_metadata(Path(self.path) / name)
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = dcp_metadata.StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class _SafePlanner(DefaultLoadPlanner):
    """DCP's load planner, whose non-tensor items (the optimizer's hyper-parameters) must be plain data:
    checked with ``weights_only=True`` before DCP's own (unrestricted) read of the same bytes."""

    def load_bytes(self, read_item, value: io.BytesIO) -> None:
        try:
            torch.load(value, weights_only=True)
        except Exception as e:
            raise FileError(read_item.dest_index.fqn, f"not plain data in the checkpoint ({e!r})") from e
        value.seek(0)
        super().load_bytes(read_item, value)


def load_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    model,
    optimizer,
    par: Parallel | None = None,
) -> dict[str, Any]:
    """Load model and optimizer state from ``checkpoint`` into this run's (sharded or not) ``model`` and
    ``optimizer``, whatever number of ranks wrote it; returns the trainer state (:func:`load_trainer_state`).

    Every rank must call this. ``checkpoint`` is ``step-N`` (or its ``model/`` or ``training/``), of either
    layout. Checkpoints written before DCP (``optimizer`` inside trainer_state.pt) load in a single process.
    """
    par = par or Parallel()
    path = checkpoint_of(checkpoint)
    state = load_trainer_state(path)
    dcp_dir = training_dir(path) / DCP_DIR
    if dcp_dir.is_dir():
        model_state, optim_state = get_state_dict(model, optimizer)
        try:
            with _single_process(par):
                dcp.load(
                    {"model": model_state, "optim": optim_state},
                    storage_reader=_SafeReader(dcp_dir),
                    planner=_SafePlanner(),
                    no_dist=not par.enabled,
                )
        except CheckpointException as e:
            error = _plain_error(e, dcp_dir)
            if isinstance(error, FileError) and not error.file.startswith(str(path)):
                error = FileError(dcp_dir, str(error))  # the checkpoint named, not just an item
            raise error from None
        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state)
    elif not par.enabled:
        model.load_state_dict(CoEForCausalLM.from_pretrained(path, dtype=torch.float32).state_dict())
        optimizer.load_state_dict(state["optimizer"])
    else:
        raise ValueError(
            f"{path} has no {DCP_DIR}/ directory (written before distributed checkpoints): "
            "resume it in a single process first"
        )
    return state


def resume_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint of ``run_dir`` that verifies, or None; logs which step a run resumes from (or
    that it starts fresh), with a warning naming each newer checkpoint that is broken and why."""
    for path in reversed(checkpoint_dirs(run_dir)):
        try:
            verify_checkpoint(path)
        except FileError as e:
            log.warning("checkpoint %s is broken (%s): falling back to an older one", path, e)
            continue
        log.info("resuming from step %d (%s)", int(_STEP_DIR.match(path.name).group(1)), path)
        return path
    log.info("no intact checkpoint in %s: starting fresh", Path(run_dir) / "checkpoints")
    return None
