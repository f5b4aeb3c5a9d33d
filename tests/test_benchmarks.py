"""The speed benchmark runs end to end on the CPU with tiny shapes (a smoke test: no timing assertions)."""

from pathlib import Path

from tests.conftest import load_benchmark


def test_train_step_benchmark_smoke(tmp_path, capsys):
    bench = load_benchmark("train_step")
    out = tmp_path / "bench.json"
    results = bench.main(
        [
            "--size",
            "tiny",
            "--batch",
            "2",
            "--seq",
            "16",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--new-tokens",
            "2",
            "--generate-batches",
            "1",
            "--numerics-steps",
            "2",
            "--numerics-batch",
            "2",
            "--profile-top",
            "3",
            "--out",
            str(out),
            "--sections",
            "step",
            "experts",
            "generate",
            "numerics",
            "profile",
        ]
    )
    assert out.exists()
    steps = {(r["preset"], r["backend"]) for r in results["step"]}
    assert steps == {(p, b) for p in ("moe-8-64", "coe-2-4-64") for b in ("grouped", "loop")}
    assert all(r["tokens_per_s"] > 0 and r["gflop_per_token"] > 0 for r in results["step"])
    # float32 on the CPU: the two expert backends train identically
    assert all(r["rel_diff"] < 1e-4 for r in results["numerics"])
    assert "| preset | backend | ms | tokens_per_s |" in capsys.readouterr().out


DISTRIBUTED = Path(__file__).resolve().parents[1] / "benchmarks" / "distributed_step.py"


def test_distributed_benchmark_gives_one_process_losses_on_two_ranks(tmp_path):
    """benchmarks/distributed_step.py under torchrun (gloo, 2 ranks) with FSDP2 and with expert parallelism:
    on the same global batches, the per-step losses equal one process's (float32 on the CPU: 1e-5)."""
    import json
    import os
    import subprocess
    import sys

    common = [
        "--size",
        "tiny",
        "--global-batch",
        "4",
        "--seq",
        "16",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--presets",
        "coe-2-4-64",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {
        "one": [sys.executable, str(DISTRIBUTED)],
        "dp2": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", str(DISTRIBUTED)],
        "ep2": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            str(DISTRIBUTED),
            "--expert-parallel",
            "2",
        ],
    }
    rows = {}
    for name, cmd in runs.items():
        out = tmp_path / f"{name}.json"
        subprocess.run(
            cmd + common + ["--out", str(out)], check=True, env=env, capture_output=True, timeout=300
        )
        [rows[name]] = json.loads(out.read_text())["rows"]
    assert [rows[n]["ranks"] for n in runs] == [1, 2, 2] and rows["ep2"]["expert_parallel"] == 2
    assert rows["dp2"]["batch_per_gpu"] == 2 and rows["one"]["global_batch"] == 4
    base = rows["one"]["losses"]
    assert len(base) == 3 and base[0] != base[-1]  # the model trains: the losses move
    for name in ("dp2", "ep2"):
        assert all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(base, rows[name]["losses"], strict=True)), name


def test_generation_agreement_reports_where_tokens_part_and_the_eager_logit_gap_there():
    """A sequence that takes the eager model's second-best token at new position 3 parts there, and the gap
    printed is the eager logits' top-1 minus top-2 at that position (the measure of a bf16 tie)."""
    import torch

    from coe import CoEConfig, CoEForCausalLM

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


def test_generation_benchmark_smoke(capsys):
    bench = load_benchmark("generation")
    args = "--size tiny --batch 2 --new-tokens 3 --rounds 1 --no-compile --preset coe-2-4-64".split()
    rows = bench.main(args)
    assert [r["setting"] for r in rows] == ["eager", "fast", "loop"]
    assert all(r["agree"] == "all" for r in rows)  # float32: every path decodes the eager tokens
    assert "| coe-2-4-64 | 2 | loop |" in capsys.readouterr().out
