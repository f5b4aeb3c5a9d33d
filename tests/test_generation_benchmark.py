"""benchmarks/generation.py runs and prints its table (a smoke test: no timing assertions)."""

import torch

from coe import CoEConfig, CoEForCausalLM
from coe.nn import experts as experts_module
from tests.conftest import load_benchmark


def test_generation_benchmark_prints_a_row_per_preset_batch_and_setting(capsys, monkeypatch):
    bench = load_benchmark("generation")
    dense_calls = []
    original = experts_module.dense_swiglu
    monkeypatch.setattr(experts_module, "dense_swiglu", lambda *a: dense_calls.append(1) or original(*a))
    argv = ["--size", "tiny", "--preset", "moe-8-64", "coe-2-4-64", "--batch", "2", "--prompt", "5"]
    argv += ["--new-tokens", "3", "--rounds", "1", "--no-compile", "--loop-experts", "dense"]
    rows = bench.main(argv)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# generate(), tiny size, float32") and "UTC" in lines[0]
    table = [line.split("|")[1:-1] for line in lines[3:-1]]
    assert [[cell.strip() for cell in row[:3]] for row in table] == [
        [preset, batch, setting]
        for preset in ("moe-8-64", "coe-2-4-64")
        for batch in ("2",)
        for setting in ("eager", "fast", "loop", "loop-dense")
    ]
    timed = [row for row in rows if not row["setting"].startswith("loop")]  # a loop has no per-token clock
    assert all(row["p95_ms"] >= row["p50_ms"] > 0 for row in timed)
    assert all(row["max_ms"] >= row["p95_ms"] for row in timed)
    assert all(row["prefill_tok_s"] > 0 for row in rows)
    assert dense_calls  # the loop-dense rows ran the dense experts
    loops = [cell.strip() for row in table if row[2].strip().startswith("loop") for cell in row[5:8]]
    assert loops == ["-"] * 12
    # The fast path and the loops (grouped / gather and dense experts) decode eager's tokens.
    assert all(row["agree"] == "all" for row in rows)
    # MLA caches the latent and the rotary key: (kv_lora_rank + qk_rope_head_dim) * 4 bytes * 4 layers.
    assert {row["kv_bytes"] for row in rows} == {(16 + 8) * 4 * 4}


def test_generation_agreement_reports_where_tokens_part_and_the_eager_logit_gap_there():
    """A sequence that takes the eager model's second-best token at new position 3 parts there, and the gap
    printed is the eager logits' top-1 minus top-2 at that position (the measure of a bf16 tie)."""
    bench = load_benchmark("generation")
    torch.manual_seed(0)
    model = CoEForCausalLM(CoEConfig.from_preset("coe-2-4-64", "tiny")).eval()
    prompt = torch.randint(0, model.config.vocab_size, (2, 5))
    eager = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert bench.agreement(eager, eager, 5, model) == "all"
    other = eager.clone()
    with torch.no_grad():
        logits = model(eager[1:, : 5 + 3]).logits[0, -1]
    top2 = logits.topk(2)
    other[1, 5 + 3] = top2.indices[1]
    gap = (top2.values[0] - top2.values[1]).item()
    assert bench.agreement(other, eager, 5, model).startswith(f"3 of 6 (gap {gap:.2g} of top logit")


def test_generation_benchmark_profiles_the_loop(capsys):
    bench = load_benchmark("generation")
    argv = ["--size", "tiny", "--preset", "coe-2-4-64", "--batch", "1", "2", "--prompt", "4"]
    bench.main([*argv, "--new-tokens", "3", "--rounds", "1", "--no-compile", "--profile", "3"])
    out = capsys.readouterr().out
    tail = out[out.index("# load average after") :].splitlines()[1:]
    heads = [line for line in tail if line.startswith("# loop profile")]
    assert [h.split(":")[0] for h in heads] == [f"# loop profile, coe-2-4-64, batch {b}" for b in (1, 2)]
    assert all("ms wall a step" in h and "ms of operators a step" in h for h in heads)
    kernels = [line for line in tail if line.startswith("| ") and not line.startswith("| kernel")]
    assert len(kernels) == 6 and all(line.endswith("% |") for line in kernels)
