"""Device and precision, decided once at the edge (CLI, trainer, compare) and followed by the library.

``resolve_device`` turns a user's ``"auto"`` / ``"cpu"`` / ``"cuda[:N]"`` into a ``torch.device``;
``autocast_dtype`` decides a run's autocast dtype; ``autocast`` enters it; ``peak_memory_gib`` reads the peak;
``configure_threads`` sets the CPU thread count (``auto_threads``: from the free cores).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import resource
import statistics
import time
from pathlib import Path

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


def device_name(device: torch.device) -> str:
    """What a measurement ran on: the GPU's name, or the CPU's model name (``/proc/cpuinfo``, else the
    platform's)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory so far: allocated CUDA memory on a GPU, the process's resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads to ``threads``, or with None to :func:`auto_threads`, and return the
    number set."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise invalid("runtime.threads", threads, "a positive integer, or unset for the usable cores")
    count = threads if threads is not None else auto_threads()
    torch.set_num_threads(count)
    return count


def auto_threads(samples: int = 5, interval_s: float = 0.02) -> int:
    """The cores this process may use (its CPU affinity) less those other tasks hold, at least one.

    Why: torch's intra-op threads meet at a barrier after every parallel operator, so one thread that shares
    its core with another busy process stalls them all. Measured on a 2-core machine with other work on it
    (``benchmarks/cpu_main_job.py --parts steps``, 2026-12-02, load average 2.0-2.3, the CPU experiment's
    training step, 16 x 128 tokens): median 529 ms with 1 thread against 834 ms with 2 (MoE(8/64)), 558
    against 1,650 ms (CoE-2(4/64)); the fastest 2-thread step, in a moment both cores were free, took 314 ms
    against 512. Too few threads costs at most the cores left idle; too many costs several times over, so a
    core counts as taken on either of two signs:

    - now: another task was runnable in half or more of ``samples`` samples ``interval_s`` apart
      (/proc/loadavg's fourth field, less the caller);
    - lately: the 1-minute load average, less this process's own share of it (its CPU time since the last
      call, or since the module was imported, over at least a minute), rounded. Without it, a comparison's
      second run started in a pause of other work takes every core and stalls when that work resumes.

    Where /proc/loadavg does not exist, the load average stands for both.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if usable == 1:
        return 1
    machine = os.cpu_count() or usable
    now = statistics.mean(_other_runnable() for _ in _ticks(samples, interval_s))
    lately = os.getloadavg()[0] - _own_load()
    busy = math.floor(max(now, lately) + 0.5)
    return max(1, min(usable, machine - busy))


_last_sample = (time.monotonic(), time.process_time())  # (wall, this process's CPU seconds)


def _own_load() -> float:
    """This process's share of the 1-minute load average, roughly: the cores it kept busy since the last call
    (or the import), averaged over at least a minute."""
    global _last_sample
    wall, cpu = time.monotonic(), time.process_time()
    share = (cpu - _last_sample[1]) / max(wall - _last_sample[0], 60.0)
    _last_sample = (wall, cpu)
    return share


def _ticks(samples: int, interval_s: float):
    for i in range(samples):
        if i:
            time.sleep(interval_s)
        yield i


def _other_runnable() -> float:
    """Tasks runnable on the machine now, the calling thread not counted."""
    try:
        running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
    except (OSError, IndexError):
        return os.getloadavg()[0]
    return max(0, int(running) - 1)
