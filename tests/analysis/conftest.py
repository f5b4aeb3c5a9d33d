"""Fixtures of the analysis tests: tiny trained CoE and MoE runs (trained once per session) and Chromium."""

import os
from pathlib import Path

import pytest

from coe.data import DataSpec, TokenizerSpec
from coe.train.config import EvalSpec, LoggingSpec, ModelSpec, TrainConfig
from tests.analysis.browser import find_chromium

DATA = DataSpec(synthetic_train=300, synthetic_eval=30, tokenizer=TokenizerSpec(vocab_size=300))


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """preset -> run directory of a 4-step run ("coe-2-4-64": C = 2, K = 4; "moe-8-64": C = 1, K = 8)."""
    from coe.train.trainer import train

    root = tmp_path_factory.mktemp("runs")
    return {
        preset: train(
            TrainConfig(
                out_dir=str(root / preset),
                model=ModelSpec(preset, "tiny", {"num_hidden_layers": 2}),
                data=DATA,
                steps=4,
                batch_size=4,
                seq_len=32,
                eval=EvalSpec(every=4, batches=1, accuracy_problems=0),
                logging=LoggingSpec(every=2, progress=False, tensorboard=False),
            )
        ).run_dir
        for preset in ("coe-2-4-64", "moe-8-64")
    }


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable Chromium; skipped where there is none, except in CI, where it must be there."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is not installed but CI is set: the HTML pages must be checked in a "
                "browser (.ci/run installs Debian's chromium)"
            )
        pytest.skip(
            "chromium is not installed (apt-get install chromium): HTML pages not opened in a browser"
        )
    return path
