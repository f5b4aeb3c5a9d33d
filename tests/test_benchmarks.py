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


def test_paper_runs_table_draws_the_seeded_presets_apart_from_seed_0_of_all():
    """With several seeds of some presets beside single-seed presets, one figure holds every seed of the
    former (after MoE(8/64) seed 0, the curve it subtracts) and another seed 0 of all; otherwise one figure
    holds every run."""
    figures = load_benchmark("paper_runs_table").figures
    seeded = ["moe-8-64", "moe-8-64-seed1", "coe-2-4-64", "coe-2-4-64-seed1", "moe-16-64"]
    seed0 = ["moe-8-64", "coe-2-4-64", "moe-16-64"]
    assert figures(seeded, seed0) == {"": seeded[:4], "_seed0": seed0}
    assert figures(seed0, seed0) == {"": seed0}
    assert figures(seeded[:4], seed0[:2]) == {"": seeded[:4]}
    # a seeded preset without a seed-0 run still splits
    order = ["moe-8-64", "moe-8-64-seed1", "moe-16-64", "coe-2-4-64-seed1"]
    assert figures(order, ["moe-8-64", "moe-16-64"]) == {
        "": ["moe-8-64", "moe-8-64-seed1", "coe-2-4-64-seed1"],
        "_seed0": ["moe-8-64", "moe-16-64"],
    }
    # MoE(8/64) with one seed leads the seeded figure as its baseline
    order = ["moe-8-64", "coe-2-4-64", "coe-2-4-64-seed1", "moe-16-64"]
    assert figures(order, ["moe-8-64", "coe-2-4-64", "moe-16-64"])[""] == [
        "moe-8-64",
        "coe-2-4-64",
        "coe-2-4-64-seed1",
    ]


def test_paper_runs_table_shades_the_other_seeds_of_the_subtracted_run_where_the_figure_leaves_them_out():
    band = load_benchmark("paper_runs_table").band
    order = ["moe-8-64", "moe-8-64-seed1", "moe-8-64-seed2", "coe-2-4-64", "coe-2-4-64-seed1", "moe-16-64"]
    assert band(["moe-8-64", "coe-2-4-64", "moe-16-64"], order) == ["moe-8-64-seed1", "moe-8-64-seed2"]
    assert band(order[:5], order) == []  # the main pair's figure draws every seed itself
    assert band(["coe-2-4-64", "moe-16-64"], order) == ["coe-2-4-64-seed1"]


def test_paper_runs_table_prints_the_loss_of_each_source_where_runs_have_it(capsys):
    by_source_table = load_benchmark("paper_runs_table").by_source_table
    by_source_table({"moe-8-64": {"val_loss": 0.9}})  # runs from before the loss by source: no table
    assert capsys.readouterr().out == ""
    tokens = {"a": 300, "b": 100}
    by_source_table(
        {
            "moe-8-64": {"val_loss_by_source": {"a": 0.5, "b": 3.0}, "val_tokens_by_source": tokens},
            "coe-2-4-64": {"val_loss_by_source": {"a": 0.6, "b": 2.9}, "val_tokens_by_source": tokens},
        }
    )
    out = capsys.readouterr().out
    assert "| moe-8-64 | 0.5000 | 3.0000 | 75.0% / 25.0% |" in out
    assert "| coe-2-4-64 | 0.6000 (+0.1000) | 2.9000 (-0.1000) | 75.0% / 25.0% |" in out
    # a source the baseline lacks: no gap; a source a run lacks: '-'
    by_source_table(
        {
            "moe-8-64": {"val_loss_by_source": {"a": 0.5}, "val_tokens_by_source": {"a": 300}},
            "coe-2-4-64": {
                "val_loss_by_source": {"a": 0.6, "c": 1.0},
                "val_tokens_by_source": {"a": 1, "c": 1},
            },
        }
    )
    out = capsys.readouterr().out
    assert "| moe-8-64 | 0.5000 | - | 100.0% |" in out
    assert "| coe-2-4-64 | 0.6000 (+0.1000) | 1.0000 | 50.0% / 50.0% |" in out


def test_paper_runs_table_gives_single_seed_gaps_against_every_baseline_seed(capsys):
    """A preset run once, against each of MoE(8/64)'s seeds: the lowest and highest gap at each step; '-'
    at a step some seed lacks; no table with one baseline seed."""
    single_seed_table = load_benchmark("paper_runs_table").single_seed_table

    def run(**losses):
        return [{"split": "val", "step": int(step[1:]), "loss": loss} for step, loss in losses.items()]

    metrics = {
        "moe-8-64": run(s50=2.0, s100=1.0),
        "moe-8-64-seed1": run(s50=2.2, s100=1.3),
        "moe-8-64-seed2": run(s50=2.1),
        "moe-8-64-12l": run(s50=1.9, s100=1.1),
    }
    single_seed_table("val", metrics)
    out = capsys.readouterr().out
    assert "| 50 | [-0.300, -0.100] |" in out and "| 100 | - |" in out
    single_seed_table("val", {k: metrics[k] for k in ("moe-8-64", "moe-8-64-12l")})
    assert capsys.readouterr().out == ""
