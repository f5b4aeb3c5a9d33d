"""benchmarks/mla_decode.py runs and prints its table (a smoke test: no timing assertions)."""

import sys

from tests.conftest import load_benchmark


def test_mla_decode_benchmark_prints_a_row_per_batch_and_prompt(monkeypatch, capsys):
    bench = load_benchmark("mla_decode")
    argv = ["mla_decode.py", "--size", "tiny", "--batch", "1", "2", "--prompt", "5", "--new-tokens", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--rounds", "1"])
    bench.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# coe-2-4-64 (tiny)") and "UTC" in lines[0]
    rows = [line.split() for line in lines[2:-1]]
    assert [row[:2] for row in rows] == [["1", "5"], ["2", "5"]]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
