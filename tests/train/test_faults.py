"""Fault injection on tiny CPU runs: kill -9 at chosen points of a save, a full disk, damaged checkpoint
files, planted pickles, signals at the end, a cut metrics line, overflowing weights. Each run is compared with
one that met no fault: no completed step is lost and the resumed run ends with the same losses and weights,
exactly."""

import errno
import os
import pickle
import signal
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from coe.cli import main
from coe.train import checkpoint as ckpt
from coe.train import trainer as trainer_module
from coe.train.checkpoint import NonFiniteError, checkpoint_dirs, latest_checkpoint, verify_checkpoint
from coe.train.config import TrainConfig, merged
from coe.train.metrics import read_metrics
from coe.train.trainer import TrainingInterrupted, train

RUN = dict(
    model=dict(preset="coe-2-4-64", size="tiny", overrides={"num_hidden_layers": 1}),
    data=dict(synthetic_train=100, synthetic_eval=10),
    steps=6,
    batch_size=2,
    seq_len=16,
    seed=1,
    eval=dict(every=3, batches=1, accuracy_problems=0),
    logging=dict(every=1, progress=False, tensorboard=False),
    checkpoint=dict(every=2, keep_last=2),
    runtime=dict(threads=1),
)


def config(run_dir, resume: bool = False, **sections) -> TrainConfig:
    overrides = merged({"out_dir": str(run_dir), "checkpoint": {"resume": resume}}, sections)
    return TrainConfig.from_dict(merged(RUN, overrides))


def outcome(run_dir) -> tuple:
    """What a run leaves: its train and validation records (step, loss) and its final weights."""
    records = [(m["split"], m["step"], m["loss"]) for m in read_metrics(run_dir) if m["split"] != "final"]
    return records, load_file(latest_checkpoint(run_dir) / ckpt.MODEL_DIR / "model.safetensors")


def assert_same(run_dir, reference) -> None:
    records, weights = outcome(run_dir)
    assert records == reference[0]  # every step once, the same numbers
    assert weights.keys() == reference[1].keys()
    assert all(torch.equal(weights[k], reference[1][k]) for k in weights)


@pytest.fixture(scope="module", autouse=True)
def _threads_given_back():
    """The runs here take one thread (runtime.threads); the tests after them get the count they had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    train(config(run_dir))
    return outcome(run_dir)


def killed(cfg: TrainConfig, owner, name: str, when) -> None:
    """Run ``cfg`` in a forked process that kills itself with SIGKILL just before the call of ``owner.name``
    for which ``when(*args)`` is first true: nothing of Python's clean-up runs, as with kill -9."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            torch.set_num_threads(1)
            real = getattr(owner, name)

            def hook(*args, **kwargs):
                if when(*args):
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)

            setattr(owner, name, hook)
            sys.stderr = open(os.devnull, "w")
            train(cfg)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "not killed where planned"


def nth(n: int):
    """``when`` for the n-th call."""
    calls = [0]

    def when(*args) -> bool:
        calls[0] += 1
        return calls[0] == n

    return when


def in_final_save(run_dir):
    """A run of ``run_dir`` killed in its final save (step 6): steps 2 and 4 saved."""
    killed(config(run_dir), ckpt.dcp, "save", nth(3))


def checkpoint_names(run_dir) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


# Where a kill lands (the n-th call of a function the save makes) and the step the run must resume from.
# keep_last=1 so that the save of step 4 prunes step 2.
KILLS = {
    "in the DCP write of step 4": (ckpt.dcp, "save", nth(2), 2),
    "before the manifest of step 4": (ckpt, "_write_manifest", nth(2), 4),  # complete: recovered on start-up
    "before step 4 is renamed into place": (ckpt, "_swap_into_place", nth(2), 4),
    "between renaming step 2 aside and deleting it": (
        ckpt.shutil,
        "rmtree",
        lambda p, *a: ".trash-" in str(p),
        4,
    ),
}


@pytest.mark.parametrize("point", KILLS)
def test_kill_9_during_a_save_loses_no_completed_step(point, tmp_path, reference, caplog):
    owner, name, when, resumes_from = KILLS[point]
    run_dir = tmp_path / "run"
    killed(config(run_dir, checkpoint={"keep_last": 1}), owner, name, when)
    with caplog.at_level("INFO"):
        train(config(run_dir, resume=True, checkpoint={"keep_last": 1}))
    assert f"resuming from step {resumes_from}" in caplog.text
    assert_same(run_dir, reference)
    assert checkpoint_names(run_dir) == ["step-00000006"]  # no temporary or half-deleted directory left


def test_kill_9_while_a_broken_step_is_saved_again(tmp_path, reference, caplog):
    """Step 4 broken, so the run resumes from 2 and saves step 4 again: killed between renaming the broken one
    aside and the new one into place, the new one is recovered on the next start."""
    run_dir = tmp_path / "run"
    in_final_save(run_dir)
    (run_dir / "checkpoints" / "step-00000004" / ckpt.TRAINING_DIR / ckpt.STATE_FILE).write_bytes(b"")
    into_place = lambda path, target: path.name == ".tmp-step-00000004"  # noqa: E731
    killed(config(run_dir, resume=True), ckpt.Path, "rename", into_place)
    names = checkpoint_names(run_dir)
    assert "step-00000004" not in names and ".tmp-step-00000004" in names  # the broken one renamed aside
    with caplog.at_level("INFO"):
        train(config(run_dir, resume=True))
    assert "resuming from step 4" in caplog.text
    assert_same(run_dir, reference)


@pytest.mark.parametrize("where", ["dcp", "trainer_state"])
def test_a_full_disk_fails_cleanly_and_the_run_resumes_exactly(
    where, tmp_path, reference, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    real_torch_save, real_save, saving = torch.save, trainer_module.save_checkpoint, [0]

    def save(*args, **kwargs):
        saving[0] = kwargs["trainer_state"]["step"]
        return real_save(*args, **kwargs)

    def disk_full_at_step_4(obj, f, *args, **kwargs):
        if saving[0] == 4 and (where == "dcp" or str(f).endswith(ckpt.STATE_FILE)):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_torch_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    monkeypatch.setattr(torch, "save", disk_full_at_step_4)
    args = ["train", "--config", str(tmp_path / "run.yaml")]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config(run_dir).to_dict()))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "coe train: error:" in err and "No space left on device" in err and "Traceback" not in err
    assert checkpoint_names(run_dir) == ["step-00000002"]  # the failed save left nothing behind
    monkeypatch.setattr(torch, "save", real_torch_save)
    train(config(run_dir, resume=True))
    assert_same(run_dir, reference)


@pytest.mark.parametrize(
    "name",
    [
        "model/model.safetensors",
        "model/config.json",
        "model/tokenizer.json",
        "training/trainer_state.pt",
        "training/dcp/.metadata",
    ],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(name, tmp_path, reference, caplog):
    run_dir = tmp_path / "run"
    in_final_save(run_dir)
    file = run_dir / "checkpoints" / "step-00000004" / name
    file.write_bytes(file.read_bytes()[:-7])
    with caplog.at_level("INFO"):
        train(config(run_dir, resume=True))
    assert f"step-00000004/{name}" in caplog.text and "broken" in caplog.text
    assert "resuming from step 2" in caplog.text
    assert_same(run_dir, reference)


def test_a_planted_pickle_in_the_newest_checkpoint_runs_nothing(tmp_path, reference):
    run_dir = tmp_path / "run"
    in_final_save(run_dir)
    newest = run_dir / "checkpoints" / "step-00000004"
    marker = tmp_path / "ran"

    class Planted:
        def __reduce__(self):
            return open, (str(marker), "w")

    training = newest / ckpt.TRAINING_DIR
    (training / ckpt.DCP_DIR / ".metadata").write_bytes(pickle.dumps(Planted()))
    state = torch.load(training / ckpt.STATE_FILE, weights_only=True)
    torch.save({**state, "elapsed": Planted()}, training / ckpt.STATE_FILE)
    ckpt._write_manifest(newest)  # sizes that match: only the loaders stand in the way
    train(config(run_dir, resume=True))
    assert not marker.exists()
    assert_same(run_dir, reference)


def test_a_partial_last_metrics_line_is_dropped_on_resume(tmp_path, reference):
    run_dir = tmp_path / "run"
    in_final_save(run_dir)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "split": "tr')  # the disk filled up in the middle of a record
    assert read_metrics(run_dir)[-1]["step"] == 6  # readers skip it too
    train(config(run_dir, resume=True))
    assert_same(run_dir, reference)


def test_non_finite_weights_stop_the_run_and_keep_every_good_checkpoint(tmp_path, monkeypatch):
    """Weights that overflow between log steps (no loss is read there) never reach a checkpoint, and the good
    ones are not pruned for them."""
    real_step = trainer_module.train_step

    def overflowing_at_step_5(model, *args, **kwargs):
        result = real_step(model, *args, **kwargs)
        if model.training and trainer_module.torch.is_grad_enabled() and overflowing_at_step_5.steps == 4:
            with torch.no_grad():
                next(model.parameters()).mul_(float("inf"))
        overflowing_at_step_5.steps += 1
        return result

    overflowing_at_step_5.steps = 0
    monkeypatch.setattr(trainer_module, "train_step", overflowing_at_step_5)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteError, match="step 6"):
        train(config(run_dir, logging={"every": 100}, eval={"every": 100}))
    assert checkpoint_names(run_dir) == ["step-00000002", "step-00000004"]
    for path in checkpoint_dirs(run_dir):
        verify_checkpoint(path)
        assert all(
            w.isfinite().all() for w in load_file(path / ckpt.MODEL_DIR / "model.safetensors").values()
        )


def test_a_huge_learning_rate_exits_with_non_finite_and_no_bad_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    cfg = config(run_dir, optim={"lr": 1e30, "grad_clip": 0.0}, logging={"every": 100})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["train", "--config", str(tmp_path / "run.yaml")]) == 3
    err = capsys.readouterr().err
    assert "coe train: error: non-finite" in err and "Traceback" not in err
    for path in checkpoint_dirs(run_dir):
        assert all(
            w.isfinite().all() for w in load_file(path / ckpt.MODEL_DIR / "model.safetensors").values()
        )


def test_a_signal_during_the_final_save_or_evaluation_ends_cleanly(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real_save = trainer_module.save_checkpoint

    def signalled_save(*args, **kwargs):
        if kwargs["trainer_state"]["step"] == 6:
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the final save
        return real_save(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_checkpoint", signalled_save)
    with pytest.raises(TrainingInterrupted, match="final step"):
        train(config(run_dir))
    verify_checkpoint(run_dir / "checkpoints" / "step-00000006")
    assert checkpoint_names(run_dir) == ["step-00000004", "step-00000006"]

    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    real_validate = trainer_module._validate

    def signalled_validation(run):
        if run.saved_step == run.cfg.steps:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_validate(run)

    monkeypatch.setattr(trainer_module, "_validate", signalled_validation)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="final evaluation"):
        train(config(tmp_path / "other"))
    verify_checkpoint(tmp_path / "other" / "checkpoints" / "step-00000006")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # given back


def test_a_rejected_resume_leaves_config_yaml_as_it_was(tmp_path):
    run_dir = tmp_path / "run"
    in_final_save(run_dir)
    saved = (run_dir / "config.yaml").read_text()
    with pytest.raises(ValueError):
        train(config(run_dir, resume=True, batch_size=4))  # the data position is not valid for it
    assert (run_dir / "config.yaml").read_text() == saved


def test_resume_says_when_it_starts_fresh(tmp_path, caplog):
    with caplog.at_level("INFO"):
        train(config(tmp_path / "run", resume=True, steps=1))
    assert "starting fresh" in caplog.text


def test_a_fresh_start_over_an_earlier_run_says_so(tmp_path, caplog):
    run_dir = tmp_path / "run"
    train(config(run_dir, steps=2))
    with caplog.at_level("WARNING"):
        train(config(run_dir, steps=1))
    assert "holds an earlier run's checkpoints (newest step-00000002)" in caplog.text
