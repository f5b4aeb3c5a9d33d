"""The speed benchmark runs end to end on the CPU with tiny shapes (a smoke test: no timing assertions)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"


def test_train_step_benchmark_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_step", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    results = bench.main(["--size", "tiny", "--batch", "2", "--seq", "16", "--steps", "1", "--warmup", "1",
                          "--new-tokens", "2", "--generate-batches", "1", "--numerics-steps", "2",
                          "--numerics-batch", "2", "--profile-top", "3", "--out", str(out),
                          "--sections", "step", "experts", "generate", "numerics", "profile"])
    assert out.exists()
    steps = {(r["preset"], r["backend"]) for r in results["step"]}
    assert steps == {(p, b) for p in ("moe-8-64", "coe-2-4-64") for b in ("grouped", "loop")}
    assert all(r["tokens_per_s"] > 0 and r["gflop_per_token"] > 0 for r in results["step"])
    # float32 on the CPU: the two expert backends train identically
    assert all(r["rel_diff"] < 1e-4 for r in results["numerics"])
    assert "| preset | backend | ms | tokens_per_s |" in capsys.readouterr().out
