"""benchmarks/expert_decode.py runs end to end on tiny widths (a smoke test: no timing assertions), and its
generation rows check that "adaptive" decodes the same tokens as "grouped"."""

from tests.conftest import load_benchmark


def test_expert_decode_benchmark_smoke(capsys):
    bench = load_benchmark("expert_decode")
    argv = ["--size", "tiny", "--tokens", "1", "40", "--repeats", "1", "--generate", "--batches", "1", "2"]
    rows = bench.main([*argv, "--new-tokens", "3", "--generate-repeats", "1"])
    layer = [r for r in rows if "shape" in r]
    assert [(r["shape"], r["T"]) for r in layer] == [
        (s, t) for s in ("moe-like", "coe-like") for t in (1, 40)
    ]
    assert all(r["gather_ms"] > 0 and r["grouped_ms"] > 0 and r["dense_ms"] > 0 for r in layer)
    assert all(r["weights_gb_per_s"] > 0 for r in layer)
    # What "adaptive" runs at each row on the CPU: gather for 4 or 8 copies, grouped for 160 or 320.
    assert [r["adaptive"] for r in layer] == ["gather", "grouped"] * 2
    gen = [r for r in rows if "preset" in r]
    assert [(r["preset"], r["batch"]) for r in gen] == [
        (p, b) for p in ("moe-8-64", "coe-2-4-64") for b in (1, 2)
    ]
    assert all(r["same_tokens"] for r in gen)
    out = capsys.readouterr().out
    assert "| shape | T | copies T*K | gather ms | grouped ms | dense ms |" in out
    assert "| preset | batch | grouped ms |" in out
