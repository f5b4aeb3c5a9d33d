"""Checkpoints on their own: the layout (model/ to upload, training/ to resume; the older flat one still
read), pickle-free state, verification of every file, finiteness, failed saves."""

import errno
import io
import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from coe import CoEConfig, CoEForCausalLM
from coe.checks import FileError
from coe.train import checkpoint as ckpt
from coe.train.checkpoint import (
    NonFiniteError,
    checkpoint_dirs,
    clean_checkpoints,
    load_checkpoint,
    load_trainer_state,
    resume_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    verify_checkpoint,
)


class Planted:
    """A pickle that, once loaded, creates the file ``marker``: the stand-in for any code a crafted
    checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def parts(seed: int = 0):
    torch.manual_seed(seed)
    config = CoEConfig.from_preset("moe-8-64", "tiny", num_hidden_layers=1)
    model = CoEForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, config.vocab_size, (2, 8))
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    return model, optimizer, scheduler


def save(run_dir, step, model, optimizer, scheduler, keep_last=3):
    return save_checkpoint(
        run_dir,
        step,
        model=model,
        tokenizer=None,
        optimizer=optimizer,
        scheduler=scheduler,
        trainer_state={"step": step, "elapsed": 0.0},
        keep_last=keep_last,
    )


@pytest.fixture
def saved(tmp_path):
    model, optimizer, scheduler = parts()
    save(tmp_path, 1, model, optimizer, scheduler)
    return tmp_path, save(tmp_path, 2, model, optimizer, scheduler), model, optimizer


def draws():
    return random.random(), np.random.rand(), torch.rand(()).item()


def test_rng_state_is_plain_data_and_restores_every_generator(tmp_path):
    random.gauss(0, 1)  # a cached Gaussian in Python's state too
    state = rng_state()
    expected = draws()
    torch.save(state, tmp_path / "s.pt")
    draws()
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))  # no pickle needed
    assert draws() == expected


def test_trainer_state_of_the_old_format_still_loads(tmp_path):
    """Before RNG states were tensors, NumPy's was pickled as an array: loaded through an allow-list."""
    (tmp_path / "c").mkdir()
    old = {"step": 1, "scheduler": {}, "rng": {"numpy": np.random.get_state(), "python": random.getstate()}}
    expected = np.random.rand()
    torch.save(old, tmp_path / "c" / ckpt.STATE_FILE)
    np.random.rand()
    state = load_trainer_state(tmp_path / "c")
    np.random.set_state(state["rng"]["numpy"])
    assert np.random.rand() == expected


def test_a_planted_trainer_state_pickle_runs_nothing(saved, tmp_path):
    run_dir, path, model, optimizer = saved
    marker = tmp_path / "ran"
    state_file = path / ckpt.TRAINING_DIR / ckpt.STATE_FILE
    torch.save({"step": 2, "scheduler": {}, "rng": Planted(marker)}, state_file)
    ckpt._write_manifest(path)  # sizes as planted: only the loader stands in the way
    with pytest.raises(FileError, match=ckpt.STATE_FILE):
        load_checkpoint(path, model=model, optimizer=optimizer)
    assert resume_checkpoint(run_dir).name == "step-00000001"  # the planted one is not resumed from
    assert not marker.exists()
    torch.load(state_file, weights_only=False)  # what resuming did before
    assert marker.exists()


def test_planted_dcp_metadata_and_items_run_nothing(saved, tmp_path):
    run_dir, path, model, optimizer = saved
    marker = tmp_path / "ran"
    dcp_dir = path / ckpt.TRAINING_DIR / ckpt.DCP_DIR
    (dcp_dir / ".metadata").write_bytes(pickle.dumps(Planted(marker)))
    ckpt._write_manifest(path)
    with pytest.raises(FileError, match=r"\.metadata.*not allowed"):
        load_checkpoint(path, model=model, optimizer=optimizer)
    with pytest.raises(FileError, match=r"\.metadata"):
        verify_checkpoint(path)
    assert not marker.exists()

    # A non-tensor item of the optimizer (its hyper-parameters), read by DCP with torch.load.
    shutil.rmtree(dcp_dir)
    shutil.copytree(run_dir / "checkpoints" / "step-00000001" / ckpt.TRAINING_DIR / ckpt.DCP_DIR, dcp_dir)
    metadata = ckpt._read_dcp_metadata(dcp_dir / ".metadata")
    key = next(k for k in metadata.storage_data if k.fqn.startswith("optim.param_groups") and "lr" in k.fqn)
    info = metadata.storage_data[key]
    buffer = io.BytesIO()
    torch.save(Planted(marker), buffer)
    data = dcp_dir / info.relative_path
    info.offset, info.length = data.stat().st_size, len(buffer.getvalue())
    with open(data, "ab") as f:
        f.write(buffer.getvalue())
    with open(dcp_dir / ".metadata", "wb") as f:
        pickle.dump(metadata, f)
    with pytest.raises(FileError, match=r"dcp: optim\.param_groups.*not plain data"):
        load_checkpoint(path, model=model, optimizer=optimizer)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "model/model.safetensors",
        "model/config.json",
        "training/trainer_state.pt",
        "training/dcp/.metadata",
        "training/dcp/__0_0.distcp",
        "manifest.json",
    ],
)
@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_every_damaged_file_is_named(saved, name, damage):
    _, path, _, _ = saved
    file = path / name
    if damage == "deleted":
        file.unlink()
    else:
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    if name == "manifest.json" and damage == "deleted":
        verify_checkpoint(path)  # a checkpoint from before manifests: its files are checked one by one
        return
    with pytest.raises(FileError) as error:
        verify_checkpoint(path)
    assert error.value.file.endswith(name)


def test_a_file_a_manifest_does_not_explain_is_caught_by_its_size(saved):
    _, path, _, _ = saved
    with open(path / ckpt.MODEL_DIR / "config.json", "a") as f:
        f.write(" ")
    with pytest.raises(FileError, match=r"config.json.*bytes"):
        verify_checkpoint(path)


def test_non_finite_weights_are_never_saved_and_nothing_is_pruned(tmp_path):
    model, optimizer, scheduler = parts()
    save(tmp_path, 1, model, optimizer, scheduler, keep_last=1)
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"step 2.*step-00000001"):
        save(tmp_path, 2, model, optimizer, scheduler, keep_last=1)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-00000001"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000001"]


@pytest.mark.parametrize("where", ["dcp", "trainer_state"])
def test_a_failed_save_removes_its_temporary_directory_and_keeps_the_others(tmp_path, monkeypatch, where):
    model, optimizer, scheduler = parts()
    save(tmp_path, 1, model, optimizer, scheduler, keep_last=1)
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        if where == "dcp" or str(f).endswith(ckpt.STATE_FILE):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left") as error:
        save(tmp_path, 2, model, optimizer, scheduler, keep_last=1)
    assert error.value.errno == errno.ENOSPC  # DCP's CheckpointException unwrapped
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000001"]
    verify_checkpoint(tmp_path / "checkpoints" / "step-00000001")


def test_saving_a_step_again_swaps_by_rename(tmp_path, monkeypatch):
    model, optimizer, scheduler = parts()
    first = save(tmp_path, 1, model, optimizer, scheduler)
    renamed = []
    real_rename = Path.rename

    def record(self, target):
        if self.parent.name == "checkpoints":  # not DCP's own renames of its files
            renamed.append((self.name, Path(target).name))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", record)
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # nothing deleted before the swap
    save(tmp_path, 1, model, optimizer, scheduler)
    assert renamed[0][0] == first.name and renamed[0][1].startswith(".trash-step-00000001")
    assert renamed[1] == (".tmp-step-00000001", first.name)


def test_start_up_recovers_a_complete_temporary_checkpoint_and_deletes_the_rest(saved):
    run_dir, path, _, _ = saved
    root = run_dir / "checkpoints"
    path.rename(root / ".tmp-step-00000002")  # killed between renaming aside and renaming into place
    shutil.copytree(root / "step-00000001", root / ".trash-step-00000001-0000")
    shutil.copytree(root / "step-00000001", root / ".tmp-step-00000003")
    (root / ".tmp-step-00000003" / ckpt.TRAINING_DIR / ckpt.STATE_FILE).unlink()  # killed while writing
    clean_checkpoints(run_dir)
    assert sorted(p.name for p in root.iterdir()) == ["step-00000001", "step-00000002"]
    verify_checkpoint(root / "step-00000002")


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_says_so(saved, caplog):
    run_dir, path, _, _ = saved
    (path / ckpt.MODEL_DIR / "model.safetensors").write_bytes(b"")
    with caplog.at_level("INFO"):
        assert resume_checkpoint(run_dir).name == "step-00000001"
    assert f"checkpoint {path} is broken" in caplog.text and "model.safetensors" in caplog.text
    assert "resuming from step 1" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO"):
        assert resume_checkpoint(run_dir / "nothing") is None
    assert "starting fresh" in caplog.text


def test_dcp_metadata_may_not_point_outside_its_directory(saved):
    _, path, model, optimizer = saved
    dcp_dir = path / ckpt.TRAINING_DIR / ckpt.DCP_DIR
    metadata = ckpt._read_dcp_metadata(dcp_dir / ".metadata")
    for info in metadata.storage_data.values():
        info.relative_path = "../../elsewhere.distcp"
    with open(dcp_dir / ".metadata", "wb") as f:
        pickle.dump(metadata, f)
    with pytest.raises(FileError, match="outside its directory"):
        load_checkpoint(path, model=model, optimizer=optimizer)


def test_manifest_lists_every_file(saved):
    _, path, _, _ = saved
    listed = set(json.loads((path / "manifest.json").read_text())["files"])
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == present


def test_the_model_directory_is_what_save_pretrained_writes_and_loads_with_the_auto_classes(saved, tmp_path):
    """step-N/model holds save_pretrained's files and nothing else (no optimizer state, no pickles): the
    directory a user uploads. transformers' AutoModelForCausalLM loads it (coe registers its classes) into
    the model that was trained, logit for logit."""
    from transformers import AutoModelForCausalLM

    _, path, model, _ = saved
    assert sorted(p.name for p in path.iterdir()) == [ckpt.MANIFEST, ckpt.MODEL_DIR, ckpt.TRAINING_DIR]
    model.save_pretrained(tmp_path / "plain")
    weights = path / ckpt.MODEL_DIR
    assert sorted(p.name for p in weights.iterdir()) == sorted(p.name for p in (tmp_path / "plain").iterdir())
    assert not [p for p in weights.rglob("*") if p.suffix in (".pt", ".bin", ".pkl", ".pth", ".distcp")]
    assert sorted(p.name for p in (path / ckpt.TRAINING_DIR).iterdir()) == [ckpt.DCP_DIR, ckpt.STATE_FILE]

    loaded = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
    assert type(loaded) is CoEForCausalLM
    assert loaded.state_dict().keys() == model.state_dict().keys()  # weights only: nothing of the optimizer
    ids = torch.randint(0, model.config.vocab_size, (2, 8))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_every_reader_takes_the_checkpoint_its_subdirectories_or_the_run(saved):
    run_dir, path, model, _ = saved
    weights = path / ckpt.MODEL_DIR
    for given in (path, weights, path / ckpt.TRAINING_DIR, str(path)):
        assert ckpt.checkpoint_of(given) == path
        assert ckpt.run_of(given) == run_dir
        assert ckpt.resolve_checkpoint(given) == weights
        assert load_trainer_state(given)["step"] == 2
        verify_checkpoint(given)
    assert ckpt.resolve_checkpoint(run_dir) == weights
    assert ckpt.latest_checkpoint(run_dir) == path
    expected = model.state_dict()
    for given in (path, weights):  # the library's own loader finds step-N's weights in model/
        loaded = CoEForCausalLM.from_pretrained(given).state_dict()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    with pytest.raises(FileError, match="neither a checkpoint nor a run directory"):
        ckpt.resolve_checkpoint(run_dir / "checkpoints")


def test_a_checkpoint_of_the_older_flat_layout_still_verifies_loads_and_resumes(saved, caplog):
    """Checkpoints written before model/ and training/ (everything in step-N) are read where they are."""
    from tests.train.conftest import to_flat_layout

    run_dir, path, model, optimizer = saved
    expected_model = {k: v.clone() for k, v in model.state_dict().items()}
    expected_optim = [s["exp_avg"].clone() for s in optimizer.state.values()]
    to_flat_layout(path)
    assert [p.name for p in checkpoint_dirs(run_dir)] == ["step-00000001", "step-00000002"]
    verify_checkpoint(path)
    with caplog.at_level("INFO"):
        assert resume_checkpoint(run_dir) == path
    assert "resuming from step 2" in caplog.text
    assert ckpt.resolve_checkpoint(path) == ckpt.resolve_checkpoint(run_dir) == path
    assert ckpt.run_of(path) == run_dir

    fresh, fresh_optimizer, _ = parts(seed=1)  # other weights and moments, replaced by the checkpoint's
    state = load_checkpoint(path, model=fresh, optimizer=fresh_optimizer)
    assert state["step"] == 2
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in expected_model.items())
    moments = [s["exp_avg"] for s in fresh_optimizer.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(moments, expected_optim, strict=True))
    loaded = CoEForCausalLM.from_pretrained(path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected_model.items())

    # Its files are still checked where they lie: a damaged one makes a resume fall back.
    (path / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileError) as error:
        verify_checkpoint(path)
    assert error.value.file == str(path / "model.safetensors")
    assert resume_checkpoint(run_dir).name == "step-00000001"
