"""Start-up time of the ``coe`` command: each command line run in a fresh process, best and median of N.

    python benchmarks/cli_startup.py                 # coe --help, coe presets, coe train --help; 5 runs each
    python benchmarks/cli_startup.py --repeats 9

The wall time of the whole process (interpreter start, imports, parsing, printing, exit), as a user waits
for it. ``coe --help``, ``coe presets`` and ``coe train --help`` import neither torch nor transformers (the
training options' data section loads lazily). The load average is printed with the table: on a shared machine
the other work's load inflates every time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from coe.device import device_name

COMMANDS = (["--help"], ["presets"], ["train", "--help"])


def coe_command() -> list[str]:
    """The installed ``coe`` script of this interpreter's environment, else ``python -m coe`` on src/."""
    script = Path(sys.executable).with_name("coe")
    if script.is_file():
        return [str(script)]
    found = shutil.which("coe")
    return [found] if found else [sys.executable, "-m", "coe"]


def wall_times(argv: list[str], repeats: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command line")
    args = parser.parse_args()
    coe = coe_command()
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    usable = len(os.sched_getaffinity(0))
    print(f"machine: {device_name(torch.device('cpu'))}, {os.cpu_count()} CPUs ({usable} usable)")
    print(f"python {platform.python_version()}, command: {' '.join(coe)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| command | best (s) | median (s) | runs |")
    print("| --- | --- | --- | --- |")
    for command in COMMANDS:
        times = wall_times([*coe, *command], args.repeats)
        print(
            f"| coe {' '.join(command)} | {min(times):.2f} | {statistics.median(times):.2f} | {len(times)} |"
        )
    print()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
