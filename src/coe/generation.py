"""The fast generation path: generate() with the static cache and its decoding step compiled whole.

transformers' generate() does the work: with ``cache_implementation="static"`` it preallocates the cache
(MLA's latent and rotary key, GQA's key/value heads), runs the prefill eagerly and every decoding step
through ``torch.compile`` of the model's forward, which traces as one graph (no host sync inside). On CUDA
it compiles by itself with its defaults (inductor, mode "reduce-overhead": CUDA graphs); elsewhere only when
the compile configuration says so, which :func:`fast_generate_kwargs` does on the CPU too, by measurement:
``benchmarks/generation.py`` (2026-12-03, small size, float32, one thread of a shared 2-core Xeon, 256 new
tokens) decodes 3.3-4.2x faster per token at batch 1 and 1.8-2.5x at batch 8 compiled than eagerly
with the dynamic cache, for a one-time compile of 10-100 s per batch size (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from enum import StrEnum

import torch
from transformers import CompileConfig
from transformers.cache_utils import DynamicCache
from transformers.generation.streamers import BaseStreamer

from coe.checks import invalid


class DecodePath(StrEnum):
    """How generate() decodes: ``dynamic`` transformers' default DynamicCache, eager; ``static`` the
    preallocated static cache, eager; ``compiled`` the static cache with the decoding step compiled
    (:func:`fast_generate_kwargs`); ``auto`` compiled on CUDA, static elsewhere, where compiling costs
    10-100 s once per batch size, more than a short generation saves (docs/performance.md); ``loop`` not
    through generate() at all but :class:`coe.decoding.StepDecoder`'s loop of compiled steps (no stopping
    criteria beyond end tokens, so not for exact-match decoding)."""

    AUTO = "auto"
    DYNAMIC = "dynamic"
    STATIC = "static"
    COMPILED = "compiled"
    LOOP = "loop"


def decode_compile_config(device: torch.device) -> CompileConfig:
    """How generate() compiles the decoding step on ``device``: the whole forward as one graph; on CUDA
    transformers' default mode "reduce-overhead" (CUDA graphs), elsewhere mode "default" (no CUDA graphs),
    compiled there as well (transformers compiles only on accelerators unless told)."""
    config = CompileConfig(fullgraph=True)
    if device.type != "cuda":
        config.mode = "default"
        config._compile_all_devices = True  # transformers' own switch for compiling off accelerators
    return config


def fast_generate_kwargs(device: torch.device, *, compile: bool = True) -> dict:
    """Keyword arguments for ``model.generate`` that take the fast path on ``device``: the static cache and,
    with ``compile``, the compiled decoding step (:func:`decode_compile_config`). ``compile=False``: the
    static cache alone, eager (no compile time; for short generations)."""
    if not compile:
        return dict(cache_implementation="static", disable_compile=True)
    return dict(cache_implementation="static", compile_config=decode_compile_config(device))


def decode_path(value: str, name: str = "decode", *, loop: bool = True) -> DecodePath:
    """``value`` as a :class:`DecodePath`; ValueError naming the option ``name`` and the choices if it is
    none, or if it is "loop" where only generate()'s paths can serve (``loop=False``)."""
    if value not in DecodePath._value2member_map_:
        raise invalid(name, value, f"choose one of {', '.join(repr(p.value) for p in DecodePath)}")
    if value == DecodePath.LOOP and not loop:
        raise invalid(
            name,
            value,
            "the loop decodes outside generate() (coe.decoding.StepDecoder): no generate() "
            "arguments give it; choose 'auto', 'dynamic', 'static' or 'compiled' here",
        )
    return DecodePath(value)


def decode_kwargs(path: str, device: torch.device) -> dict:
    """generate() keyword arguments for the decode path ``path`` (a :class:`DecodePath` value other than
    "loop") on ``device``."""
    path = decode_path(path, loop=False)
    if path == DecodePath.AUTO:
        path = DecodePath.COMPILED if device.type == "cuda" else DecodePath.STATIC
    if path == DecodePath.DYNAMIC:
        return {}
    return fast_generate_kwargs(device, compile=path == DecodePath.COMPILED)


@contextlib.contextmanager
def uncompiled(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` with its modules compiled in place (``nn.Module.compile``, as the trainer compiles its
    decoder layers) running their plain forward inside the block; compiled again on every exit.

    Why: against a cache, each compiled layer traces a graph of its own, since it indexes the cache by its
    layer number, an int attribute torch.compile specialises on; and prefill and decoding steps each need
    theirs. Measured on the CPU (tiny model, 4 layers compiled, static cache): 8 graphs in the first
    generate() call, torch._dynamo's whole recompile_limit (8), after which those layers run eagerly with a
    warning. generate()'s own compiled decoding step (:func:`fast_generate_kwargs`) traces the whole forward,
    all layers, as one graph instead.
    """
    compiled = [(m, m._compiled_call_impl) for m in model.modules() if m._compiled_call_impl is not None]
    for module, _ in compiled:
        module._compiled_call_impl = None
    try:
        yield model
    finally:
        for module, call in compiled:
            module._compiled_call_impl = call


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TokenClock(BaseStreamer):
    """A generate() streamer that records when each new token reaches the host (the device synchronised at
    each; the first put is the prompt)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times = device, []

    def put(self, value: torch.Tensor) -> None:
        sync(self.device)
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def kv_bytes_per_token(model, prompt: torch.Tensor) -> float:
    """Bytes the key/value cache holds per position and sequence over all layers, measured on the cache a
    prefill of ``prompt`` (B, S) fills (MLA: the latent and the rotary key)."""
    from coe.modeling import CACHE_FIELD

    cache = DynamicCache()
    with torch.no_grad():
        model(prompt, use_cache=True, **{CACHE_FIELD: cache})
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers) / prompt.numel()


def decode_latency(
    model, *, batch: int = 1, prompt_tokens: int = 32, new_tokens: int = 64, path: str = "auto"
) -> dict:
    """Per-token latency of greedy decoding with ``model`` on its device: a random prompt of
    ``prompt_tokens``, ``new_tokens`` generated on the decode ``path`` (a :class:`DecodePath` value) after one
    warm-up call (compilation). Returns the median and 95th-percentile interval between new tokens (ms), the
    KV-cache bytes per token, the peak allocated memory of the timed call (GiB; None off CUDA, where no
    per-call peak exists) and the settings."""
    device = next(model.parameters()).device
    kwargs = decode_kwargs(path, device)
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, model.config.vocab_size, (batch, prompt_tokens), generator=generator).to(device)
    settings = dict(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
    model.generate(prompt, attention_mask=torch.ones_like(prompt), **settings, **kwargs)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clock = TokenClock(device)
    model.generate(prompt, attention_mask=torch.ones_like(prompt), streamer=clock, **settings, **kwargs)
    gaps = sorted(b - a for a, b in zip(clock.times[1:], clock.times[2:], strict=False))
    return {
        "p50_ms": 1e3 * statistics.median(gaps),
        "p95_ms": 1e3 * gaps[min(len(gaps) - 1, int(0.95 * len(gaps)))],
        "kv_bytes_per_token": kv_bytes_per_token(model, prompt),
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "batch": batch,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "path": decode_path(path).value,
        "device": str(device),
    }
