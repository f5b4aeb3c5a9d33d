"""Experiments as files: YAML files of :class:`coe.compare.CompareConfig` (which presets, which seeds, one
base TrainConfig every run shares, published numbers to put beside ours).

Shipped here: ``cpu.yaml`` (the main job's default, minutes on a laptop CPU) and ``paper.yaml`` (the paper's
presets and recipe, on a GPU). ``coe compare --experiment NAME_OR_FILE`` runs one; options given after it
override it. The YAML's spelling is the configuration tree's; files written for the flat options before it
(``scale: paper``, ``steps: 100``, ``save_every: 50``) still load, with a deprecation message.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from coe.checks import invalid
from coe.compare import CompareConfig
from coe.train.config import from_dict, merged, upgrade_legacy

log = logging.getLogger(__name__)

EXPERIMENTS_DIR = Path(__file__).parent

# Options of `coe compare` before experiments were files -> where they live now.
LEGACY_COMPARE_NAMES = {
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "micro_batch_size": "train.micro_batch_size",
    "seq_len": "train.seq_len",
    "lr": "train.optim.lr",
    "save_every": "train.checkpoint.every",
    "data": "train.data",
    "device": "train.runtime.device",
    "progress": "train.logging.progress",
}


def experiment_path(experiment: str) -> Path:
    """A shipped experiment's file (``cpu``, ``paper``) or a YAML file's path."""
    shipped = EXPERIMENTS_DIR / f"{experiment}.yaml"
    if shipped.is_file():
        return shipped
    if Path(experiment).is_file():
        return Path(experiment)
    names = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
    raise invalid("experiment", experiment, f"name a shipped experiment ({names}) or a YAML file")


def read_experiment(experiment: str) -> dict:
    """An experiment file's options as a mapping, legacy spellings upgraded (with a warning)."""
    path = experiment_path(experiment)
    mapping = upgrade_experiment(read_yaml(path), where=str(path))
    mapping.setdefault("name", path.stem)
    return mapping


def read_yaml(path: str | Path) -> dict:
    """A YAML file holding a mapping; ValueError naming the file otherwise."""
    try:
        mapping = yaml.safe_load(Path(path).read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a valid YAML file: {e}") from e
    if not isinstance(mapping, dict):
        raise ValueError(f"{path} must hold a mapping of options, not {type(mapping).__name__}")
    return mapping


def upgrade_experiment(mapping: dict, *, where: str) -> dict:
    """CompareConfig options in today's spelling: the flat options of `coe compare` before experiments were
    files moved into ``train``, a legacy ``scale`` taken as the shipped experiment these options modify."""
    scale = mapping.pop("scale", None)
    mapping = upgrade_legacy(mapping, where=where, names=LEGACY_COMPARE_NAMES)
    if isinstance(mapping.get("train"), dict):
        mapping["train"] = upgrade_legacy(mapping["train"], where=f"{where}: train")
    if scale is not None:
        log.warning(
            "%s: option 'scale' is deprecated, use 'experiment' (coe compare --experiment NAME)", where
        )
        mapping = merged(read_experiment(scale), mapping)
    return mapping


def load_experiment(experiment: str = "cpu", overrides: dict | None = None) -> CompareConfig:
    """The CompareConfig of a shipped experiment (``cpu``, ``paper``) or of a YAML file, with ``overrides``
    (a nested mapping of options, e.g. ``{"seeds": [1], "train": {"runtime": {"device": "cuda"}}}``)."""
    return from_dict(CompareConfig, merged(read_experiment(experiment), overrides or {}))
