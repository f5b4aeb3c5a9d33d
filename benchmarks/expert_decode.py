"""One expert layer's forward, "gather" and "dense" against "grouped", from decoding-sized to training-sized
token counts.

    python benchmarks/expert_decode.py                     # small preset widths, T = 1, 8, 64, 2048
    python benchmarks/expert_decode.py --size paper --tokens 1 8 64 --threads 2
    python benchmarks/expert_decode.py --generate          # and greedy generation, grouped vs adaptive

Two shapes of a preset size: MoE-like (K = 8 of 63 experts, one call per layer) and CoE-like (K = 4 of 63, C =
2 calls per layer, each timed here as one call; a CoE layer costs two of them). Each row is one
``Experts.forward`` under inference mode with random routing, the fastest and the median of ``--repeats``
timed calls after warm-up. The table chose the thresholds of the "adaptive" backend (the default;
``coe.nn.experts.GATHER_MAX_COPIES``, ``GATHER_MAX_BYTES_CPU``, ``DENSE_MAX_TOKENS``; its last column is what
"adaptive" runs there), and shows where "dense" (every expert on every token: one pass over the weights, N / K
times the FLOPs) beats both; "weights GB/s" is what the fastest backend reads of the experts it reaches (the
expected number of distinct experts under uniform routing) per second. ``--generate`` adds whole-model greedy
decoding (``generate()`` of moe-8-64 and coe-2-4-64 at the size, random weights, a 32-token prompt) with every
expert layer on "grouped" and on "adaptive", the two timed in alternation, and checks that they produce the
same tokens. On a shared machine other work inflates every time: the load average is printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import torch

from coe import CoEConfig, CoEForCausalLM
from coe.device import device_name
from coe.nn.experts import Experts, compute_dtype, expected_reach
from coe.presets import PAPER_SHAPE, SIZES

SHAPES = (("moe-like", 8), ("coe-like", 4))  # (name, K); 63 routed experts in both
BACKENDS = ("gather", "grouped", "dense")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, repeats: int, device: torch.device, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def measure(
    size: str, tokens: list[int], repeats: int, dtype: torch.dtype, device: torch.device
) -> list[dict]:
    widths = {**PAPER_SHAPE, **SIZES[size]}
    N, D, F = 63, widths["hidden_size"], widths["moe_intermediate_size"]
    experts = Experts(N, D, F).to(device, dtype)
    torch.nn.init.normal_(experts.gate_up_proj, std=0.02)
    torch.nn.init.normal_(experts.down_proj, std=0.02)
    rows = []
    g = torch.Generator().manual_seed(0)
    for name, K in SHAPES:
        for T in tokens:
            x = torch.randn(T, D, generator=g).to(device, dtype)
            topk_weight, topk_idx = torch.randn(T, N, generator=g).to(device).softmax(-1).topk(K, dim=-1)
            row = dict(shape=name, K=K, T=T, copies=T * K)
            with torch.inference_mode():
                cache = {}  # cast once per layer, as ChainOfExperts does
                for backend in BACKENDS:
                    experts.backend = backend
                    t = time_call(lambda: experts(x, topk_idx, topk_weight, cache), repeats, device)  # noqa: B023
                    row[f"{backend}_ms"] = 1e3 * min(t)
                    row[f"{backend}_median_ms"] = 1e3 * statistics.median(t)
                experts.backend = "adaptive"  # what the default backend runs here, in inference as timed
                row["adaptive"] = str(experts._path(x, topk_idx, compute_dtype(x)))
            reached = N * expected_reach(N, K, T)  # distinct experts under uniform routing
            fastest = min(row[f"{b}_ms"] for b in BACKENDS)
            row["weights_gb_per_s"] = reached * 3 * D * F * experts.down_proj.element_size() / fastest / 1e6
            rows.append(row)
    return rows


def measure_generate(
    size: str, batches: list[int], new_tokens: int, repeats: int, dtype: torch.dtype, device: torch.device
) -> list[dict]:
    rows = []
    for preset in ("moe-8-64", "coe-2-4-64"):
        torch.manual_seed(0)
        model = CoEForCausalLM(CoEConfig.from_preset(preset, size=size)).to(device, dtype).eval()
        experts = [m for m in model.modules() if isinstance(m, Experts)]
        for batch in batches:
            prompt = torch.randint(0, model.config.vocab_size, (batch, 32), device=device)
            kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            times, outputs = {"grouped": [], "adaptive": []}, {}
            for _ in range(repeats + 1):  # the first round warms up
                for backend in times:
                    for m in experts:
                        m.backend = backend
                    sync(device)
                    start = time.perf_counter()
                    outputs[backend] = model.generate(prompt, **kwargs)
                    sync(device)
                    times[backend].append(time.perf_counter() - start)
            ms = {b: 1e3 * min(t[1:]) / new_tokens for b, t in times.items()}
            rows.append(
                dict(
                    preset=preset,
                    batch=batch,
                    grouped_ms_per_step=ms["grouped"],
                    adaptive_ms_per_step=ms["adaptive"],
                    same_tokens=torch.equal(outputs["grouped"], outputs["adaptive"]),
                )
            )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 8, 64, 2048])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--generate", action="store_true", help="also time greedy generate()")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="generate: batch sizes")
    parser.add_argument("--new-tokens", type=int, default=64, help="generate: new tokens per sequence")
    parser.add_argument("--generate-repeats", type=int, default=3, help="generate: timed rounds")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    rows = measure(args.size, args.tokens, args.repeats, dtype, device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = device_name(device)
    print(
        f"{datetime.date.today()}, {machine}, {args.threads} CPU thread(s), torch {torch.__version__}, "
        f"{args.size} widths, {args.dtype}, load average {load:.2f}; fastest (median) of {args.repeats}; "
        f"the adaptive column: what the default backend runs there"
    )
    print(
        "| shape | T | copies T*K | gather ms | grouped ms | dense ms | gather / grouped | dense / grouped "
        "| weights GB/s | adaptive |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} (K={r['K']}) | {r['T']} | {r['copies']} "
            f"| {r['gather_ms']:.3f} ({r['gather_median_ms']:.3f}) "
            f"| {r['grouped_ms']:.3f} ({r['grouped_median_ms']:.3f}) "
            f"| {r['dense_ms']:.3f} ({r['dense_median_ms']:.3f}) "
            f"| {r['gather_ms'] / r['grouped_ms']:.2f} | {r['dense_ms'] / r['grouped_ms']:.2f} "
            f"| {r['weights_gb_per_s']:.1f} | {r['adaptive']} |"
        )
    if args.generate:
        gen = measure_generate(args.size, args.batches, args.new_tokens, args.generate_repeats, dtype, device)
        print(
            f"\ngreedy generate(), 32-token prompt, {args.new_tokens} new tokens, {args.dtype}; "
            f"ms per decoding step, fastest of {args.generate_repeats}"
        )
        print("| preset | batch | grouped ms | adaptive ms | speed-up | same tokens |")
        print("|---|---|---|---|---|---|")
        for r in gen:
            grouped, adaptive = r["grouped_ms_per_step"], r["adaptive_ms_per_step"]
            print(
                f"| {r['preset']} | {r['batch']} | {grouped:.2f} | {adaptive:.2f} "
                f"| {grouped / adaptive:.2f}x | {r['same_tokens']} |"
            )
        rows = rows + gen
    return rows


if __name__ == "__main__":
    main()
