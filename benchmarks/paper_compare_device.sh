#!/usr/bin/env bash
# The paper-scale comparison (`coe compare --scale paper`) on a GPU machine that holds only a copy of this
# repository, one lane of presets per GPU. It lays out ../shared/data/gsm8k from a carried copy
# (.bench-data/gsm8k), trains each lane's presets one after another on its GPU into results/paper (finished runs
# are skipped), analyses each new run's routing while its checkpoint is there, deletes the checkpoints (disk),
# writes the report of every finished run, and packs the small result files (configs, metrics, summaries,
# routing figures, report; no checkpoints) into $OUT/paper-results.tgz to be unpacked in the repository.
#
#   BUDGET=560 bash benchmarks/paper_compare_device.sh "coe-2-4-64 dense-8-8" "coe-2-4-48 moe-16-64"
#
# One argument per GPU (GPU i runs argument i + 1). A preset starts only if its estimated time fits in what is
# left of BUDGET seconds (estimate: 160 s of set-up, evaluation and checkpoints plus 125 s per unit of
# moe-8-64's training FLOPs; whole runs took 220-333 s on the H200 on 2026-11-28, two at a time on two GPUs);
# one that does not fit is left for the next call.
set -u
budget=${BUDGET:-540}
if [ ! -f ../shared/data/gsm8k/train.parquet ]; then
    mkdir -p ../shared/data && cp -r .bench-data/gsm8k ../shared/data/
fi
out=results/paper
cfg="CompareConfig(out_dir='$out', scale='paper', progress=False"

lane() {  # gpu, presets...
    local gpu=$1; shift
    for preset in "$@"; do
        local est left
        est=$(PYTHONPATH=src python3 -c "
from coe import CoEConfig
from coe.flops import train_flops_per_token as f
ratio = f(CoEConfig.from_preset('$preset', size='paper'), 512) / f(CoEConfig.from_preset('moe-8-64', size='paper'), 512)
print(int(160 + 125 * ratio))")
        left=$((budget - SECONDS - 30))
        if [ "$left" -lt "$est" ]; then
            echo "gpu $gpu: $preset needs ~${est}s, ${left}s left: not started"; continue
        fi
        echo "gpu $gpu: $preset (~${est}s) at ${SECONDS}s"
        CUDA_VISIBLE_DEVICES=$gpu PYTHONPATH=src timeout "$left" python3 -c "
import logging
from pathlib import Path
logging.basicConfig(level=logging.INFO, format='%(message)s')
from coe.compare import CompareConfig, analyze_run, train_preset
cfg = $cfg, presets=['$preset'])
train_preset(cfg, '$preset')
analyze_run(Path(cfg.out_dir), cfg, '$preset')
" > "${OUT:-.}/$preset.log" 2>&1
        echo "gpu $gpu: $preset exit $? at ${SECONDS}s"; tail -2 "${OUT:-.}/$preset.log"
        [ -f "$out/runs/$preset/summary.json" ] && rm -rf "$out/runs/$preset/checkpoints"
    done
}

gpu=0
for presets in "$@"; do
    # shellcheck disable=SC2086
    lane $gpu $presets &
    gpu=$((gpu + 1))
done
wait
all=$(PYTHONPATH=src python3 -c "from coe.presets import PRESETS; print(','.join(repr(p) for p in PRESETS))")
PYTHONPATH=src python3 -c "
import logging
logging.basicConfig(level=logging.INFO, format='%(message)s')
from coe.compare import CompareConfig, compare
compare($cfg, presets=[$all], report_only=True))
" > "${OUT:-.}/report.log" 2>&1
echo "report: exit $?"; tail -3 "${OUT:-.}/report.log"
tar czf "${OUT:-.}/paper-results.tgz" --exclude=checkpoints --exclude=tensorboard --exclude=tokenizer $out
