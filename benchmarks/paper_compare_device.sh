#!/usr/bin/env bash
# A paper experiment (`coe compare --experiment paper`, or EXPERIMENT=paper-packed) on a lent GPU machine that holds only a copy of this
# repository and whose commands are cut off after a few minutes each. The runs are started detached in a work
# directory outside the copied tree (so neither the end of a command nor the next copy of the tree touches
# them), and later commands watch them and bring the small result files back.
#
#   bash benchmarks/paper_compare_device.sh start "moe-8-64-12l moe-8-64-8l" "moe-24-64 coe-2-8-64-shared-router"
#   bash benchmarks/paper_compare_device.sh watch          # again, until it prints "campaign: done"
#
# One argument per lane; a lane trains its presets one after another (PRESET@SEED for a seed other than 0). Lane i
# runs on GPU i modulo the number of GPUs, so with more lanes than GPUs, lanes share a GPU: the CPU-bound parts of
# one run (data, tokenizer, compilation, decoding) then overlap the other's training, at the price of tokens/s
# figures that measure a shared GPU. Each run analyses its routing while its checkpoint is there, then deletes the
# checkpoints. After the last lane the report of every finished run is written. `watch` waits up to WATCH seconds
# (or until the campaign is done), printing progress, then packs configs, metrics, summaries, routing figures,
# report and logs (no checkpoints) into $OUT/paper-results.tgz. Back in the repository, `collect` puts them in
# OUT_DIR: new finished runs into runs/, unfinished ones into stopped/ (the campaign trains them again), new
# routing/ and decode/ entries, the report, and each campaign's logs into logs/<date>[-n]/:
#
#   OUT_DIR=results/paper-3 bash benchmarks/paper_compare_device.sh collect /path/to/paper-results.tgz
# Call `watch` again as soon as one returns: a lent machine left idle for a short while is taken back, and the
# campaign with it (only the files packed by the last `watch` survive).
# Plan each `start` so that its runs end, final evaluation included, inside the one command that starts them
# (WATCH and DEADLINE a little under the command's limit): a machine can be taken back between two commands,
# and then everything not packed is lost. A `start` after a finished campaign on the same machine (still warm)
# keeps that campaign's runs: one stopped at DEADLINE resumes from the checkpoint its SIGTERM wrote, and the
# estimate counts only its remaining steps. Measured on one H200 (2026-12-02 and 12-03, the paper experiment):
# setup (data, tokenizer, compilation) about 105-130 s; MoE(8/64) and CoE-2(4/64) sharing the GPU end, final
# evaluation included, about 500-530 s after `start`; two C = 2, K = 8 runs, or three 4-layer runs, reach
# step 1000 after 540-570 s, too late for one command: queue those with a DEADLINE past the command's limit
# and follow them with `watch` at once. Three lanes (the 8-layer MoE and two C = 2, K = 8 ablations) ended
# 854-901 s after `start` (estimated 823, 824 and 1,011 s); two dense 8-of-8 runs with C = 2 ended 555-558 s
# after `start` (estimated 615 s). Keep WATCH at 570 or less: the packing after it takes a few seconds.
# A run whose summary.json is in the repository's OUT_DIR is not trained again.
#
# Environment: EXPERIMENT (default paper: the reference code's regime; paper-packed: the first reproduction,
# results/paper and results/paper-2); OUT_DIR (the comparison's directory relative to the repository, default
# results/paper-3; its report covers every finished run in OUT_DIR/runs, with the seed each saved, and
# `collect`, or `report` alone, writes it again in the repository); WORK (work directory, default
# /root/coe-paper); DEADLINE
# (seconds after `start` by which every run must have ended, default 1500: a preset whose estimate does not fit is
# not started, one still running then is stopped by SIGTERM, which checkpoints it); WATCH (default 540);
# SAVE_EVERY (steps between checkpoints, default 1000: only the final one, as one checkpoint of the 12-layer model
# is 31 GB); OVERRIDES (a JSON mapping merged into the experiment's configuration tree, for a variant of the
# experiment in its own OUT_DIR, e.g. OVERRIDES='{"train": {"data": {"pads_in_routing": false}}}'); AFTER (a command
# run in the work directory, src/ on PYTHONPATH, once the runs and the report are over, before the campaign
# counts as done: a benchmark that needs the GPU to itself, e.g. AFTER='python3 benchmarks/generation.py
# --device cuda'; its output is logs/after.log, packed by `watch`); DECODE (1: once the lanes are over, each
# finished run's per-token decoding latency, measured with the GPU to itself into OUT_DIR/decode/<run>.json,
# which the report's decode columns read; each run's weights stay on disk until then, its optimizer state
# goes; 0, the default: no latency, the report's decode columns stay empty, the campaign ends sooner); DEVICE
# (cuda, the default; cpu runs the same machinery on the CPU, as tests/test_paper_campaign.py does with tiny
# runs); POLL (seconds between two progress lines of `watch`, default 30). GSM8K ships with the package
# (builtin:gsm8k).
set -u
work=${WORK:-/root/coe-paper}
out=${OUT_DIR:-results/paper-3}
experiment=${EXPERIMENT:-paper}
device=${DEVICE:-cuda}
# The start of each Python step below: logging into the step's log, and experiment(settings), the
# experiment's configuration with settings and then OVERRIDES merged in.
prelude="
import json
import logging
import shutil
from pathlib import Path
logging.basicConfig(level=logging.INFO, format='%(message)s')
from coe.experiments import load_experiment
from coe.train.config import merged
def experiment(settings):
    return load_experiment('$experiment', merged(settings, json.loads('''${OVERRIDES:-{\}}''')))
"

progress() {  # one line: each started preset's last logged step
    local line="" log preset step
    for log in "$work"/logs/*.log; do
        preset=$(basename "$log" .log)
        case $preset in drive|report|decode|after) continue ;; esac
        step=$(tail -n 1 "$work/$out/runs/$preset/metrics.jsonl" 2>/dev/null | grep -o '"step": [0-9]*' | grep -o '[0-9]*$')
        [ -f "$work/$out/runs/$preset/summary.json" ] && step="done"
        line="$line $preset:${step:-setup}"
    done
    echo "$(( $(date +%s) - $(cat "$work/started") ))s:$line"
}

split_run() {  # PRESET or PRESET@SEED into the caller's preset and seed
    preset=${1%@*}; seed=0
    [ "$1" != "$preset" ] && seed=${1##*@}
}

lane() {  # gpu, sharing (lanes on that GPU), presets...
    local gpu=$1 sharing=$2; shift 2
    for run in "$@"; do
        local est left name preset seed
        split_run "$run"
        if [[ ! $seed =~ ^(0|[1-9][0-9]*)$ || $preset == *@* ]]; then
            echo "gpu $gpu: $run is not PRESET or PRESET@SEED (SEED a non-negative integer): skipped"; continue
        fi
        # Estimate: 100 s plus 25 s a layer (data, compilation, validation, checkpoint, decoding, routing
        # analysis) plus 160 s per unit of moe-8-64's training FLOPs, times the lanes sharing the GPU. Fitted
        # on one H200 to the paper experiment, two lanes, from launch to exit (2026-12-03): MoE(8/64) with
        # CoE-2(4/64) 483-512 s (estimated 520 and 534); MoE(16/64) with CoE-2(8/64) 526 and 556 s (629,
        # 643); two C = 2, K = 8 runs reached step 1000 540-570 s after launch, were stopped at 566 s in
        # their final evaluation (642 and 643: no longer started with the 562 s they had left); the two
        # dense runs 396 s (505); MoE(24/64) with the 12-layer MoE 694 and 847 s (738, 1028; the 12-layer run
        # alone for its last 190 steps). It errs on the safe side: a run that ends past DEADLINE is lost work,
        # one not started costs a later command.
        # The paper-packed runs of 2026-12-01 took less (less validation).
        # The run's directory name (compare's run_name) and the estimate, in one call. A run that left a
        # checkpoint here (stopped at DEADLINE by an earlier `start` on this machine) resumes from it: only
        # its remaining steps count.
        read -r name est < <(PYTHONPATH=src python3 -c "
from coe import CoEConfig
from coe.analysis.comparison import run_name
from coe.flops import train_flops_per_token as f
from coe.train.checkpoint import latest_checkpoint, load_trainer_state
config = CoEConfig.from_preset('$preset', size='paper')
ratio = f(config, 512) / f(CoEConfig.from_preset('moe-8-64', size='paper'), 512)
name = run_name('$preset', $seed)
checkpoint = latest_checkpoint('$out/runs/' + name)
left = 1 - (0 if checkpoint is None else load_trainer_state(checkpoint)['step'] / 1000)
print(name, int(100 + 25 * config.num_hidden_layers + 160 * ratio * $sharing * left))")
        if [ -z "${est:-}" ]; then echo "gpu $gpu: $run: no estimate (unknown preset?): skipped"; continue; fi
        left=$(( ${DEADLINE:-1500} - ($(date +%s) - $(cat started)) ))
        if [ "$left" -lt "$est" ]; then
            echo "gpu $gpu: $name needs ~${est}s, ${left}s left: not started"; continue
        fi
        echo "gpu $gpu: $name (~${est}s, ${left}s left) at $(date +%T)"
        CUDA_VISIBLE_DEVICES=$gpu PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONPATH=src \
            timeout "$left" python3 -c "$prelude
from coe.analysis.comparison import analyze_run
from coe.compare import finished_run, train_preset
cfg = experiment({'out_dir': '$out', 'presets': ['$preset'], 'seeds': [$seed], 'train': {
    'logging': {'progress': False}, 'checkpoint': {'every': ${SAVE_EVERY:-1000}}, 'runtime': {'device': '$device'}}})
summary = train_preset(cfg, '$preset', $seed)
analyze_run(Path(cfg.out_dir), finished_run(cfg, '$preset', $seed, summary), device='$device')
" > "logs/$name.log" 2>&1
        echo "gpu $gpu: $name exit $? at $(date +%T)"; tail -n 2 "logs/$name.log"
        # The checkpoint goes once its routing is analysed (disk); a run stopped before that keeps it. With
        # DECODE=1 its weights stay (the optimizer state goes) until its decoding latency is measured.
        if [ -f "$out/routing/$name/analysis.json" ] && [ -f "$out/runs/$name/summary.json" ]; then
            if [ "${DECODE:-0}" = 1 ]; then rm -rf "$out/runs/$name/checkpoints"/step-*/training/dcp
            else rm -rf "$out/runs/$name/checkpoints"; fi
        fi
    done
}

decode() {  # runs (PRESET or PRESET@SEED) that kept their weights: decoding latency on the GPU alone, then the weights go
    local run preset seed
    for run in "$@"; do
        split_run "$run"
        PYTHONPATH=src python3 -c "$prelude
from coe.analysis.comparison import measure_decode
from coe.compare import finished_run
cfg = experiment({'out_dir': '$out', 'presets': ['$preset'], 'seeds': [$seed]})
run_dir = Path(cfg.run_config('$preset', $seed).out_dir)
if (run_dir / 'summary.json').is_file():
    summary = json.loads((run_dir / 'summary.json').read_text())
    run = finished_run(cfg, '$preset', $seed, summary)
    figures = measure_decode(Path(cfg.out_dir), run, device='$device')
    if figures is not None:
        print('$run: %.3f ms a token (p50)' % figures['p50_ms'])
        shutil.rmtree(run_dir / 'checkpoints', ignore_errors=True)
else:
    print('$run: not finished: no decoding latency')
" >> logs/decode.log 2>&1
        echo "decode $run: exit $? at $(date +%T)"; tail -n 1 logs/decode.log
    done
}

report() {  # OUT_DIR's report over every finished run in OUT_DIR/runs, with the seed each one saved
    PYTHONPATH=src python3 -c "$prelude
from coe.compare import compare
from coe.presets import PRESETS
from coe.train.config import saved_settings
seeds = {0} | {saved_settings(s.parent)['seed'] for s in Path('$out', 'runs').glob('*/summary.json')}
compare(experiment({'out_dir': '$out', 'presets': list(PRESETS), 'seeds': sorted(seeds), 'report_only': True,
                    'train': {'logging': {'progress': False}}}))
"
}

drive() {  # in $work, detached: every lane, then the report
    local ngpu=1 i=0 sharing
    if [ "$device" = cuda ]; then
        nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
        ngpu=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
    else echo "device: $device (one lane group)"; fi
    df -h . | tail -n 1
    if [ "$ngpu" -eq 0 ]; then echo "no GPU: nothing started"; touch done; return 1; fi
    for presets in "$@"; do
        sharing=$(( ($# - i % ngpu + ngpu - 1) / ngpu ))  # lanes on GPU i % ngpu
        # shellcheck disable=SC2086
        lane $((i % ngpu)) "$sharing" $presets &
        i=$((i + 1))
    done
    wait
    # shellcheck disable=SC2048,SC2086
    [ "${DECODE:-0}" = 1 ] && decode $*
    report > logs/report.log 2>&1
    echo "report: exit $?"; tail -n 3 logs/report.log
    if [ -n "${AFTER:-}" ]; then  # a command for the GPU once the runs are over (e.g. a benchmark)
        echo "after: $AFTER"
        PYTHONPATH=src bash -c "$AFTER" > logs/after.log 2>&1
        echo "after: exit $? at $(date +%T)"
    fi
    touch done
}

driving() {  # whether the campaign's driver process is alive
    [ -f "$work/driver.pid" ] && kill -0 "$(cat "$work/driver.pid")" 2>/dev/null
}

case ${1:-} in
    start)
        shift
        if [ -f "$work/started" ] && [ ! -f "$work/done" ]; then
            if driving; then
                echo "$work/started exists and the campaign is not done: already started"; exit 1
            fi
            # Its driver was killed (by hand, or by a command's end): what it finished is kept.
            echo "the campaign started at $(date -d @"$(cat "$work/started")" +%T) has no driver left: starting anew"
        fi
        # A campaign after a finished one on the same machine keeps its runs (a run stopped at DEADLINE
        # resumes from its checkpoint); its logs move aside.
        [ -d "$work/logs" ] && mv "$work/logs" "$work/logs-$(cat "$work/started")"
        rm -f "$work/done" "$work/started"
        mkdir -p "$work/logs"
        cp -r src benchmarks pyproject.toml "$work/"
        cp -rn results "$work/"  # what runs left on this machine is newer than the repository's copy
        date +%s > "$work/started"
        (cd "$work" && { setsid nohup bash benchmarks/paper_compare_device.sh drive "$@" \
            > logs/drive.log 2>&1 < /dev/null & echo $! > driver.pid; })
        ;&  # and watch
    watch)
        if [ ! -f "$work/started" ]; then
            echo "no campaign on this machine ($work/started is missing: a fresh machine?)"; exit 1
        fi
        # WATCH counts from here; the last wait is cut to what is left of it, so that the packing below
        # starts by then (a wait of POLL past it once made a command overrun its limit and lose the pack).
        deadline=$(( SECONDS + ${WATCH:-540} ))
        while [ ! -f "$work/done" ] && [ "$SECONDS" -lt "$deadline" ] && driving; do
            wait_s=$(( deadline - SECONDS )); [ "$wait_s" -gt "${POLL:-30}" ] && wait_s=${POLL:-30}
            sleep "$wait_s"; progress
        done
        cat "$work/logs/drive.log"
        if [ -f "$work/done" ]; then echo "campaign: done"
        elif driving; then echo "campaign: running"
        else echo "campaign: stopped (its driver is gone; start again to go on)"; fi
        dest=${OUT:-$PWD}
        # OUT_DIR exists once a run has started (a watch before that packs the logs alone).
        (cd "$work" && tar czf "$dest/paper-results.tgz" --exclude=checkpoints --exclude=tensorboard \
            --exclude=tokenizer $([ -d "$out" ] && echo "$out") logs*)
        ;;
    collect)  # here, in the repository: a packed campaign's results into OUT_DIR
        tgz=${2:?usage: $0 collect PAPER-RESULTS.TGZ}
        scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
        tar xzf "$tgz" -C "$scratch" || exit 1
        mkdir -p "$out/runs" "$out/routing" "$out/decode" "$out/stopped" "$out/logs"
        for run in "$scratch/$out"/runs/*/; do
            [ -d "$run" ] || continue
            name=$(basename "$run")
            if [ -e "$out/runs/$name" ]; then echo "runs/$name: kept (already here)"
            elif [ -f "$run/summary.json" ]; then
                cp -r "$run" "$out/runs/$name"; echo "runs/$name: new"
                [ -e "$out/stopped/$name" ] && rm -rf "$out/stopped/$name" && echo "stopped/$name: finished now"
            else  # not finished: kept apart, so that the campaign trains it again and reports leave it out
                rm -rf "$out/stopped/$name"; cp -r "$run" "$out/stopped/$name"; echo "stopped/$name: not finished"
            fi
        done
        for kind in routing decode; do
            for entry in "$scratch/$out/$kind"/*; do
                [ -e "$entry" ] || continue
                if [ -e "$out/$kind/$(basename "$entry")" ]; then continue; fi
                cp -r "$entry" "$out/$kind/"; echo "$kind/$(basename "$entry"): new"
            done
        done
        # The report again, here: over every finished run of the repository's OUT_DIR (the campaign's own
        # report saw only the runs of the machine: those it trained and the repository's copy sent with it).
        if report > "$scratch/report.log" 2>&1; then echo "report: written"
        else echo "report: failed"; tail -n 20 "$scratch/report.log"; fi
        for logs in "$scratch"/logs "$scratch"/logs-*; do  # logs-*: earlier campaigns on the same machine
            [ -d "$logs" ] || continue
            dest="$out/logs/$(date +%F)"; n=1
            while [ -e "$dest" ]; do n=$((n + 1)); dest="$out/logs/$(date +%F)-$n"; done
            cp -r "$logs" "$dest"; echo "logs: $dest"
        done
        ;;
    report)  # here or there: OUT_DIR's report written again from its runs
        report ;;
    drive)
        shift; drive "$@" ;;
    *)
        echo "usage: $0 start LANE... | watch | collect PAPER-RESULTS.TGZ | report"; exit 2 ;;
esac
