"""The tables and the loss-curve figures of docs/results.md, read from the runs of one or more paper-scale
comparisons (DIR/runs/*/metrics.jsonl and summary.json).

    python benchmarks/paper_runs_table.py                    # results/paper and results/paper-2
    python benchmarks/paper_runs_table.py results/paper-2    # one comparison

For each comparison directory DIR: the runs at step 1000 beside the paper, each against that directory's own
MoE(8/64) (runs of one directory share a training revision, runs of two directories need not); the trainer's
throughput scaled by each preset's training FLOPs (docs/performance.md); the validation loss every 50 steps;
and the figure docs/<DIR's name>_loss_curves.png. Where a preset ran with several seeds (runs/<preset>-seedN
beside runs/<preset>, seed 0), each seed's gap to MoE(8/64) of the same seed at the last step every such run
reached, their mean and range, and the gap by step (mean, lowest, highest over seeds); the figure then holds
every seed of those presets, and docs/<DIR's name>_seed0_loss_curves.png seed 0 of every preset. Then, for
presets finished in several directories, their val loss in each, their gap to each directory's MoE(8/64) and
their change from the first directory. Works on finished and unfinished runs alike (a run that stopped early
simply has fewer points); runs kept apart in DIR/stopped/ (stopped before their final evaluation) join the
loss-by-step tables as "NAME (stopped)".
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import argparse  # noqa: E402
import json  # noqa: E402

from coe.analysis.comparison import routing_numbers  # noqa: E402
from coe.analysis.figures import loss_curves  # noqa: E402
from coe.experiments import load_experiment  # noqa: E402
from coe.presets import PRESETS  # noqa: E402
from coe.train.metrics import read_metrics  # noqa: E402

PAPER_VAL_LOSS = load_experiment("paper").reference.val_loss
BASELINE = "moe-8-64"  # every gap is to it


def finished_runs(runs_dir: Path) -> dict[str, dict]:
    """The summary.json of every finished run in ``runs_dir``, in the paper's table order."""
    return {
        name: json.loads((runs_dir / name / "summary.json").read_text())
        for name in PRESETS
        if (runs_dir / name / "summary.json").is_file()
    }


def gib(summary: dict) -> str:
    """A run's peak memory; n/a where it was resumed from a checkpoint that did not record the peak before."""
    return "n/a" if summary["peak_memory_gib"] is None else f"{summary['peak_memory_gib']:.1f}"


def summary_table(finished: dict[str, dict]) -> None:
    """Finished runs at step 1000 beside the paper, each as a difference to MoE(8/64) in both."""
    from coe.train.config import run_revision

    base, paper_base = finished.get(BASELINE, {}).get("val_loss"), PAPER_VAL_LOSS[BASELINE]
    print(
        "| preset | val loss | vs MoE(8/64) | paper | paper vs MoE(8/64) | exact match | tokens/s | "
        "peak GiB | train s | revision |"
    )
    print("|---" * 10 + "|")
    for name, s in finished.items():
        ours = "-" if base is None else f"{s['val_loss'] - base:+.3f}"
        paper = PAPER_VAL_LOSS[name]
        print(
            f"| {name} | {s['val_loss']:.3f} | {ours} | {paper:.3f} | {paper - paper_base:+.3f} | "
            f"{100 * s['accuracy']:.1f}% | {s['tokens_per_s']:,.0f} | {gib(s)} | "
            f"{s['train_time_s']:.0f} | {run_revision(s)} |"
        )
    print()


def by_source_table(finished: dict[str, dict]) -> None:
    """The final validation loss of each training source, for the runs that have it (runs trained from
    2026-12-03 on), each beside MoE(8/64)'s where that has it too ('-': a source a run did not have)."""
    runs = {name: s for name, s in finished.items() if "val_loss_by_source" in s}
    if not runs:
        return
    sources = list(dict.fromkeys(src for s in runs.values() for src in s["val_loss_by_source"]))
    base = finished.get(BASELINE, {}).get("val_loss_by_source", {})

    def cell(name: str, losses: dict[str, float], src: str) -> str:
        if src not in losses:
            return "-"
        gap = "" if name == BASELINE or src not in base else f" ({losses[src] - base[src]:+.4f})"
        return f"{losses[src]:.4f}{gap}"

    print("final validation loss by source (each source's validation documents; vs MoE(8/64))\n")
    print("| preset | " + " | ".join(sources) + " | share of tokens |")
    print("|---" * (len(sources) + 2) + "|")
    for name, s in runs.items():
        losses, tokens = s["val_loss_by_source"], s["val_tokens_by_source"]
        share = " / ".join(f"{100 * tokens[src] / sum(tokens.values()):.1f}%" for src in tokens)
        print(f"| {name} | " + " | ".join(cell(name, losses, src) for src in sources) + f" | {share} |")
    print()


def throughput_table(finished: dict[str, dict], runs: dict) -> None:
    """tokens/s of each finished run times its training FLOPs per token relative to moe-8-64 (what moe-8-64
    would run at if the step cost only its FLOPs), its peak memory, and the largest gradient norm it logged
    (a mean over a log window, before clipping); then the presets with no finished run and their FLOPs."""
    from coe import CoEConfig
    from coe.flops import train_flops_per_token

    def flops(name: str) -> float:
        return train_flops_per_token(CoEConfig.from_preset(name, size="paper"), 512)

    print(
        "| preset | training FLOPs / token vs moe-8-64 | tokens/s | x ratio (moe-8-64 equivalent) | peak GiB "
        "| largest grad norm |"
    )
    print("|---" * 6 + "|")
    for name, s in finished.items():
        ratio = flops(name) / flops(BASELINE)
        grad = max(
            m["grad_norm"] for m in runs[name]["metrics"] if m["split"] == "train" and "grad_norm" in m
        )
        print(
            f"| {name} | {ratio:.3f} | {s['tokens_per_s']:,.0f} | {s['tokens_per_s'] * ratio:,.0f} | "
            f"{gib(s)} | {grad:.2f} |"
        )
    missing = {name: flops(name) / flops(BASELINE) for name in PRESETS if name not in finished}
    if missing:  # what the comparison still has to train
        each = ", ".join(f"{name} {ratio:.2f}" for name, ratio in missing.items())
        total = sum(missing.values())
        print(f"\nnot finished (training FLOPs / token vs moe-8-64): {each}; {total:.1f} together")
    print()


def passes_table(passes: dict[str, dict[str, dict]]) -> None:
    """The presets finished in more than one comparison directory: each one's val loss there, its change from
    the first directory, and its gap to that directory's MoE(8/64)."""
    names = [name for name in PRESETS if sum(name in finished for finished in passes.values()) > 1]
    if not names:
        return
    first = next(iter(passes.values()))
    print("| preset | " + " | ".join(f"{d} (vs MoE(8/64); change)" for d in passes) + " |")
    print("|---" * (len(passes) + 1) + "|")
    for name in names:
        cells = []
        for finished in passes.values():
            if name not in finished:
                cells.append("-")
                continue
            loss, base = finished[name]["val_loss"], finished.get(BASELINE, {}).get("val_loss")
            gap = "-" if base is None else f"{loss - base:+.3f}"
            change = "-" if name not in first else f"{loss - first[name]['val_loss']:+.3f}"
            cells.append(f"{loss:.3f} ({gap}; {change})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def loss_curve_table(split: str, metrics: dict[str, list[dict]]) -> None:
    """The ``split`` losses of every run by step, and each one's difference from moe-8-64's."""
    losses = {name: {m["step"]: m["loss"] for m in ms if m["split"] == split} for name, ms in metrics.items()}
    losses = {name: by_step for name, by_step in losses.items() if by_step}
    if not losses:
        return
    base = losses.get(BASELINE)
    others = [name for name in losses if base is not None and name != BASELINE]
    print(f"{split} loss by step\n")
    print("| step | " + " | ".join([*losses, *(f"{n} - {BASELINE}" for n in others)]) + " |")
    print("|---" * (len(losses) + len(others) + 1) + "|")
    for step in sorted({s for by_step in losses.values() for s in by_step}):
        cells = [f"{by_step[step]:.4f}" if step in by_step else "-" for by_step in losses.values()]
        cells += [
            f"{losses[n][step] - base[step]:+.3f}" if step in losses[n] and step in base else "-"
            for n in others
        ]
        print(f"| {step} | " + " | ".join(cells) + " |")
    print()


def seed_of(name: str) -> tuple[str, int]:
    """``coe-2-4-64-seed2`` -> (``coe-2-4-64``, 2); a name without a seed suffix is seed 0."""
    preset, _, seed = name.rpartition("-seed")
    return (preset, int(seed)) if preset and seed.isdigit() else (name, 0)


def losses_by_seed(split: str, metrics: dict[str, list[dict]]) -> dict[str, dict[int, dict[int, float]]]:
    """preset -> seed -> step -> ``split`` loss, for the runs that logged that split."""
    losses: dict[str, dict[int, dict[int, float]]] = {}
    for name, ms in metrics.items():
        preset, seed = seed_of(name)
        by_step = {m["step"]: m["loss"] for m in ms if m["split"] == split}
        if by_step:
            losses.setdefault(preset, {})[seed] = by_step
    return losses


def single_seed_table(split: str, metrics: dict[str, list[dict]]) -> None:
    """For presets run with one seed: their ``split`` loss gap to each of MoE(8/64)'s seeds by step, as
    [lowest, highest] over those seeds (where MoE(8/64) ran several): how a single-seed gap compares with
    MoE(8/64)'s own spread."""
    losses = losses_by_seed(split, metrics)
    base = losses.get(BASELINE, {})
    single = [p for p, seeds in losses.items() if p != BASELINE and p in PRESETS and list(seeds) == [0]]
    if len(base) < 2 or not single:
        return
    print(
        f"{split} loss gap of single-seed presets to each of MoE(8/64)'s {len(base)} seeds, by step: "
        "[lowest, highest]\n"
    )
    print("| step | " + " | ".join(single) + " |")
    print("|---" * (len(single) + 1) + "|")
    for step in sorted({s for p in single for s in losses[p][0]}):
        cells = []
        for preset in single:
            loss = losses[preset][0].get(step)
            gaps = [loss - by_step[step] for by_step in base.values() if loss is not None and step in by_step]
            cells.append(f"[{min(gaps):+.3f}, {max(gaps):+.3f}]" if len(gaps) == len(base) else "-")
        print(f"| {step} | " + " | ".join(cells) + " |")
    print()


def seeds_table(split: str, metrics: dict[str, list[dict]]) -> None:
    """For presets run with several seeds: the ``split`` loss of each seed and its gap to MoE(8/64) of the
    same seed at the last step that every one of these runs reached, the gap's mean and range over seeds, and
    the gap by step (mean [lowest, highest])."""
    losses = losses_by_seed(split, metrics)
    base = losses.get(BASELINE, {})
    seeded = {p: seeds for p, seeds in losses.items() if len(seeds) > 1 and p in PRESETS}
    others = [p for p in seeded if p != BASELINE and set(seeded[p]) <= set(base)]
    if len(base) < 2 or not others:
        return
    runs = [by_step for p in (BASELINE, *others) for by_step in seeded[p].values()]
    last = max(set.intersection(*(set(by_step) for by_step in runs)))
    print(f"{split} loss over seeds at step {last} (the last step every seeded run reached)\n")
    print("| preset | seed | loss | vs MoE(8/64), same seed |")
    print("|---" * 4 + "|")
    for preset in (BASELINE, *others):
        for seed, by_step in sorted(seeded[preset].items()):
            gap = "-" if preset == BASELINE else f"{by_step[last] - base[seed][last]:+.4f}"
            print(f"| {preset} | {seed} | {by_step[last]:.4f} | {gap} |")
        values = [by_step[last] for by_step in seeded[preset].values()]
        mean, spread = sum(values) / len(values), max(values) - min(values)
        gaps = [seeded[preset][s][last] - base[s][last] for s in seeded[preset]]
        gap = (
            "-"
            if preset == BASELINE
            else (f"{sum(gaps) / len(gaps):+.4f} (from {min(gaps):+.4f} to {max(gaps):+.4f})")
        )
        print(f"| {preset} | mean (range) | {mean:.4f} ({spread:.4f}) | {gap} |")
    print()
    print(f"{split} loss gap to MoE(8/64) of the same seed, by step: mean [lowest, highest] over seeds\n")
    print("| step | " + " | ".join(others) + " |")
    print("|---" * (len(others) + 1) + "|")
    for step in sorted({s for by_step in runs for s in by_step}):
        cells = []
        for preset in others:
            gaps = [
                by_step[step] - base[seed][step]
                for seed, by_step in seeded[preset].items()
                if step in by_step and step in base[seed]
            ]
            cells.append(
                f"{sum(gaps) / len(gaps):+.3f} [{min(gaps):+.3f}, {max(gaps):+.3f}] ({len(gaps)} seeds)"
                if gaps
                else "-"
            )
        print(f"| {step} | " + " | ".join(cells) + " |")
    print()


def seed_finals_table(runs_dir: Path, names: list[str]) -> None:
    """For presets run with several seeds: each finished seed's final numbers (in-distribution validation,
    GSM8K test loss where measured, exact match) and its gaps to MoE(8/64) of the same seed, then the mean and
    range over the seeds."""
    finals: dict[str, dict[int, dict]] = {}  # preset -> seed -> summary
    for name in names:
        if (runs_dir / name / "summary.json").is_file():
            preset, seed = seed_of(name)
            finals.setdefault(preset, {})[seed] = json.loads((runs_dir / name / "summary.json").read_text())
    finals = {p: seeds for p, seeds in finals.items() if len(seeds) > 1}
    base = finals.get(BASELINE, {})
    if not base:
        return
    print("final numbers over seeds (summary.json of each seed)\n")
    print("| preset | seed | val loss | vs MoE(8/64) | GSM8K test loss | vs MoE(8/64) | exact match |")
    print("|---" * 7 + "|")

    def gap(s: dict, seed: int, key: str) -> str:
        other = base.get(seed, {}).get(key)
        return "-" if other is None or s.get(key) is None or s is base.get(seed) else f"{s[key] - other:+.4f}"

    for preset, seeds in finals.items():
        for seed, s in sorted(seeds.items()):
            test = "-" if s.get("test_loss") is None else f"{s['test_loss']:.4f}"
            match = f"{s['accuracy'] * s['accuracy_problems']:.0f}/{s['accuracy_problems']}"
            print(
                f"| {preset} | {seed} | {s['val_loss']:.4f} | {gap(s, seed, 'val_loss')} | {test} | "
                f"{gap(s, seed, 'test_loss')} | {match} |"
            )
        cells = []
        for key in ("val_loss", "test_loss", "accuracy"):
            unit = "%" if key == "accuracy" else ""
            scale, digits = (100, 1) if key == "accuracy" else (1, 4)
            values = [scale * s[key] for s in seeds.values() if s.get(key) is not None]
            gaps = [
                scale * (s[key] - base[seed][key])
                for seed, s in seeds.items()
                if seed in base and s.get(key) is not None and base[seed].get(key) is not None
            ]
            cells.append(
                f"{sum(values) / len(values):.{digits}f}{unit} (range {max(values) - min(values):.{digits}f})"
                if values
                else "-"
            )
            if key != "accuracy":
                cells.append(
                    "-"
                    if preset == BASELINE or not gaps
                    else f"{sum(gaps) / len(gaps):+.{digits}f} "
                    f"[{min(gaps):+.{digits}f}, {max(gaps):+.{digits}f}]"
                )
        print(f"| {preset} | mean | " + " | ".join(cells) + " |")
    print()


def routing_table(out_dir: Path, order: list[str], runs: dict) -> None:
    """Each run's routing analysis (DIR/routing/<run>/analysis.json) in numbers, and the load imbalance the
    trainer logged over its last training batch (pads included where the run routed them)."""
    analysed = [name for name in order if (out_dir / "routing" / name / "analysis.json").is_file()]
    if not analysed:
        return
    print("routing: final checkpoint on validation tokens; training imbalance: the last logged batch\n")
    print(
        "| run | tokens | busiest expert / mean [lowest, highest] | share of tokens choosing it | "
        "unused experts per layer and iteration | re-chosen in next iteration | if independent | "
        "training imbalance |"
    )
    print("|---" * 8 + "|")
    for name in analysed:
        r = routing_numbers(json.loads((out_dir / "routing" / name / "analysis.json").read_text()))
        last = next((m for m in reversed(runs[name]["metrics"]) if m["split"] == "train"), {})
        imbalance = [v for k, v in last.items() if k.endswith("/imbalance")]
        low, high = r["load_max_over_mean_range"]
        again = "-" if r["expert_reselection"] is None else f"{r['expert_reselection']:.3f}"
        chance = "-" if r["expert_reselection"] is None else f"{r['expert_reselection_expected']:.3f}"
        trained = f"{sum(imbalance) / len(imbalance):.2f}" if imbalance else "-"
        print(
            f"| {name} | {r['tokens']:,} | {r['load_max_over_mean']:.2f} [{low:.2f}, {high:.2f}] "
            f"| {r['busiest_expert_share']:.0%} | {r['unused_experts'] / r['layer_iterations']:.1f} "
            f"| {again} | {chance} | {trained} |"
        )
    print()


def tables(out_dir: Path) -> dict[str, dict]:
    """Print the tables of one comparison directory, write its loss-curve figure; its finished runs."""
    runs_dir = out_dir / "runs"
    if not runs_dir.is_dir():
        raise SystemExit(
            f"{runs_dir} is not a directory: give comparison directories (each with runs/ in it)"
        )
    found = {p.name for p in runs_dir.iterdir() if p.is_dir()}
    order = sorted(  # the paper's table order, seeds in order within a preset
        (name for name in found if seed_of(name)[0] in PRESETS),
        key=lambda name: (list(PRESETS).index(seed_of(name)[0]), seed_of(name)[1]),
    )
    seed0 = [name for name in order if name in PRESETS]
    runs = {name: {"metrics": read_metrics(runs_dir / name)} for name in order}
    finished = finished_runs(runs_dir)
    print(f"## {label(out_dir)}\n")
    summary_table(finished)
    seed_finals_table(runs_dir, order)
    by_source_table(finished)
    throughput_table(finished, runs)
    routing_table(out_dir, order, runs)
    stopped_dir = out_dir / "stopped"
    stopped = {f"{p.name} (stopped)": read_metrics(p) for p in sorted(stopped_dir.glob("*/")) if p.is_dir()}
    metrics = {name: runs[name]["metrics"] for name in order}
    for split in ("val", "test"):  # "test": runs with eval.test_loss (the transfer set)
        loss_curve_table(split, {**{name: metrics[name] for name in seed0}, **stopped})
        seeds_table(split, metrics)
        single_seed_table(split, metrics)
    drawn = figures(order, seed0)
    for figure, names in drawn.items():
        out = ROOT / "docs" / f"{out_dir.name}{figure}_loss_curves.png"
        loss_curves(out, {n: metrics[n] for n in names}, {n: metrics[n] for n in band(names, order)})
        print(f"\nwrote {out.relative_to(ROOT)}\n")
    stale = ROOT / "docs" / f"{out_dir.name}_seed0_loss_curves.png"
    if "_seed0" not in drawn and stale.exists():  # drawn by an earlier call, when the split applied
        stale.unlink()
        print(f"removed {stale.relative_to(ROOT)}: one figure holds every run now\n")
    return finished


def figures(order: list[str], seed0: list[str]) -> dict[str, list[str]]:
    """The loss-curve figures (name suffix -> runs): one of every run; with presets run on several seeds
    beside presets run on one, one of every seed of the former (after MoE(8/64) seed 0, the curve the figure
    subtracts, when MoE(8/64) has one seed) and one of seed 0 of all ("_seed0"), so that neither holds a dozen
    curves."""
    seeded = {seed_of(name)[0] for name in order if seed_of(name)[1] > 0}
    if not seeded or {seed_of(name)[0] for name in seed0} <= seeded:
        return {"": order}
    baseline = [BASELINE] if BASELINE in seed0 and BASELINE not in seeded else []
    return {"": baseline + [name for name in order if seed_of(name)[0] in seeded], "_seed0": seed0}


def band(names: list[str], order: list[str]) -> list[str]:
    """The runs whose spread a figure of ``names`` shades about its first curve, the one it subtracts: the
    other seeds of that curve's preset which the figure does not draw (the seed noise a single-seed gap is
    read against)."""
    return [n for n in order if seed_of(n)[0] == seed_of(names[0])[0] and n not in names]


def label(out_dir: Path) -> str:
    return str(out_dir.relative_to(ROOT) if out_dir.is_relative_to(ROOT) else out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        default=[ROOT / "results" / "paper", ROOT / "results" / "paper-2"],
        help="comparison directories (default: results/paper results/paper-2)",
    )
    passes = {label(d.resolve()): tables(d.resolve()) for d in parser.parse_args().dirs}
    print("## presets in more than one directory\n")
    passes_table(passes)


if __name__ == "__main__":
    main()
