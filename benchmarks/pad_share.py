"""How much of a padded run's rows its documents fill: per run directory, the training documents' length in
its own tokenizer's tokens (median) and the share of row positions that are real tokens (attention mask) when
each document is a row of seq_len, as the run's data pipeline makes them; the rest are pads, which the
balance loss counts under ``data.pads_in_routing``. CPU, seconds for a small run.

    python benchmarks/pad_share.py results/cpu-pads-pilot/pads-true/runs/coe-2-4-64 [RUN_DIR ...]

A run directory needs config.yaml and its tokenizer/ (kept by the run, not by results/ copies: pass the run's
own directory, e.g. /tmp/pads-true/runs/coe-2-4-64 after benchmarks/pads_pilot_cpu.sh).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from coe.data import load_splits, load_tokenizer, pack_documents
from coe.train.config import TrainConfig


def pad_share(run_dir: Path) -> dict:
    """The median training document (tokens) and the real tokens' share of the padded rows of ``run_dir``."""
    cfg = TrainConfig.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    rows = pack_documents(tokenizer, load_splits(cfg.data).train, cfg.seq_len, packing="padded")
    real = rows.batch(np.arange(len(rows)))["attention_mask"]  # (documents, seq_len)
    return {
        "documents": len(rows),
        "median_tokens": float(np.median(rows.lengths)),
        "real_share": real.float().mean().item(),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (config.yaml and tokenizer/)")
    args = parser.parse_args(argv)
    print("| run | documents | median tokens | real share of row positions |\n|---|---|---|---|")
    results = []
    for run in args.runs:
        r = pad_share(run)
        print(f"| {run} | {r['documents']:,} | {r['median_tokens']:.0f} | {r['real_share']:.1%} |")
        results.append(r)
    return results


if __name__ == "__main__":
    main()
