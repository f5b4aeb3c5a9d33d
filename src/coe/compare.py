"""The main job: train several presets on the same data, seeds and token budget, then write one report.

Runs go one after another into ``out_dir/runs/<preset>`` (``<preset>-seed<N>`` for seeds other than 0); a run
that already finished with the same settings is skipped and an interrupted one resumes, so a comparison can be
spread over several sessions. A run directory that holds a run with other settings is never overwritten. The
report (``report.md``, ``report.html``, ``loss_curves.png``, ``results.json``) gives each preset's mean over
its seeds and puts the paper's numbers beside ours where the preset matches.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import yaml

from coe.data import DataSpec
from coe.config import CoEConfig
from coe.presets import PRESETS
from coe.train.config import (
    TRAINING_REVISION,
    TRAINING_REVISIONS,
    ModelSpec,
    OptimSpec,
    TrainConfig,
    run_revision,
)
from coe.train.metrics import read_metrics

log = logging.getLogger(__name__)

# Validation loss at step 1000 on MetaMathQA, from the reference repository's plot data (the paper's runs).
PAPER_VAL_LOSS = {
    "moe-8-64": 1.196, "coe-2-4-64": 1.121, "coe-2-4-48": 1.210, "moe-16-64": 1.166, "moe-24-64": 1.175,
    "coe-2-8-64": 1.120, "moe-8-64-8l": 1.109, "moe-8-64-12l": 1.070, "coe-2-8-64-shared-router": 1.244,
    "coe-2-8-64-outer-residual": 1.175, "dense-8-8": 1.232, "dense-8-8-c2": 1.293,
}

# What each scale means. "cpu" is tuned to finish both default runs in a few minutes on 2 CPU cores.
SCALES = {
    "cpu": dict(size="small", steps=240, batch_size=16, seq_len=128, eval_every=40, eval_batches=4,
                accuracy_problems=50, max_new_tokens=96, lr=2e-3, tokenizer_vocab_size=2048,
                data=DataSpec(synthetic_train=30_000, synthetic_eval=300)),
    # The paper's runs: 1000 steps of 64 x 512 tokens. Training data: the synthetic generator mixed with GSM8K
    # train; validation loss and accuracy on GSM8K test. The BPE is trained to 32,768 tokens (the model keeps
    # the paper's 102,400-row embedding, so compute matches the paper; the paper used DeepSeek's tokenizer).
    "paper": dict(size="paper", steps=1000, batch_size=64, seq_len=512, eval_every=50, eval_batches=8,
                  accuracy_problems=250, max_new_tokens=200, lr=3e-4, tokenizer_vocab_size=32768,
                  data=DataSpec(source=("synthetic-math", "../shared/data/gsm8k/train.parquet"),
                                val_source="../shared/data/gsm8k/test.parquet",
                                test_source="../shared/data/gsm8k/test.parquet")),
}


@dataclass
class CompareConfig:
    """Which presets to compare, at which scale, and where the report goes."""

    out_dir: str = "reports/compare"
    """Report directory; the runs go to out_dir/runs/<preset> (<preset>-seed<N> for seeds other than 0)."""
    scale: Literal["cpu", "paper"] = "cpu"
    """"cpu": CPU-sized variants (same experts and selection ratio, small widths and vocabulary), a few
    minutes on 2 cores. "paper": the paper's presets (a GPU)."""
    presets: list[str] = field(default_factory=lambda: ["moe-8-64", "coe-2-4-64"])
    """Presets to train (``coe presets`` lists them)."""
    steps: int | None = None
    """Optimizer steps of every run (None: the scale's default)."""
    batch_size: int | None = None
    """Sequences per step (None: the scale's default)."""
    micro_batch_size: int | None = None
    """Sequences per forward / backward (None: the whole batch)."""
    seq_len: int | None = None
    """Tokens per sequence (None: the scale's default)."""
    lr: float | None = None
    """Peak learning rate (None: the scale's default)."""
    save_every: int | None = None
    """Steps between checkpoints (None: every 10 evaluations). Checkpoints only matter for resuming: a run
    counts as finished whatever this was, so it may differ between the runs of one comparison (e.g. 1000 on a
    machine whose disk holds only one checkpoint of the 12-layer model)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Every preset trains once per seed; under one seed every preset has the same initialisation stream and
    data order. The report gives the mean over seeds and their range."""
    data: DataSpec | None = None
    """Data (None: the scale's default)."""
    device: str = "auto"
    """"auto", "cpu", "cuda"."""
    progress: bool = True
    """Progress bars."""
    report_only: bool = False
    """Train nothing: write the report from the runs of ``presets`` that already finished (the others are left
    out), e.g. after runs spread over several sessions or machines."""

    def __post_init__(self) -> None:
        unknown = [p for p in self.presets if p not in PRESETS]
        if unknown:
            raise ValueError(f"presets {unknown} are unknown: choose from {', '.join(PRESETS)}")
        if not self.presets:
            raise ValueError("presets is empty: name at least one")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds={self.seeds}: give one or more distinct non-negative integers")

    def run_config(self, preset: str, seed: int = 0) -> TrainConfig:
        s = SCALES[self.scale]
        return TrainConfig(
            out_dir=str(Path(self.out_dir) / "runs" / run_name(preset, seed)), model=ModelSpec(preset, s["size"]),
            data=self.data or s["data"], optim=OptimSpec(lr=self.lr or s["lr"]),
            steps=self.steps or s["steps"], batch_size=self.batch_size or s["batch_size"],
            micro_batch_size=self.micro_batch_size, seq_len=self.seq_len or s["seq_len"], seed=seed,
            tokenizer_vocab_size=s["tokenizer_vocab_size"], eval_every=s["eval_every"],
            eval_batches=s["eval_batches"], accuracy_problems=s["accuracy_problems"],
            max_new_tokens=s["max_new_tokens"], log_every=max(1, s["eval_every"] // 4),
            save_every=s["eval_every"] * 10 if self.save_every is None else self.save_every, resume=True,
            device=self.device, progress=self.progress)


def run_name(preset: str, seed: int) -> str:
    """The run directory's name: the preset, and the seed unless it is 0 (the runs of one seed keep the names
    they had before there were seeds)."""
    return preset if seed == 0 else f"{preset}-seed{seed}"


# Settings that change how a run is watched and kept, or where it runs, not what it computes: a run trained with
# device='cuda' is the same run for a report made with device='auto' on a machine without a GPU (summary.json
# records the device it trained on).
HOUSEKEEPING = ("progress", "save_every", "keep_last", "device")


def _other_settings(cfg: TrainConfig) -> list[str]:
    """The settings (dotted names) in which the run saved in ``cfg.out_dir`` differs from ``cfg``, housekeeping
    aside; empty when they agree or nothing is saved there."""
    path = Path(cfg.out_dir) / "config.yaml"
    if not path.is_file():
        return []
    saved = yaml.safe_load(path.read_text())
    kept = {name: saved.get(name, getattr(cfg, name)) for name in HOUSEKEEPING}
    current = yaml.safe_load(yaml.safe_dump(replace(cfg, **kept).to_dict()))
    # A run saved before a field existed ran with that field's default: fill it in before comparing.
    defaults = yaml.safe_load(yaml.safe_dump(TrainConfig().to_dict()))
    return _differences(_with_defaults(saved, defaults), current)


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: {x!r} saved, {y!r} now")
    return out


def _saved_summary(cfg: TrainConfig) -> dict | None:
    """The summary.json of the run in ``cfg.out_dir``, if that run finished."""
    path = Path(cfg.out_dir) / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _with_defaults(saved: dict, defaults: dict) -> dict:
    """``saved`` with the keys it lacks taken from ``defaults``, recursively."""
    merged = dict(defaults)
    for key, value in saved.items():
        merged[key] = (_with_defaults(value, defaults[key]) if isinstance(value, dict)
                       and isinstance(defaults.get(key), dict) else value)
    return merged


def train_preset(cfg: CompareConfig, preset: str, seed: int = 0) -> dict | None:
    """The summary of ``preset``'s run with ``seed``: trained (or resumed) unless it already finished with these
    settings. With ``report_only``, None for a run that has not finished. A run directory holding a run with
    other settings is left alone: ValueError naming them (with ``report_only``: left out of the report). Runs
    share nothing but ``out_dir``, so separate processes (one per GPU) may train different runs of one
    comparison."""
    from coe.train.trainer import train  # the trainer pulls in torch and friends; keep `coe presets` light

    run_cfg = cfg.run_config(preset, seed)
    name, where = run_name(preset, seed), run_cfg.out_dir
    other = _other_settings(run_cfg)
    summary = _saved_summary(run_cfg)
    # What keeps this run from being trained (or resumed) here: other settings, or an older training revision.
    if other:
        conflict = f"with other settings ({'; '.join(other)})"
    elif summary is not None and run_revision(summary) != TRAINING_REVISION:
        revision = run_revision(summary)
        conflict = (f"made by training revision {revision} ({TRAINING_REVISIONS[revision]}); this code is "
                    f"revision {TRAINING_REVISION}")
    else:
        conflict = None
    if conflict and not cfg.report_only:
        raise ValueError(f"{where} holds a run of {name} {conflict}: choose another out_dir, or delete that "
                         "directory to train it again")
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


def compare(cfg: CompareConfig) -> Path:
    """Train every preset with every seed (skipping finished runs, resuming interrupted ones) and write the
    report of every preset with at least one finished seed."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for preset in cfg.presets:
        for seed in cfg.seeds:
            summary = train_preset(cfg, preset, seed)
            if summary is not None:
                results.setdefault(preset, {})[seed] = {
                    "summary": summary, "metrics": read_metrics(cfg.run_config(preset, seed).out_dir)}
    if not results:
        raise ValueError(f"none of the presets {cfg.presets} has finished in {out / 'runs'}: nothing to report")
    write_report(out, cfg, results)
    return out


# Validation tokens whose routing is analysed per run for the report: a few seconds per run on a CPU.
ROUTING_TOKENS = 1024
ROUTING_FIGURES = ("coselection", "load")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean_of(summaries: list[dict], key: str) -> float | None:
    """The mean of ``key`` over the summaries that have it."""
    return _mean([x[key] for x in summaries if x.get(key) is not None])


def analyze_run(out: Path, cfg: CompareConfig, preset: str, seed: int = 0) -> dict | None:
    """Routing analysis of a run's final checkpoint into ``out/routing/<run name>`` (co-selection and load
    figures, analysis.json, report.html) and its headline numbers.

    A run whose checkpoints are gone (checkpoints stay out of the repository) keeps the analysis written while
    they were there; None when there is neither.
    """
    from coe.analysis.report import JSON_FILE, analyze_checkpoint
    from coe.train.checkpoint import latest_checkpoint
    from coe.device import resolve_device

    run_cfg = cfg.run_config(preset, seed)
    name = run_name(preset, seed)
    target = out / "routing" / name
    checkpoint = latest_checkpoint(run_cfg.out_dir)
    if checkpoint is not None:
        analyze_checkpoint(checkpoint, target, data=run_cfg.data, tokens=ROUTING_TOKENS,
                           seq_len=min(run_cfg.seq_len, ROUTING_TOKENS), device=resolve_device(cfg.device),
                           figures=ROUTING_FIGURES)
    elif (target / JSON_FILE).is_file():
        log.info("%s has no checkpoint in %s: the routing analysis in %s is kept", name, run_cfg.out_dir, target)
    else:
        log.warning("%s has no checkpoint in %s: no routing figures", name, run_cfg.out_dir)
        return None
    summary = json.loads((target / JSON_FILE).read_text())
    iterations = [it for layer in summary["layers"] for it in layer["iterations"]]
    transitions = [tr for layer in summary["layers"] for tr in layer["transitions"]]

    return {
        "dir": f"routing/{name}", "tokens": summary["tokens"],
        "figures": [name for name in ROUTING_FIGURES if (target / f"{name}.png").is_file()],
        "load_max_over_mean": _mean([it["load"]["max_over_mean"] for it in iterations]),
        "unused_experts": sum(len(it["load"]["unused_experts"]) for it in iterations),
        "expert_reselection": _mean([tr["expert_reselection"] for tr in transitions]),
        "expert_reselection_expected": _mean([tr["expert_reselection_expected"] for tr in transitions]),
        "distinct_paths": _mean([layer["paths"]["distinct"] for layer in summary["layers"]]),
    }


def routing_sentence(r: dict) -> str:
    """One line of a run's headline routing numbers (see :func:`analyze_run`)."""
    text = (f"Over {r['tokens']:,} validation tokens: load max/mean {r['load_max_over_mean']:.2f} (mean over "
            f"layers and iterations), {r['unused_experts']} unused (layer, iteration, expert) triples, "
            f"{r['distinct_paths']:,.0f} distinct routing paths per layer.")
    if r["expert_reselection"] is None:
        return text + " C = 1: no next iteration, so no co-selection or re-selection."
    return text + (f" Experts chosen again in the next iteration: {r['expert_reselection']:.3f} "
                   f"({r['expert_reselection_expected']:.3f} if the iterations chose independently).")


def mean_metrics(runs: list[list[dict]]) -> list[dict]:
    """The loss records (split, step, loss) of several runs' metrics averaged over the runs, at the (split,
    step) points that every run logged (a warning when some runs logged points the others lack)."""
    points = [{(m["split"], m["step"]): m["loss"] for m in metrics if "loss" in m} for metrics in runs]
    common = sorted(set.intersection(*(set(p) for p in points)))  # by split, then step
    if any(len(p) != len(common) for p in points):
        log.warning("the runs logged different steps: their mean curve keeps the %d points all of them have",
                    len(common))
    return [{"split": split, "step": step, "loss": sum(p[(split, step)] for p in points) / len(points)}
            for split, step in common]


def write_report(out: Path, cfg: CompareConfig, results: dict) -> None:
    """report.md, report.html, loss_curves.png, results.json and routing/<run>/ (the final checkpoint of each
    preset's lowest finished seed analysed: co-selection and load figures) from ``results``: {preset: {seed:
    {"summary", "metrics"}}}, the finished seeds of each preset. Numbers are means over a preset's seeds."""
    plot_loss_curves(out / "loss_curves.png", {
        preset: {"metrics": mean_metrics([r["metrics"] for r in by_seed.values()])}
        for preset, by_seed in results.items()})
    routing = {preset: analyze_run(out, cfg, preset, min(by_seed)) for preset, by_seed in results.items()}
    rows = []
    for preset, by_seed in results.items():
        summaries = {seed: by_seed[seed]["summary"] for seed in sorted(by_seed)}
        s = summaries[min(summaries)]
        mean = partial(_mean_of, list(summaries.values()))
        config = CoEConfig.from_preset(preset, SCALES[cfg.scale]["size"])
        rows.append({
            "preset": preset, "description": PRESETS[preset][0], "seeds": list(summaries),
            "val_loss": mean("val_loss"), "accuracy": mean("accuracy"),
            "val_loss_by_seed": {str(seed): x["val_loss"] for seed, x in summaries.items()},
            "revisions": sorted({run_revision(x) for x in summaries.values()}),
            "paper_val_loss": PAPER_VAL_LOSS.get(preset),
            "total_params_M": s["total_params"] / 1e6, "active_params_M": s["active_params"] / 1e6,
            "expert_combinations": s["expert_combinations"], "C": config.inner_iter,
            "K": config.num_experts_per_tok, "N": config.n_routed_experts,
            "tokens_per_s": mean("tokens_per_s"),
            "peak_memory_gib": max(x["peak_memory_gib"] for x in summaries.values()),
            "train_time_s": mean("train_time_s"), "tokens": s["tokens"], "device": s["device"],
            "routing": routing[preset],
        })
    (out / "results.json").write_text(json.dumps({"scale": cfg.scale, "runs": rows}, indent=2))
    header = ["preset", "val loss", "seeds (range)", "paper val loss (step 1000)", "accuracy", "params (M)",
              "active (M)", "expert paths C(N,K)^C", "tokens/s", "peak mem (GiB)", "train time (s)", "revision"]

    def cells(r: dict) -> list[str]:
        acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
        paper = "-" if r["paper_val_loss"] is None else f"{r['paper_val_loss']:.3f}"
        losses = r["val_loss_by_seed"].values()
        seeds = str(len(losses)) + (f" ({min(losses):.4f}-{max(losses):.4f})" if len(losses) > 1 else "")
        return [r["preset"], f"{r['val_loss']:.4f}", seeds, paper, acc, f"{r['total_params_M']:.2f}",
                f"{r['active_params_M']:.2f}", f"{r['expert_combinations']:.3g}", f"{r['tokens_per_s']:,.0f}",
                f"{r['peak_memory_gib']:.2f}", f"{r['train_time_s']:.0f}",
                ", ".join(map(str, r["revisions"]))]

    scale_note = ("CPU-sized variants: the presets' expert counts, K, C and layers with small widths and "
                  "vocabulary, on the embedded synthetic math data" if cfg.scale == "cpu" else
                  "the paper's presets")
    tokens = {r["tokens"] for r in rows}
    seed_sets = {tuple(r["seeds"]) for r in rows}
    revisions = sorted({v for r in rows for v in r["revisions"]})
    revision_note = "" if revisions == [TRAINING_REVISION] else (
        " Training revisions (the last column): " + "; ".join(f"{v}: {TRAINING_REVISIONS[v]}" for v in revisions)
        + ". Runs of different revisions computed different things: compare them with care.")
    notes = revision_note + ("" if len(seed_sets) == 1 else
                                 " The presets have finished different seeds (the 'seeds' column), so their "
                                 "means are not over the same seeds: compare them with care.")
    intro = (f"Scale: {cfg.scale} ({scale_note}). Every run: the same data and token budget "
             f"({', '.join(f'{t:,}' for t in sorted(tokens))} training tokens); under one seed every preset "
             "has the same initialisation stream and data order. Numbers are means over a preset's seeds "
             "(peak memory: the largest)." + notes + " Validation loss is the "
             "language-model loss on the validation split; accuracy is exact match of the number after "
             "`####` under greedy decoding on held-out problems. The paper's numbers are validation losses "
             "at step 1000 on MetaMathQA (batch 64 x 512), so only the ordering is comparable, not the values.")
    md = ["# CoE vs MoE", "", intro, "", "![validation loss](loss_curves.png)", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    md += ["", "Presets:", ""] + [f"- `{r['preset']}`: {r['description']}" for r in rows]
    routing_intro = ("Each preset's final checkpoint (of its lowest finished seed) on validation tokens: "
                     "expert load per (layer, iteration) and, for CoE, the iteration 1 -> 2 co-selection "
                     "heatmaps (the probability that a token which chose expert i then chooses expert j, and "
                     "its ratio to independent choices). The "
                     "full analysis of a checkpoint: `coe analyze RUN_DIR`.")
    md += ["", "## Routing", "", routing_intro]
    routing_html = []
    for preset, r in routing.items():
        if r is None:
            continue
        images = [f"{r['dir']}/{name}.png" for name in r["figures"]]
        md += ["", f"### {preset}", "", routing_sentence(r) + f" [Report]({r['dir']}/report.html).", ""]
        md += [f"![{preset} {Path(image).stem}]({image})" for image in images]
        routing_html.append(
            f"<h3>{html.escape(preset)}</h3><p>{html.escape(routing_sentence(r))} "
            f"<a href='{html.escape(r['dir'])}/report.html'>Report</a>.</p>"
            + "".join(f"<img src='{html.escape(image)}' alt='{html.escape(preset)} {Path(image).stem}' "
                      "style='max-width:100%'>" for image in images))
    (out / "report.md").write_text("\n".join(md) + "\n")
    table = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>" for r in rows)
    (out / "report.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>CoE vs MoE</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>CoE vs MoE</h1><p>{html.escape(intro)}</p><img src='loss_curves.png' alt='validation loss' "
        f"width='900'><table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in header)}</tr>{table}</table>"
        f"<h2>Routing</h2><p>{html.escape(routing_intro)}</p>{''.join(routing_html)}</body></html>\n")


def plot_loss_curves(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_val, ax_train) = plt.subplots(1, 2, figsize=(12, 4.5))
    for preset, r in results.items():
        val = [m for m in r["metrics"] if m["split"] == "val"]
        train = [m for m in r["metrics"] if m["split"] == "train"]
        ax_val.plot([m["step"] for m in val], [m["loss"] for m in val], marker="o", label=preset)
        ax_train.plot([m["step"] for m in train], [m["loss"] for m in train], label=preset)
    for ax, title in ((ax_val, "validation loss"), (ax_train, "training loss")):
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.set_yscale("log")  # the runs differ by a few percent: a log axis keeps the gap visible
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
