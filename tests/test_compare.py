"""The main job's machinery on a tiny budget: both runs, the report, skipping finished runs; the shipped
experiments give the runs they gave before they were files."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from coe.compare import CompareConfig, compare
from coe.experiments import load_experiment
from coe.train.config import TrainConfig, merged, other_settings, saved_settings

ROOT = Path(__file__).resolve().parents[1]


def tiny_experiment(out_dir, *, reference=True, **train) -> CompareConfig:
    """The cpu experiment with tiny models and a few steps (``train``: TrainConfig options by section)."""
    cpu = load_experiment("cpu")
    options = {
        "model": {"size": "tiny"},
        "steps": 4,
        "batch_size": 2,
        "seq_len": 32,
        "eval": {"every": 2, "batches": 1, "accuracy_problems": 2, "max_new_tokens": 4},
        "data": {"synthetic_train": 300, "synthetic_eval": 30, "tokenizer": {"vocab_size": 300}},
        "logging": {"progress": False},
    }
    for key, value in train.items():
        options[key] = {**options.get(key, {}), **value} if isinstance(value, dict) else value
    base = yaml.safe_load(yaml.safe_dump(cpu.train.to_dict()))
    for key, value in options.items():
        base[key] = merged(base[key], value) if isinstance(value, dict) else value
    paper = load_experiment("paper").reference
    return replace(
        cpu, out_dir=str(out_dir), train=TrainConfig.from_dict(base), reference=paper if reference else None
    )


def test_compare_writes_a_complete_report_and_skips_finished_runs(tmp_path, caplog):
    cfg = tiny_experiment(tmp_path / "cmp")
    caplog.set_level("INFO")
    out = compare(cfg).parent
    for name in ("report.md", "report.html", "loss_curves.png", "results.json"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    rows = {r["preset"]: r for r in results["runs"]}
    assert set(rows) == {"moe-8-64", "coe-2-4-64"}
    assert rows["coe-2-4-64"]["expert_combinations"] == 595665**2  # C(63, 4)^2
    assert rows["moe-8-64"]["reference_val_loss"] == 1.196  # the paper's, from the paper experiment's file
    assert rows["moe-8-64"]["tokens"] == rows["coe-2-4-64"]["tokens"] == 4 * 2 * 32
    report = (out / "report.md").read_text()
    assert "| coe-2-4-64 |" in report and "1.121" in report and "loss_curves.png" in report
    # The answer opens the report and closes the terminal's output, numbers from the runs' summaries.
    coe, moe = rows["coe-2-4-64"]["val_loss"], rows["moe-8-64"]["val_loss"]
    answer = (
        f"CoE-2(4/64) {coe:.3f} vs MoE(8/64) {moe:.3f}: {coe - moe:+.3f} ({100 * (coe - moe) / moe:+.1f}%), "
        "1 seed"
    )
    assert report.startswith(f"# CoE vs MoE: cpu\n\n**{answer}.**\n")
    assert caplog.messages[-2:] == ["cpu, final validation loss (lower is better):", f"  {answer}"]
    assert (out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    # Routing of each final checkpoint: load for both, co-selection only where there are two iterations.
    for preset, figures in (("coe-2-4-64", {"coselection", "load"}), ("moe-8-64", {"load"})):
        routing = out / "routing" / preset
        assert {p.stem for p in routing.glob("*.png")} == figures, preset
        assert (routing / "report.html").is_file() and (routing / "analysis.json").is_file()
        assert all(f"routing/{preset}/{name}.png" in report for name in figures)
        assert set(rows[preset]["routing"]["figures"]) == figures
    assert rows["coe-2-4-64"]["routing"]["expert_reselection"] is not None
    assert rows["moe-8-64"]["routing"]["expert_reselection"] is None
    assert "routing/coe-2-4-64/coselection.png" in (out / "report.html").read_text()

    summary = out / "runs" / "moe-8-64" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    compare(cfg)  # both runs are finished with the same settings: nothing is trained again
    assert summary.stat().st_mtime_ns == stamp

    # The report alone, once the checkpoints are gone (they stay out of the repository): the routing analysis
    # written while they were there is kept; an unfinished preset is left out; nothing is trained.
    import shutil

    for preset in ("moe-8-64", "coe-2-4-64"):
        shutil.rmtree(out / "runs" / preset / "checkpoints")
    (out / "results.json").unlink()
    compare(replace(cfg, presets=["moe-8-64", "coe-2-4-64", "dense-8-8"], report_only=True))
    assert summary.stat().st_mtime_ns == stamp and not (out / "runs" / "dense-8-8").exists()
    again = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert set(again) == {"moe-8-64", "coe-2-4-64"}
    assert again["coe-2-4-64"]["routing"] == rows["coe-2-4-64"]["routing"]
    with pytest.raises(ValueError, match=r"dense-8-8.*nothing to report"):
        compare(replace(cfg, presets=["dense-8-8"], report_only=True))

    # A run saved before a field existed (here: runtime.expert_parallel) ran with its default: still finished.
    saved = out / "runs" / "moe-8-64" / "config.yaml"
    saved.write_text(
        "".join(
            line
            for line in saved.read_text().splitlines(keepends=True)
            if not line.startswith("  expert_parallel:")
        )
    )
    compare(cfg)
    assert summary.stat().st_mtime_ns == stamp
    # How often checkpoints are written, or the device named, changes nothing that is computed: still
    # finished.
    compare(tiny_experiment(tmp_path / "cmp", checkpoint={"every": 1}, runtime={"device": "cpu"}))
    assert summary.stat().st_mtime_ns == stamp
    # A different setting is not the same run, and the finished one is not overwritten: the error names it.
    with pytest.raises(
        ValueError,
        match=r"runs/moe-8-64 holds a run of moe-8-64 with other settings \(steps: 4 "
        r"saved, 5 now\): choose another out_dir",
    ):
        compare(tiny_experiment(tmp_path / "cmp", steps=5))
    assert summary.stat().st_mtime_ns == stamp
    # ... and a report of such settings leaves it out instead.
    with pytest.raises(ValueError, match="nothing to report"):
        compare(replace(tiny_experiment(tmp_path / "cmp", steps=5), presets=["moe-8-64"], report_only=True))

    # A second seed: seed 0's runs are kept, seed 1's go beside them; the report gives the mean over seeds.
    compare(replace(cfg, seeds=[0, 1]))
    assert summary.stat().st_mtime_ns == stamp
    rows = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    for preset in ("moe-8-64", "coe-2-4-64"):
        r = rows[preset]
        by_seed = r["val_loss_by_seed"]
        assert r["seeds"] == [0, 1] and set(by_seed) == {"0", "1"}
        assert by_seed["0"] == again[preset]["val_loss"]  # seed 0: the run made above
        assert (
            by_seed["1"]
            == json.loads((out / "runs" / f"{preset}-seed1" / "summary.json").read_text())["val_loss"]
        )
        assert by_seed["0"] != by_seed["1"]  # another initialisation and data order
        assert r["val_loss"] == pytest.approx((by_seed["0"] + by_seed["1"]) / 2)
    text = (out / "report.md").read_text()
    assert f"| moe-8-64 | {rows['moe-8-64']['val_loss']:.4f} | baseline | 0, 1 | " in text
    with pytest.raises(ValueError, match=r"seeds=\[1, 1\] is invalid"):
        CompareConfig(seeds=[1, 1])

    # A run made by an older training revision (a summary without "revision" is revision 1) is not trained
    # over, and a report shows it with its revision.
    from coe.train.config import TRAINING_REVISION

    assert rows["moe-8-64"]["revisions"] == [TRAINING_REVISION] and TRAINING_REVISION > 1
    old = json.loads(summary.read_text())
    del old["revision"]
    summary.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="runs/moe-8-64 holds a run of moe-8-64 made by training revision 1"):
        compare(replace(cfg, seeds=[0, 1]))
    compare(replace(cfg, seeds=[0, 1], report_only=True))
    rows = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert rows["moe-8-64"]["revisions"] == [1, TRAINING_REVISION]
    assert rows["coe-2-4-64"]["revisions"] == [TRAINING_REVISION]
    assert "Training revisions (the last column): 1: until 2026-12-01" in (out / "report.md").read_text()


def test_the_cpu_experiment_gives_the_run_it_gave_before_it_was_a_file(tmp_path):
    """The run `coe compare` made for coe-2-4-64 with seed 1 before the configuration tree (a flat
    TrainConfig saved then, kept in tests/fixtures) is the run the cpu experiment makes now, every option.
    The paper-packed experiment's runs are the committed ones in results/paper-2 (the next test)."""
    cfg = replace(load_experiment("cpu"), out_dir="reports/compare")
    run = cfg.run_config("coe-2-4-64", 1)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.yaml").write_text((ROOT / "tests/fixtures/legacy_cpu_run_config.yaml").read_text())
    now = yaml.safe_load(yaml.safe_dump(run.to_dict()))
    saved = saved_settings(legacy)
    # Every option, housekeeping included, but the end-of-run scoring, resized on purpose (answers stop at
    # their end, so the longest reference answer fits in max_new_tokens at a small cost), and the steps, cut
    # from 240 to 160 on purpose (the job in under 5 minutes on 2 cores, benchmarks/cpu_main_job.py).
    assert (saved["eval"]["accuracy_problems"], saved["eval"]["max_new_tokens"]) == (50, 96)
    assert (now["eval"]["accuracy_problems"], now["eval"]["max_new_tokens"]) == (32, 192)
    assert (saved["steps"], now["steps"]) == (240, 160)
    saved["eval"].update(accuracy_problems=32, max_new_tokens=192)
    saved["steps"] = 160
    assert saved == now
    assert run.out_dir == "reports/compare/runs/coe-2-4-64-seed1" and run.checkpoint.resume


def test_the_paper_runs_in_the_repository_count_as_runs_of_the_paper_experiment(monkeypatch):
    """results/paper-2 was trained with the flat configuration, GSM8K named by the path of a development copy,
    `--scale paper`: today's paper-packed experiment gives the same runs (housekeeping aside)."""
    monkeypatch.chdir(ROOT)  # the runs saved their out_dir relative to the repository
    cfg = replace(load_experiment("paper-packed"), out_dir="results/paper-2")
    for preset in ("moe-8-64", "coe-2-4-64", "moe-8-64-12l"):
        assert other_settings(cfg.run_config(preset)) == [], preset


def test_experiment_files_errors_and_legacy_scale(tmp_path, caplog):
    with pytest.raises(ValueError, match="experiment='gpu' is invalid: name a shipped experiment"):
        load_experiment("gpu")
    old = tmp_path / "old.yaml"
    old.write_text("scale: paper\nsteps: 10\nseeds: [0, 1]\nsave_every: 5\nlr: null\n")  # null: the default
    cfg = load_experiment(str(old))
    assert cfg.name == "old" and cfg.train.steps == 10 and cfg.train.checkpoint.every == 5
    assert cfg.train.optim.lr == 3e-4  # the paper experiment's
    assert cfg.seeds == [0, 1] and cfg.train.model.size == "paper" and cfg.reference is not None
    assert cfg.train.data.packing == "packed"  # scale 'paper' was the packed first reproduction
    assert (
        "'scale' is deprecated" in caplog.text and "'steps' is deprecated, use 'train.steps'" in caplog.text
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("presets: [moe-8-64]\ntrain:\n  stepz: 3\n")
    with pytest.raises(ValueError, match=r"train.stepz=3 is invalid: not an option"):
        load_experiment(str(bad))


def test_the_paper_experiment_is_one_pass_validated_in_the_training_mixture():
    """64,000 training documents (1000 steps of 64 padded rows: each seen once) and 1,024 validation
    documents with GSM8K's share of the training mixture; GSM8K test for the transfer loss and accuracy."""
    from coe.data import load_splits

    run = load_experiment("paper").run_config("coe-2-4-64", 1)
    assert run.data.packing == "padded" and run.eval.test_loss
    splits = load_splits(run.data)
    assert len(splits.train) == run.steps * run.batch_size == 64_000
    assert len(splits.validation) == run.eval.batches * run.batch_size == 1024
    gsm8k = load_splits(replace(run.data, source="builtin:gsm8k/train.parquet"))
    share = len(gsm8k.validation) / len(splits.validation), len(gsm8k.train) / len(splits.train)
    assert abs(share[0] - share[1]) < 0.005 and len(splits.test) == 1319
