"""Whether two runs logged the same losses: the largest difference between the losses two metrics.jsonl files
hold for the same (step, split), over the records both have.

    python benchmarks/same_losses.py runs/a/metrics.jsonl runs/b/metrics.jsonl
    git show REV:results/paper-3/runs/moe-8-64/metrics.jsonl > /tmp/old.jsonl
    python benchmarks/same_losses.py /tmp/old.jsonl results/paper-3/runs/moe-8-64/metrics.jsonl

A rerun of a run (same config and seed) that is deterministic prints a largest difference of 0.0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def losses(path: Path) -> dict[tuple[int, str], float]:
    """(step, split) -> loss of every record of a metrics.jsonl that has one."""
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["step"], r["split"]): r["loss"] for r in records if r.get("loss") is not None}


def main(argv: list[str] | None = None) -> tuple[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    a, b = losses(args.a), losses(args.b)
    common = sorted(a.keys() & b.keys())
    if not common:
        raise SystemExit(f"{args.a} and {args.b} share no (step, split) with a loss")
    largest = max(abs(a[k] - b[k]) for k in common)
    print(
        f"{len(common)} common records (steps {common[0][0]}-{common[-1][0]}): largest difference {largest}"
    )
    return len(common), largest


if __name__ == "__main__":
    main()
