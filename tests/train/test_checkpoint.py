"""Checkpoints on their own: pickle-free state, verification of every file, finiteness, failed saves."""

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
    torch.save({"step": 2, "scheduler": {}, "rng": Planted(marker)}, path / ckpt.STATE_FILE)
    ckpt._write_manifest(path)  # sizes as planted: only the loader stands in the way
    with pytest.raises(FileError, match=ckpt.STATE_FILE):
        load_checkpoint(path, model=model, optimizer=optimizer)
    assert resume_checkpoint(run_dir).name == "step-00000001"  # the planted one is not resumed from
    assert not marker.exists()
    torch.load(path / ckpt.STATE_FILE, weights_only=False)  # what resuming did before
    assert marker.exists()


def test_planted_dcp_metadata_and_items_run_nothing(saved, tmp_path):
    run_dir, path, model, optimizer = saved
    marker = tmp_path / "ran"
    (path / "dcp" / ".metadata").write_bytes(pickle.dumps(Planted(marker)))
    ckpt._write_manifest(path)
    with pytest.raises(FileError, match=r"\.metadata.*not allowed"):
        load_checkpoint(path, model=model, optimizer=optimizer)
    with pytest.raises(FileError, match=r"\.metadata"):
        verify_checkpoint(path)
    assert not marker.exists()

    # A non-tensor item of the optimizer (its hyper-parameters), read by DCP with torch.load.
    shutil.rmtree(path / "dcp")
    shutil.copytree(run_dir / "checkpoints" / "step-00000001" / "dcp", path / "dcp")
    metadata = ckpt._read_dcp_metadata(path / "dcp" / ".metadata")
    key = next(k for k in metadata.storage_data if k.fqn.startswith("optim.param_groups") and "lr" in k.fqn)
    info = metadata.storage_data[key]
    buffer = io.BytesIO()
    torch.save(Planted(marker), buffer)
    data = path / "dcp" / info.relative_path
    info.offset, info.length = data.stat().st_size, len(buffer.getvalue())
    with open(data, "ab") as f:
        f.write(buffer.getvalue())
    with open(path / "dcp" / ".metadata", "wb") as f:
        pickle.dump(metadata, f)
    with pytest.raises(FileError, match=r"dcp: optim\.param_groups.*not plain data"):
        load_checkpoint(path, model=model, optimizer=optimizer)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "model.safetensors",
        "config.json",
        ckpt.STATE_FILE,
        "dcp/.metadata",
        "dcp/__0_0.distcp",
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
    with open(path / "config.json", "a") as f:
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
    (root / ".tmp-step-00000003" / ckpt.STATE_FILE).unlink()  # killed while writing
    clean_checkpoints(run_dir)
    assert sorted(p.name for p in root.iterdir()) == ["step-00000001", "step-00000002"]
    verify_checkpoint(root / "step-00000002")


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_says_so(saved, caplog):
    run_dir, path, _, _ = saved
    (path / "model.safetensors").write_bytes(b"")
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
    metadata = ckpt._read_dcp_metadata(path / "dcp" / ".metadata")
    for info in metadata.storage_data.values():
        info.relative_path = "../../elsewhere.distcp"
    with open(path / "dcp" / ".metadata", "wb") as f:
        pickle.dump(metadata, f)
    with pytest.raises(FileError, match="outside its directory"):
        load_checkpoint(path, model=model, optimizer=optimizer)


def test_manifest_lists_every_file(saved):
    _, path, _, _ = saved
    listed = set(json.loads((path / "manifest.json").read_text())["files"])
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == present
