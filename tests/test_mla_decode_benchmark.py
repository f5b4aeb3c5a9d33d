"""benchmarks/mla_decode.py runs and prints its table (a smoke test: no timing assertions)."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mla_decode.py"


def test_mla_decode_benchmark_prints_a_row_per_batch_and_prompt(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("mla_decode", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["mla_decode.py", "--size", "tiny", "--batch", "1", "2", "--prompt", "5", "--new-tokens", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--rounds", "1"])
    bench.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# coe-2-4-64 (tiny)") and "UTC" in lines[0]
    rows = [line.split() for line in lines[2:-1]]
    assert [row[:2] for row in rows] == [["1", "5"], ["2", "5"]]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
