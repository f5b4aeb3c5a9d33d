"""Metrics: router statistics per (layer, iteration) and the sinks they go to (JSONL, TensorBoard, W&B)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from coe.analysis.stats import load_imbalance, reselection_rate, score_entropy
from coe.checks import FileError

log = logging.getLogger(__name__)


def router_metric_values(model, out, counts: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """Per (MoE layer, iteration): load imbalance (max / mean tokens per expert, from ``counts``), routing
    entropy, balance loss raw and weighted, and, from the second iteration on, the fraction of tokens that
    re-select an expert of the previous iteration. ``out`` comes from a forward with output_router_logits;
    counts: (MoE layers, C, N). Returns names and one float32 tensor of values on the device (no host sync),
    so that a data-parallel run averages them over ranks in one collective."""
    config = model.config
    C = config.inner_iter
    layers = config.moe_layers
    names, values = [], []
    imbalance = load_imbalance(counts)  # (L, C)
    for j, layer in enumerate(layers):
        for t in range(C):
            r = j * C + t
            key = f"router/layer{layer}/iter{t + 1}"
            names.append(f"{key}/imbalance")
            values.append(imbalance[j, t])
            names.append(f"{key}/entropy")
            values.append(score_entropy(out.router_logits[r].detach(), config.scoring_func))
            if out.balance_losses is not None:
                names += [f"{key}/balance_loss", f"{key}/balance_loss_weighted"]
                raw = out.balance_losses[r].detach()
                values += [raw, raw * config.aux_loss_alpha]
            if t > 0:
                names.append(f"{key}/reselect")
                values.append(reselection_rate(out.selected_experts[r - 1], out.selected_experts[r]))
    if not values:
        return [], counts.new_zeros(0)
    return names, torch.stack([v.float() for v in values])


class MetricsLogger:
    """Appends records to ``run_dir/metrics.jsonl``; mirrors scalars to TensorBoard and, if asked, W&B.

    A context manager: the file and the writers are closed on every way out of the block (a run stopped by a
    non-finite loss or a signal leaks nothing into the next run of the same process).
    ``resume_step``: the step a resumed run continues from (records after it are dropped: the run repeats
    those steps); None starts an empty log (a fresh run in a used directory). A partial last line (a run
    killed or out of disk space while writing it) is dropped."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        tensorboard: bool = True,
        wandb_project: str | None = None,
        config: dict[str, Any] | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        if resume_step is None and self.path.exists():
            self.path.write_text("")
        elif resume_step is not None and self.path.exists():
            # Drop what an interrupted run logged after its last checkpoint: those steps are run again.
            kept = [json.dumps(r) for r in _records(self.path) if r["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        self._tb = self._wandb = None
        try:
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step)
            if wandb_project:
                try:
                    import wandb
                except ImportError as e:
                    raise RuntimeError(
                        "wandb logging was asked for but wandb is not installed: "
                        "pip install 'chain-of-experts[wandb]'"
                    ) from e
                self._wandb = wandb.init(
                    project=wandb_project, config=config, dir=str(run_dir), resume="allow"
                )
        except BaseException:
            self.close()  # what was opened before the failure
            raise

    def log(self, step: int, metrics: dict[str, float], split: str = "train") -> None:
        self._file.write(json.dumps({"step": step, "split": split, **metrics}) + "\n")
        self._file.flush()
        for name, value in metrics.items():
            if self._tb is not None:
                self._tb.add_scalar(f"{split}/{name}", value, step)
        if self._wandb is not None:
            self._wandb.log({f"{split}/{k}": v for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NullLogger:
    """The logger of ranks other than 0: records nothing."""

    def log(self, step: int, metrics: dict[str, float], split: str = "train") -> None:
        pass

    def __enter__(self) -> NullLogger:
        return self

    def __exit__(self, *exc) -> None:
        pass


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` (none when there is none), a partial last line left out."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return _records(path)


def _records(path: Path) -> list[dict[str, Any]]:
    """The JSON records of a JSONL file; a last line cut short (no newline, not JSON) is left out with a
    warning, any other line that is not a record is a FileError naming it."""
    lines = path.read_text(errors="replace").split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # no newline after it: the write was cut short
                log.warning("%s: dropping the partial last line %d (%d characters)", path, number, len(line))
                break
            raise FileError(path, f"line {number} is not a JSON record") from None
        if not isinstance(record, dict) or "step" not in record:
            raise FileError(path, f"line {number} is not a metrics record")
        records.append(record)
    return records
