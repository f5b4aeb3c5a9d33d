#!/usr/bin/env bash
# A CPU pilot of the pads question (docs/results.md): CoE-2(4/64) at the small size in the paper experiment's
# regime (one padded document per 512-token row, one pass over MetaMathQA-like documents), trained twice, with
# pad positions routed and counted in the balance loss (as the reference) and without. Seed 0, 300 steps of
# 8 rows; about 10 minutes a run on 2 cores. Writes OUT/pads-true and OUT/pads-false (default /tmp).
set -eu
out=${OUT:-/tmp}
for pads in true false; do
    coe compare --experiment paper --out_dir "$out/pads-$pads" --presets '[coe-2-4-64]' --seeds '[0]' \
        --train.model.size small --train.data.source synthetic-metamath --train.data.synthetic_train 2600 \
        --train.data.synthetic_eval 256 --train.data.tokenizer.vocab_size 2048 --train.steps 300 \
        --train.batch_size 8 --train.optim.lr 0.002 --train.eval.every 100 --train.eval.batches 8 \
        --train.eval.accuracy_problems 0 --train.eval.test_loss false --train.checkpoint.every 300 \
        --train.runtime.device cpu --train.data.pads_in_routing $pads --train.logging.progress false
done
# How much of the rows the documents fill (the rest are pads, counted by the balance loss in pads-true).
python benchmarks/pad_share.py "$out/pads-true/runs/coe-2-4-64"
