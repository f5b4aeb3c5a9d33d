"""The CPU main-job benchmark: its phase timer attributes time to the right run, and the expert table runs
(a smoke test: no timing assertions; the job itself takes minutes and is not run here)."""

import time
import types

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("cpu_main_job")


def test_phase_timer_attributes_time_to_runs_and_after(bench):
    lib = types.SimpleNamespace()
    lib.step = lambda: time.sleep(0.02)
    lib.report = lambda: time.sleep(0.03)

    def train(cfg):
        lib.step()
        lib.step()

    lib.train = train
    timer = bench.PhaseTimer()
    timer.wrap(lib, "train", "run total", names_run=True)
    timer.wrap(lib, "step", "training steps")
    timer.wrap(lib, "report", "report")
    lib.train(types.SimpleNamespace(out_dir="out/runs/moe-8-64"))
    lib.report()
    runs = timer.seconds
    assert set(runs) == {"moe-8-64", "-"}
    assert runs["moe-8-64"]["training steps"] >= 0.04
    assert runs["moe-8-64"]["run total"] >= runs["moe-8-64"]["training steps"]
    assert "report" not in runs["moe-8-64"] and runs["-"]["report"] >= 0.03
    assert timer.facts["moe-8-64"]["threads"] >= 1


def test_expert_table_smoke(bench, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = "--parts experts --threads 1 --repeats 1 --backends grouped grouped-combine --json".split()
    result = bench.main([*args, str(out)])
    rows = result["experts"]
    assert out.is_file() and len(rows) == 4  # 2 layers x 2 paths
    assert {r["backend"] for r in rows} == {"grouped", "grouped-combine"} and all(r["ms"] > 0 for r in rows)
    assert "| MoE(8/64) | grouped | 1 |" in capsys.readouterr().out
