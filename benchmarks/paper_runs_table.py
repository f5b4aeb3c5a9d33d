"""The tables and the loss-curve figure of docs/results.md, read from results/paper/runs/*/metrics.jsonl.

    python benchmarks/paper_runs_table.py        # prints the markdown table, writes docs/paper_loss_curves.png

Works on finished and unfinished runs alike (a run that stopped early simply has fewer points).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from coe.compare import plot_loss_curves  # noqa: E402
from coe.train.metrics import read_metrics  # noqa: E402


def main() -> None:
    runs = {p.name: {"metrics": read_metrics(p)} for p in sorted((ROOT / "results" / "paper" / "runs").iterdir())}
    order = [name for name in ("moe-8-64", "coe-2-4-64") if name in runs] + \
        [name for name in runs if name not in ("moe-8-64", "coe-2-4-64")]
    val = {name: {m["step"]: m["loss"] for m in runs[name]["metrics"] if m["split"] == "val"} for name in order}
    steps = sorted({s for v in val.values() for s in v})
    print("| step | " + " | ".join(order) + " |")
    print("|---" * (len(order) + 1) + "|")
    for step in steps:
        cells = [f"{val[name][step]:.3f}" if step in val[name] else "-" for name in order]
        print(f"| {step} | " + " | ".join(cells) + " |")
    out = ROOT / "docs" / "paper_loss_curves.png"
    plot_loss_curves(out, {name: runs[name] for name in order})
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
