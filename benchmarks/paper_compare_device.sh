#!/usr/bin/env bash
# The paper-scale comparison (`coe compare --scale paper`) on a GPU machine that holds only a copy of this
# repository: it lays out ../shared/data/gsm8k from a carried copy, runs the presets given as arguments into
# results/paper (finished runs are skipped), and packs the small result files (configs, metrics, summaries,
# report; no checkpoints) into $OUT/paper-results.tgz to be unpacked into the repository.
#
#   bash benchmarks/paper_compare_device.sh moe-8-64 coe-2-4-64      (with .bench-data/gsm8k carried)
set -u
if [ ! -f ../shared/data/gsm8k/train.parquet ]; then
    mkdir -p ../shared/data && cp -r .bench-data/gsm8k ../shared/data/
fi
presets=$(printf '"%s",' "$@")
PYTHONPATH=src timeout "${BUDGET:-540}" python3 -c "
import logging
logging.basicConfig(level=logging.INFO, format='%(message)s')
from coe.compare import CompareConfig, compare
compare(CompareConfig(out_dir='results/paper', scale='paper', presets=[${presets%,}], progress=False))
"
status=$?
tar czf "${OUT:-.}/paper-results.tgz" --exclude=checkpoints --exclude=tensorboard --exclude=tokenizer results/paper
exit $status
