"""The main job: train several presets on the same data, seeds and token budget, then write one report.

An *experiment* is a YAML file of :class:`CompareConfig`: which presets, which seeds, and one base
:class:`~coe.train.config.TrainConfig` that every run shares (:mod:`coe.experiments` ships ``cpu``, the
default, and ``paper``, and loads any user YAML of the same shape).

Runs go one after another into ``out_dir/runs/<preset>`` (``<preset>-seed<N>`` for seeds other than 0); a run
that already finished with the same settings is skipped and an interrupted one resumes, so a comparison can be
spread over several sessions. A run directory that holds a run with other settings is never overwritten. The
report itself is :mod:`coe.analysis.comparison`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from coe.analysis.comparison import FinishedRun, ReferenceResults, run_name, write_report
from coe.checks import invalid
from coe.presets import PRESETS
from coe.train.config import TRAINING_REVISION, TRAINING_REVISIONS, TrainConfig, other_settings, run_revision

log = logging.getLogger(__name__)


@dataclass
class CompareConfig:
    """An experiment: which presets to compare with which seeds, every run's settings, and the report."""

    name: str = "custom"
    """The experiment's name (the shipped ones: their file's stem)."""
    description: str = ""
    """One sentence on what the experiment is; it opens the report."""
    out_dir: str = "reports/compare"
    """Report directory; the runs go to out_dir/runs/<preset> (<preset>-seed<N> for seeds other than 0)."""
    presets: list[str] = field(default_factory=lambda: ["moe-8-64", "coe-2-4-64"])
    """Presets to train (``coe presets`` lists them)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Every preset trains once per seed; under one seed every preset has the same initialisation stream and
    data order. The report gives the mean over seeds and their range."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """What every run shares. Per run, model.preset, seed and out_dir are set and checkpoint.resume is on."""
    reference: ReferenceResults | None = None
    """Published numbers to put beside ours (the paper's, for the paper experiment)."""
    report_only: bool = False
    """Train nothing: write the report from the runs of ``presets`` that already finished (the others are left
    out), e.g. after runs spread over several sessions or machines."""

    def __post_init__(self) -> None:
        unknown = [p for p in self.presets if p not in PRESETS]
        if not self.presets or unknown:
            raise invalid("presets", self.presets, f"name one or more of {', '.join(PRESETS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise invalid("seeds", self.seeds, "give one or more distinct non-negative integers")
        default = TrainConfig()  # what every run sets for itself must not be set here, where it would be lost
        for name, value, kept, instead in (
            ("train.out_dir", self.train.out_dir, default.out_dir, "out_dir"),
            ("train.seed", self.train.seed, default.seed, "seeds"),
            ("train.model.preset", self.train.model.preset, default.model.preset, "presets"),
        ):
            if value != kept:
                raise invalid(name, value, f"set per run: use {instead} instead")

    def run_config(self, preset: str, seed: int = 0) -> TrainConfig:
        """The settings of ``preset``'s run with ``seed``."""
        t = self.train
        return replace(
            t,
            out_dir=str(Path(self.out_dir) / "runs" / run_name(preset, seed)),
            model=replace(t.model, preset=preset),
            seed=seed,
            checkpoint=replace(t.checkpoint, resume=True),
        )


def train_preset(cfg: CompareConfig, preset: str, seed: int = 0) -> dict | None:
    """The summary of ``preset``'s run with ``seed``: trained (or resumed) unless it already finished with
    these settings. With ``report_only``, None for a run that has not finished. A run directory holding a run
    with other settings is left alone: ValueError naming them (with ``report_only``: left out of the report).
    Runs share nothing but ``out_dir``, so separate processes (one per GPU) may train different runs of one
    comparison."""
    from coe.train.trainer import train  # the trainer pulls in torch and friends; keep `coe presets` light

    run_cfg = cfg.run_config(preset, seed)
    name, where = run_name(preset, seed), run_cfg.out_dir
    other = other_settings(run_cfg)
    summary_path = Path(where) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    # What keeps this run from being trained (or resumed) here: other settings, or an older training revision.
    conflict = None
    if other:
        conflict = f"with other settings ({'; '.join(other)})"
    elif summary is not None and run_revision(summary) != TRAINING_REVISION:
        revision = run_revision(summary)
        conflict = (
            f"made by training revision {revision} ({TRAINING_REVISIONS[revision]}); this code is "
            f"revision {TRAINING_REVISION}"
        )
    if conflict and not cfg.report_only:
        raise ValueError(
            f"{where} holds a run of {name} {conflict}: choose another out_dir, or delete that "
            "directory to train it again"
        )
    if other:  # report_only: a run of other settings is not this comparison's
        log.warning("%s in %s ran %s: left out of the report", name, where, conflict)
        return None
    if conflict:  # report_only: an older revision's run is reported, marked as such
        log.warning("%s in %s was %s: reported, marked as such", name, where, conflict)
    if summary is not None:
        log.info("%s already finished in %s: %s", name, where, "reported" if cfg.report_only else "skipped")
    elif cfg.report_only:
        log.info("%s has not finished in %s: left out of the report", name, where)
    else:
        log.info("training %s into %s", name, where)
        summary = train(run_cfg).summary
    return summary


def finished_run(cfg: CompareConfig, preset: str, seed: int, summary: dict) -> FinishedRun:
    """What the report needs of a finished run."""
    from coe.train.metrics import read_metrics  # imports torch: keep `coe compare --help` light

    run = cfg.run_config(preset, seed)
    return FinishedRun(
        preset=preset,
        seed=seed,
        run_dir=Path(run.out_dir),
        summary=summary,
        metrics=read_metrics(run.out_dir),
        data=run.data,
        seq_len=run.seq_len,
        model_size=run.model.size,
    )


def compare(cfg: CompareConfig) -> Path:
    """Train every preset with every seed (skipping finished runs, resuming interrupted ones) and write the
    report of every preset with at least one finished seed; returns the report's path. The report's answer
    (:func:`coe.analysis.comparison.headline`) is logged last."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    finished = []
    for preset in cfg.presets:
        for seed in cfg.seeds:
            summary = train_preset(cfg, preset, seed)
            if summary is not None:
                finished.append(finished_run(cfg, preset, seed, summary))
    if not finished:
        raise ValueError(
            f"none of the presets {cfg.presets} has finished in {out / 'runs'}: nothing to report"
        )
    report = write_report(
        out,
        finished,
        title=f"CoE vs MoE: {cfg.name}",
        description=cfg.description,
        reference=cfg.reference,
        device=cfg.train.runtime.device,
        progress=cfg.train.logging.progress,
    )
    answer = json.loads((out / "results.json").read_text())["headline"]
    log.info("%s, final validation loss (lower is better):", cfg.name)
    for line in answer:
        log.info("  %s", line)
    return report
