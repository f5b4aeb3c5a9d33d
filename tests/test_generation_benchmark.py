"""benchmarks/generation.py runs and prints its table (a smoke test: no timing assertions)."""

from tests.conftest import load_benchmark


def test_generation_benchmark_prints_a_row_per_preset_batch_and_setting(capsys):
    bench = load_benchmark("generation")
    argv = ["--size", "tiny", "--preset", "moe-8-64", "coe-2-4-64", "--batch", "2", "--prompt", "5"]
    rows = bench.main([*argv, "--new-tokens", "3", "--rounds", "1", "--no-compile"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# generate(), tiny size, float32") and "UTC" in lines[0]
    table = [line.split("|")[1:-1] for line in lines[3:-1]]
    assert [[cell.strip() for cell in row[:3]] for row in table] == [
        [preset, batch, setting]
        for preset in ("moe-8-64", "coe-2-4-64")
        for batch in ("2",)
        for setting in ("eager", "fast", "loop")
    ]
    timed = [row for row in rows if row["setting"] != "loop"]  # the loop has no per-token clock
    assert all(row["p95_ms"] >= row["p50_ms"] > 0 for row in timed)
    assert all(row["max_ms"] >= row["p95_ms"] for row in timed)
    assert all(row["prefill_tok_s"] > 0 for row in rows)
    assert [cell.strip() for row in table if row[2].strip() == "loop" for cell in row[5:8]] == ["-"] * 6
    # The fast path and the loop decode eager's tokens.
    assert all(row["same"] and row["agree"] == "all" for row in rows)
    # MLA caches the latent and the rotary key: (kv_lora_rank + qk_rope_head_dim) * 4 bytes * 4 layers.
    assert {row["kv_bytes"] for row in rows} == {(16 + 8) * 4 * 4}
