"""The main job's machinery on a tiny budget: both runs, the report, skipping finished runs."""

import json

import pytest

from coe.compare import CompareConfig, compare
from coe.data import DataSpec


def test_compare_writes_a_complete_report_and_skips_finished_runs(tmp_path, monkeypatch):
    from coe.compare import SCALES

    tiny = dict(SCALES["cpu"], size="tiny", eval_every=2, eval_batches=1, accuracy_problems=2, max_new_tokens=4,
                tokenizer_vocab_size=300, data=DataSpec(synthetic_train=300, synthetic_eval=30))
    monkeypatch.setitem(SCALES, "cpu", tiny)
    cfg = CompareConfig(out_dir=str(tmp_path / "cmp"), steps=4, batch_size=2, seq_len=32, progress=False)
    out = compare(cfg)
    for name in ("report.md", "report.html", "loss_curves.png", "results.json"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    rows = {r["preset"]: r for r in results["runs"]}
    assert set(rows) == {"moe-8-64", "coe-2-4-64"}
    assert rows["coe-2-4-64"]["expert_combinations"] == 595665 ** 2  # C(63, 4)^2
    assert rows["moe-8-64"]["paper_val_loss"] == 1.196
    assert rows["moe-8-64"]["tokens"] == rows["coe-2-4-64"]["tokens"] == 4 * 2 * 32
    report = (out / "report.md").read_text()
    assert "| coe-2-4-64 |" in report and "1.121" in report and "loss_curves.png" in report
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
    compare(CompareConfig(out_dir=str(tmp_path / "cmp"), steps=4, batch_size=2, seq_len=32, progress=False,
                          presets=["moe-8-64", "coe-2-4-64", "dense-8-8"], report_only=True))
    assert summary.stat().st_mtime_ns == stamp and not (out / "runs" / "dense-8-8").exists()
    again = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert set(again) == {"moe-8-64", "coe-2-4-64"}
    assert again["coe-2-4-64"]["routing"] == rows["coe-2-4-64"]["routing"]
    with pytest.raises(ValueError, match="dense-8-8.*nothing to report"):
        compare(CompareConfig(out_dir=str(tmp_path / "cmp"), presets=["dense-8-8"], report_only=True))

    # A run saved before a field existed (here: expert_parallel) ran with its default: still finished.
    saved = out / "runs" / "moe-8-64" / "config.yaml"
    saved.write_text("".join(line for line in saved.read_text().splitlines(keepends=True)
                             if not line.startswith("expert_parallel:")))
    compare(cfg)
    assert summary.stat().st_mtime_ns == stamp
    # How often checkpoints are written, or the device named, changes nothing that is computed: still finished.
    compare(CompareConfig(out_dir=str(tmp_path / "cmp"), steps=4, batch_size=2, seq_len=32, progress=False,
                          save_every=1, device="cpu"))
    assert summary.stat().st_mtime_ns == stamp
    # A different setting is not the same run, and the finished one is not overwritten: the error names it.
    with pytest.raises(ValueError, match=r"runs/moe-8-64 holds a run of moe-8-64 with other settings \(steps: 4 "
                                         r"saved, 5 now\): choose another out_dir"):
        compare(CompareConfig(out_dir=str(tmp_path / "cmp"), steps=5, batch_size=2, seq_len=32, progress=False))
    assert summary.stat().st_mtime_ns == stamp
    # ... and a report of such settings leaves it out instead.
    with pytest.raises(ValueError, match="nothing to report"):
        compare(CompareConfig(out_dir=str(tmp_path / "cmp"), steps=5, batch_size=2, seq_len=32, progress=False,
                              presets=["moe-8-64"], report_only=True))

    # A second seed: seed 0's runs are kept, seed 1's go beside them; the report gives the mean over seeds.
    compare(CompareConfig(out_dir=str(tmp_path / "cmp"), steps=4, batch_size=2, seq_len=32, progress=False,
                          seeds=[0, 1]))
    assert summary.stat().st_mtime_ns == stamp
    rows = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    for preset in ("moe-8-64", "coe-2-4-64"):
        r = rows[preset]
        by_seed = r["val_loss_by_seed"]
        assert r["seeds"] == [0, 1] and set(by_seed) == {"0", "1"}
        assert by_seed["0"] == again[preset]["val_loss"]  # seed 0: the run made above
        assert by_seed["1"] == json.loads((out / "runs" / f"{preset}-seed1" / "summary.json").read_text())["val_loss"]
        assert by_seed["0"] != by_seed["1"]  # another initialisation and data order
        assert r["val_loss"] == pytest.approx((by_seed["0"] + by_seed["1"]) / 2)
    assert f"| moe-8-64 | {rows['moe-8-64']['val_loss']:.4f} | 2 (" in (out / "report.md").read_text()
    with pytest.raises(ValueError, match=r"seeds=\[1, 1\]"):
        CompareConfig(seeds=[1, 1])

    # A run made by an older training revision (a summary without "revision" is revision 1) is not trained
    # over, and a report shows it with its revision.
    from coe.train.config import TRAINING_REVISION

    assert rows["moe-8-64"]["revisions"] == [TRAINING_REVISION] and TRAINING_REVISION > 1
    old = json.loads(summary.read_text())
    del old["revision"]
    summary.write_text(json.dumps(old))
    seeds = dict(out_dir=str(tmp_path / "cmp"), steps=4, batch_size=2, seq_len=32, progress=False, seeds=[0, 1])
    with pytest.raises(ValueError, match="runs/moe-8-64 holds a run of moe-8-64 made by training revision 1"):
        compare(CompareConfig(**seeds))
    compare(CompareConfig(**seeds, report_only=True))
    rows = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert rows["moe-8-64"]["revisions"] == [1, TRAINING_REVISION]
    assert rows["coe-2-4-64"]["revisions"] == [TRAINING_REVISION]
    assert "Training revisions (the last column): 1: until 2026-12-01" in (out / "report.md").read_text()


def test_mean_metrics_averages_the_points_every_run_logged(caplog):
    from coe.compare import mean_metrics

    a = [{"split": "train", "step": 1, "loss": 2.0}, {"split": "val", "step": 2, "loss": 4.0},
         {"split": "final", "step": 2, "val_loss": 4.0}]
    b = [{"split": "train", "step": 1, "loss": 3.0}, {"split": "val", "step": 2, "loss": 1.0},
         {"split": "val", "step": 3, "loss": 9.0}]
    assert mean_metrics([a, b]) == [{"split": "train", "step": 1, "loss": 2.5},
                                    {"split": "val", "step": 2, "loss": 2.5}]
    assert "the runs logged different steps" in caplog.text  # b's step 3 has no partner in a
    assert mean_metrics([a]) == [m for m in a if "loss" in m]
