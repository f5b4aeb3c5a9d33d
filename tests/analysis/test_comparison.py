"""The comparison report over finished runs: tiny trained runs (their checkpoints give the routing
analysis) with summaries overridden by known numbers, so that the means, ranges and peaks of the table can be
checked."""

import json
from dataclasses import replace

import pytest

from coe import CoEConfig
from coe.analysis.comparison import (
    FinishedRun,
    ReferenceResults,
    analyze_run,
    headline,
    label,
    mean_metrics,
    routing_sentence,
    run_name,
    write_report,
)
from coe.train.config import TRAINING_REVISION
from coe.train.metrics import read_metrics
from tests.analysis.browser import assert_page_renders
from tests.analysis.conftest import DATA

REFERENCE = ReferenceResults(
    "paper val loss (MetaMathQA, step 1000)",
    {"moe-8-64": 1.196, "coe-2-4-64": 1.121},
    note="The paper's numbers come from other data, so only the ordering is comparable.",
)
HOSTILE = "Runs of <script>alert('x')</script> & \"friends\"."


def finished(run_dir, preset: str, seed: int = 0, **summary) -> FinishedRun:
    """A finished run of ``run_dir``'s training with ``summary``'s entries replacing those it saved."""
    saved = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    return FinishedRun(
        preset=preset,
        seed=seed,
        run_dir=run_dir,
        summary={**saved, **summary},
        metrics=read_metrics(run_dir),
        data=DATA,
        seq_len=32,
        model_size="tiny",
    )


@pytest.fixture(scope="module")
def report(tiny_runs, tmp_path_factory):
    """A report of moe-8-64 (seeds 0 and 1, known numbers) and coe-2-4-64 (seed 0), with the reference."""
    moe = finished(
        tiny_runs["moe-8-64"],
        "moe-8-64",
        val_loss=2.0,
        accuracy=0.1,
        tokens_per_s=1000.0,
        peak_memory_gib=1.5,
        train_time_s=10.0,
    )
    # Seed 1 has no checkpoint of its own: only a preset's lowest seed is analysed.
    moe_1 = replace(
        moe,
        seed=1,
        run_dir=tmp_path_factory.mktemp("no-run"),
        summary={
            **moe.summary,
            "val_loss": 3.0,
            "accuracy": 0.3,
            "tokens_per_s": 3000.0,
            "peak_memory_gib": 2.5,
            "train_time_s": 30.0,
        },
    )
    coe = finished(tiny_runs["coe-2-4-64"], "coe-2-4-64")
    out = tmp_path_factory.mktemp("comparison")
    md = write_report(
        out,
        [moe_1, coe, moe],
        title="CoE vs MoE",
        description="Tiny runs.",
        reference=REFERENCE,
        device="cpu",
    )
    return md, {"moe": moe, "coe": coe}


def test_report_files_and_table(report):
    md, _ = report
    out = md.parent
    assert md == out / "report.md"
    for name in ("report.md", "report.html", "loss_curves.png", "results.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((out / "results.json").read_text())
    assert results["title"] == "CoE vs MoE" and results["reference"]["label"] == REFERENCE.label
    rows = {r["preset"]: r for r in results["runs"]}
    assert list(rows) == ["moe-8-64", "coe-2-4-64"]  # the order the presets first come in

    moe = rows["moe-8-64"]  # means over the seeds, peak memory the largest
    assert moe["seeds"] == [0, 1] and moe["val_loss_by_seed"] == {"0": 2.0, "1": 3.0}
    assert moe["val_loss"] == pytest.approx(2.5) and moe["accuracy"] == pytest.approx(0.2)
    assert moe["tokens_per_s"] == pytest.approx(2000) and moe["train_time_s"] == pytest.approx(20)
    assert moe["peak_memory_gib"] == 2.5
    assert moe["reference_val_loss"] == 1.196 and rows["coe-2-4-64"]["reference_val_loss"] == 1.121
    assert (moe["C"], moe["K"], moe["N"]) == (1, 8, 63)
    coe = rows["coe-2-4-64"]
    assert (coe["C"], coe["K"], coe["N"]) == (2, 4, 63)
    assert coe["expert_combinations"] == 595665**2  # C(63, 4)^2
    assert coe["accuracy"] is None and coe["seeds"] == [0]
    assert moe["tokens"] == coe["tokens"] == 4 * 4 * 32
    assert moe["revisions"] == coe["revisions"] == [TRAINING_REVISION]

    # The answer first: CoE's loss against the baseline's (the first preset) over the seed both ran (seed 0:
    # MoE's 2.0, not its mean over seeds 0 and 1), the gap, and the seed MoE ran alone.
    v = coe["val_loss"]
    gap = f"{v - 2.0:+.3f} ({100 * (v - 2.0) / 2.0:+.1f}%)"
    answer = (
        f"CoE-2(4/64) {v:.3f} vs MoE(8/64) 2.000: {gap}, seed 0, the seed both ran "
        "(MoE(8/64) also ran seed 1)"
    )
    assert results["headline"] == [answer]
    text = md.read_text()
    assert text.startswith(f"# CoE vs MoE\n\n**{answer}.**\n\nFinal validation loss, mean over seeds")
    assert "Tiny runs. Every run: the same data" in text
    assert (
        "| preset | val loss | vs MoE(8/64) | seeds | val loss over seeds | accuracy | params (M) |" in text
    )
    assert "| moe-8-64 | 2.5000 | baseline | 0, 1 | 2.000-3.000 | 20.0% |" in text
    # The table's differences are between means over each preset's own seeds.
    mean_gap = f"{v - 2.5:+.3f} ({100 * (v - 2.5) / 2.5:+.1f}%)"
    assert f"| coe-2-4-64 | {v:.4f} | {mean_gap} | 0 | - | - |" in text
    assert "| 2.50 | 20 | cpu |" in text  # peak memory, mean train time, device
    assert "revision" not in text  # every run is of the current revision
    # Decoding measured on the lowest seed's checkpoint: MLA caches the latent and the rotary key, float32.
    for preset, run in rows.items():
        decode = json.loads((out / "decode" / f"{preset}.json").read_text())
        assert run["decode"] == decode and decode["p95_ms"] >= decode["p50_ms"] > 0
        config = CoEConfig.from_preset(preset, size="tiny")
        kv = (config.kv_lora_rank + config.qk_rope_head_dim) * 4 * 2  # float32, the runs' 2 layers
        assert decode["kv_bytes_per_token"] == kv and decode["peak_gib"] is None  # no per-call peak on a CPU
        assert f"| {decode['p50_ms']:.2f} | {kv:,} | - |" in text
    # Every column is explained.
    header = next(line for line in text.splitlines() if line.startswith("| preset |"))
    for name in header.strip("| ").split(" | "):
        assert f"- **{name}**: " in text, name
    assert "finished different seeds" in text and "Training revisions" not in text
    assert "loss_curves.png" in text
    # The published numbers in a table of their own, not a column beside ours.
    published = text.split(f"## Published numbers: {REFERENCE.label}\n\n{REFERENCE.note}\n\n")[1]
    assert published.startswith(
        f"| preset | {REFERENCE.label} | published vs MoE(8/64) | here vs MoE(8/64) |\n|---|---|---|---|\n"
        f"| moe-8-64 | 1.196 | baseline | baseline |\n| coe-2-4-64 | 1.121 | -0.075 (-6.3%) | {mean_gap} |\n"
    )
    assert f"| {REFERENCE.label} |" not in text.split("## Published")[0]


def test_report_routing(report, tmp_path):
    md, runs = report
    out = md.parent
    rows = {r["preset"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    text, page = md.read_text(), (out / "report.html").read_text()
    # Load for both, co-selection only where there are two iterations; the lowest seed only.
    for preset, figures in (("coe-2-4-64", {"coselection", "load"}), ("moe-8-64", {"load"})):
        routing = out / "routing" / preset
        assert {p.stem for p in routing.glob("*.png")} == figures, preset
        assert (routing / "report.html").is_file() and (routing / "analysis.json").is_file()
        assert all(f"routing/{preset}/{name}.png" in text for name in figures)
        assert all(f'<img src="routing/{preset}/{name}.png"' in page for name in figures)
        assert set(rows[preset]["routing"]["figures"]) == figures
        assert routing_sentence(rows[preset]["routing"]) in text
    assert not (out / "routing" / "moe-8-64-seed1").exists()
    assert rows["coe-2-4-64"]["routing"]["expert_reselection"] is not None
    assert rows["moe-8-64"]["routing"]["expert_reselection"] is None

    # Without checkpoints (they stay out of the repository) the analysis written while they were there is
    # kept; with neither, there is none.
    gone = replace(runs["coe"], run_dir=tmp_path / "gone")
    assert analyze_run(out, gone, device="cpu") == rows["coe-2-4-64"]["routing"]
    assert analyze_run(tmp_path / "elsewhere", gone, device="cpu") is None
    # The busiest expert's share of the tokens: its load over the mean, times K over N.
    analysis = json.loads((out / "routing" / "coe-2-4-64" / "analysis.json").read_text())
    loads = [it["load"]["max_over_mean"] for layer in analysis["layers"] for it in layer["iterations"]]
    model = analysis["model"]
    share = sum(loads) / len(loads) * model["top_k"] / model["experts"]
    assert rows["coe-2-4-64"]["routing"]["busiest_expert_share"] == pytest.approx(share)
    assert rows["coe-2-4-64"]["routing"]["load_max_over_mean_range"] == [min(loads), max(loads)]
    assert rows["coe-2-4-64"]["routing"]["layer_iterations"] == len(loads)


def test_report_routing_falls_back_to_the_next_seed(tiny_runs, tmp_path):
    """A preset whose lowest seed has neither checkpoint nor analysis is analysed on its next seed."""
    coe = finished(tiny_runs["coe-2-4-64"], "coe-2-4-64", seed=1)
    gone = replace(coe, seed=0, run_dir=tmp_path / "gone")
    write_report(tmp_path / "r", [gone, coe], title="t", description="d.", device="cpu")
    rows = json.loads((tmp_path / "r" / "results.json").read_text())["runs"]
    assert rows[0]["routing"]["dir"] == "routing/coe-2-4-64-seed1"
    assert (tmp_path / "r" / "routing" / "coe-2-4-64-seed1" / "analysis.json").is_file()
    assert not (tmp_path / "r" / "routing" / "coe-2-4-64").exists()


def test_report_page_renders(report, chromium):
    md, _ = report
    assert_page_renders(md.parent / "report.html", chromium, images=True)


def test_report_without_reference_escapes_and_names_old_revisions(tiny_runs, tmp_path):
    run = finished(tiny_runs["moe-8-64"], "moe-8-64")
    old = replace(run, summary={k: v for k, v in run.summary.items() if k != "revision"})  # revision 1
    md = write_report(tmp_path, [old], title="<b>CoE</b> & MoE", description=HOSTILE, device="cpu")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["reference"] is None and results["runs"][0]["reference_val_loss"] is None
    assert results["runs"][0]["revisions"] == [1]
    text = md.read_text()
    # One preset: its loss alone; no published table; the revision column, explained, for an old revision.
    assert text.startswith(f"# <b>CoE</b> & MoE\n\n**MoE(8/64) {run.summary['val_loss']:.3f}, 1 seed.**")
    assert "paper" not in text and "Published" not in text and "|---" * 14 + "|" in text
    assert "- **revision**: the training revisions of the preset's runs: 1: until 2026-12-01" in text
    assert "Training revisions (the last column): 1: until 2026-12-01" in text
    assert "finished different seeds" not in text
    assert "Accuracy was not measured" in text and "| accuracy |" not in text
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(" in page and "<title>&lt;b&gt;CoE&lt;/b&gt; &amp; MoE</title>" in page
    assert page.count("<th>") == 14
    assert "<code>coe analyze RUN_DIR</code>" in page and "`" not in page  # Markdown rendered


def test_write_report_rejects_no_runs_and_repeated_runs(tiny_runs, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        write_report(tmp_path, [], title="t", description="d")
    run = finished(tiny_runs["moe-8-64"], "moe-8-64", seed=2)
    with pytest.raises(ValueError, match="moe-8-64-seed2 twice"):
        write_report(tmp_path, [run, run], title="t", description="d")


def test_run_name():
    assert run_name("moe-8-64", 0) == "moe-8-64"
    assert run_name("moe-8-64", 2) == "moe-8-64-seed2"


def test_mean_metrics_averages_the_points_every_run_logged(caplog):
    a = [
        {"split": "train", "step": 1, "loss": 2.0},
        {"split": "val", "step": 2, "loss": 4.0},
        {"split": "final", "step": 2, "val_loss": 4.0},
    ]
    b = [
        {"split": "train", "step": 1, "loss": 3.0},
        {"split": "val", "step": 2, "loss": 1.0},
        {"split": "val", "step": 3, "loss": 9.0},
    ]
    assert mean_metrics([a, b]) == [
        {"split": "train", "step": 1, "loss": 2.5},
        {"split": "val", "step": 2, "loss": 2.5},
    ]
    assert "the runs logged different steps" in caplog.text  # b's step 3 has no partner in a
    caplog.clear()
    assert mean_metrics([a]) == [m for m in a if "loss" in m]
    assert caplog.text == ""


def test_routing_sentence():
    r = {
        "tokens": 1024,
        "load_max_over_mean": 1.5,
        "busiest_expert_share": 0.1905,
        "unused_experts": 3,
        "distinct_paths": 1234.4,
        "expert_reselection": None,
        "expert_reselection_expected": None,
    }
    assert routing_sentence(r) == (
        "Over 1,024 validation tokens: load max/mean 1.50 (mean over layers and iterations: the busiest "
        "expert is chosen by 19% of the tokens), 3 unused "
        "(layer, iteration, expert) triples, 1,234 distinct routing paths per layer. C = 1: no next "
        "iteration, so no co-selection or re-selection."
    )
    r.update(expert_reselection=0.1234, expert_reselection_expected=0.0631)
    assert routing_sentence(r).endswith(
        "per layer. Experts chosen again in the next iteration: 0.123 (0.063 if the iterations chose "
        "independently)."
    )


def test_report_shows_the_test_loss_where_runs_measured_it(tiny_runs, tmp_path):
    """Runs with eval.test_loss carry test_loss (the transfer set's loss): a column of its own, means over
    seeds, '-' for a preset that did not measure it; without any, no such column."""
    moe = finished(tiny_runs["moe-8-64"], "moe-8-64", test_loss=2.0)
    moe_1 = replace(moe, seed=1, run_dir=tmp_path / "none", summary={**moe.summary, "test_loss": 4.0})
    coe = finished(tiny_runs["coe-2-4-64"], "coe-2-4-64")
    md = write_report(tmp_path / "r", [moe, moe_1, coe], title="t", description="d.", device="cpu")
    rows = {r["preset"]: r for r in json.loads((tmp_path / "r" / "results.json").read_text())["runs"]}
    assert rows["moe-8-64"]["test_loss"] == pytest.approx(3.0) and rows["coe-2-4-64"]["test_loss"] is None
    text = md.read_text()
    assert "| val loss | vs MoE(8/64) | seeds | val loss over seeds | test loss | params (M) |" in text
    assert "| 3.0000 | " in text and " | - | " in text
    # Both measured the test loss: the answer gives it beside the validation loss.
    coe_1 = replace(coe, seed=1, run_dir=tmp_path / "none", summary={**coe.summary, "test_loss": 3.5})
    md = write_report(
        tmp_path / "s",
        [moe, moe_1, replace(coe, summary={**coe.summary, "test_loss": 2.5}), coe_1],
        title="t",
        description="d.",
        device="cpu",
    )
    v, mv = coe.summary["val_loss"], moe.summary["val_loss"]
    assert md.read_text().startswith(
        f"# t\n\n**CoE-2(4/64) vs MoE(8/64): validation loss {v:.3f} vs {mv:.3f}, "
        f"{v - mv:+.3f} ({100 * (v - mv) / mv:+.1f}%); test loss 3.000 vs 3.000, +0.000 (+0.0%); 2 seeds"
    )


def _row(preset, losses, test=None, seeds=None):
    """A results.json entry with the fields the answer reads: ``losses`` (and ``test``, the test losses) of
    ``seeds`` (default 0, 1, ...)."""
    seeds = list(range(len(losses))) if seeds is None else seeds
    return {
        "preset": preset,
        "label": label(preset),
        "seeds": seeds,
        "val_loss": sum(losses) / len(losses),
        "val_loss_by_seed": {str(s): x for s, x in zip(seeds, losses, strict=True)},
        "test_loss": None if test is None else sum(test) / len(test),
        "test_loss_by_seed": {str(s): None if test is None else test[i] for i, s in enumerate(seeds)},
    }


def test_headline_states_each_comparison_in_numbers():
    moe = _row("moe-8-64", [1.17, 1.19, 1.186])
    coe = _row("coe-2-4-64", [1.13, 1.15, 1.137])
    wide = _row("moe-16-64", [1.16, 1.20, 1.18], test=[1.4, 1.5, 1.6])
    assert label("moe-8-64-12l") == "moe-8-64-12l" and label("coe-2-8-64") == "CoE-2(8/64)"
    # Each seed's gap to the baseline's run of the same seed; a gap holds where its sign is the same on every
    # seed and its mean is larger than both presets' ranges over the seeds (here 0.020 and 0.040).
    assert headline([moe, coe, wide]) == [
        "CoE-2(4/64) 1.139 vs MoE(8/64) 1.182: -0.043 (-3.6%), 3 seeds, gap per seed -0.040, -0.040, "
        "-0.049: the same sign on every seed, the mean gap larger than either preset's range over these "
        "seeds (up to 0.020)",
        "MoE(16/64) 1.180 vs MoE(8/64) 1.182: -0.002 (-0.2%), 3 seeds, gap per seed -0.010, +0.010, -0.006: "
        "the sign differs between seeds",
    ]
    moe["test_loss_by_seed"] = {"0": 1.5, "1": 1.6, "2": 1.9}
    moe["test_loss"] = 5.0 / 3
    apart = _row("moe-16-64", [1.20, 1.24, 1.25], test=[1.4, 1.5, 1.6])
    assert headline([moe, apart])[0] == (
        "MoE(16/64) vs MoE(8/64): validation loss 1.230 vs 1.182, +0.048 (+4.1%); test loss 1.500 vs "
        "1.667, -0.167 (-10.0%); 3 seeds, gap per seed +0.030, +0.050, +0.064: the same sign on every seed, "
        "the mean gap not larger than either preset's range over these seeds (up to 0.050)"
    )
    # Over the seeds both ran: MoE(8/64)'s seed 1 alone, not its mean over three seeds.
    one = _row("coe-2-8-64", [1.10], test=[1.0], seeds=[1])
    assert headline([moe, one]) == [
        "CoE-2(8/64) vs MoE(8/64): validation loss 1.100 vs 1.190, -0.090 (-7.6%); test loss 1.000 vs "
        "1.600, -0.600 (-37.5%); seed 1, the seed both ran (MoE(8/64) also ran seeds 0 and 2)"
    ]
    other = _row("coe-2-8-64", [1.10, 1.12], seeds=[3, 4])
    assert headline([moe, other]) == [
        "CoE-2(8/64) 1.110 vs MoE(8/64) 1.182: -0.072 (-6.1%), no seed in common (CoE-2(8/64): seeds 3 "
        "and 4; MoE(8/64): seeds 0, 1 and 2), means"
    ]
    assert headline([_row("coe-2-4-64", [1.5])]) == ["CoE-2(4/64) 1.500, 1 seed"]
    assert headline([_row("moe-8-64", [1.2, 1.0])]) == ["MoE(8/64) 1.100, 2 seeds (1.000-1.200)"]


def test_report_leaves_out_an_accuracy_of_zero_for_every_preset(tiny_runs, tmp_path):
    moe = finished(tiny_runs["moe-8-64"], "moe-8-64", accuracy=0.0, accuracy_problems=32)
    coe = finished(tiny_runs["coe-2-4-64"], "coe-2-4-64", accuracy=0.0, accuracy_problems=32)
    text = write_report(tmp_path / "zero", [moe, coe], title="t", description="d.", device="cpu").read_text()
    assert "| accuracy |" not in text and "**accuracy**" not in text
    assert "exact match was 0% on 32 held-out problems for every preset" in text
    coe = replace(coe, summary={**coe.summary, "accuracy": 1 / 32})
    text = write_report(tmp_path / "one", [moe, coe], title="t", description="d.", device="cpu").read_text()
    assert "| accuracy |" in text and "| 3.1% |" in text and "0% on" not in text
