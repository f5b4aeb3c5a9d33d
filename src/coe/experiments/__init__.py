"""Experiments as files: YAML files of :class:`coe.compare.CompareConfig` (which presets, which seeds, one
base TrainConfig every run shares, published numbers to put beside ours).

Shipped here: ``cpu.yaml`` (the main job's default, minutes on a laptop CPU) and ``paper.yaml`` (the paper's
presets and recipe, on a GPU). ``coe compare --experiment NAME_OR_FILE`` runs one; options given after it
override it. The YAML's spelling is the configuration tree's; files written for the flat options before it
(``scale: paper``, ``steps: 100``, ``save_every: 50``) still load, with a deprecation message. A file may
start from a shipped experiment with ``base: paper`` and change only what differs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from coe.checks import from_dict, invalid
from coe.compare import CompareConfig
from coe.train.config import merged, upgrade_legacy

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


# What `--scale NAME` / `scale: NAME` meant before experiments were files: "paper" was the packed first
# reproduction, now paper-packed.yaml (paper.yaml is the reference code's data regime since).
LEGACY_SCALES = {"cpu": "cpu", "paper": "paper-packed"}


def legacy_scale(scale: str) -> str:
    """The experiment an old ``scale`` value names (a deprecation warning)."""
    experiment = LEGACY_SCALES.get(scale, scale)
    log.warning(
        "'scale %s' is deprecated: it is the experiment %r (--experiment %s)", scale, experiment, experiment
    )
    return experiment


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
    own = read_yaml(path)
    mapping = upgrade_experiment(own, where=str(path))
    mapping["name"] = own.get("name", path.stem)  # not its base's
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
    """CompareConfig options in today's spelling, on top of their ``base`` experiment if they name one
    (``base: paper``: the paper experiment with this file's changes). The flat options of `coe compare`
    before experiments were files move into ``train`` (a null one meant "the scale's default" and is
    dropped), and a legacy ``scale`` is taken as ``base``."""
    mapping = dict(mapping)
    if "scale" in mapping:
        log.warning("%s: option 'scale' is deprecated, use 'base'", where)
        mapping.setdefault("base", legacy_scale(mapping.pop("scale")))
    for old in LEGACY_COMPARE_NAMES:
        if old in mapping and mapping[old] is None:
            del mapping[old]
    base = mapping.pop("base", None)
    mapping = upgrade_legacy(mapping, where=where, names=LEGACY_COMPARE_NAMES)
    if isinstance(mapping.get("train"), dict):
        mapping["train"] = upgrade_legacy(mapping["train"], where=f"{where}: train")
    if base is not None:
        mapping = merged(read_experiment(base), mapping)
    return mapping


def load_experiment(experiment: str = "cpu", overrides: dict | None = None) -> CompareConfig:
    """The CompareConfig of a shipped experiment (``cpu``, ``paper``) or of a YAML file, with ``overrides``
    (a nested mapping of options, e.g. ``{"seeds": [1], "train": {"runtime": {"device": "cuda"}}}``)."""
    return from_dict(CompareConfig, merged(read_experiment(experiment), overrides or {}))
