"""benchmarks/same_losses.py: the largest loss difference over the records two metrics files share."""

import json

from tests.conftest import load_benchmark


def test_same_losses_compares_common_records_only(tmp_path, capsys):
    bench = load_benchmark("same_losses")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    records = [{"step": s, "split": "train", "loss": 1.0 / s, "tokens_per_s": s} for s in (1, 2, 3)]
    a.write_text("".join(json.dumps(r) + "\n" for r in records))
    changed = [{**r, "tokens_per_s": 0} for r in records[:2]] + [{"step": 2, "split": "val", "loss": 9.0}]
    b.write_text("".join(json.dumps(r) + "\n" for r in changed))
    assert bench.main([str(a), str(b)]) == (2, 0.0)  # timings differ, losses do not; step 3 only in a
    changed[1]["loss"] += 0.25
    b.write_text("".join(json.dumps(r) + "\n" for r in changed))
    assert bench.main([str(a), str(b)]) == (2, 0.25)
    assert "2 common records (steps 1-2)" in capsys.readouterr().out
