"""Device and precision, decided once at the edge (CLI, trainer, compare) and followed by the library.

``resolve_device`` turns a user's ``"auto"`` / ``"cpu"`` / ``"cuda[:N]"`` into a ``torch.device``;
``autocast_dtype`` decides a run's autocast dtype; ``autocast`` enters it; ``peak_memory_gib`` reads the peak;
``configure_threads`` sets the CPU thread count.
"""

from __future__ import annotations

import contextlib
import os
import resource

import torch

from coe.checks import invalid


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a device; ValueError for CUDA
    asked for on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise invalid("runtime.device", name, "use 'auto', 'cpu', 'cuda' or 'cuda:N'") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise invalid("runtime.device", name, "CUDA is not available on this machine")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run: bf16 on CUDA unless fp32 is asked for, none elsewhere (bf16 autocast is
    CUDA-only here: on the CPU the grouped expert matmuls need float32)."""
    if precision not in ("auto", "bf16", "fp32"):
        raise invalid("runtime.precision", precision, "choose 'auto', 'bf16' or 'fp32'")
    if precision == "bf16" and device.type != "cuda":
        raise invalid("runtime.precision", precision, f"bf16 needs a CUDA device, the run is on {device}")
    return torch.bfloat16 if device.type == "cuda" and precision in ("auto", "bf16") else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on CUDA; nothing when ``dtype`` is None or off CUDA."""
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory so far: allocated CUDA memory on a GPU, the process's resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads to ``threads``, or with None to the cores this process may use
    (its CPU affinity, not the machine's count), and return the number set."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise invalid("runtime.threads", threads, "a positive integer, or unset for the usable cores")
    count = threads if threads is not None else len(os.sched_getaffinity(0))
    torch.set_num_threads(count)
    return count
