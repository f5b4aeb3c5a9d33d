"""The report of a comparison: finished training runs of several presets side by side (one row per preset, the
mean over its seeds), their loss curves, and the routing of each preset's final checkpoint.

    out/report.md, out/report.html   the table with its notes, the loss curves, the routing per preset
    out/loss_curves.png              validation and training loss, each preset's mean over its seeds
    out/results.json                 every number of the table, one entry per preset
    out/routing/<run name>/          the routing analysis of each preset's lowest finished seed

Published numbers (:class:`ReferenceResults`) go in a column of their own when they are given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coe.analysis.html import escape, page, table
from coe.data import DataSpec
from coe.presets import list_presets
from coe.train.config import TRAINING_REVISION, TRAINING_REVISIONS, run_revision

log = logging.getLogger(__name__)

# Validation tokens whose routing is analysed per run for the report: a few seconds per run on a CPU.
ROUTING_TOKENS = 1024
ROUTING_FIGURES = ("coselection", "load")


@dataclass
class FinishedRun:
    """One finished training run of a comparison."""

    preset: str
    seed: int
    run_dir: Path
    """Holds checkpoints/, config.yaml, metrics.jsonl, summary.json."""
    summary: dict
    """Its summary.json."""
    metrics: list[dict]
    """Its metrics.jsonl (:func:`coe.train.metrics.read_metrics`)."""
    data: DataSpec
    """The run's data: its validation split feeds the routing analysis."""
    seq_len: int
    model_size: str
    """"paper", "small" or "tiny": with ``preset``, the CoEConfig that gives C, K and N."""


@dataclass
class ReferenceResults:
    """Published numbers to put beside ours, per preset."""

    label: str
    """The column header, e.g. "paper val loss (MetaMathQA, step 1000)"."""
    val_loss: dict[str, float]
    """Preset -> validation loss."""
    note: str = ""
    """One sentence on how comparable they are (ends the report's introduction)."""


def run_name(preset: str, seed: int) -> str:
    """The run directory's name: the preset, and the seed unless it is 0 (the runs of one seed keep the names
    they had before there were seeds)."""
    return preset if seed == 0 else f"{preset}-seed{seed}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean_of(summaries: list[dict], key: str) -> float | None:
    """The mean of ``key`` over the summaries that have it."""
    return _mean([x[key] for x in summaries if x.get(key) is not None])


def analyze_run(out: Path, run: FinishedRun, *, device: str = "auto") -> dict[str, Any] | None:
    """Routing analysis of a run's final checkpoint into ``out/routing/<run name>`` (co-selection and load
    figures, analysis.json, report.html) and its headline numbers.

    A run whose checkpoints are gone (checkpoints stay out of the repository) keeps the analysis written while
    they were there; None when there is neither.
    """
    from coe.analysis.report import JSON_FILE, analyze_checkpoint  # matplotlib: only when a report is made
    from coe.device import resolve_device
    from coe.train.checkpoint import latest_checkpoint

    name = run_name(run.preset, run.seed)
    target = Path(out) / "routing" / name
    checkpoint = latest_checkpoint(run.run_dir)
    if checkpoint is not None:
        analyze_checkpoint(
            checkpoint,
            target,
            data=run.data,
            tokens=ROUTING_TOKENS,
            seq_len=min(run.seq_len, ROUTING_TOKENS),
            device=resolve_device(device),
            figures=ROUTING_FIGURES,
        )
    elif (target / JSON_FILE).is_file():
        log.info("%s has no checkpoint in %s: the routing analysis in %s is kept", name, run.run_dir, target)
    else:
        log.warning("%s has no checkpoint in %s: no routing figures", name, run.run_dir)
        return None
    summary = json.loads((target / JSON_FILE).read_text())
    iterations = [it for layer in summary["layers"] for it in layer["iterations"]]
    transitions = [tr for layer in summary["layers"] for tr in layer["transitions"]]
    return {
        "dir": f"routing/{name}",
        "tokens": summary["tokens"],
        "figures": [figure for figure in ROUTING_FIGURES if (target / f"{figure}.png").is_file()],
        "load_max_over_mean": _mean([it["load"]["max_over_mean"] for it in iterations]),
        "unused_experts": sum(len(it["load"]["unused_experts"]) for it in iterations),
        "expert_reselection": _mean([tr["expert_reselection"] for tr in transitions]),
        "expert_reselection_expected": _mean([tr["expert_reselection_expected"] for tr in transitions]),
        "distinct_paths": _mean([layer["paths"]["distinct"] for layer in summary["layers"]]),
    }


def routing_sentence(r: dict[str, Any]) -> str:
    """One line of a run's headline routing numbers (see :func:`analyze_run`)."""
    text = (
        f"Over {r['tokens']:,} validation tokens: load max/mean {r['load_max_over_mean']:.2f} (mean over "
        f"layers and iterations), {r['unused_experts']} unused (layer, iteration, expert) triples, "
        f"{r['distinct_paths']:,.0f} distinct routing paths per layer."
    )
    if r["expert_reselection"] is None:
        return text + " C = 1: no next iteration, so no co-selection or re-selection."
    return text + (
        f" Experts chosen again in the next iteration: {r['expert_reselection']:.3f} "
        f"({r['expert_reselection_expected']:.3f} if the iterations chose independently)."
    )


def mean_metrics(runs: list[list[dict]]) -> list[dict]:
    """The loss records (split, step, loss) of several runs' metrics averaged over the runs, at the (split,
    step) points that every run logged (a warning when some runs logged points the others lack)."""
    points = [{(m["split"], m["step"]): m["loss"] for m in metrics if "loss" in m} for metrics in runs]
    common = sorted(set.intersection(*(set(p) for p in points)))  # by split, then step
    if any(len(p) != len(common) for p in points):
        log.warning(
            "the runs logged different steps: their mean curve keeps the %d points all of them have",
            len(common),
        )
    return [
        {"split": split, "step": step, "loss": sum(p[(split, step)] for p in points) / len(points)}
        for split, step in common
    ]


def _by_preset(runs: list[FinishedRun]) -> dict[str, dict[int, FinishedRun]]:
    """preset -> seed -> run, presets in the order they first appear, seeds in increasing order."""
    grouped: dict[str, dict[int, FinishedRun]] = {}
    for run in runs:
        if run.seed in grouped.get(run.preset, {}):
            raise ValueError(
                f"runs holds {run_name(run.preset, run.seed)} twice: give each (preset, seed) once"
            )
        grouped.setdefault(run.preset, {})[run.seed] = run
    return {preset: dict(sorted(by_seed.items())) for preset, by_seed in grouped.items()}


def _row(
    by_seed: dict[int, FinishedRun], routing: dict[str, Any] | None, reference: ReferenceResults | None
) -> dict[str, Any]:
    """results.json's entry of one preset: means over its seeds (peak memory: the largest), the lowest seed's
    sizes, C, K and N."""
    from coe.config import CoEConfig

    first = next(iter(by_seed.values()))
    summaries = {seed: run.summary for seed, run in by_seed.items()}
    s, values = first.summary, list(summaries.values())
    config = CoEConfig.from_preset(first.preset, size=first.model_size)
    return {
        "preset": first.preset,
        "description": list_presets()[first.preset],
        "seeds": list(summaries),
        "val_loss": _mean_of(values, "val_loss"),
        "test_loss": _mean_of(values, "test_loss"),
        "accuracy": _mean_of(values, "accuracy"),
        "val_loss_by_seed": {str(seed): x["val_loss"] for seed, x in summaries.items()},
        "revisions": sorted({run_revision(x) for x in values}),
        "reference_val_loss": None if reference is None else reference.val_loss.get(first.preset),
        "total_params_M": s["total_params"] / 1e6,
        "active_params_M": s["active_params"] / 1e6,
        "expert_combinations": s["expert_combinations"],
        "C": config.inner_iter,
        "K": config.num_experts_per_tok,
        "N": config.n_routed_experts,
        "tokens_per_s": _mean_of(values, "tokens_per_s"),
        "peak_memory_gib": max(x["peak_memory_gib"] for x in values),
        "train_time_s": _mean_of(values, "train_time_s"),
        "tokens": s["tokens"],
        "device": s["device"],
        "routing": routing,
    }


def _cells(r: dict[str, Any], reference: ReferenceResults | None, test_loss: bool) -> list[str]:
    """A results.json entry as the table's cells (``test_loss``: with the test-split loss column)."""
    acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
    losses = r["val_loss_by_seed"].values()
    seeds = str(len(losses)) + (f" ({min(losses):.4f}-{max(losses):.4f})" if len(losses) > 1 else "")
    published = (
        []
        if reference is None
        else ["-" if r["reference_val_loss"] is None else f"{r['reference_val_loss']:.3f}"]
    )
    test = ["-" if r["test_loss"] is None else f"{r['test_loss']:.4f}"] if test_loss else []
    return [
        r["preset"],
        f"{r['val_loss']:.4f}",
        seeds,
        *test,
        *published,
        acc,
        f"{r['total_params_M']:.2f}",
        f"{r['active_params_M']:.2f}",
        f"{r['expert_combinations']:.3g}",
        f"{r['tokens_per_s']:,.0f}",
        f"{r['peak_memory_gib']:.2f}",
        f"{r['train_time_s']:.0f}",
        ", ".join(map(str, r["revisions"])),
    ]


def _intro(rows: list[dict[str, Any]], description: str, reference: ReferenceResults | None) -> str:
    """The paragraph above the table: the experiment, what the runs share, what the numbers are."""
    tokens = sorted({r["tokens"] for r in rows})
    revisions = sorted({v for r in rows for v in r["revisions"]})
    sentences = [
        description,
        (
            f"Every run: the same data and token budget ({', '.join(f'{t:,}' for t in tokens)} training "
            "tokens); under one seed every preset has the same initialisation stream and data order."
        ),
        "Numbers are means over a preset's seeds (peak memory: the largest).",
    ]
    if revisions != [TRAINING_REVISION]:
        sentences.append(
            "Training revisions (the last column): "
            + "; ".join(f"{v}: {TRAINING_REVISIONS[v]}" for v in revisions)
            + ". Runs of different revisions computed different things: compare them with care."
        )
    if len({tuple(r["seeds"]) for r in rows}) > 1:
        sentences.append(
            "The presets have finished different seeds (the 'seeds' column), so their means are "
            "not over the same seeds: compare them with care."
        )
    sentences.append(
        "Validation loss is the language-model loss on the validation split; accuracy is exact "
        "match of the number after `####` under greedy decoding on held-out problems."
    )
    if reference is not None:
        sentences.append(reference.note)
    return " ".join(s for s in sentences if s)


ROUTING_INTRO = (
    "Each preset's final checkpoint (of its lowest finished seed) on validation tokens: expert "
    "load per (layer, iteration) and, for CoE, the iteration 1 -> 2 co-selection heatmaps (the "
    "probability that a token which chose expert i then chooses expert j, and its ratio to "
    "independent choices). The full analysis of a checkpoint: `coe analyze RUN_DIR`."
)


def write_report(
    out: Path,
    runs: list[FinishedRun],
    *,
    title: str,
    description: str,
    reference: ReferenceResults | None = None,
    device: str = "auto",
) -> Path:
    """The report of ``runs`` in ``out``: report.md, report.html, loss_curves.png, results.json and
    routing/<run name>/ (the final checkpoint of each preset's lowest finished seed analysed on ``device``).

    Args:
        out: the report directory (made if need be)
        runs: the finished runs, one per (preset, seed); a preset's seeds are averaged
        title: the report's heading
        description: one sentence on the experiment, at the start of the introduction
        reference: published validation losses, a column of their own (None: no such column)
        device: where the routing analysis runs ("auto", "cpu", "cuda", ...)

    Returns the path of report.md.
    """
    from coe.analysis.figures import loss_curves  # matplotlib: only when a report is made

    if not runs:
        raise ValueError("runs is empty: there is nothing to report")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    presets = _by_preset(runs)
    loss_curves(
        out / "loss_curves.png",
        {
            preset: mean_metrics([run.metrics for run in by_seed.values()])
            for preset, by_seed in presets.items()
        },
    )
    routing = {
        preset: analyze_run(out, next(iter(by_seed.values())), device=device)
        for preset, by_seed in presets.items()
    }
    rows = [_row(by_seed, routing[preset], reference) for preset, by_seed in presets.items()]
    (out / "results.json").write_text(
        json.dumps(
            {
                "title": title,
                "description": description,
                "reference": None
                if reference is None
                else {"label": reference.label, "note": reference.note},
                "runs": rows,
            },
            indent=2,
        )
    )

    # The loss on the test split, where the runs measured it (eval.test_loss): with validation in the
    # training distribution and a test set from elsewhere (GSM8K test), the transfer beside it.
    test_loss = any(r["test_loss"] is not None for r in rows)
    header = [
        "preset",
        "val loss",
        "seeds (range)",
        *(["test loss"] if test_loss else []),
        *([] if reference is None else [reference.label]),
        "accuracy",
        "params (M)",
        "active (M)",
        "expert paths C(N,K)^C",
        "tokens/s",
        "peak mem (GiB)",
        "train time (s)",
        "revision",
    ]
    cells = [_cells(r, reference, test_loss) for r in rows]
    intro = _intro(rows, description, reference)
    md = [
        f"# {title}",
        "",
        intro,
        "",
        "![validation loss](loss_curves.png)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    md += ["| " + " | ".join(row) + " |" for row in cells]
    md += ["", "Presets:", ""] + [f"- `{r['preset']}`: {r['description']}" for r in rows]
    md += ["", "## Routing", "", ROUTING_INTRO]
    routing_html = []
    for preset, r in routing.items():
        if r is None:
            continue
        images = [f"{r['dir']}/{figure}.png" for figure in r["figures"]]
        md += ["", f"### {preset}", "", routing_sentence(r) + f" [Report]({r['dir']}/report.html).", ""]
        md += [f"![{preset} {Path(image).stem}]({image})" for image in images]
        routing_html.append(
            f"<h3>{escape(preset)}</h3><p>{escape(routing_sentence(r))} "
            f"<a href='{escape(r['dir'])}/report.html'>Report</a>.</p>"
            + "".join(
                f"<img src='{escape(image)}' alt='{escape(f'{preset} {Path(image).stem}')}'>"
                for image in images
            )
        )
    (out / "report.md").write_text("\n".join(md) + "\n")
    (out / "report.html").write_text(
        page(
            title,
            f"<p>{escape(intro)}</p><img src='loss_curves.png' alt='validation loss' width='900'>"
            + table(header, cells)
            + f"<h2>Routing</h2><p>{escape(ROUTING_INTRO)}</p>"
            + "".join(routing_html),
        )
    )
    return out / "report.md"
