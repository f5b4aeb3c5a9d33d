"""The `coe` command: every subcommand's help, a train -> eval -> generate round, and bad input."""

import json
import subprocess
import sys

import pytest

from coe.cli import main

TINY = ["--model.preset", "moe-8-64", "--model.size", "tiny", "--model.overrides", '{"num_hidden_layers": 1}',
        "--steps", "2", "--batch_size", "2", "--seq_len", "32", "--eval_every", "2", "--eval_batches", "1",
        "--accuracy_problems", "1", "--max_new_tokens", "4", "--data.synthetic_train", "200",
        "--data.synthetic_eval", "20", "--progress", "false", "--tensorboard", "false"]


@pytest.mark.parametrize("command", ["presets", "train", "eval", "generate", "compare", "convert"])
def test_help_explains_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: coe" in out and command in out


def test_presets_lists_all(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "coe-2-4-64" in out and "dense-8-8-c2" in out


def test_train_eval_generate(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out_dir", str(run), *TINY]) == 0
    assert "validation loss" in capsys.readouterr().out
    assert main(["eval", str(run), "--seq_len", "32", "--batches", "1", "--problems", "1",
                 "--max_new_tokens", "4", "--data.synthetic_eval", "20", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["val_loss"] > 0 and result["accuracy_problems"] == 1
    assert main(["generate", str(run), "Question: Ann has 3 apples.", "--max_new_tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("Question: Ann has 3 apples.")


def test_yaml_config_and_overrides(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"out_dir: {tmp_path / 'yaml-run'}\nsteps: 2\noptim:\n  lr: 0.001\n")
    assert main(["train", "--config", str(config), *TINY[:-14], "--seq_len", "32", "--eval_batches", "1",
                 "--accuracy_problems", "0", "--data.synthetic_train", "200", "--data.synthetic_eval", "20",
                 "--progress", "false", "--tensorboard", "false", "--optim.schedule", "cosine"]) == 0
    saved = (tmp_path / "yaml-run" / "config.yaml").read_text()
    assert "lr: 0.001" in saved and "schedule: cosine" in saved


def write_parquet(path, columns: dict):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


@pytest.mark.parametrize("case, message", [
    ("missing_file", "data file not found"),
    ("empty_file", "empty"),
    ("missing_column", "question"),
    ("seq_too_long", "seq_len=4096 is above the model's max_position_embeddings=1024"),
    ("batch_not_divisible", "batch_size=3 is not a multiple of micro_batch_size=2"),
    ("unwritable", "is not writable"),
    ("unknown_field", "steps_total"),
    ("bf16_on_cpu", "precision='bf16' needs a CUDA device, but the run is on cpu"),
])
def test_bad_input_fails_before_training_with_a_clear_message(case, message, tmp_path, capsys):
    args = ["train", "--out_dir", str(tmp_path / "run"), *TINY]
    if case == "missing_file":
        args += ["--data.source", str(tmp_path / "nope.parquet")]
    elif case == "empty_file":
        (tmp_path / "empty.jsonl").write_text("")
        args += ["--data.source", str(tmp_path / "empty.jsonl")]
    elif case == "missing_column":
        write_parquet(tmp_path / "d.parquet", {"query": ["a"] * 10, "response": ["b"] * 10})
        args += ["--data.source", str(tmp_path / "d.parquet")]
    elif case == "seq_too_long":
        args += ["--seq_len", "4096", "--model.overrides", '{"max_position_embeddings": 1024}']
    elif case == "batch_not_divisible":
        args += ["--batch_size", "3", "--micro_batch_size", "2"]
    elif case == "unwritable":
        blocker = tmp_path / "file"
        blocker.write_text("")
        args[2] = str(blocker / "run")
    elif case == "unknown_field":
        args += ["--steps_total", "3"]
    elif case == "bf16_on_cpu":
        args += ["--precision", "bf16", "--device", "cpu"]
    try:
        code = main(args)
    except SystemExit as e:  # the argument parser's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "coe", "presets"], capture_output=True, text=True, check=True)
    assert "moe-8-64" in out.stdout
