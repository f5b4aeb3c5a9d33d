"""The training data of `coe compare --experiment paper-packed` (the first reproduction): documents, the
BPE's size, packed 512-token sequences and how many passes over them 1000 steps of 64 sequences make
(docs/results.md). CPU only, a minute or two.

    python benchmarks/paper_data_stats.py                    # the data as the current code builds it
    python benchmarks/paper_data_stats.py --runs-before-fix  # as the runs in results/paper had it: 5% of
                                                             # GSM8K train held out (and unused) beside
                                                             # val_source
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from coe.data import build_tokenizer, load_splits, pack_documents  # noqa: E402
from coe.experiments import load_experiment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs-before-fix",
        action="store_true",
        help="hold 5%% of GSM8K train out of training, as the code did before 2026-12-01",
    )
    args = parser.parse_args()
    run = load_experiment("paper-packed").train
    spec = run.data
    if args.runs_before_fix:  # without val_source, the file source holds out val_fraction of its documents
        spec = replace(spec, val_source=None, val_fraction=0.05)
    train = load_splits(spec).train
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(spec.tokenizer, train, Path(tmp))
    sequences = len(pack_documents(tokenizer, train, run.seq_len))
    passes = run.steps * run.batch_size / sequences
    print("| training documents | BPE tokens (asked for) | sequences of 512 | tokens | passes in 1000 x 64 |")
    print("|---|---|---|---|---|")
    print(
        f"| {len(train):,} | {len(tokenizer):,} ({spec.tokenizer.vocab_size:,}) | {sequences:,} | "
        f"{sequences * run.seq_len:,} | {passes:.2f} |"
    )


if __name__ == "__main__":
    main()
