"""benchmarks/paper_compare_device.sh, the GPU campaign driver, run whole on the CPU (DEVICE=cpu) with tiny
runs: start, lanes, routing analysis, decoding latency, report and the packed results, as on the device."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "train": {
        "steps": 4,
        "model": {"size": "tiny"},
        "eval": {"every": 2, "batches": 1, "accuracy_problems": 2, "max_new_tokens": 8},
        "data": {"synthetic_train": 500, "synthetic_eval": 50, "tokenizer": {"vocab_size": 512}},
        "batch_size": 2,
        "seq_len": 64,
    }
}


@pytest.fixture(autouse=True)
def no_stray_campaign(tmp_path):
    """A campaign runs detached; one left running by a failed test is stopped (its whole process group)."""
    yield
    pid_file = tmp_path / "work" / "driver.pid"
    if pid_file.is_file():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)


def script(tmp_path: Path, *args: str, cwd: Path = REPO, **env: str) -> str:
    """``paper_compare_device.sh ARGS`` run as on the device (its work directory and $OUT under tmp_path, the
    CPU as device, tiny runs); what it printed."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    settings = dict(
        WORK=str(tmp_path / "work"),
        OUT=str(out),
        EXPERIMENT="cpu",
        DEVICE="cpu",
        OUT_DIR="results/campaign-test",
        OVERRIDES=json.dumps(TINY),
        POLL="1",
        WATCH="300",
        # The lanes' python3 is this interpreter, with the package importable from the copied src/ only.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    settings.update(env)
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "paper_compare_device.sh"), *args],
        cwd=cwd,
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def unpack(tmp_path: Path) -> Path:
    """The results the last command packed into $OUT, unpacked."""
    unpacked = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "out" / "paper-results.tgz") as tgz:
        tgz.extractall(unpacked, filter="data")
    return unpacked


def campaign(tmp_path: Path, *lanes: str, **env: str) -> tuple[str, Path]:
    """`start` with the lanes, watched to its end; its printed lines and the packed results' directory."""
    return script(tmp_path, "start", *lanes, **env), unpack(tmp_path)


def test_campaign_trains_analyses_times_decoding_and_packs_the_results(tmp_path):
    # `start` returns once WATCH is over, even when that falls inside a wait of POLL (its last wait is cut):
    # a command must end, packing included, before the device's limit. The campaign goes on detached.
    began = time.monotonic()
    printed = script(tmp_path, "start", "moe-8-64", "coe-2-4-64", DECODE="1", WATCH="2", POLL="120")
    assert time.monotonic() - began < 60 and "campaign: running" in printed
    # A later `watch` follows it to its end.
    printed = script(tmp_path, "watch")
    unpacked = unpack(tmp_path)
    assert "campaign: done" in printed
    results = unpacked / "results" / "campaign-test"
    for run in ("moe-8-64", "coe-2-4-64"):
        summary = json.loads((results / "runs" / run / "summary.json").read_text())
        assert summary["steps"] == 4
        assert (results / "routing" / run / "analysis.json").is_file()
        decode = json.loads((results / "decode" / f"{run}.json").read_text())
        assert decode["p50_ms"] > 0
        assert f"decode {run}: exit 0" in printed
    # Every checkpoint is gone once measured (nothing of them is packed either).
    work_runs = tmp_path / "work" / "results" / "campaign-test" / "runs"
    assert not list(work_runs.glob("*/checkpoints"))
    # The report read the latencies measured before the checkpoints went.
    rows = json.loads((results / "results.json").read_text())["runs"]
    assert [row["preset"] for row in rows] == ["moe-8-64", "coe-2-4-64"]
    assert all(row["decode"]["p50_ms"] > 0 for row in rows)
    logs = {p.name for p in (unpacked / "logs").iterdir()}
    assert {"drive.log", "report.log", "decode.log", "moe-8-64.log", "coe-2-4-64.log"} <= logs

    # `collect` puts the pack into a repository's OUT_DIR: runs, routing, decode, report, logs by date.
    repo = tmp_path / "repo"
    (repo / "results" / "campaign-test" / "stopped" / "moe-8-64").mkdir(parents=True)  # finished now
    pack = tmp_path / "out" / "paper-results.tgz"
    printed = script(tmp_path, "collect", str(pack), cwd=repo)
    assert "runs/moe-8-64: new" in printed and "stopped/moe-8-64: finished now" in printed
    collected = repo / "results" / "campaign-test"
    for run in ("moe-8-64", "coe-2-4-64"):
        assert (collected / "runs" / run / "summary.json").is_file()
        assert (collected / "routing" / run / "analysis.json").is_file()
        assert (collected / "decode" / f"{run}.json").is_file()
    assert not (collected / "stopped" / "moe-8-64").exists()
    assert (collected / "report.md").read_text() == (results / "report.md").read_text()
    (dated,) = (collected / "logs").iterdir()
    assert (dated / "drive.log").is_file()
    # A seed the campaign never ran, already in the repository (as the main pair's seeds 1 and 2 of another
    # campaign): collecting again writes the report over every finished run there, that seed's included.
    seed1 = collected / "runs" / "moe-8-64-seed1"
    shutil.copytree(collected / "runs" / "moe-8-64", seed1)
    config = (seed1 / "config.yaml").read_text()
    (seed1 / "config.yaml").write_text(
        config.replace("runs/moe-8-64\n", "runs/moe-8-64-seed1\n").replace("\nseed: 0\n", "\nseed: 1\n")
    )
    summary = json.loads((seed1 / "summary.json").read_text())
    (seed1 / "summary.json").write_text(json.dumps({**summary, "val_loss": summary["val_loss"] + 1.0}))
    # Collected again: nothing new, the runs kept, a second dated log directory.
    printed = script(tmp_path, "collect", str(pack), cwd=repo)
    assert "runs/moe-8-64: kept (already here)" in printed and "new" not in printed
    assert "report: written" in printed
    assert len(list((collected / "logs").iterdir())) == 2
    moe = json.loads((collected / "results.json").read_text())["runs"][0]
    assert moe["preset"] == "moe-8-64" and moe["seeds"] == [0, 1]
    assert moe["val_loss"] == pytest.approx(summary["val_loss"] + 0.5)


def test_a_run_whose_estimate_does_not_fit_the_deadline_is_not_started(tmp_path):
    printed, unpacked = campaign(tmp_path, "moe-8-64", DEADLINE="60")
    assert "moe-8-64 needs ~" in printed and "not started" in printed
    assert not (unpacked / "results" / "campaign-test" / "runs" / "moe-8-64" / "summary.json").exists()


def test_collect_keeps_an_unfinished_run_apart(tmp_path):
    """A run packed without its summary (stopped before its end) goes to stopped/, not runs/."""
    packed = tmp_path / "packed"
    run = packed / "results" / "campaign-test" / "runs" / "coe-2-4-64"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 1000, "split": "val", "loss": 0.9}\n')
    (packed / "logs").mkdir()
    (packed / "logs" / "drive.log").write_text("gpu 0: coe-2-4-64 exit 124\n")
    pack = tmp_path / "paper-results.tgz"
    with tarfile.open(pack, "w:gz") as tgz:
        tgz.add(packed / "results", arcname="results")
        tgz.add(packed / "logs", arcname="logs")
    repo = tmp_path / "repo"
    repo.mkdir()
    printed = script(tmp_path, "collect", str(pack), cwd=repo)
    assert "stopped/coe-2-4-64: not finished" in printed
    collected = repo / "results" / "campaign-test"
    assert (collected / "stopped" / "coe-2-4-64" / "metrics.jsonl").is_file()
    assert not (collected / "runs" / "coe-2-4-64").exists()
