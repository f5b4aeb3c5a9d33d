"""Decode time per token with MLA's absorbed projections on and off (``CoEConfig.mla_absorb``).

    python benchmarks/mla_decode.py                    # coe-2-4-64, small size, CPU, batches 1 and 8
    python benchmarks/mla_decode.py --size tiny --prompt 32 512 --new-tokens 32
    python benchmarks/mla_decode.py --size paper --device cuda --dtype bfloat16 --batch 1 64

A random-weight model prefills a random prompt, then greedy decoding steps run one token at a time against
transformers' DynamicCache; the median milliseconds of a step (the whole model: attention, experts, LM head)
are printed per (batch, prompt length, absorbed or not) with the date, machine and load average. Both settings
run on the same model, steps interleaved in rounds so that load from other work falls on both alike.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import torch
from transformers.cache_utils import DynamicCache

from coe import CoEConfig, CoEForCausalLM
from coe.device import device_name


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_absorb(model: CoEForCausalLM, absorb: bool) -> None:
    for layer in model.model.layers:
        layer.self_attn.absorb = absorb


@torch.no_grad()
def step_times(model: CoEForCausalLM, batch: int, prompt: int, new_tokens: int, absorb: bool) -> list[float]:
    """Seconds of each of ``new_tokens`` decoding steps after a prefill of ``prompt`` tokens."""
    set_absorb(model, absorb)
    device = model.device
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt), device=device)
    cache = DynamicCache()
    logits = model(ids, cache=cache, use_cache=True).logits[:, -1]
    times = []
    for _ in range(new_tokens):
        nxt = logits.argmax(-1, keepdim=True)
        sync(device)
        start = time.perf_counter()
        logits = model(nxt, cache=cache, use_cache=True).logits[:, -1]
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="coe-2-4-64")
    parser.add_argument("--size", default="small", choices=["tiny", "small", "paper"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt", type=int, nargs="+", default=[32, 512])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    # Experts on grouped, as in the committed results (the attention paths are what this compares).
    config = CoEConfig.from_preset(
        args.preset, args.size, max_position_embeddings=4096, expert_backend="grouped"
    )
    device = torch.device(args.device)
    model = CoEForCausalLM(config).eval().to(device, getattr(torch, args.dtype))
    for absorb in (True, False):
        step_times(model, 1, 8, 4, absorb)  # warm-up
    machine = device_name(device)
    print(
        f"# {args.preset} ({args.size}), decode ms/token (median, {args.rounds}x{args.new_tokens} steps), "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{machine}, {args.dtype}, "
        f"{torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'batch':>5} {'prompt':>6} {'absorbed':>9} {'decompressed':>12} {'speed-up':>8}")
    for batch in args.batch:
        for prompt in args.prompt:
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.rounds):
                for absorb in (True, False):
                    times[absorb] += step_times(model, batch, prompt, args.new_tokens, absorb)
            on, off = (1e3 * statistics.median(times[a]) for a in (True, False))
            print(f"{batch:>5} {prompt:>6} {on:>9.2f} {off:>12.2f} {off / on:>7.2f}x")
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
