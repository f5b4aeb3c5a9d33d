"""Generation speed: generate()'s eager dynamic-cache path against its fast path (static cache, compiled
decoding step, adaptive experts) and against coe.decoding's loop outside generate(), per preset and batch.

    python benchmarks/generation.py                                # CPU, small size, float32, batches 1 8 64
    python benchmarks/generation.py --batch 1 8 --new-tokens 64    # quicker
    python benchmarks/generation.py --device cuda                  # paper size, bf16, + DeepseekV2 anchor
    python benchmarks/generation.py --device cuda --profile 25     # + the loop's kernels per preset, batch

Settings, each through ``model.generate`` with greedy decoding after a random ``--prompt``-token prompt:

- eager: transformers' default DynamicCache, experts on "grouped", no compilation: what
  generate() did before the static cache worked;
- fast: ``cache_implementation="static"``, experts on "adaptive" (the default backend: gather for the few
  token copies of a decoding step, on a GPU dense for up to 128 tokens), and the decoding step compiled by
  transformers' own generate path (prefill eager, each decoding step through
  ``torch.compile(fullgraph=True)``; on CUDA transformers' default mode "reduce-overhead", i.e. CUDA graphs;
  on the CPU mode "default"): ``coe.generation.fast_generate_kwargs``. The compile warm-up is timed apart and
  printed;
- loop: ``coe.decoding.StepDecoder`` on the fast row's model: the static cache and one compiled step per token
  (CUDA graphs on CUDA; compiled on the CPU too unless ``--no-compile``) in a loop of its own, without
  generate()'s per-step host work. It has no streamer, so its per-token latency columns are empty ("-"): its
  decode tokens/s is the measure;
- loop-BACKEND (``--loop-experts BACKEND ...``): the loop on a copy of the model whose experts run on another
  backend, e.g. "dense" (every expert on every token, for decoding batches that reach nearly every expert);
  prefill runs on that backend too, which its prefill tokens/s shows and its decode tokens/s does not;
- deepseek-v2 (CUDA, when transformers has it): transformers' DeepseekV2ForCausalLM with the same widths as
  moe-8-64, static cache, its own compiled decoding step: an in-run anchor.

Per row: prefill tokens/s (B * prompt over the time of a one-token generate), decode tokens/s (B * (new - 1)
over the time the other new tokens add), per-token latency p50 / p95 / max (intervals between the tokens a
streamer receives, the device synchronised at each), KV-cache bytes per token (all layers, measured on the
cache after a prefill), peak memory (CUDA: allocated, reset per row; CPU: the process's peak resident set,
which only grows) and how many new tokens equal the eager row's ("all", or those before the first position
where some sequence of the batch differs, with the eager model's logit gap between the two tokens there: a
bf16 tie or a real difference; the deepseek-v2 anchor has its own weights, "-"). Settings run in
alternation, ``--rounds`` times, medians reported; compiled code is reset once per batch, before every
setting's warm-up.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/train_step.py

from train_step import kernel_times, profiler

from coe import CoEConfig, CoEForCausalLM
from coe.config import ExpertBackend
from coe.decoding import StepDecoder
from coe.device import device_name, peak_memory_gib
from coe.generation import TokenClock, decode_kwargs, kv_bytes_per_token, sync

PRESETS = ("moe-8-64", "coe-2-4-64")


class Generate:
    """Greedy decoding of a whole batch through ``model.generate`` with ``kwargs``; a streamer may time it."""

    streams = True

    def __init__(self, model, kwargs: dict, *, same_weights: bool = True) -> None:
        self.model, self.kwargs, self.same_weights = model, kwargs, same_weights

    def __call__(self, prompt: torch.Tensor, new_tokens: int, streamer=None) -> torch.Tensor:
        return self.model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            streamer=streamer,
            pad_token_id=0,
            **self.kwargs,
        )


class Loop:
    """Greedy decoding through ``coe.decoding.StepDecoder`` (no streamer)."""

    streams = False
    same_weights = True

    def __init__(self, model, compile: bool) -> None:
        self.model, self.decoder = model, StepDecoder(model, compile=compile)

    def __call__(self, prompt: torch.Tensor, new_tokens: int, streamer=None) -> torch.Tensor:
        return self.decoder.generate(prompt, max_new_tokens=new_tokens)


def timed_generate(run, prompt, new_tokens, device, streamer=None) -> tuple[float, torch.Tensor]:
    sync(device)
    start = time.perf_counter()
    out = run(prompt, new_tokens, streamer)
    sync(device)
    return time.perf_counter() - start, out


def agreement(tokens: torch.Tensor, reference: torch.Tensor, prompt: int, model) -> str:
    """How many new tokens ``tokens`` and ``reference`` ((B, prompt + new) each, ``reference`` the eager
    path's) share before the first position where some row differs: "all", or "N of M (gap G)". G is the
    largest, over the rows that differ there, of the eager ``model``'s logit of its own token minus its
    logit of the other path's token at that position (one cacheless forward over the shared prefix): a gap
    within bf16's rounding of the logits (about 2^-8 of their size) is a tie, not a wrong token."""
    new, ref = tokens[:, prompt:], reference[:, prompt:]
    n = min(new.shape[1], ref.shape[1])
    differs = (new[:, :n] != ref[:, :n]).any(dim=0).nonzero()
    if len(differs) == 0 and new.shape[1] == ref.shape[1]:
        return "all"
    if len(differs) == 0:
        return f"{n} of {ref.shape[1]}"
    at = differs[0].item()
    rows = (new[:, at] != ref[:, at]).nonzero().flatten()
    with torch.no_grad():
        logits = model(reference[rows, : prompt + at]).logits[:, -1].float()  # (rows, V)
    own = logits.gather(1, ref[rows, at, None])
    other = logits.gather(1, new[rows, at, None])
    gap = (own - other).max().item()
    return f"{at} of {ref.shape[1]} (gap {gap:.2g} of top logit {logits.max().item():.3g})"


def measure(models: dict, batch: int, args, device: torch.device) -> list[dict]:
    """One row per setting of ``models`` (setting -> Generate or Loop) at this batch."""
    vocab = min(run.model.config.vocab_size for run in models.values())
    prompt = torch.randint(0, vocab, (batch, args.prompt), device=device)
    warmup = {}
    # Compiled code is reset once, before every setting's warm-up: a reset between two settings' warm-ups
    # would throw away the first one's compiled step, which then recompiled inside its timed rounds.
    torch._dynamo.reset()
    for setting, run in models.items():  # compile and first-call costs, apart
        start = time.perf_counter()
        timed_generate(run, prompt, args.new_tokens, device)
        timed_generate(run, prompt, 1, device)
        warmup[setting] = time.perf_counter() - start
    full = {s: [] for s in models}
    one = {s: [] for s in models}
    gaps = {s: [] for s in models}
    outputs = {}
    for _ in range(args.rounds):
        for setting, run in models.items():
            seconds, outputs[setting] = timed_generate(run, prompt, args.new_tokens, device)
            full[setting].append(seconds)
            one[setting].append(timed_generate(run, prompt, 1, device)[0])
            if run.streams:
                clock = TokenClock(device)
                timed_generate(run, prompt, args.new_tokens, device, streamer=clock)
                gaps[setting] += [b - a for a, b in zip(clock.times[1:], clock.times[2:], strict=False)]
    rows = []
    for setting, run in models.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            timed_generate(run, prompt, args.new_tokens, device)
        t_full, t_one = statistics.median(full[setting]), statistics.median(one[setting])
        latencies = sorted(gaps[setting]) or [math.nan]
        rows.append(
            dict(
                setting=setting,
                batch=batch,
                prefill_tok_s=batch * args.prompt / t_one,
                # nan where other work on the machine made the short call the slower one
                decode_tok_s=batch * (args.new_tokens - 1) / (t_full - t_one) if t_full > t_one else math.nan,
                p50_ms=1e3 * latencies[len(latencies) // 2],
                p95_ms=1e3 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
                max_ms=1e3 * latencies[-1],
                kv_bytes=kv_bytes_per_token(run.model, prompt),
                peak_gib=peak_memory_gib(device),
                warmup_s=warmup[setting],
                agree=agreement(outputs[setting], outputs["eager"], args.prompt, models["eager"].model)
                if "eager" in outputs and run.same_weights
                else "-",
            )
        )
    return rows


def profile_loop(run: Loop, preset: str, batch: int, args, device: torch.device) -> list[str]:
    """One call of the loop (compiled and warm) under torch.profiler: the wall time per decoding step against
    the time the device's kernels take per step (CUDA; the CPU's operators elsewhere), and the ``--profile``
    longest kernels. Kernel time well under wall time means the step waits on the host or on launches."""
    prompt = torch.randint(0, run.model.config.vocab_size, (batch, args.prompt), device=device)
    timed_generate(run, prompt, args.new_tokens, device)
    with profiler(device) as prof:
        seconds, _ = timed_generate(run, prompt, args.new_tokens, device)
    kernels = kernel_times(prof, device)
    total = sum(ms for _, _, ms in kernels)
    steps = args.new_tokens  # the prefill and new_tokens - 1 decoding steps
    lines = [
        f"# loop profile, {preset}, batch {batch}: {1e3 * seconds / steps:.3f} ms wall a step (profiled), "
        f"{total / steps:.3f} ms of {'kernels' if device.type == 'cuda' else 'operators'} a step",
        "| kernel | calls | ms | share |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name[:80]} | {calls} | {ms:.2f} | {ms / total:.1%} |"
        for name, calls, ms in kernels[: args.profile]
    ]
    return lines


def with_experts(model: CoEForCausalLM, backend: str) -> CoEForCausalLM:
    """A copy of ``model`` (same weights, device and dtype, eval mode) whose experts run on ``backend``."""
    config = copy.deepcopy(model.config)
    config.expert_backend = backend
    param = next(model.parameters())
    other = CoEForCausalLM(config).to(param.device, param.dtype).eval()
    other.load_state_dict(model.state_dict())
    return other


def ms(value: float) -> str:
    """A latency cell: milliseconds, "-" where not measured."""
    return "-" if math.isnan(value) else f"{value:.2f}"


def deepseek_anchor(config: CoEConfig):
    """transformers' DeepseekV2ForCausalLM with moe-8-64's widths (random weights), or None without it."""
    try:
        from transformers import DeepseekV2Config, DeepseekV2ForCausalLM
    except ImportError:
        return None
    fields = (
        "vocab_size hidden_size num_hidden_layers intermediate_size num_attention_heads q_lora_rank "
        "kv_lora_rank qk_nope_head_dim qk_rope_head_dim v_head_dim n_routed_experts n_shared_experts "
        "num_experts_per_tok moe_intermediate_size max_position_embeddings rms_norm_eps"
    ).split()
    ds = DeepseekV2Config(
        **{f: getattr(config, f) for f in fields},
        num_key_value_heads=config.num_attention_heads,
        rope_parameters=dict(config.rope_parameters),
        topk_method="greedy",
        first_k_dense_replace=0,
    )
    return DeepseekV2ForCausalLM(ds)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--size", default=None, help="tiny, small or paper (default: paper on CUDA, else small)"
    )
    parser.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: bfloat16 on CUDA)")
    parser.add_argument("--preset", nargs="+", default=list(PRESETS))
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-anchor", action="store_true", help="leave out DeepseekV2 on CUDA")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="TOP",
        help="after each preset and batch, profile one call of the loop and print its TOP kernels",
    )
    parser.add_argument(
        "--loop-experts",
        nargs="+",
        default=[],
        choices=[b.value for b in ExpertBackend if b != ExpertBackend.LOOP],
        help="also time the loop with the experts on these backends (rows loop-BACKEND)",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="fast path without compiling (static cache, adaptive experts)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    size = args.size or ("paper" if cuda else "small")
    dtype = getattr(torch, args.dtype or ("bfloat16" if cuda else "float32"))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# generate(), {size} size, {str(dtype).removeprefix('torch.')}, prompt {args.prompt}, "
        f"{args.new_tokens} new tokens, greedy, fast path {'not ' if args.no_compile else ''}compiled, "
        f"medians of {args.rounds} rounds; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, {device_name(device)}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, transformers {transformers.__version__}, load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        "| preset | batch | setting | prefill tok/s | decode tok/s | p50 ms | p95 ms | max ms "
        "| KV bytes/token | peak GiB | warm-up s | tokens equal to eager |"
    )
    print("|---" * 12 + "|")
    rows, profiles = [], []
    for preset in args.preset:
        torch.manual_seed(0)
        # The eager row runs grouped experts, as generate() did before the fast path.
        config = CoEConfig.from_preset(preset, size, expert_backend="grouped")
        eager = CoEForCausalLM(config).to(device, dtype).eval()
        fast = with_experts(eager, "adaptive")
        fast_kwargs = decode_kwargs("static" if args.no_compile else "compiled", device)
        models = {
            "eager": Generate(eager, decode_kwargs("dynamic", device)),
            "fast": Generate(fast, fast_kwargs),
            "loop": Loop(fast, compile=not args.no_compile),
        }
        for backend in args.loop_experts:
            models[f"loop-{backend}"] = Loop(with_experts(eager, backend), compile=not args.no_compile)
        anchor = deepseek_anchor(config) if cuda and preset == "moe-8-64" and not args.no_anchor else None
        if anchor is not None:
            models["deepseek-v2"] = Generate(anchor.to(device, dtype).eval(), fast_kwargs, same_weights=False)
        for batch in args.batch:
            for row in measure(models, batch, args, device):
                row["preset"] = preset
                rows.append(row)
                print(
                    f"| {preset} | {batch} | {row['setting']} | {row['prefill_tok_s']:,.0f} "
                    f"| {row['decode_tok_s']:,.0f} | {ms(row['p50_ms'])} | {ms(row['p95_ms'])} "
                    f"| {ms(row['max_ms'])} | {row['kv_bytes']:,.0f} | {row['peak_gib']:.2f} "
                    f"| {row['warmup_s']:.1f} | {row['agree']} |",
                    flush=True,
                )
            if args.profile:
                profiles.append(profile_loop(models["loop"], preset, batch, args, device))
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    for lines in profiles:
        print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
