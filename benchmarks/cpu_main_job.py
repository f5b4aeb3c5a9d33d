"""The main job on this machine's CPU: `coe compare` with its default experiment, timed phase by phase.

    python benchmarks/cpu_main_job.py                      # both tables, JSON to benchmarks/results/
    python benchmarks/cpu_main_job.py --parts experts      # the expert micro-benchmark only
    python benchmarks/cpu_main_job.py --job-threads 1      # the job with 1 torch thread (default: automatic)
    python benchmarks/cpu_main_job.py --parts steps        # a training step per preset and thread count

Tables:
- job:      the default experiment (src/coe/experiments/cpu.yaml) run through the library as `coe compare`
            runs it (load_experiment + compare, into a temporary directory): wall time of data and tokenizer,
            each run's training steps, validation, checkpoints and accuracy scoring, the report, the whole;
            tokens/s of each run, the threads used, the load average at start and end, date and machine.
- experts:  one expert layer's forward + backward at the CPU experiment's shapes (16 x 128 tokens, hidden 128,
            expert width 64, 63 routed experts; MoE K=8 C=1 and CoE K=4 C=2) for each expert path and thread
            count: the median and the fastest of --repeats timings (the fastest is the least disturbed by
            other work). Paths: "grouped" (the CPU's: weights inside the expert, copies added into their
            tokens), "grouped-combine" (the gather-only combine: the GPU's, and the CPU's before), "loop"
            (the reference).

- steps:    one training step (coe.train.trainer.train_step: forward with the loss, backward, clipping,
            AdamW) of each preset of the experiment at its model size, vocabulary, batch and sequence length,
            on random tokens, per thread count: median and fastest of --repeats, tokens/s of the median.

The load average is printed beside every timing: the machine may be shared, and torch's threads are slowed
by any other busy process (coe.device.auto_threads).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from coe.device import device_name
from coe.nn.experts import Experts


def machine() -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": device_name(torch.device("cpu")),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


class PhaseTimer:
    """Wall seconds spent inside wrapped library functions, by phase and run."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.facts: dict[str, dict] = defaultdict(dict)  # per run: load at its start, threads it trained with
        self.run = "-"

    def wrap(self, module, name: str, phase: str, *, names_run: bool = False) -> None:
        fn = getattr(module, name)

        def timed(*args, **kwargs):
            if names_run:
                self.run = Path(args[0].out_dir).name
                self.facts[self.run]["load_start"] = load()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[self.run][phase] += time.perf_counter() - start
                if names_run:
                    self.facts[self.run]["threads"] = torch.get_num_threads()
                    self.run = "-"  # what follows the runs (the report) belongs to none of them

        setattr(module, name, timed)


def run_job(threads: int | None, out_dir: str | None) -> dict:
    """`coe compare`'s default experiment, timed; returns the table's rows and the job's totals."""
    start, load_start = time.perf_counter(), load()
    from coe import compare as compare_module
    from coe.experiments import load_experiment
    from coe.train import trainer

    import_s = time.perf_counter() - start
    timer = PhaseTimer()
    timer.wrap(trainer, "train", "run total", names_run=True)
    timer.wrap(trainer, "prepare_run_data", "data and tokenizer")
    timer.wrap(trainer, "train_step", "training steps")
    timer.wrap(trainer, "validation_sums", "validation")
    timer.wrap(trainer, "save_checkpoint", "checkpoints")
    timer.wrap(trainer, "exact_match", "accuracy scoring")
    timer.wrap(compare_module, "write_report", "report")
    with contextlib.ExitStack() as stack:
        where = out_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="coe-cpu-job-"))
        cfg = load_experiment("cpu", {"out_dir": where, "train": {"runtime": {"threads": threads}}})
        compare_module.compare(cfg)
        summaries = {
            p.parent.name: json.loads(p.read_text()) for p in sorted(Path(where).glob("runs/*/summary.json"))
        }
    total = time.perf_counter() - start
    runs = {}
    for name, phases in timer.seconds.items():
        if name == "-":
            continue
        summary = summaries.get(name, {})
        other = phases["run total"] - sum(v for k, v in phases.items() if k != "run total")
        runs[name] = {
            **{k: round(v, 1) for k, v in phases.items()},
            "model, optimizer, logging": round(other, 1),
            "tokens_per_s": round(summary.get("tokens_per_s", float("nan"))),
            **timer.facts[name],
            "steps": summary.get("steps"),
            "val_loss": summary.get("val_loss"),
        }
    return {
        "threads_option": threads,
        "load_start": load_start,
        "load_end": load(),
        "import_s": round(import_s, 1),
        "report_s": round(timer.seconds["-"]["report"], 1),
        "total_s": round(total, 1),
        "runs": runs,
    }


def print_job(job: dict) -> None:
    print(
        f"\n## coe compare (cpu experiment): {job['total_s']:.0f} s = {job['total_s'] / 60:.1f} min, "
        f"load {job['load_start']} at start, {job['load_end']} at end"
    )
    facts = ("tokens_per_s", "threads", "load_start", "steps", "val_loss")
    phases = [k for k in next(iter(job["runs"].values())) if k not in facts]
    print(f"| phase (s) | {' | '.join(job['runs'])} |")
    print(f"| --- |{' --- |' * len(job['runs'])}")
    for phase in [*phases, *facts[:3]]:
        print(f"| {phase} | {' | '.join(str(r.get(phase, '')) for r in job['runs'].values())} |")
    print(f"imports {job['import_s']} s, report {job['report_s']} s")


def expert_inputs(T: int, K: int, N: int, D: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, D, generator=g, requires_grad=True)
    scores = torch.randn(T, N, generator=g).softmax(-1)
    weight, idx = scores.topk(K, dim=-1)
    return x, idx, weight.detach().requires_grad_()


def time_layer(experts: Experts, backend: str, T: int, K: int, C: int, repeats: int) -> tuple[float, float]:
    """Median and fastest ms of one layer's C iterations, forward + backward (weights cast once, as the CoE
    block does)."""
    D = experts.gate_up_proj.shape[-1]
    inputs = [expert_inputs(T, K, experts.num_experts, D, seed=c) for c in range(C)]
    experts.backend = "loop" if backend == "loop" else "grouped"
    layer = experts
    if backend == "grouped-combine":  # the gather-only way back (the GPU's; the CPU's before sum_copies)

        def layer(x, idx, w, cache):
            return experts._grouped(x, idx, w, experts.matmul_weights(torch.float32, cache), add_copies=False)

    def once() -> None:
        cache = {}  # the C calls share one cast of the weights, as in the CoE block
        y = sum(layer(x, idx, w, cache) for x, idx, w in inputs)
        y.square().mean().backward()

    once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3


def run_experts(threads: list[int], backends: list[str], repeats: int) -> list[dict]:
    rows = []
    experts = Experts(63, 128, 64)
    torch.nn.init.normal_(experts.gate_up_proj, std=0.05)
    torch.nn.init.normal_(experts.down_proj, std=0.05)
    for n in threads:
        torch.set_num_threads(n)
        for label, K, C in (("MoE(8/64)", 8, 1), ("CoE-2(4/64)", 4, 2)):
            for backend in backends:
                median, fastest = time_layer(experts, backend, 16 * 128, K, C, repeats)
                rows.append(
                    dict(
                        layer=label,
                        backend=backend,
                        threads=n,
                        ms=round(median, 1),
                        fastest_ms=round(fastest, 1),
                        load=load(),
                    )
                )
    return rows


def print_experts(rows: list[dict]) -> None:
    print("\n## one expert layer, forward + backward, 2048 tokens (ms: median and fastest of the repeats)")
    print("| layer | path | threads | median ms | fastest ms | load |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = [r[k] for k in ("layer", "backend", "threads", "ms", "fastest_ms", "load")]
        print(f"| {' | '.join(map(str, cells))} |")


def run_steps(threads: list[int], repeats: int) -> list[dict]:
    from coe import CoEConfig, CoEForCausalLM
    from coe.experiments import load_experiment
    from coe.train.distributed import Parallel
    from coe.train.trainer import train_step

    cfg = load_experiment("cpu")
    t = cfg.train
    rows = []
    for preset in cfg.presets:
        config = CoEConfig.from_preset(preset, t.model.size, vocab_size=t.data.tokenizer.vocab_size)
        torch.manual_seed(0)
        model = CoEForCausalLM(config).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=t.optim.lr)
        ids = torch.randint(0, config.vocab_size, (t.batch_size, t.seq_len))
        step = partial(
            train_step,
            model,
            [{"input_ids": ids, "labels": ids}],
            optimizer,
            Parallel(),
            amp=None,
            grad_clip=t.optim.grad_clip,
        )
        for n in threads:
            torch.set_num_threads(n)
            step()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            rows.append(
                dict(
                    preset=preset,
                    threads=n,
                    ms=round(median * 1e3),
                    fastest_ms=round(min(times) * 1e3),
                    tokens_per_s=round(t.batch_size * t.seq_len / median),
                    load=load(),
                )
            )
    return rows


def print_steps(rows: list[dict]) -> None:
    print("\n## one training step of the cpu experiment (ms: median and fastest of the repeats)")
    print("| preset | threads | median ms | fastest ms | tokens/s | load |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = [r[k] for k in ("preset", "threads", "ms", "fastest_ms", "tokens_per_s", "load")]
        print(f"| {' | '.join(map(str, cells))} |")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parts = ["experts", "steps", "job"]
    p.add_argument("--parts", nargs="+", default=parts, choices=parts)
    p.add_argument("--job-threads", type=int, default=None, help="the job's torch threads (default: auto)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="micro-benchmark threads")
    paths = ["grouped", "grouped-combine", "loop"]
    p.add_argument("--backends", nargs="+", default=paths, choices=paths, help="expert paths")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--job-dir", default=None, help="keep the job's files here")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    result = {"machine": machine()}
    print(json.dumps(result["machine"]))
    threads = torch.get_num_threads()  # the tables set their own; restored for the job and for callers
    if "experts" in args.parts:
        result["experts"] = run_experts(args.threads, args.backends, args.repeats)
        print_experts(result["experts"])
    if "steps" in args.parts:
        result["steps"] = run_steps(args.threads, args.repeats)
        print_steps(result["steps"])
    torch.set_num_threads(threads)
    if "job" in args.parts:
        result["job"] = run_job(args.job_threads, args.job_dir)
        print_job(result["job"])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
