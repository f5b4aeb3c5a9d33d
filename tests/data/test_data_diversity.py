"""benchmarks/data_diversity.py runs end to end on a few documents (a smoke test: no thresholds on speed)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "data_diversity.py"


def _load():
    spec = importlib.util.spec_from_file_location("data_diversity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_skeletons_hide_numbers_and_names():
    bench = _load()
    assert bench.skeleton("Maria buys 3 pens for $1.50 each.") == "A buys N pens for $N each."
    assert bench.skeleton("So Omar pays 1,200 dollars.") == bench.skeleton("So Ann pays 7 dollars.")
    counts = bench.diversity(["Question: Ann has 3 pens.\nAnswer: 3 + 1 = 4\n#### 4"] * 2)
    assert counts["answer_line_skeletons"] == 2 and counts["question_skeleton_share"] == 0.5


def test_data_diversity_smoke(capsys):
    rows = _load().main(["--documents", "200"])
    sources = ["synthetic-metamath", "synthetic-math", "builtin:gsm8k/train.parquet"]
    assert [r["source"] for r in rows] == sources
    assert rows[0]["documents"] == rows[1]["documents"] == 200 and rows[2]["documents"] == 7473
    assert rows[0]["answer_line_skeletons"] > rows[1]["answer_line_skeletons"]
    assert "| synthetic-metamath | 200 |" in capsys.readouterr().out
