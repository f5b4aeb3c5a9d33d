"""Speed and memory of CoE / MoE training, measured in one run: prints tables, writes JSON.

    python benchmarks/train_step.py --size paper                    # the H200 campaign (docs/performance.md)
    python benchmarks/train_step.py --size tiny --batch 2 --seq 32  # CPU smoke test

Sections (all by default, or pick with --sections):
- ceiling:   dense bf16 matmul (8192^3) TFLOP/s on this device, the reference for "fraction of ceiling"
- step:      full training step (forward + backward + clipping + AdamW) per preset and expert backend:
             median of --steps timed steps after --warmup, CUDA events; tokens/s, TFLOP/s, peak memory
- experts:   the expert grouped matmuls alone at the preset's shapes (forward, forward + backward)
- generate:  greedy generate() throughput at batch 1 and batch 64
- numerics:  the grouped backend against the loop backend over --numerics-steps training steps, same seed
- profile:   the GPU kernels of one step of the last preset, by total time (torch.profiler)

Variants (--backends): an expert backend ("grouped", "loop") with optional "+compile" (torch.compile of each
decoder layer), "+ckpt" (activation checkpointing of each decoder layer) and "+memX" (compile's activation
memory budget X in (0, 1]: below 1 the partitioner recomputes cheap operations instead of saving them).

Model FLOPs of a training step: 6 x active parameters per token (LM head included, each expert counted once
per use) plus causal attention, 3 x S x H x (qk_head + v_head) per token and layer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from coe import CoEConfig, CoEForCausalLM
from coe.data.synthetic_math import format_problem, iter_problems
from coe.flops import train_flops_per_token
from coe.nn.experts import grouped_mm
from coe.train.config import TrainConfig
from coe.train.distributed import Parallel
from coe.train.trainer import build_optimizer, compile_layers, train_step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Milliseconds of a region: CUDA events on the GPU, the host clock (after a sync) elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> Timer:
        if self.device.type == "cuda":
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.end.record()
            self.end.synchronize()
            self.ms = self.start.elapsed_time(self.end)
        else:
            self.ms = (time.perf_counter() - self.t0) * 1e3


def matmul_ceiling(device: torch.device, n: int) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        with Timer(device) as t:
            a @ b
        times.append(t.ms)
    return 2 * n**3 / (statistics.median(times) / 1e3) / 1e12


def build(preset: str, args, variant: str, device: torch.device) -> CoEForCausalLM:
    """variant: an expert backend ("grouped", "loop"), optionally with "+compile" (torch.compile of each
    decoder layer), "+ckpt" (activation checkpointing of each decoder layer) and "+memX" (compile's activation
    memory budget X in (0, 1]: below 1 the partitioner recomputes cheap operations instead of saving them)."""
    backend, *options = variant.split("+")
    config = CoEConfig.from_preset(preset, size=args.size, expert_backend=backend)
    torch.manual_seed(0)
    with device:
        model = CoEForCausalLM(config).train()
    if "ckpt" in options:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    budget = [float(o[3:]) for o in options if o.startswith("mem")]
    if "compile" in options:
        compile_layers(model, budget[0] if budget else 1.0)
    return model


def make_step(model, optimizer, device: torch.device, amp: torch.dtype | None):
    """The trainer's optimizer step (coe.train.trainer.train_step) on a (B, S + 1) batch of token ids."""

    def step(ids: torch.Tensor) -> torch.Tensor:
        batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
        return train_step(model, [batch], optimizer, Parallel(), amp=amp, grad_clip=1.0).lm_loss

    return step


def bench_steps(args, device, amp, ceiling) -> list[dict]:
    rows = []
    for preset in args.presets:
        for backend in args.backends:
            model = build(preset, args, backend, device)
            optimizer = build_optimizer(model, TrainConfig(), device)
            step = make_step(model, optimizer, device, amp)
            ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq + 1), device=device)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            n_steps = args.steps if not backend.startswith("loop") else max(2, args.steps // 3)
            times = []
            for i in range(args.warmup + n_steps):
                with Timer(device) as t:
                    step(ids)
                if i >= args.warmup:
                    times.append(t.ms)
            ms = statistics.median(times)
            tokens = args.batch * args.seq
            flops = train_flops_per_token(model.config, args.seq) * tokens
            rows.append(
                dict(
                    preset=preset,
                    backend=backend,
                    ms=ms,
                    tokens_per_s=tokens / ms * 1e3,
                    tflops=flops / ms / 1e9,
                    ceiling_fraction=flops / ms / 1e9 / ceiling,
                    peak_gib=(
                        torch.cuda.max_memory_allocated(device) / 2**30
                        if device.type == "cuda"
                        else float("nan")
                    ),
                    gflop_per_token=train_flops_per_token(model.config, args.seq) / 1e9,
                )
            )
            del model, optimizer, step
    return rows


def bench_experts(args, device, ceiling) -> list[dict]:
    rows = []
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    for preset in args.presets:
        config = CoEConfig.from_preset(preset, size=args.size)
        N, D, F, K = (
            config.n_routed_experts,
            config.hidden_size,
            config.moe_intermediate_size,
            config.num_experts_per_tok,
        )
        M = args.batch * args.seq * K
        x = torch.randn(M, D, device=device, dtype=dtype, requires_grad=True)
        # stored as the model stores them, (N, out, in), and used transposed
        w1 = torch.randn(N, 2 * F, D, device=device, dtype=dtype).transpose(1, 2).requires_grad_()
        w2 = torch.randn(N, D, F, device=device, dtype=dtype).transpose(1, 2).requires_grad_()
        counts = torch.bincount(torch.randint(0, N, (M,), device=device), minlength=N)
        offsets = counts.cumsum(0).to(torch.int32)

        def forward():
            h = grouped_mm(x, w1, offsets)
            g, u = h.chunk(2, dim=-1)
            return grouped_mm(torch.nn.functional.silu(g) * u, w2, offsets)

        flops = 2 * M * D * 2 * F + 2 * M * F * D
        for name, fn, mult in (
            ("forward", lambda: forward(), 1),
            ("forward+backward", lambda: forward().backward(torch.ones(M, D, device=device, dtype=dtype)), 3),
        ):
            for _ in range(3):
                fn()
            times = []
            for _ in range(args.steps):
                with Timer(device) as t:
                    fn()
                times.append(t.ms)
            ms = statistics.median(times)
            rows.append(
                dict(
                    preset=preset,
                    what=name,
                    M=M,
                    ms=ms,
                    tflops=mult * flops / ms / 1e9,
                    ceiling_fraction=mult * flops / ms / 1e9 / ceiling,
                )
            )
    return rows


@torch.no_grad()
def bench_generate(args, device, amp) -> list[dict]:
    rows = []
    for preset in args.presets:
        model = build(preset, args, "grouped", device).eval()
        if device.type == "cuda":
            model.to(torch.bfloat16)  # inference weights in bf16 (the routers still score in float32)
        for batch in args.generate_batches:
            prompt = torch.randint(0, model.config.vocab_size, (batch, 16), device=device)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                # Warm-up at full length: attention plans are built per key length on first use.
                model.generate(
                    prompt, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False
                )
                with Timer(device) as t:
                    model.generate(
                        prompt,
                        max_new_tokens=args.new_tokens,
                        min_new_tokens=args.new_tokens,
                        do_sample=False,
                    )
            rows.append(
                dict(
                    preset=preset,
                    batch=batch,
                    new_tokens=args.new_tokens,
                    s=t.ms / 1e3,
                    tokens_per_s=batch * args.new_tokens / (t.ms / 1e3),
                )
            )
        del model
    return rows


def byte_batches(n: int, batch: int, seq: int, device) -> list[torch.Tensor]:
    """Real text for the numerics check without a tokenizer: synthetic math documents as UTF-8 bytes."""
    stream, need = bytearray(), n * batch * (seq + 1)
    for doc in (format_problem(p) + "\n\n" for p in iter_problems("train", seed=0)):
        stream += doc.encode()
        if len(stream) >= need:
            break
    ids = torch.tensor(list(stream[:need]), dtype=torch.long).view(n, batch, seq + 1)
    return [b.to(device) for b in ids]


def bench_numerics(args, device, amp) -> list[dict]:
    batches = byte_batches(args.numerics_steps, args.numerics_batch, args.seq, device)
    curves = {}
    for backend in ("grouped", "loop"):
        model = build(args.presets[-1], args, backend if backend == "loop" else args.backends[0], device)
        optimizer = build_optimizer(model, TrainConfig(), device)
        step = make_step(model, optimizer, device, amp)
        curves[backend] = torch.stack([step(b) for b in batches]).float().cpu().tolist()
        del model, optimizer
    rows = []
    for i in range(0, args.numerics_steps, max(1, args.numerics_steps // 10)):
        rows.append(
            dict(
                step=i + 1,
                grouped=curves["grouped"][i],
                loop=curves["loop"][i],
                rel_diff=abs(curves["grouped"][i] - curves["loop"][i]) / curves["loop"][i],
            )
        )
    last = args.numerics_steps - 1
    rows.append(
        dict(
            step=last + 1,
            grouped=curves["grouped"][last],
            loop=curves["loop"][last],
            rel_diff=abs(curves["grouped"][last] - curves["loop"][last]) / curves["loop"][last],
        )
    )
    return rows


def profile_step(args, device, amp) -> list[dict]:
    """The GPU kernels of one training step of each preset, by total time."""
    return [row for preset in args.presets for row in profile_preset(preset, args, device, amp)]


def profile_preset(preset: str, args, device, amp) -> list[dict]:
    model = build(preset, args, args.backends[0], device)
    optimizer = build_optimizer(model, TrainConfig(), device)
    step = make_step(model, optimizer, device, amp)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq + 1), device=device)
    for _ in range(3):
        step(ids)
    sync(device)
    with profiler(device) as prof:
        step(ids)
        sync(device)
    kernels = kernel_times(prof, device)
    total = sum(ms for _, _, ms in kernels)
    return [
        dict(preset=preset, kernel=name[:70], calls=calls, ms=ms, share=ms / total)
        for name, calls, ms in kernels[: args.profile_top]
    ]


def profiler(device: torch.device) -> torch.profiler.profile:
    """torch.profiler over the CPU and, on CUDA, the GPU."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    activities += [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
    return torch.profiler.profile(activities=activities)


def kernel_times(prof: torch.profiler.profile, device: torch.device) -> list[tuple[str, int, float]]:
    """(name, calls, total ms) of what ``prof`` recorded running on ``device``, longest first: CUDA kernels on
    CUDA, CPU operators (self time) elsewhere."""
    cuda = device.type == "cuda"
    attr = "device_time_total" if cuda else "self_cpu_time_total"
    events = [
        e
        for e in prof.key_averages()
        if getattr(e, attr, 0) > 0 and (not cuda or e.device_type == torch.autograd.DeviceType.CUDA)
    ]
    rows = [(e.key, e.count, getattr(e, attr) / 1e3) for e in events]
    return sorted(rows, key=lambda row: row[2], reverse=True)


def table(title: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    fmt = [
        (
            lambda v: (
                f"{v:,.3f}"
                if isinstance(v, float) and abs(v) < 10
                else f"{v:,.0f}"
                if isinstance(v, float)
                else str(v)
            )
        )
        for _ in keys
    ]
    lines = [f"\n{title}", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(f(r[k]) for f, k in zip(fmt, keys, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="paper", choices=["paper", "small", "tiny"])
    p.add_argument("--presets", nargs="+", default=["moe-8-64", "coe-2-4-64"])
    p.add_argument("--backends", nargs="+", default=["grouped", "loop"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=10, help="timed repetitions (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--sections", nargs="+", default=["ceiling", "step", "experts", "generate", "numerics"])
    p.add_argument("--generate-batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--new-tokens", type=int, default=512)
    p.add_argument("--numerics-steps", type=int, default=50)
    p.add_argument("--numerics-batch", type=int, default=16)
    p.add_argument("--ceiling-n", type=int, default=8192)
    p.add_argument("--profile-top", type=int, default=30)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=None, help="write all results as JSON here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    results: dict = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "date": time.strftime("%Y-%m-%d"),
    }
    ceiling = (
        matmul_ceiling(device, args.ceiling_n if device.type == "cuda" else 256)
        if "ceiling" in args.sections
        else 781.0
    )
    results["ceiling_tflops"] = ceiling
    report = [f"device {results['device']}, torch {torch.__version__}, matmul ceiling {ceiling:.0f} TFLOP/s"]
    for section, fn in (
        ("step", lambda: bench_steps(args, device, amp, ceiling)),
        ("experts", lambda: bench_experts(args, device, ceiling)),
        ("generate", lambda: bench_generate(args, device, amp)),
        ("numerics", lambda: bench_numerics(args, device, amp)),
        ("profile", lambda: profile_step(args, device, amp)),
    ):
        if section in args.sections:
            results[section] = fn()
            report.append(table(section, results[section]))
            print(report[-1], flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=2))
    print("\n".join(report))
    return results


if __name__ == "__main__":
    main()
