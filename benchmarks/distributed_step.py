"""Training throughput and memory under torchrun: FSDP2 data parallelism and expert parallelism.

    torchrun --nproc_per_node=2 benchmarks/distributed_step.py --expert-parallel 1 --out dp2.json
    torchrun --nproc_per_node=2 benchmarks/distributed_step.py --expert-parallel 2 --out ep2.json
    python benchmarks/distributed_step.py --out one.json                  # one GPU, the same loop
    torchrun --nproc_per_node=2 benchmarks/distributed_step.py --size tiny --batch 4 --seq 32 --steps 3

One training step is the trainer's (coe.train.trainer): bf16 autocast, the model sharded by
``coe.train.distributed.parallelize`` (FSDP2 on every decoder layer and the root, bf16 parameters, float32
reduction; with --expert-parallel E the experts split over E ranks), compiled layers, the expert-parallel
gradient reduction, the global gradient-norm clip, fused AdamW. Data are random token batches, a fresh one per
step, drawn from one seeded stream of *global* batches: rank r trains on rows r::W... of each, so a run on W
ranks sees exactly the batches of a run on one rank with the same --global-batch.

Two batch modes (the table says which):
- --batch B (default 64): B sequences per GPU, the global batch grows with the ranks (weak scaling: the
  throughput scaling against one GPU is the number the docs quote);
- --global-batch B: B sequences over all ranks (the paper's recipe keeps 64 x 512 whatever the GPUs); the
  per-step losses are then those of one GPU up to bf16 summation order, and are written out for comparison.

Step time: median over --steps timed steps after --warmup, CUDA events on rank 0 (the step's collectives keep
the ranks in lock step). Peak memory: the most any rank allocated. Results: a table on rank 0 and --out JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/train_step.py

from train_step import Timer

from coe import CoEConfig, CoEForCausalLM
from coe.device import autocast_dtype
from coe.flops import train_flops_per_token
from coe.train.config import TrainConfig
from coe.train.distributed import parallel, parallelize, torchrun_env
from coe.train.trainer import build_optimizer, compile_layers, train_step


def batches(steps: int, global_batch: int, seq: int, vocab: int, device: torch.device, rank: int, world: int):
    """This rank's rows of ``steps`` seeded global batches of random tokens, (B / W, seq + 1) each."""
    gen = torch.Generator(device="cpu").manual_seed(1234)
    return [
        torch.randint(0, vocab, (global_batch, seq + 1), generator=gen)[rank::world].to(device)
        for _ in range(steps)
    ]


def run_preset(preset: str, args, device: torch.device, par) -> dict:
    amp = autocast_dtype("auto", device)
    config = CoEConfig.from_preset(preset, size=args.size, expert_backend="grouped")
    torch.manual_seed(0)  # the same initial weights on every rank
    model = CoEForCausalLM(config).to(device).train()
    parallelize(model, par, param_dtype=amp if device.type == "cuda" else None)
    if device.type == "cuda" and not args.eager:
        compile_layers(model)
    optimizer = build_optimizer(model, TrainConfig(), device)

    global_batch = args.global_batch or args.batch * par.world_size
    if global_batch % par.world_size:
        raise ValueError(f"global batch {global_batch} is not divisible by the {par.world_size} ranks")
    data = batches(
        args.warmup + args.steps, global_batch, args.seq, config.vocab_size, device, par.rank, par.world_size
    )

    def step(ids: torch.Tensor) -> torch.Tensor:
        batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
        return train_step(model, [batch], optimizer, par, amp=amp, grad_clip=1.0).lm_loss

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    losses, times = [], []
    for i, ids in enumerate(data):
        with Timer(device) as t:  # CUDA events; the step's collectives keep the ranks in lock step
            losses.append(step(ids))
        if i >= args.warmup:
            times.append(t.ms)
    loss = par.mean_(torch.stack(losses).float())  # the mean over ranks: the global batch's loss
    peak = torch.tensor(
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0, device=device
    )
    if par.enabled:
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    ms = statistics.median(times)
    tokens = global_batch * args.seq
    flops = train_flops_per_token(config, args.seq) * tokens
    return dict(
        preset=preset,
        ranks=par.world_size,
        expert_parallel=par.expert_parallel,
        global_batch=global_batch,
        batch_per_gpu=global_batch // par.world_size,
        seq=args.seq,
        ms=ms,
        tokens_per_s=tokens / ms * 1e3,
        tokens_per_s_per_gpu=tokens / ms * 1e3 / par.world_size,
        tflops_per_gpu=flops / ms / 1e9 / par.world_size,
        peak_gib=peak.item(),
        losses=loss.tolist(),
    )


def table(rows: list[dict]) -> str:
    cols = [
        "preset",
        "ranks",
        "expert_parallel",
        "batch_per_gpu",
        "ms",
        "tokens_per_s",
        "tokens_per_s_per_gpu",
        "tflops_per_gpu",
        "peak_gib",
    ]
    fmt = {
        "ms": "{:.1f}",
        "tokens_per_s": "{:,.0f}",
        "tokens_per_s_per_gpu": "{:,.0f}",
        "tflops_per_gpu": "{:.1f}",
        "peak_gib": "{:.2f}",
    }
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt.get(c, "{}").format(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["coe-2-4-64", "moe-8-64"])
    p.add_argument("--size", default="paper", choices=["paper", "small", "tiny"])
    p.add_argument("--batch", type=int, default=64, help="sequences per GPU (weak scaling)")
    p.add_argument(
        "--global-batch", type=int, default=None, help="sequences over all ranks (overrides --batch)"
    )
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--expert-parallel", type=int, default=1)
    p.add_argument("--eager", action="store_true", help="no torch.compile")
    p.add_argument("--out", default=None, help="JSON file for the results (written by rank 0)")
    args = p.parse_args(argv)

    _, _, local = torchrun_env()
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    with parallel(device, args.expert_parallel) as par:
        rows = [run_preset(preset, args, device, par) for preset in args.presets]
        if par.is_main:
            print(table(rows), flush=True)
            if args.out:
                meta = dict(
                    device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    torch=torch.__version__,
                    date=time.strftime("%Y-%m-%d"),
                    argv=sys.argv[1:],
                )
                Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
