"""The trainer: exact resumption, signals, non-finite losses, checkpoints, logs, accumulation."""

import json
import os
import signal
from dataclasses import replace

import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from coe.data import DataSpec
from coe.train import trainer as trainer_module
from coe.train.checkpoint import MODEL_DIR, TRAINING_DIR, checkpoint_dirs, latest_checkpoint
from coe.train.config import EvalSpec, ModelSpec, OptimSpec, TrainConfig, merged
from coe.train.metrics import read_metrics
from coe.train.trainer import NonFiniteLossError, TrainingInterrupted, train
from tests.train.conftest import to_flat_layout

TINY_RUN = dict(
    model=ModelSpec("coe-2-4-64", "tiny", {"num_hidden_layers": 2}),
    data=DataSpec(synthetic_train=300, synthetic_eval=30),
    steps=6,
    batch_size=4,
    seq_len=32,
    seed=3,
    eval=dict(every=3, batches=1, accuracy_problems=2, max_new_tokens=4),
    logging=dict(every=1, progress=False, tensorboard=True),
    checkpoint=dict(every=3, keep_last=2),
)


def tiny_run(tmp_path, name="run", **overrides) -> TrainConfig:
    """A 6-step tiny run; ``overrides`` by section, e.g. ``checkpoint={"every": 100}``."""
    return TrainConfig.from_dict(merged(TINY_RUN, {"out_dir": str(tmp_path / name), **overrides}))


def losses(run_dir, split="train"):
    return [(m["step"], m["loss"]) for m in read_metrics(run_dir) if m["split"] == split]


def crash_after_first_checkpoint(tmp_path, monkeypatch, name: str, **overrides) -> None:
    """Train the tiny run ``name`` and interrupt it right after its step-3 checkpoint, as a crash would."""
    real_save = trainer_module.save_checkpoint

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_run(tmp_path, name, **overrides))
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    assert [p.name for p in checkpoint_dirs(tmp_path / name)] == ["step-00000003"]


def crash_and_resume(tmp_path, monkeypatch, **overrides) -> tuple:
    """A tiny run straight through, and the same run crashed after its step-3 checkpoint and resumed: their
    results (``overrides`` by section, as ``tiny_run``)."""
    full = train(tiny_run(tmp_path, "full", **overrides))
    crash_after_first_checkpoint(tmp_path, monkeypatch, "resumed", **overrides)
    resumed = train(tiny_run(tmp_path, "resumed", checkpoint={"resume": True}, **overrides))
    return full, resumed


def assert_same_runs(full, resumed) -> None:
    assert losses(full.run_dir) == losses(resumed.run_dir)  # the same numbers, not just close
    assert losses(full.run_dir, "val") == losses(resumed.run_dir, "val")
    assert len(losses(resumed.run_dir)) == 6
    a = CoEForCausalLM.from_pretrained(latest_checkpoint(full.run_dir)).state_dict()
    b = CoEForCausalLM.from_pretrained(latest_checkpoint(resumed.run_dir)).state_dict()
    differ = {k: (a[k] - b[k]).abs().max().item() for k in a if not torch.equal(a[k], b[k])}
    assert not differ, f"weights differ (largest difference by tensor): {differ}"


def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    assert_same_runs(*crash_and_resume(tmp_path, monkeypatch))


def test_a_run_resumes_exactly_from_a_checkpoint_of_the_older_flat_layout(tmp_path, monkeypatch):
    """A checkpoint written before model/ and training/ (everything in step-N) resumes as it did; the run's
    later checkpoints take the current layout, beside it."""
    full = train(tiny_run(tmp_path, "full"))
    crash_after_first_checkpoint(tmp_path, monkeypatch, "resumed")
    flat = to_flat_layout(latest_checkpoint(tmp_path / "resumed"))
    resumed = train(tiny_run(tmp_path, "resumed", checkpoint={"resume": True}))
    assert_same_runs(full, resumed)
    assert [p.name for p in checkpoint_dirs(resumed.run_dir)] == ["step-00000003", "step-00000006"]
    assert (flat / "model.safetensors").is_file() and not (flat / MODEL_DIR).exists()
    assert (latest_checkpoint(resumed.run_dir) / TRAINING_DIR).is_dir()


@pytest.mark.parametrize("recorded", [True, False])
def test_a_resumed_run_reports_the_peak_memory_of_every_process_that_trained_it(
    tmp_path, monkeypatch, recorded
):
    """The summary's peak memory is the largest over the crashed process and the resumed one; unknown (None)
    when the checkpoint resumed from did not record the earlier peak (checkpoints of older code)."""
    monkeypatch.setattr(trainer_module, "peak_memory_gib", lambda device: 5.0)
    crash_after_first_checkpoint(tmp_path, monkeypatch, "resumed")
    if not recorded:
        checkpoint = latest_checkpoint(tmp_path / "resumed")
        (state_file,) = checkpoint.rglob("trainer_state.pt")
        state = torch.load(state_file, weights_only=True)
        assert state.pop("peak_memory_gib") == 5.0
        torch.save(state, state_file)
        manifest = json.loads((checkpoint / "manifest.json").read_text())  # the file's new size
        manifest["files"][state_file.relative_to(checkpoint).as_posix()] = state_file.stat().st_size
        (checkpoint / "manifest.json").write_text(json.dumps(manifest))

    monkeypatch.setattr(trainer_module, "peak_memory_gib", lambda device: 1.0)  # the resumed process's
    resumed = train(tiny_run(tmp_path, "resumed", checkpoint={"resume": True}))
    assert resumed.summary["peak_memory_gib"] == (5.0 if recorded else None)
    final = [m for m in read_metrics(resumed.run_dir) if m["split"] == "final"][-1]
    assert final.get("peak_memory_gib") == resumed.summary["peak_memory_gib"]  # numbers only: None left out


# The other packings of the data (coe.data.packing); padded rows of 160 tokens hold a synthetic problem and
# padding.
PACKINGS = {
    "documents": dict(packing="documents"),
    "padded": dict(packing="padded"),
    "padded_reference": dict(packing="padded", pads_in_routing=True),
}


@pytest.mark.parametrize("packing", list(PACKINGS))
def test_each_packing_trains_and_resumes_exactly(tmp_path, monkeypatch, packing):
    data = replace(TINY_RUN["data"], **PACKINGS[packing])
    seq_len = 160 if data.packing == "padded" else 32
    full, resumed = crash_and_resume(tmp_path, monkeypatch, data=data, seq_len=seq_len, optim={"lr": 3e-3})
    assert_same_runs(full, resumed)
    train_losses = [loss for _, loss in losses(full.run_dir)]
    assert train_losses[-1] < train_losses[0] - 0.1  # it learns
    assert json.loads((full.run_dir / "summary.json").read_text())["val_loss"] < train_losses[0]


def test_signal_writes_a_checkpoint_and_stops(tmp_path, monkeypatch):
    cfg = tiny_run(tmp_path, checkpoint={"every": 100})
    calls = {"n": 0}
    real_clip = torch.nn.utils.clip_grad_norm_

    def clip_and_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_and_signal)
    with pytest.raises(TrainingInterrupted, match="signal 2 at step 2"):
        train(cfg)
    assert [p.name for p in checkpoint_dirs(cfg.out_dir)] == ["step-00000002"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_run(tmp_path, checkpoint={"every": 2}, logging={"every": 2})
    real_forward = CoEForCausalLM.forward
    calls = {"n": 0}

    def forward(self, *args, **kwargs):
        out = real_forward(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] >= 5 and out.lm_loss is not None:
                out.lm_loss = out.lm_loss * float("nan")
        return out

    monkeypatch.setattr(CoEForCausalLM, "forward", forward)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss .* at step 6.*step-00000004"):
        train(cfg)
    assert [p.name for p in checkpoint_dirs(cfg.out_dir)] == ["step-00000002", "step-00000004"]


def test_outputs_logs_checkpoints_and_summary(tmp_path):
    cfg = tiny_run(tmp_path, checkpoint={"keep_last": 1})
    result = train(cfg)
    run = result.run_dir
    assert [p.name for p in checkpoint_dirs(run)] == ["step-00000006"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    newest = latest_checkpoint(run)
    model = CoEForCausalLM.from_pretrained(newest / MODEL_DIR)
    assert model.config.inner_iter == 2 and (newest / MODEL_DIR / "tokenizer.json").is_file()
    assert (newest / MODEL_DIR / "generation_config.json").is_file()
    assert {p.name for p in (newest / TRAINING_DIR).iterdir()} == {"dcp", "trainer_state.pt"}
    train_records = [m for m in read_metrics(run) if m["split"] == "train"]
    keys = train_records[-1]
    for key in (
        "loss",
        "aux_loss",
        "lr",
        "tokens_per_s",
        "grad_norm",
        "router/layer0/iter1/imbalance",
        "router/layer1/iter2/entropy",
        "router/layer0/iter2/reselect",
        "router/layer1/iter1/balance_loss_weighted",
    ):
        assert key in keys, key
    assert keys["router/layer0/iter1/imbalance"] >= 1.0
    assert 0.0 <= keys["router/layer0/iter2/reselect"] <= 1.0
    assert list((run / "tensorboard").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["accuracy_problems"] == 2 and 0 <= summary["accuracy"] <= 1
    assert summary["tokens"] == 6 * 4 * 32
    saved = (run / "config.yaml").read_text()
    assert "coe-2-4-64" in saved and "seq_len: 32" in saved


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    whole = train(tiny_run(tmp_path, "whole", steps=3, eval={"every": 3, "accuracy_problems": 0}))
    accumulated = train(
        tiny_run(
            tmp_path, "accumulated", steps=3, eval={"every": 3, "accuracy_problems": 0}, micro_batch_size=2
        )
    )
    assert len(losses(whole.run_dir)) == len(losses(accumulated.run_dir)) == 3
    for (s1, a), (s2, b) in zip(losses(whole.run_dir), losses(accumulated.run_dir), strict=True):
        assert s1 == s2 and abs(a - b) < 1e-4 * abs(a)


def test_bias_balancing_moves_biases(tmp_path):
    cfg = tiny_run(
        tmp_path,
        steps=3,
        eval={"accuracy_problems": 0},
        model=ModelSpec("coe-2-4-64", "tiny", {"num_hidden_layers": 1, "router_bias_update_rate": 0.01}),
    )
    train(cfg)
    model = CoEForCausalLM.from_pretrained(latest_checkpoint(cfg.out_dir))
    bias = model.chains()[0].routers[0].expert_bias
    assert bias.abs().sum() > 0 and torch.all((bias * 100).round() == bias * 100)  # steps of +-0.01


def test_config_checks():
    with pytest.raises(
        ValueError, match="micro_batch_size=4 is invalid: must be None or a positive divisor of batch_size=10"
    ):
        TrainConfig(batch_size=10, micro_batch_size=4)
    with pytest.raises(ValueError, match="steps=0 is invalid: must be a positive integer"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match=r"eval.every=0 is invalid"):
        EvalSpec(every=0)
    with pytest.raises(ValueError, match=r"optim.lr=inf is invalid: must be finite and > 0"):
        OptimSpec(lr=float("inf"))
    with pytest.raises(ValueError, match=r"optim.min_lr_ratio=-0.5 is invalid"):
        OptimSpec(min_lr_ratio=-0.5)
    with pytest.raises(
        ValueError, match=r"steps_total=3 is invalid: not an option; the options here are: out"
    ):
        TrainConfig.from_dict({"steps_total": 3})
    with pytest.raises(
        ValueError, match=r"eval.evry=3 is invalid: not an option; the options here are: every"
    ):
        TrainConfig.from_dict({"eval": {"evry": 3}})
    with pytest.raises(ValueError, match=r"optim.lr=None is invalid: must be finite and > 0"):
        OptimSpec(lr=None)
    with pytest.raises(ValueError, match=r"model.preset='coe-7'"):
        ModelSpec("coe-7")
    with pytest.raises(ValueError, match=r"optim.lr=nan is invalid"):
        OptimSpec(lr=float("nan"))
    for threads in (0, True, "2", 1.5):
        with pytest.raises(ValueError, match=r"runtime.threads=.* is invalid"):
            TrainConfig.from_dict({"runtime": {"threads": threads}})
    assert TrainConfig.from_dict({"runtime": {"threads": 2}}).runtime.threads == 2
    cfg = TrainConfig()
    assert replace(cfg, micro_batch_size=16).accumulation == 4


def test_training_steps_use_the_chunked_loss(tmp_path, monkeypatch):
    """Training forwards never ask for the (B, S, V) logits: at the paper's vocabulary they cost ~40 GiB."""
    calls = []
    forward = CoEForCausalLM.forward

    def spy(self, *args, **kwargs):
        if self.training:
            calls.append(kwargs.get("return_logits", True))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(CoEForCausalLM, "forward", spy)
    train(tiny_run(tmp_path, steps=2, eval={"every": 2, "accuracy_problems": 0}, micro_batch_size=2))
    assert calls == [False] * 4


def test_the_reference_recipe_options_of_the_optimizer():
    """decay_all puts every parameter under weight decay; warmup_from_zero starts the warm-up at lr 0."""
    from coe.train.trainer import build_optimizer, lr_lambda

    model = CoEForCausalLM(CoEConfig.from_preset("moe-8-64", "tiny", num_hidden_layers=1))
    n = sum(1 for p in model.parameters() if p.requires_grad)
    for decay_all, decayed in ((False, lambda p: p.ndim >= 2), (True, lambda p: True)):
        cfg = TrainConfig(optim=OptimSpec(decay_all=decay_all))
        groups = build_optimizer(model, cfg, torch.device("cpu")).param_groups
        assert sum(len(g["params"]) for g in groups) == n
        for group in groups:
            assert all(decayed(p) == (group["weight_decay"] == 0.01) for p in group["params"])
    steps = dict(steps=100, optim=OptimSpec(warmup_ratio=0.1))
    ours = lr_lambda(TrainConfig(**steps))
    reference = lr_lambda(TrainConfig(steps=100, optim=OptimSpec(warmup_ratio=0.1, warmup_from_zero=True)))
    assert [ours(s) for s in (0, 4, 9, 10, 50)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    assert [reference(s) for s in (0, 4, 9, 10, 50)] == [0.0, 0.4, 0.9, 1.0, 1.0]


def test_test_loss_is_logged_beside_the_validation_loss(tmp_path):
    """eval.test_loss: the test split's loss at every validation (split "test") and in the summary."""
    run = train(tiny_run(tmp_path, steps=3, eval={"every": 3, "accuracy_problems": 0, "test_loss": True}))
    assert len(losses(run.run_dir, "test")) == 1 and len(losses(run.run_dir, "val")) == 1
    assert run.summary["test_loss"] == losses(run.run_dir, "test")[0][1] != run.summary["val_loss"]
    plain = train(tiny_run(tmp_path, "plain", steps=3, eval={"every": 3, "accuracy_problems": 0}))
    assert "test_loss" not in plain.summary and not losses(plain.run_dir, "test")
    no_test = DataSpec(synthetic_train=300, synthetic_eval=30, source="builtin:gsm8k/test.parquet")
    with pytest.raises(ValueError, match=r"eval.test_loss=True is invalid: the data has no test split"):
        train(tiny_run(tmp_path, "x", data=no_test, eval={"test_loss": True}))


@pytest.mark.parametrize("packing", ["padded", "documents", "packed"])
def test_the_final_evaluation_gives_the_validation_loss_of_each_source(tmp_path, packing):
    """Two training sources: the summary holds each one's loss over its validation documents (30 of each,
    made into sequences apart, in batches of 4, the last filled up with unlabelled rows), which a plain
    evaluation of the final model on those sequences, one per batch, gives as well. With padded rows (one
    document each) and every validation document in val_loss, val_loss is their token-weighted mean."""
    from coe.data import load_splits, pack_documents, validation_batches
    from coe.data.tokenizer import load_tokenizer
    from coe.evaluate import validation_loss

    data = replace(TINY_RUN["data"], source=("synthetic-math", "synthetic-metamath"), packing=packing)
    seq_len = 160 if packing == "padded" else 32
    result = train(tiny_run(tmp_path, data=data, seq_len=seq_len, eval={"batches": 100}))
    summary = result.summary
    by_source, tokens = summary["val_loss_by_source"], summary["val_tokens_by_source"]
    assert list(by_source) == list(tokens) == ["synthetic-math", "synthetic-metamath"]
    if packing == "padded":
        mean = sum(by_source[s] * tokens[s] for s in by_source) / sum(tokens.values())
        assert summary["val_loss"] == pytest.approx(mean, abs=1e-5)
    final = latest_checkpoint(result.run_dir)
    model = CoEForCausalLM.from_pretrained(final / MODEL_DIR, dtype=torch.float32)
    tokenizer = load_tokenizer(final / MODEL_DIR)
    for source, documents in load_splits(data).validation_by_source.items():
        alone = validation_batches(pack_documents(tokenizer, documents, seq_len, packing=packing), 1)
        assert len(alone) == 30 or packing != "padded"
        assert by_source[source] == pytest.approx(validation_loss(model, alone, progress=False), abs=1e-5)
    record = [m for m in read_metrics(result.run_dir) if m["split"] == "final"][-1]
    assert {s: record[f"val_loss/{s}"] for s in by_source} == by_source
