"""The report of a comparison: finished training runs of several presets side by side (one row per preset, the
mean over its seeds), their loss curves, and the routing of each preset's final checkpoint.

    out/report.md, out/report.html   the answer in numbers, the table with its columns explained, the loss
                                     curves, published numbers, the routing per preset
    out/loss_curves.png              validation and training loss, each preset's mean over its seeds
    out/results.json                 every number of the table, one entry per preset, and the answer's lines
    out/routing/<run name>/          the routing analysis of each preset's lowest seed that has one
    out/decode/<run name>.json       its greedy decoding latency per token and KV-cache bytes

The first preset is the baseline: the report opens with every other preset's final validation loss against
it (:func:`headline`). Published numbers (:class:`ReferenceResults`) get a table of their own when given.
report.html is report.md rendered (:func:`coe.analysis.html.markdown_html`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coe.analysis.html import markdown_html, page
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
    """Published numbers to set against ours, per preset (a table of their own in the report)."""

    label: str
    """What the numbers are, the heading of their table, e.g. "paper val loss (MetaMathQA, step 1000)"."""
    val_loss: dict[str, float]
    """Preset -> validation loss."""
    note: str = ""
    """One sentence on how comparable they are (under the heading of their table)."""


_PAPER_LABEL = re.compile(r"(?:CoE-\d+|MoE)\(\d+/\d+\)")


def label(preset: str) -> str:
    """The paper's name of a preset ("CoE-2(4/64)") where its description opens with one, else the preset."""
    head = list_presets()[preset].split(":")[0]
    return head if _PAPER_LABEL.fullmatch(head) else preset


def run_name(preset: str, seed: int) -> str:
    """The run directory's name: the preset, and the seed unless it is 0 (the runs of one seed keep the names
    they had before there were seeds)."""
    return preset if seed == 0 else f"{preset}-seed{seed}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean_of(summaries: list[dict], key: str) -> float | None:
    """The mean of ``key`` over the summaries that have it."""
    return _mean([x[key] for x in summaries if x.get(key) is not None])


def analyze_run(
    out: Path, run: FinishedRun, *, device: str = "auto", progress: bool | None = None
) -> dict[str, Any] | None:
    """Routing analysis of a run's final checkpoint into ``out/routing/<run name>`` (co-selection and load
    figures, analysis.json, report.html) and its headline numbers. ``progress``: progress bars of the
    analysis (None: on a terminal only).

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
            progress=progress,
            description=f"routing of {name}",
        )
    elif (target / JSON_FILE).is_file():
        log.info("%s has no checkpoint in %s: the routing analysis in %s is kept", name, run.run_dir, target)
    else:
        log.warning("%s has no checkpoint in %s: no routing figures", name, run.run_dir)
        return None
    numbers = routing_numbers(json.loads((target / JSON_FILE).read_text()))
    figures = [figure for figure in ROUTING_FIGURES if (target / f"{figure}.png").is_file()]
    return {"dir": f"routing/{name}", "figures": figures, **numbers}


def routing_numbers(summary: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a routing analysis (its analysis.json): load max/mean averaged over (layer,
    iteration) with its lowest and highest, the busiest expert's share of the tokens (max/mean is at most
    N / K, so it is not comparable across K; the share is), unused experts, re-selection in the next
    iteration against chance, distinct paths per layer."""
    iterations = [it for layer in summary["layers"] for it in layer["iterations"]]
    transitions = [tr for layer in summary["layers"] for tr in layer["transitions"]]
    loads = [it["load"]["max_over_mean"] for it in iterations]
    return {
        "tokens": summary["tokens"],
        "load_max_over_mean": _mean(loads),
        "load_max_over_mean_range": [min(loads), max(loads)],
        "busiest_expert_share": _mean(loads) * summary["model"]["top_k"] / summary["model"]["experts"],
        "unused_experts": sum(len(it["load"]["unused_experts"]) for it in iterations),
        "layer_iterations": len(iterations),
        "expert_reselection": _mean([tr["expert_reselection"] for tr in transitions]),
        "expert_reselection_expected": _mean([tr["expert_reselection_expected"] for tr in transitions]),
        "distinct_paths": _mean([layer["paths"]["distinct"] for layer in summary["layers"]]),
    }


# Greedy decoding timed per preset for the report: batch 1, the prompt and length of an interactive call.
DECODE_SETTINGS = dict(batch=1, prompt_tokens=32, new_tokens=64)


def measure_decode(out: Path, run: FinishedRun, *, device: str = "auto") -> dict[str, Any] | None:
    """Per-token decoding latency of a run's final checkpoint on ``device``
    (:func:`coe.generation.decode_latency`, the decode path "auto", :data:`DECODE_SETTINGS`), written to
    ``out/decode/<run name>.json``. A run whose checkpoints are gone keeps the figures written while they
    were there; None when there are neither."""
    import torch

    from coe.device import resolve_device
    from coe.generation import decode_latency
    from coe.modeling import CoEForCausalLM
    from coe.train.checkpoint import latest_checkpoint

    name = run_name(run.preset, run.seed)
    target = Path(out) / "decode" / f"{name}.json"
    checkpoint = latest_checkpoint(run.run_dir)
    if checkpoint is None:
        if target.is_file():
            return json.loads(target.read_text())
        log.warning("%s has no checkpoint in %s: no decoding latency", name, run.run_dir)
        return None
    dev = resolve_device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32  # as generation runs there
    model = CoEForCausalLM.from_pretrained(checkpoint, dtype=dtype).to(dev).eval()
    figures = decode_latency(model, **DECODE_SETTINGS)
    figures["dtype"] = str(dtype).removeprefix("torch.")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def routing_sentence(r: dict[str, Any]) -> str:
    """One line of a run's headline routing numbers (see :func:`analyze_run`)."""
    text = (
        f"Over {r['tokens']:,} validation tokens: load max/mean {r['load_max_over_mean']:.2f} (mean over "
        f"layers and iterations: the busiest expert is chosen by {r['busiest_expert_share']:.0%} of the "
        f"tokens), {r['unused_experts']} unused (layer, iteration, expert) triples, "
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


def _lowest_seed(by_seed: dict[int, FinishedRun], measure: Callable[[FinishedRun], Any]) -> Any:
    """``measure`` of a preset's lowest seed for which it is not None (None when it is None for all)."""
    for seed in sorted(by_seed):
        if (value := measure(by_seed[seed])) is not None:
            return value
    return None


def _row(
    by_seed: dict[int, FinishedRun],
    routing: dict[str, Any] | None,
    reference: ReferenceResults | None,
    decode: dict[str, Any] | None = None,
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
        "label": label(first.preset),
        "description": list_presets()[first.preset],
        "seeds": list(summaries),
        "val_loss": _mean_of(values, "val_loss"),
        "test_loss": _mean_of(values, "test_loss"),
        "accuracy": _mean_of(values, "accuracy"),
        "accuracy_problems": s.get("accuracy_problems"),
        "val_loss_by_seed": {str(seed): x["val_loss"] for seed, x in summaries.items()},
        "test_loss_by_seed": {str(seed): x.get("test_loss") for seed, x in summaries.items()},
        "revisions": sorted({run_revision(x) for x in values}),
        "reference_val_loss": None if reference is None else reference.val_loss.get(first.preset),
        "total_params_M": s["total_params"] / 1e6,
        "active_params_M": s["active_params"] / 1e6,
        "expert_combinations": s["expert_combinations"],
        "C": config.inner_iter,
        "K": config.num_experts_per_tok,
        "N": config.n_routed_experts,
        "tokens_per_s": _mean_of(values, "tokens_per_s"),
        # Unknown (None) when any seed's is: a run resumed from a checkpoint that did not record it.
        "peak_memory_gib": None
        if any(x["peak_memory_gib"] is None for x in values)
        else max(x["peak_memory_gib"] for x in values),
        "train_time_s": _mean_of(values, "train_time_s"),
        "tokens": s["tokens"],
        "device": s["device"],
        "routing": routing,
        "decode": decode,
    }


def _gap(value: float, baseline: float) -> str:
    """``value - baseline`` and its share of ``baseline``: "-0.043 (-3.6%)"."""
    return f"{value - baseline:+.3f} ({100 * (value - baseline) / baseline:+.1f}%)"


def _spread(values: list[float]) -> str:
    """The range of ``values`` ("1.130-1.150"), or the one value."""
    low, high = min(values), max(values)
    return f"{low:.3f}" if low == high else f"{low:.3f}-{high:.3f}"


def _listed(seeds: list[int]) -> str:
    """ "seed 0", "seeds 0 and 1", "seeds 0, 1 and 2"."""
    names = [str(s) for s in seeds]
    return f"seed{'s' if len(names) > 1 else ''} " + (
        names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    )


def _over(r: dict[str, Any], key: str, seeds: list[int]) -> float | None:
    """The mean of a by-seed entry (``val_loss_by_seed``) over ``seeds``; None where a seed lacks it."""
    values = [r.get(key, {}).get(str(seed)) for seed in seeds]
    return None if None in values else sum(values) / len(values)


def _paired(r: dict[str, Any], base: dict[str, Any], common: list[int]) -> str:
    """The seeds a comparison is over and, with several, the gap of each seed to the baseline's run of the
    same seed, judged by the rule docs/results.md uses: a gap holds where its sign is the same on every seed
    and its mean is larger than each preset's own range over those seeds."""
    n = len(common)
    only = [
        f"{x['label']} also ran {_listed(extra)}"
        for x in (r, base)
        if (extra := sorted(set(x["seeds"]) - set(common)))
    ]
    both = f"the seed{'s' if n > 1 else ''} both ran"
    said = f"{n} seed{'s' if n > 1 else ''}" if not only else f"{_listed(common)}, {both} ({'; '.join(only)})"
    if n == 1:
        return said
    gaps = [r["val_loss_by_seed"][str(s)] - base["val_loss_by_seed"][str(s)] for s in common]
    spread = max(
        max(x["val_loss_by_seed"][str(s)] for s in common)
        - min(x["val_loss_by_seed"][str(s)] for s in common)
        for x in (r, base)
    )
    mean = sum(gaps) / n
    same_sign = all(g > 0 for g in gaps) or all(g < 0 for g in gaps)
    verdict = (
        "the sign differs between seeds"
        if not same_sign
        else f"the same sign on every seed, the mean gap {'larger' if abs(mean) > spread else 'not larger'} "
        f"than either preset's range over these seeds (up to {spread:.3f})"
    )
    return f"{said}, gap per seed {', '.join(f'{g:+.3f}' for g in gaps)}: {verdict}"


def headline(rows: list[dict[str, Any]]) -> list[str]:
    """The comparison in numbers, one line per preset after the first (the baseline): final validation loss
    against the baseline's over the seeds both ran (means), the difference and its share, and with several
    seeds each seed's gap to the baseline's run of the same seed and whether it holds (:func:`_paired`); the
    test loss beside it where both measured it. Presets with no seed in common are compared by their means
    over their own seeds. One preset: its loss alone.

    ``rows``: results.json entries (:func:`_row`), the baseline first.
    """
    base = rows[0]
    if len(rows) == 1:
        n = len(base["seeds"])
        losses = list(base["val_loss_by_seed"].values())
        seeds = f"{n} seed{'s' if n > 1 else ''}" + (f" ({_spread(losses)})" if n > 1 else "")
        return [f"{base['label']} {base['val_loss']:.3f}, {seeds}"]
    lines = []
    for r in rows[1:]:
        a, b = r["label"], base["label"]
        common = sorted(set(r["seeds"]) & set(base["seeds"]))
        if common:
            val, base_val = _over(r, "val_loss_by_seed", common), _over(base, "val_loss_by_seed", common)
            test, base_test = _over(r, "test_loss_by_seed", common), _over(base, "test_loss_by_seed", common)
            seeds = _paired(r, base, common)
        else:
            val, base_val, test, base_test = (
                r["val_loss"],
                base["val_loss"],
                r["test_loss"],
                base["test_loss"],
            )
            seeds = f"no seed in common ({a}: {_listed(r['seeds'])}; {b}: {_listed(base['seeds'])}), means"
        if test is not None and base_test is not None:
            lines.append(
                f"{a} vs {b}: validation loss {val:.3f} vs {base_val:.3f}, {_gap(val, base_val)}; test loss "
                f"{test:.3f} vs {base_test:.3f}, {_gap(test, base_test)}; {seeds}"
            )
        else:
            lines.append(f"{a} {val:.3f} vs {b} {base_val:.3f}: {_gap(val, base_val)}, {seeds}")
    return lines


@dataclass
class Column:
    """A column of the report's table: its header, what it means, and its cell of a results.json entry."""

    name: str
    note: str
    cell: Callable[[dict[str, Any]], str]


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _columns(rows: list[dict[str, Any]], accuracy: bool) -> list[Column]:
    """The table's columns for ``rows`` (the baseline first): those that say something for these runs.
    ``accuracy``: with the accuracy column."""
    base = rows[0]
    several = any(len(r["seeds"]) > 1 for r in rows)
    test = any(r["test_loss"] is not None for r in rows)
    revisions = sorted({v for r in rows for v in r["revisions"]})
    columns = [
        Column(
            "preset", "the configuration (`coe presets`; described below the table).", lambda r: r["preset"]
        ),
        Column(
            "val loss",
            "language-model loss on the validation split at the last step, mean over the preset's seeds; "
            "lower is better.",
            lambda r: _loss(r["val_loss"]),
        ),
    ]
    if len(rows) > 1:
        columns.append(
            Column(
                f"vs {base['label']}",
                f"val loss minus the baseline's ({base['preset']}, the first preset), and that as a share "
                "of the baseline's.",
                lambda r: "baseline" if r is base else _gap(r["val_loss"], base["val_loss"]),
            )
        )
    columns.append(
        Column(
            "seeds",
            "the seeds the preset finished; its numbers are means over them (peak memory: the largest).",
            lambda r: ", ".join(map(str, r["seeds"])),
        )
    )
    if several:
        columns.append(
            Column(
                "val loss over seeds",
                "the lowest and highest val loss of the preset's seeds ('-' for one seed).",
                lambda r: "-" if len(r["seeds"]) == 1 else _spread(list(r["val_loss_by_seed"].values())),
            )
        )
    if test:
        columns.append(
            Column(
                "test loss",
                "language-model loss on the test split (eval.test_loss: a transfer set beside an "
                "in-distribution validation split), mean over seeds; '-' where not measured.",
                lambda r: _loss(r["test_loss"]),
            )
        )
    if accuracy:
        columns.append(
            Column(
                "accuracy",
                "exact match of the number after `####` under greedy decoding on held-out problems, mean "
                "over seeds; '-' where not measured.",
                lambda r: "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%",
            )
        )
    columns += [
        Column("params (M)", "parameters in millions.", lambda r: f"{r['total_params_M']:.2f}"),
        Column(
            "active (M)",
            "parameters a token uses in millions (shared and chosen experts, attention, embeddings).",
            lambda r: f"{r['active_params_M']:.2f}",
        ),
        Column(
            "expert paths",
            "routing paths through one MoE layer, C(N, K)^C: K of N routed experts chosen in each of C "
            "iterations.",
            lambda r: f"{r['expert_combinations']:.3g}",
        ),
        Column(
            "tokens/s",
            "training tokens per second, mean over seeds, on the device of the device column.",
            lambda r: f"{r['tokens_per_s']:,.0f}",
        ),
        Column(
            "peak mem (GiB)",
            "the largest peak memory of the seeds: allocated GPU memory on a GPU, the process's resident "
            "set on a CPU (the whole process: data and tokenizer included); n/a where a seed was resumed "
            "from a checkpoint that did not record the peak before it.",
            lambda r: "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}",
        ),
        Column("train time (s)", "training time, mean over seeds.", lambda r: f"{r['train_time_s']:.0f}"),
        Column("device", "where the lowest seed trained.", lambda r: str(r["device"])),
        Column(
            "decode ms/token",
            "median interval between generated tokens, greedy, batch {batch}, {new_tokens} new tokens after "
            "a {prompt_tokens}-token prompt, the lowest seed's final checkpoint on the report's device "
            "(bf16 on a GPU, float32 on a CPU; the static cache, its decoding step compiled on a GPU); "
            "'-' where not measured.".format(**DECODE_SETTINGS),
            lambda r: "-" if not r.get("decode") else f"{r['decode']['p50_ms']:.2f}",
        ),
        Column(
            "KV bytes/token",
            "bytes the key/value cache holds per token and sequence over all layers (MLA: the latent and the "
            "rotary key).",
            lambda r: "-" if not r.get("decode") else f"{r['decode']['kv_bytes_per_token']:,.0f}",
        ),
        Column(
            "decode peak (GiB)",
            "peak allocated GPU memory while decoding ('-' on a CPU, which has no per-call peak).",
            lambda r: (
                "-"
                if not r.get("decode") or r["decode"]["peak_gib"] is None
                else f"{r['decode']['peak_gib']:.2f}"
            ),
        ),
    ]
    if revisions != [TRAINING_REVISION]:
        columns.append(
            Column(
                "revision",
                "the training revisions of the preset's runs: "
                + "; ".join(f"{v}: {TRAINING_REVISIONS[v]}" for v in revisions)
                + ". Runs of different revisions computed different things: compare them with care.",
                lambda r: ", ".join(map(str, r["revisions"])),
            )
        )
    return columns


def _accuracy_note(rows: list[dict[str, Any]]) -> str | None:
    """Why the accuracy column is left out (None: it is shown): not measured, or 0 for every preset."""
    measured = [r for r in rows if r["accuracy"] is not None]
    if not measured:
        return "Accuracy was not measured (eval.accuracy_problems 0)."
    if any(r["accuracy"] > 0 for r in measured):
        return None
    problems = sorted({r["accuracy_problems"] for r in measured if r.get("accuracy_problems")})
    on = f" on {', '.join(map(str, problems))} held-out problems" if problems else ""
    which = "every preset" if len(measured) == len(rows) else "every preset that measured it"
    return (
        f"Accuracy is left out of the table: exact match was 0%{on} for {which}, so it does not tell "
        "them apart (models this small or this briefly trained do not yet solve the problems)."
    )


def _intro(rows: list[dict[str, Any]], description: str) -> str:
    """The paragraph under the answer: the experiment, what the runs share, where the seeds differ."""
    tokens = sorted({r["tokens"] for r in rows})
    sentences = [
        description,
        (
            f"Every run: the same data and token budget ({', '.join(f'{t:,}' for t in tokens)} training "
            "tokens); under one seed every preset has the same initialisation stream and data order."
        ),
    ]
    revisions = sorted({v for r in rows for v in r["revisions"]})
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
    return " ".join(s for s in sentences if s)


def _table(header: list[str], cells: list[list[str]]) -> list[str]:
    """A Markdown table (``|`` in a cell escaped)."""
    row = lambda values: "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"  # noqa: E731
    return [row(header), "|" + "---|" * len(header), *map(row, cells)]


def _reference_table(rows: list[dict[str, Any]], reference: ReferenceResults) -> list[str]:
    """The published numbers in a section of their own: each preset's, its gap to the baseline there and
    ours here (only the ordering is comparable across data)."""
    base = rows[0]
    published = [r for r in rows if r["reference_val_loss"] is not None]
    md = ["", f"## Published numbers: {reference.label}", ""]
    if reference.note:
        md += [reference.note, ""]
    if not published:
        return [*md, "None of these presets has a published number."]
    header = ["preset", reference.label]
    theirs = base["reference_val_loss"]
    if theirs is not None and len(published) > 1:
        header += [f"published vs {base['label']}", f"here vs {base['label']}"]
    cells = []
    for r in published:
        cell = [r["preset"], f"{r['reference_val_loss']:.3f}"]
        if len(header) > 2:
            same = r is base
            cell += [
                "baseline" if same else _gap(r["reference_val_loss"], theirs),
                "baseline" if same else _gap(r["val_loss"], base["val_loss"]),
            ]
        cells.append(cell)
    return md + _table(header, cells)


ROUTING_INTRO = (
    "Each preset's final checkpoint (of its lowest seed that has one) on validation tokens: expert "
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
    progress: bool | None = None,
) -> Path:
    """The report of ``runs`` in ``out``: report.md, report.html, loss_curves.png, results.json and
    routing/<run name>/ (the final checkpoint of each preset's lowest finished seed analysed on ``device``; a
    seed whose checkpoints and analysis are both gone gives way to the next).

    Args:
        out: the report directory (made if need be)
        runs: the finished runs, one per (preset, seed); a preset's seeds are averaged; the first preset
            is the baseline the others are measured against
        title: the report's heading
        description: one sentence on the experiment, at the start of the introduction
        reference: published validation losses, a table of their own (None: no such table)
        device: where the routing analysis runs ("auto", "cpu", "cuda", ...)
        progress: progress bars of the routing analysis (None: on a terminal only)

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
            label(preset): mean_metrics([run.metrics for run in by_seed.values()])
            for preset, by_seed in presets.items()
        },
    )
    # Each preset's lowest seed that has them: a seed's checkpoints may be gone before it was analysed.
    routing = {
        preset: _lowest_seed(by_seed, lambda run: analyze_run(out, run, device=device, progress=progress))
        for preset, by_seed in presets.items()
    }
    decode = {
        preset: _lowest_seed(by_seed, lambda run: measure_decode(out, run, device=device))
        for preset, by_seed in presets.items()
    }
    rows = [_row(by_seed, routing[preset], reference, decode[preset]) for preset, by_seed in presets.items()]
    answer = headline(rows)
    (out / "results.json").write_text(
        json.dumps(
            {
                "title": title,
                "description": description,
                "headline": answer,
                "reference": None
                if reference is None
                else {"label": reference.label, "note": reference.note},
                "runs": rows,
            },
            indent=2,
        )
    )

    accuracy_note = _accuracy_note(rows)
    columns = _columns(rows, accuracy=accuracy_note is None)
    what = "Final validation loss, mean over seeds, lower is better"
    if len(rows) > 1:
        what += f"; differences against the baseline, {rows[0]['label']} (the first preset)"
    md = [f"# {title}", ""]
    md += [f"**{answer[0]}.**"] if len(answer) == 1 else [f"- **{line}.**" for line in answer]
    md += ["", what + ".", "", _intro(rows, description), ""]
    md += _table([c.name for c in columns], [[c.cell(r) for c in columns] for r in rows])
    md += ["", "Columns:", ""] + [f"- **{c.name}**: {c.note}" for c in columns]
    if accuracy_note:
        md += ["", accuracy_note]
    md += ["", "Presets:", ""] + [f"- `{r['preset']}`: {r['description']}" for r in rows]
    md += [
        "",
        "![validation and training loss](loss_curves.png)",
        "",
        "Loss curves: each preset's mean over its seeds, on a linear axis zoomed past the first steps; the "
        "final validation losses are written at the ends of the curves.",
    ]
    if reference is not None:
        md += _reference_table(rows, reference)
    md += ["", "## Routing", "", ROUTING_INTRO]
    for preset, r in routing.items():
        if r is None:
            continue
        md += ["", f"### {preset}", "", routing_sentence(r) + f" [Report]({r['dir']}/report.html).", ""]
        md += [f"![{preset} {figure}]({r['dir']}/{figure}.png)" for figure in r["figures"]]
    text = "\n".join(md) + "\n"
    (out / "report.md").write_text(text)
    body = text.split("\n", 1)[1]  # the title is the page's own heading
    (out / "report.html").write_text(page(title, markdown_html(body)))
    return out / "report.md"
