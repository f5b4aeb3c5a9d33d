"""`coe analyze` and the report directory on tiny trained CoE and MoE checkpoints, opened in a browser."""

import json
import re

import pytest

from coe.analysis.figures import FIGURES
from coe.analysis.report import analyze_checkpoint, write_report
from coe.cli import main
from coe.train.checkpoint import MODEL_DIR, latest_checkpoint
from tests.analysis.browser import assert_page_renders
from tests.analysis.conftest import DATA

ITERATION_FIGURES = {"coselection", "reselection"}  # drawn only when C > 1


@pytest.mark.parametrize("preset, C", [("coe-2-4-64", 2), ("moe-8-64", 1)])
def test_analysis_report_is_complete(tiny_runs, tmp_path, chromium, preset, C):
    checkpoint = latest_checkpoint(tiny_runs[preset])
    page = analyze_checkpoint(checkpoint, tmp_path / "report", data=DATA, tokens=300, seq_len=64)
    out = page.parent
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["tokens"] == 300 and summary["source"]["checkpoint"] == str(checkpoint / MODEL_DIR)
    assert summary["model"]["iterations"] == C and len(summary["layers"]) == 2
    for layer in summary["layers"]:
        assert len(layer["iterations"]) == C and len(layer["transitions"]) == C - 1
        for it in layer["iterations"]:
            assert sum(it["load"]["tokens_per_expert"]) == 300 * summary["model"]["top_k"]
            assert sum(it["specialisation"]["tokens_per_kind"].values()) == 300
    expected = set(FIGURES) - (ITERATION_FIGURES if C == 1 else set())
    assert {p.stem for p in out.glob("*.png")} == expected
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in out.glob("*.png"))
    html = page.read_text()
    assert set(re.findall(r"<img src='([^']+)\.png'", html)) == expected
    if C == 1:
        assert "C = 1" in html and "not computed" in html
    else:
        assert "Re-selection between iterations" in html
    assert_page_renders(page, chromium, images=True)


def test_analyze_command(tiny_runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "analyze",
                str(tiny_runs["coe-2-4-64"]),
                "--tokens",
                "128",
                "--seq_len",
                "32",
                "--data.synthetic_eval",
                "30",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert str(out / "report.html") in capsys.readouterr().out
    assert json.loads((out / "analysis.json").read_text())["tokens"] == 128
    assert main(["analyze", str(tmp_path / "nowhere"), "--out", str(out)]) == 2  # a clear error, not a trace
    assert "nowhere" in capsys.readouterr().err


def test_write_report_names_unknown_figures(tmp_path):
    with pytest.raises(ValueError, match=r"\['heatmap'\] are unknown"):
        write_report(tmp_path, {}, figures=["load", "heatmap"])


def test_a_padded_run_is_analysed_on_its_documents_without_padding(tiny_runs, tmp_path, monkeypatch):
    """No padding is recorded as routed text: the analysis packs the documents, attention within each."""
    from dataclasses import replace

    import coe.data

    made = []
    pack = coe.data.pack_documents

    def spy(*args, **kwargs):
        made.append(pack(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(coe.data, "pack_documents", spy)
    checkpoint = latest_checkpoint(tiny_runs["coe-2-4-64"])
    padded = replace(DATA, packing="padded")
    report = analyze_checkpoint(checkpoint, tmp_path, data=padded, tokens=256, seq_len=64, device="cpu")
    assert json.loads((report.parent / "analysis.json").read_text())["tokens"] == 256
    batch = made[0].batch([0, 1])
    assert "document_ids" in batch and "attention_mask" not in batch


def test_analysis_shows_progress_when_asked(tiny_runs, tmp_path, capsys):
    checkpoint = latest_checkpoint(tiny_runs["coe-2-4-64"])
    # 256 tokens in sequences of 32, 2 a batch: 4 forwards.
    options = {"data": DATA, "tokens": 256, "seq_len": 32, "batch_size": 2, "figures": ["load"]}
    analyze_checkpoint(checkpoint, tmp_path / "a", progress=True, description="routing of x", **options)
    err = capsys.readouterr().err
    assert "routing of x" in err and "4/4" in err and "batch" in err
    assert "figures" in err and "1/1" in err
    analyze_checkpoint(checkpoint, tmp_path / "b", progress=False, **options)
    err = capsys.readouterr().err
    assert "routing" not in err and "figures" not in err
