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

import torch
from transformers import CompileConfig


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
