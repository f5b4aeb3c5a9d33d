"""The `coe` command: every subcommand's help, a train -> eval -> generate round, and bad input."""

import json
import subprocess
import sys

import pytest
import transformers  # noqa: F401
import yaml

from coe.cli import main

# transformers is imported above, at collection, as every coe command but presets imports it before it logs:
# its log handler keeps the sys.stderr of the moment it is first imported, which under capsys closes with
# the test that imported it.

TINY = [
    "--model.preset",
    "moe-8-64",
    "--model.size",
    "tiny",
    "--model.overrides",
    '{"num_hidden_layers": 1}',
    "--steps",
    "2",
    "--batch_size",
    "2",
    "--seq_len",
    "32",
    "--eval.every",
    "2",
    "--eval.batches",
    "1",
    "--eval.accuracy_problems",
    "1",
    "--eval.max_new_tokens",
    "4",
    "--data.synthetic_train",
    "200",
    "--data.synthetic_eval",
    "20",
    "--logging.progress",
    "false",
    "--logging.tensorboard",
    "false",
]


@pytest.mark.parametrize("command", ["presets", "train", "eval", "generate", "compare", "convert", "export"])
def test_help_explains_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: coe" in out and command in out


def test_lm_eval_without_lm_eval_installed_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # importlib finds no lm_eval
    assert main(["lm-eval", "--tasks", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("coe lm-eval: error:") and "pip install" in err[0]


def test_presets_lists_all(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "coe-2-4-64" in out and "dense-8-8-c2" in out


def test_train_eval_generate(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--out_dir", str(run), *TINY]) == 0
    assert "validation loss" in capsys.readouterr().out
    evaluate = ["eval", str(run), "--seq_len", "32", "--eval.batches", "1", "--eval.accuracy_problems", "3"]
    evaluate += ["--eval.max_new_tokens", "4", "--data.synthetic_eval", "20", "--runtime.device", "cpu"]
    assert main(evaluate) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["val_loss"] > 0 and result["accuracy_problems"] == 3
    # --decode reaches the accuracy's decoding (whose paths give the same answers: tests/test_evaluate.py)
    import coe.evaluate

    decoded = []
    exact_match = coe.evaluate.exact_match

    def spy(*args, decode, **kwargs):
        decoded.append(decode)
        return exact_match(*args, decode=decode, **kwargs)

    monkeypatch.setattr(coe.evaluate, "exact_match", spy)
    assert main([*evaluate, "--decode", "dynamic"]) == 0
    assert decoded == ["dynamic"] and json.loads(capsys.readouterr().out) == result
    assert main(["generate", str(run), "Question: Ann has 3 apples.", "--max_new_tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("Question: Ann has 3 apples.")


def test_yaml_config_and_overrides(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"out_dir: {tmp_path / 'yaml-run'}\nsteps: 2\noptim:\n  lr: 0.001\n")
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                *TINY[:-14],
                "--seq_len",
                "32",
                "--eval.batches",
                "1",
                "--eval.accuracy_problems",
                "0",
                "--data.synthetic_train",
                "200",
                "--data.synthetic_eval",
                "20",
                "--logging.progress",
                "false",
                "--logging.tensorboard",
                "false",
                "--optim.schedule",
                "cosine",
            ]
        )
        == 0
    )
    saved = (tmp_path / "yaml-run" / "config.yaml").read_text()
    assert "lr: 0.001" in saved and "schedule: cosine" in saved


def test_old_flat_spellings_still_work_with_a_deprecation_message(tmp_path, caplog):
    """YAML files and command lines written before the configuration tree train the same run."""
    config = tmp_path / "old.yaml"
    config.write_text(
        "eval_every: 2\neval_batches: 1\naccuracy_problems: 0\ntokenizer_vocab_size: 300\n"
        "progress: false\ntensorboard: false\n"
    )
    args = [
        "train",
        "--config",
        str(config),
        "--out_dir",
        str(tmp_path / "run"),
        "--model.preset",
        "moe-8-64",
        "--model.size",
        "tiny",
        "--steps",
        "2",
        "--batch_size",
        "2",
        "--seq_len",
        "32",
        "--data.synthetic_train",
        "200",
        "--data.synthetic_eval",
        "20",
        "--save_every=1",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["eval"] == {
        "every": 2,
        "batches": 1,
        "accuracy_problems": 0,
        "max_new_tokens": 256,
        "test_loss": False,
    }
    assert saved["data"]["tokenizer"]["vocab_size"] == 300 and saved["checkpoint"]["every"] == 1
    assert saved["runtime"]["device"] == "cpu" and saved["logging"]["progress"] is False
    for old, new in (
        ("eval_every", "eval.every"),
        ("tokenizer_vocab_size", "data.tokenizer.vocab_size"),
        ("save_every", "checkpoint.every"),
        ("device", "runtime.device"),
    ):
        assert (
            f"{old!r} is deprecated, use {new!r}" in caplog.text
            or f"--{old} is deprecated, use --{new}" in caplog.text
        ), old


def test_compare_command_lines_old_and_new(tmp_path, capsys):
    """The experiment applies first wherever it stands (an old flag before --scale is kept); --config files
    are overrides on top of it; nothing after -- is rewritten."""
    from coe.cli import upgrade_argv

    def printed(*args):
        with pytest.raises(SystemExit):
            main(["compare", *args, "--print_config"])
        return yaml.safe_load(capsys.readouterr().out)

    old = printed("--steps", "100", "--scale", "paper", "--device=cpu")
    assert (
        old["name"] == "paper-packed"
        and old["train"]["steps"] == 100
        and old["train"]["runtime"]["device"] == "cpu"
    )
    assert old["train"]["model"]["size"] == "paper"
    overrides = tmp_path / "more.yaml"
    overrides.write_text("seeds: [1, 2]\ntrain:\n  steps: 5\n")
    cfg = printed("--config", str(overrides))
    assert cfg["name"] == "cpu" and cfg["seeds"] == [1, 2] and cfg["train"]["steps"] == 5
    assert cfg["train"]["batch_size"] == 16  # the cpu experiment's, under the overrides
    assert upgrade_argv(["train", "--steps", "1", "--", "--device"])[-2:] == ["--", "--device"]


def test_options_a_command_does_not_use_fail_rather_than_being_ignored(tmp_path, capsys):
    assert main(["generate", str(tmp_path), "hi", "--runtime.precision", "bf16"]) == 2
    assert "runtime.precision='bf16' is invalid: coe generate does not use it" in capsys.readouterr().err
    assert main(["compare", "--train.seed", "3"]) == 2
    assert "train.seed=3 is invalid: set per run: use seeds instead" in capsys.readouterr().err


def test_an_option_given_in_both_spellings_is_an_error(tmp_path, capsys):
    config = tmp_path / "both.yaml"
    config.write_text("eval_every: 2\neval:\n  every: 3\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "sets both eval_every=2 (the old name) and eval.every=3" in capsys.readouterr().err


def write_parquet(path, columns: dict):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_file", "data file not found"),
        ("empty_file", "empty"),
        ("missing_column", "question"),
        ("seq_too_long", "seq_len=4096 is invalid: must be at most the model's max_position_embeddings=1024"),
        (
            "batch_not_divisible",
            "micro_batch_size=2 is invalid: must be None or a positive divisor of batch_size=3",
        ),
        ("unwritable", "is not writable"),
        ("unknown_field", "steps_total"),
        ("bf16_on_cpu", "runtime.precision='bf16' is invalid: bf16 needs a CUDA device, the run is on cpu"),
    ],
)
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
        args += ["--runtime.precision", "bf16", "--runtime.device", "cpu"]
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run's newest checkpoint, trained once for the tests below (each works on a copy)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--out_dir", str(run), *TINY]) == 0
    from coe.train.checkpoint import latest_checkpoint

    return latest_checkpoint(run)


def damaged(trained, tmp_path, case: str):
    """A copy of the checkpoint with one kind of damage."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    path = tmp_path / "ckpt"
    shutil.copytree(trained, path)
    weights = path / "model" / "model.safetensors"
    tensors = load_file(weights)
    key = "model.norm.weight"
    if case == "no_config":
        (path / "model" / "config.json").unlink()
    elif case == "missing_weight":
        del tensors[key]
    elif case == "unexpected_weight":
        tensors["model.extra.weight"] = torch.zeros(2)
    elif case == "misshapen_weight":
        tensors[key] = torch.zeros(3)
    elif case == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:-10])
    elif case == "nan_weights":
        tensors[key] = torch.full_like(tensors[key], float("nan"))
    if case.endswith("_weight") or case == "nan_weights":
        save_file(tensors, weights, metadata={"format": "pt"})
    return path


EVAL = [
    "--seq_len",
    "32",
    "--eval.batches",
    "1",
    "--eval.accuracy_problems",
    "0",
    "--data.synthetic_eval",
    "20",
]


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_config", "no config.json"),
        ("missing_weight", "model.norm.weight: missing from the checkpoint"),
        ("unexpected_weight", "model.extra.weight: in the checkpoint, not in the model"),
        ("misshapen_weight", "model.norm.weight: shape (3,) in the checkpoint, (32,) in the model"),
        ("truncated_weights", "unreadable weights"),
    ],
)
def test_a_damaged_checkpoint_is_an_error_naming_what_is_wrong(trained, tmp_path, capsys, case, message):
    path = damaged(trained, tmp_path, case)
    for command in (
        ["eval", str(path), *EVAL],
        ["generate", str(path), "Question:", "--max_new_tokens", "2"],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]  # after transformers' progress bar
        assert last.startswith(f"coe {command[0]}: error: {path}") and message in last, err
        assert "Traceback" not in err


def test_eval_fails_on_a_non_finite_loss(trained, tmp_path, capsys):
    path = damaged(trained, tmp_path, "nan_weights")
    assert main(["eval", str(path), *EVAL]) == 3
    assert "coe eval: error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "{ckpt}", ""], "prompt='' is invalid: must not be empty"),
        (["generate", "{ckpt}", "hi", "--temperature", "-1"], "temperature=-1.0 is invalid"),
        (["generate", "{ckpt}", "hi", "--runtime.threads", "0"], "runtime.threads=0 is invalid"),
        (
            ["eval", "{ckpt}", "--decode", "loop"],
            "decode='loop' is invalid: the loop decodes outside generate()",
        ),
        (["eval", "{ckpt}", "--decode", "fast"], "decode='fast' is invalid: choose one of 'auto'"),
        (["convert", "{ckpt}", "{tmp}"], "exists and is not empty"),
        (["train", "--config", "{binary}"], "is not a valid YAML file"),
    ],
)
def test_user_errors_end_in_one_line(trained, tmp_path, capsys, args, message):
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep").write_text("")
    names = {"ckpt": str(trained), "tmp": str(tmp_path / "dst"), "binary": str(tmp_path / "binary.yaml")}
    assert main([a.format(**names) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"coe {args[0]}: error:") and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_an_interrupt_during_start_up_exits_130_without_a_traceback(tmp_path, monkeypatch, capsys):
    from coe.train import trainer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "prepare_run_data", interrupted)
    assert main(["train", "--out_dir", str(tmp_path / "run"), *TINY]) == 130
    assert capsys.readouterr().err.strip() == "coe train: interrupted"


def test_a_checkpoint_its_model_directory_and_its_run_are_the_same_model(trained, capsys):
    """``coe eval`` and ``coe generate`` take step-N, step-N/model (the directory a user uploads) and the run
    directory alike."""
    outputs = {}
    for name, path in (("step", trained), ("model", trained / "model"), ("run", trained.parent.parent)):
        assert main(["eval", str(path), *EVAL]) == 0
        result = json.loads(capsys.readouterr().out)
        assert main(["generate", str(path), "Q", "--max_new_tokens", "6"]) == 0
        outputs[name] = result["val_loss"], result["checkpoint"], capsys.readouterr().out
    assert outputs["step"] == outputs["model"] == outputs["run"]
    assert outputs["step"][1] == str(trained / "model")
    # and the library's readers of a directory's parts: its config and its tokenizer
    from coe import CoEConfig
    from coe.data import load_tokenizer

    model_dir = trained / "model"
    assert CoEConfig.from_pretrained(trained).to_dict() == CoEConfig.from_pretrained(model_dir).to_dict()
    assert load_tokenizer(trained).get_vocab() == load_tokenizer(model_dir).get_vocab()


def test_generate_takes_the_thread_count(trained, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["generate", str(trained), "Q", "--max_new_tokens", "1", "--runtime.threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_parse_error_is_its_line_then_where_the_options_are(capsys):
    assert main(["train", "--bogus"]) == 2
    assert capsys.readouterr().err == (
        "coe train: error: unrecognized arguments: --bogus\nsee `coe train --help`\n"
    )
    assert main(["train", "--steps", "abc"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith('coe train: error: Parser key "steps":') and "abc" in err[0]
    assert main(["nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("coe: error:") and "'nope'" in err[0] and err[1] == "see `coe --help`"


def test_a_misspelt_model_override_is_rejected_with_a_suggestion(tmp_path, capsys):
    args = ["train", "--out_dir", str(tmp_path / "run"), *TINY, "--model.overrides", '{"inner_iterz": 3}']
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "model.overrides='inner_iterz' is invalid" in err and "did you mean 'inner_iter'?" in err, err
    assert not list((tmp_path / "run").rglob("config.*")), "a config was written"


@pytest.fixture
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def ran(monkeypatch):
    """The configuration that compare or train received, in place of running them."""
    from coe import compare
    from coe.train import trainer

    calls = []

    def record(cfg):
        calls.append(cfg)
        raise KeyboardInterrupt  # the end of the run, as far as these tests go

    monkeypatch.setattr(compare, "compare", record)
    monkeypatch.setattr(trainer, "train", record)
    return calls


@pytest.mark.parametrize(
    "args, option",
    [
        (["compare", "--experiment", "paper"], "train.runtime.device"),
        (["compare", "--scale", "paper"], "train.runtime.device"),
        (["train", "--model.size", "paper"], "runtime.device"),
    ],
)
def test_a_paper_size_run_without_cuda_needs_the_cpu_asked_for(no_cuda, ran, capsys, args, option):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{option}='auto' is invalid: this machine has no CUDA device" in err, err
    assert f"give --{option} cpu" in err and "780M" in err and not ran
    assert main([*args, f"--{option}", "cpu"]) == 130  # the stand-in run was reached
    assert len(ran) == 1


def test_a_small_run_without_cuda_starts_and_report_only_is_not_a_run(no_cuda, ran):
    assert main(["train"]) == 130 and len(ran) == 1
    assert main(["compare", "--experiment", "paper", "--report_only", "true"]) == 130 and len(ran) == 2


def test_prompt_escapes_and_sources(tmp_path, monkeypatch):
    import io

    from coe.commands import read_prompt, unescape

    assert unescape(r"a?\nAnswer:\tx \\n \q") == "a?\nAnswer:\tx \\n \\q"
    assert read_prompt(r"Q\nA:", None) == "Q\nA:"
    file = tmp_path / "prompt.txt"
    file.write_text("line one\\n\nline two\n")
    assert read_prompt(None, str(file)) == "line one\\n\nline two\n"  # a file's text as it is
    monkeypatch.setattr("sys.stdin", io.StringIO("from\nstdin"))
    assert read_prompt("-", None) == "from\nstdin"
    for prompt, prompt_file in ((None, None), ("hi", str(file))):
        with pytest.raises(ValueError, match="give a prompt or --prompt_file, one of the two"):
            read_prompt(prompt, prompt_file)


def test_generate_reads_escapes_files_and_stdin(trained, tmp_path, monkeypatch, capsys):
    import io

    one = ["--max_new_tokens", "1"]
    assert main(["generate", str(trained), "Question: 2+2?\\nAnswer:", *one]) == 0
    assert capsys.readouterr().out.startswith("Question: 2+2?\nAnswer:")
    file = tmp_path / "prompt.txt"
    file.write_text("Question: 3+3?\nAnswer:")
    assert main(["generate", str(trained), "--prompt_file", str(file), *one]) == 0
    assert capsys.readouterr().out.startswith("Question: 3+3?\nAnswer:")
    monkeypatch.setattr("sys.stdin", io.StringIO("Question: 4+4?\nAnswer:"))
    assert main(["generate", str(trained), "-", *one]) == 0
    assert capsys.readouterr().out.startswith("Question: 4+4?\nAnswer:")
    assert main(["generate", str(trained), *one]) == 2
    assert "prompt_file=None is invalid: give a prompt or --prompt_file" in capsys.readouterr().err


def test_convert_takes_a_run_directory_newest_checkpoint(trained, tmp_path, capsys):
    run = trained.parent.parent
    assert main(["convert", str(run), str(tmp_path / "out"), "--to", "reference"]) == 0
    out = capsys.readouterr().out
    assert f"converting {trained / 'model'}, the model of {run}" in out, out
    assert (tmp_path / "out" / "config.json").is_file()
    assert main(["convert", str(tmp_path / "empty"), str(tmp_path / "out2")]) == 2


def test_generate_gives_the_same_greedy_text_on_every_decode_path(trained, capsys):
    """The dynamic and the static cache, "auto" (static on the CPU) and the loop outside generate() continue
    a prompt alike; an unknown path is refused with the choices named. ("compiled" is the static cache's
    decoding step compiled: tests/test_generation.py checks its tokens.)"""
    texts = {}
    for path in ("dynamic", "static", "auto", "loop"):
        assert main(["generate", str(trained), "Q", "--max_new_tokens", "6", "--decode", path]) == 0
        texts[path] = capsys.readouterr().out
    assert len(set(texts.values())) == 1 and texts["dynamic"].startswith("Q")
    assert main(["generate", str(trained), "Q", "--decode", "fast"]) == 2
    err = capsys.readouterr().err
    assert "decode='fast' is invalid" in err and "'compiled'" in err


def test_eval_and_generate_run_the_experts_on_the_backend_asked_for(trained, tmp_path, monkeypatch, capsys):
    """``--expert_backend`` replaces the checkpoint's saved backend for the command, with the same loss and
    text; unset, the saved one runs (a copy saved with "grouped", as checkpoints before "adaptive" became the
    default, stays grouped); a bad name is refused before the checkpoint is read."""
    import shutil

    from coe.nn.experts import Experts

    ran = []  # the expert path of every call: "loop", or what Experts._path chose
    path_of, loop = Experts._path, Experts._loop
    monkeypatch.setattr(
        Experts, "_path", lambda self, *a: ran.append(str(path_of(self, *a))) or path_of(self, *a)
    )
    monkeypatch.setattr(Experts, "_loop", lambda self, *a: ran.append("loop") or loop(self, *a))
    grouped = tmp_path / "grouped"
    shutil.copytree(trained, grouped)
    config = grouped / "model" / "config.json"
    config.write_text(
        config.read_text().replace('"expert_backend": "adaptive"', '"expert_backend": "grouped"')
    )
    results, paths = {}, {}
    for checkpoint, backend in ((trained, None), (trained, "loop"), (trained, "dense"), (grouped, None)):
        option = [] if backend is None else ["--expert_backend", backend]
        assert main(["eval", str(checkpoint), *EVAL, *option]) == 0
        loss = json.loads(capsys.readouterr().out)["val_loss"]
        assert main(["generate", str(checkpoint), "Q", "--max_new_tokens", "6", *option]) == 0
        key = (checkpoint.name, backend)
        results[key], paths[key] = (loss, capsys.readouterr().out), set(ran)
        ran.clear()
    saved, *others = results.values()
    assert paths[(trained.name, None)] == {"gather", "grouped"}  # adaptive on the CPU: decoding steps gather
    assert paths[(trained.name, "loop")] == {"loop"} and paths[(trained.name, "dense")] == {"dense"}
    assert paths[("grouped", None)] == {"grouped"}
    for loss, text in others:
        assert text == saved[1] and loss == pytest.approx(saved[0], abs=1e-5)
    for command in (["eval", str(tmp_path / "missing")], ["generate", str(tmp_path / "missing"), "Q"]):
        assert main([*command, "--expert_backend", "fast"]) == 2
        err = capsys.readouterr().err
        assert "expert_backend='fast' is invalid: choose 'grouped'" in err and "'loop'" in err, err
