"""benchmarks/pad_share.py on a tiny padded run: its share of real positions against the documents' token
counts in the run's own tokenizer."""

import yaml

from coe.cli import main as coe_main
from coe.data import load_splits, load_tokenizer
from coe.train.config import TrainConfig
from tests.conftest import load_benchmark
from tests.test_cli import TINY


def test_pad_share_counts_each_document_s_tokens_up_to_the_row_length(tmp_path, capsys):
    run = tmp_path / "run"
    padded = ["--data.packing", "padded", "--seq_len", "512"]  # rows longer than most documents
    assert coe_main(["train", "--out_dir", str(run), *TINY, *padded]) == 0
    capsys.readouterr()
    (result,) = load_benchmark("pad_share").main([str(run)])
    cfg = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    tokenizer = load_tokenizer(run / "tokenizer")
    lengths = [len(tokenizer(doc, add_special_tokens=False).input_ids) for doc in load_splits(cfg.data).train]
    assert result["documents"] == len(lengths) and 0 < result["real_share"] < 1
    expected = sum(min(n, cfg.seq_len) for n in lengths) / (len(lengths) * cfg.seq_len)
    assert abs(result["real_share"] - expected) < 1e-6
    assert f"| {result['real_share']:.1%} |" in capsys.readouterr().out
