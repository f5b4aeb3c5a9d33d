"""Helpers of the training tests: checkpoints in the flat layout that coe train wrote before model/ and
training/ (users still have them)."""

from pathlib import Path

from coe.train import checkpoint as ckpt


def to_flat_layout(checkpoint: Path) -> Path:
    """Rewrite ``checkpoint`` (``step-N`` of the current layout) in place as the older code wrote it: the
    files of ``model/`` and ``training/`` in ``step-N`` itself, and a manifest naming them there."""
    for sub in (ckpt.MODEL_DIR, ckpt.TRAINING_DIR):
        for item in sorted((checkpoint / sub).iterdir()):
            item.rename(checkpoint / item.name)
        (checkpoint / sub).rmdir()
    (checkpoint / ckpt.MANIFEST).unlink()
    ckpt._write_manifest(checkpoint)
    assert (checkpoint / "config.json").is_file() and (checkpoint / ckpt.STATE_FILE).is_file()
    assert not (checkpoint / ckpt.MODEL_DIR).exists() and not (checkpoint / ckpt.TRAINING_DIR).exists()
    return checkpoint
