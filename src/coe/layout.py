"""Where a training checkpoint keeps what a model loads: ``run/checkpoints/step-N/model/`` holds what
save_pretrained wrote (config, weights, generation config, tokenizer), the training state lies beside it
(coe.train.checkpoint). Readers of a model directory take ``step-N`` for its ``model/``."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = "model"


def weights_dir(path: Path) -> Path:
    """The directory from_pretrained reads for the local directory ``path``: ``path`` itself when it holds
    config.json (a model directory, a checkpoint of the flat layout, an export), its ``model/`` subdirectory
    for a checkpoint ``coe train`` wrote."""
    if not (path / "config.json").is_file() and (path / MODEL_DIR).is_dir():
        return path / MODEL_DIR
    return path
