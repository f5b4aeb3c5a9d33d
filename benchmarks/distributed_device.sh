#!/usr/bin/env bash
# The 2-GPU campaign behind docs/distributed.md, on a machine that holds only a copy of this repository
# (carry .bench-data: the CLI's wheels in .bench-data/wheels). Everything goes to $OUT/distributed.
#
#   bash benchmarks/distributed_device.sh                 (every part; or name some: one dp2 ep2 ... train)
#
# 1. benchmarks/distributed_step.py, paper presets: one GPU; FSDP2 and FSDP2 + expert parallelism on 2 GPUs with
#    64 sequences per GPU (weak scaling) and with 64 sequences in all (the paper's batch; losses against one GPU).
# 2. `coe train` under torchrun on NCCL: small preset, 2 GPUs with expert parallelism, checkpoints through DCP;
#    then resumed on one GPU.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # never NVLink multicast
out=${OUT:-.}/distributed
mkdir -p "$out"
{ nvidia-smi topo -m; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/topology.txt" 2>&1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
    >> "$out/topology.txt"
step=benchmarks/distributed_step.py
two="torchrun --nproc_per_node=2"

bench() {  # name, command...
    local name=$1; shift
    timeout "${BENCH_TIMEOUT:-240}" "$@" --out "$out/$name.json" > "$out/$name.log" 2>&1
    echo "== $name: exit $?"; grep '^|' "$out/$name.log" || tail -5 "$out/$name.log"
}
parts=${*:-one dp2 ep2 dp2-global64 ep2-global64 train}
want() { [[ " $parts " == *" $1 "* ]]; }
want one && bench one python3 $step
want dp2 && bench dp2 $two $step
want ep2 && bench ep2 $two $step --expert-parallel 2
want dp2-global64 && bench dp2-global64 $two $step --global-batch 64
want ep2-global64 && bench ep2-global64 $two $step --global-batch 64 --expert-parallel 2
if ! want train; then
    tar czf "${OUT:-.}/distributed.tgz" -C "$out" . && exit 0
fi

python3 -m pip install -q --no-index --no-deps .bench-data/wheels/*.whl > "$out/pip.log" 2>&1
run=/tmp/coe-ep-run
common=(--model.size small --batch_size 16 --seq_len 128 --checkpoint.every 10 --eval.every 10 --logging.every 5
        --eval.accuracy_problems 16 --eval.max_new_tokens 48 --logging.tensorboard false --logging.progress false
        --out_dir $run)
PYTHONPATH=src timeout 180 $two -m coe train "${common[@]}" --steps 20 --runtime.expert_parallel 2 \
    > "$out/train-ep2.log" 2>&1
echo "== coe train, 2 GPUs, expert_parallel 2: exit $?"; tail -3 "$out/train-ep2.log"
cp $run/metrics.jsonl "$out/train-ep2-metrics.jsonl"
ls $run/checkpoints/*/ $run/checkpoints/*/model $run/checkpoints/*/training/dcp > "$out/train-ep2-files.txt" 2>&1
PYTHONPATH=src timeout 180 python3 -m coe train "${common[@]}" --steps 30 --checkpoint.resume true > "$out/train-resume1.log" 2>&1
echo "== coe train resumed on 1 GPU: exit $?"; tail -3 "$out/train-resume1.log"
cp $run/metrics.jsonl "$out/train-resume1-metrics.jsonl"
cp $run/summary.json "$out/train-resume1-summary.json" 2>/dev/null
tar czf "${OUT:-.}/distributed.tgz" -C "$out" .  # one file: the device tool returns only a few
