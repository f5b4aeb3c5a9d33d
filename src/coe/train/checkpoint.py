"""Checkpoints: a from_pretrained-loadable model directory plus everything needed to resume, written
atomically.

Layout of a run directory::

    run/checkpoints/step-00000200/   model.safetensors, config.json, tokenizer files: the whole model
                                     dcp/: model and optimizer through torch.distributed.checkpoint (DCP)
                                     trainer_state.pt: scheduler, RNG, step, data position
    run/checkpoints/step-00000400/   ...

The model directory is what ``CoEForCausalLM.from_pretrained`` and ``coe eval`` read; with several ranks it is
gathered onto rank 0. Resuming reads ``dcp/``, which each rank writes its own shards into and any number of
ranks can read back: a run saved on N ranks resumes on M (one process included).

A checkpoint is written to a hidden temporary directory beside the others and renamed into place (by rank 0,
after every rank has written), so a crash never leaves a half-written checkpoint under a real name. The last
``keep_last`` are kept. With several nodes the run directory must be on a file system they all see.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from coe.modeling import CoEForCausalLM
from coe.train.distributed import Parallel

STATE_FILE = "trainer_state.pt"
DCP_DIR = "dcp"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def checkpoint_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # The current device only: touching every GPU would give each rank of a node a context on all of them.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, list):  # checkpoints that saved every device
            torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
        else:
            torch.cuda.set_rng_state(cuda)


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
    """Write checkpoint ``step`` atomically and prune all but the newest ``keep_last``. Returns its path.

    With several ranks every rank must call this; ``trainer_state`` is rank 0's.
    """
    par = par or Parallel()
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if par.is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    par.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    with _single_process(par):
        dcp.save(
            {"model": model_state, "optim": optim_state}, checkpoint_id=tmp / DCP_DIR, no_dist=not par.enabled
        )
    full = _full_state_dict(model, par)
    if par.is_main:
        if full is None:
            model.save_pretrained(tmp)
        else:
            _save_pretrained(model.config, full, tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save(
            {
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "world_size": par.world_size,
                **trainer_state,
            },
            tmp / STATE_FILE,
        )
        if final.exists():  # re-saving the same step (e.g. a signal right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in checkpoint_dirs(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    par.barrier()
    return final


@contextlib.contextmanager
def _single_process(par: Parallel):
    """DCP warns whenever it runs without a process group; for one process that is the intent."""
    with warnings.catch_warnings():
        if not par.enabled:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


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


def load_trainer_state(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The scheduler, RNG and trainer state saved beside the model."""
    return torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)


def load_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    model,
    optimizer,
    par: Parallel | None = None,
) -> dict[str, Any]:
    """Load model and optimizer state from ``checkpoint`` into this run's (sharded or not) ``model`` and
    ``optimizer``, whatever number of ranks wrote it; returns the trainer state (:func:`load_trainer_state`).

    Every rank must call this. Checkpoints written before DCP (``optimizer`` inside trainer_state.pt) load in
    a single process.
    """
    par = par or Parallel()
    path = Path(checkpoint)
    state = load_trainer_state(path)
    if (path / DCP_DIR).is_dir():
        model_state, optim_state = get_state_dict(model, optimizer)
        with _single_process(par):
            dcp.load(
                {"model": model_state, "optim": optim_state},
                checkpoint_id=path / DCP_DIR,
                no_dist=not par.enabled,
            )
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
