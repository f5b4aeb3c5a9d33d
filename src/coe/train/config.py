"""The configuration tree of a training run: every option is declared, documented and checked once, here.

    TrainConfig                         one run: out_dir, steps, batch_size, micro_batch_size, seq_len, seed
      model:      ModelSpec             preset, size, overrides
      data:       DataSpec              sources, template, splits, synthetic generator (coe.data.sources)
        tokenizer: TokenizerSpec        path or a BPE trained on the training split
      optim:      OptimSpec             AdamW, learning-rate schedule, clipping
      eval:       EvalSpec              validation loss and end-of-run exact match
      logging:    LoggingSpec           train metrics, TensorBoard, W&B, progress bar
      checkpoint: CheckpointSpec        how often, how many, resume
      runtime:    RuntimeSpec           device, precision, compilation, expert parallelism, CPU threads

Loadable from YAML and overridable from the command line (``coe train --config run.yaml --optim.lr 1e-3``);
every run writes its resolved configuration to ``run_dir/config.yaml``. A bad value raises ``ValueError`` when
the section is built, naming the option, the value and what is allowed (:func:`coe.checks.invalid`). The flat
spellings of the options before this tree (``eval_every``, ``device``, ``tokenizer_vocab_size``, ...) are
still read from YAML files and the command line, with a deprecation message (:func:`upgrade_legacy`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from coe.checks import from_dict, invalid
from coe.data import DataSpec, TokenizerSpec
from coe.presets import PRESETS, SIZES

log = logging.getLogger(__name__)


@dataclass
class ModelSpec:
    """Which model to train."""

    preset: str = "coe-2-4-64"
    """A preset name (``coe presets`` lists them)."""
    size: str = "small"
    """Preset widths: "paper" (the paper's model), "small" (CPU) or "tiny" (tests)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """CoEConfig fields to change, e.g. {"inner_iter": 3, "expert_backend": "loop"}."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise invalid("model.preset", self.preset, f"choose one of {', '.join(PRESETS)}")
        if self.size not in SIZES:
            raise invalid("model.size", self.size, f"choose one of {', '.join(SIZES)}")


@dataclass
class OptimSpec:
    """AdamW and the learning-rate schedule (the paper's recipe by default)."""

    lr: float = 3e-4
    """Peak learning rate."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    weight_decay: float = 0.01
    """AdamW weight decay, applied to matrices (not to norms or router biases) unless decay_all."""
    decay_all: bool = False
    """Weight decay on every parameter, norms included, as the reference code's runs."""
    warmup_ratio: float = 0.1
    """Fraction of the steps with a linear warm-up from 0."""
    warmup_from_zero: bool = False
    """The warm-up's first step at learning rate 0 (factor step / warm-up steps), as the reference's
    schedule; False: (step + 1) / warm-up steps, so that no step is spent at learning rate 0."""
    schedule: Literal["constant", "cosine"] = "constant"
    """After warm-up: constant, or cosine decay to min_lr_ratio * lr."""
    min_lr_ratio: float = 0.1
    """Final learning rate of the cosine schedule, relative to lr."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 turns clipping off)."""

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # a list from a config file
        if not (_number(self.lr) and self.lr > 0):
            raise invalid("optim.lr", self.lr, "must be finite and > 0")
        if len(self.betas) != 2 or not all(_number(b) and 0 <= b < 1 for b in self.betas):
            raise invalid("optim.betas", self.betas, "must be two numbers in [0, 1)")
        if not (_number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1):
            raise invalid("optim.warmup_ratio", self.warmup_ratio, "must be in [0, 1)")
        if not (_number(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1):
            raise invalid("optim.min_lr_ratio", self.min_lr_ratio, "must be in [0, 1]")
        if self.schedule not in ("constant", "cosine"):
            raise invalid("optim.schedule", self.schedule, "choose 'constant' or 'cosine'")
        for name in ("grad_clip", "weight_decay"):
            if not (_number(getattr(self, name)) and getattr(self, name) >= 0):
                raise invalid(f"optim.{name}", getattr(self, name), "must be finite and >= 0")


@dataclass
class EvalSpec:
    """Validation during training and exact-match accuracy at the end (also what ``coe eval`` measures)."""

    every: int = 100
    """Steps between validation losses (and one at the last step)."""
    batches: int = 8
    """Validation batches (of batch_size sequences) per validation loss."""
    accuracy_problems: int = 100
    """Held-out problems scored by exact match at the end (0 skips it)."""
    max_new_tokens: int = 256
    """Generation length for exact match."""
    test_loss: bool = False
    """At every validation also the loss on the test split (logged as split "test", summary test_loss):
    with validation in the training distribution and the test split from elsewhere (GSM8K test), the
    transfer beside it."""

    def __post_init__(self) -> None:
        _positive(self, "every", "batches", "max_new_tokens", section="eval")
        if self.accuracy_problems < 0:
            raise invalid("eval.accuracy_problems", self.accuracy_problems, "must be >= 0 (0 skips it)")


@dataclass
class LoggingSpec:
    """What a run records and shows while it trains."""

    every: int = 10
    """Steps between train-metric records (loss, learning rate, tokens/s, router statistics)."""
    tensorboard: bool = True
    """Write TensorBoard event files."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        _positive(self, "every", section="logging")


@dataclass
class CheckpointSpec:
    """Checkpoints: written atomically, the newest kept, the way to resume."""

    every: int = 200
    """Steps between checkpoints (a final one is always written)."""
    keep_last: int = 2
    """Checkpoints kept."""
    resume: bool = False
    """Continue from the newest checkpoint in out_dir (a fresh start when there is none)."""

    def __post_init__(self) -> None:
        _positive(self, "every", "keep_last", section="checkpoint")


@dataclass
class RuntimeSpec:
    """Where and how the computation runs."""

    device: str = "auto"
    """"auto" (CUDA when present), "cpu", "cuda" or "cuda:N". Under torchrun each rank takes the GPU of its
    LOCAL_RANK."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """"auto": bf16 autocast on CUDA, float32 on the CPU. "bf16": bf16 autocast (CUDA only)."""
    compile: bool = True
    """On CUDA, torch.compile each decoder layer (fuses the elementwise work; see docs/performance.md)."""
    activation_memory_budget: float = 1.0
    """With compile: below 1, the compiler recomputes cheap operations in backward instead of keeping their
    outputs (0.8 cuts peak memory by about a quarter for about 3% of speed at the paper's shapes)."""
    expert_parallel: int = 1
    """Under torchrun: ranks that split each layer's routed experts between them (expert parallelism), tokens
    travelling by all-to-all; must divide the number of ranks. 1: FSDP shards the experts like every other
    weight. See docs/distributed.md."""
    threads: int | None = None
    """CPU threads for torch; unset: the cores this process may use."""

    def __post_init__(self) -> None:
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise invalid("runtime.threads", self.threads, "must be a positive integer or unset")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise invalid("runtime.precision", self.precision, "choose 'auto', 'bf16' or 'fp32'")
        if not (_number(self.activation_memory_budget) and 0 < self.activation_memory_budget <= 1):
            raise invalid(
                "runtime.activation_memory_budget", self.activation_memory_budget, "must be in (0, 1]"
            )
        _positive(self, "expert_parallel", section="runtime")


# What a run with given settings computes changes when the model, data or recipe code does. The revision is
# written into every run's summary.json so that results of different revisions are never mixed unknowingly
# (`coe compare` will not count an older revision's run as a finished one of this revision). Bump it with any
# such change and say here what changed. A field added to summary.json that changes nothing already computed
# (val_loss_by_source, 2026-12-03) needs none: a bump would count every finished run as unfinished.
TRAINING_REVISIONS = {
    1: "until 2026-12-01: the EOS (pad) embedding row frozen at zero; 5% of a training file held out and "
    "unused beside val_source",
    2: "2026-12-01: every embedding row trained; still 5% of a training file held out beside val_source",
    3: "2026-12-01: nothing held out of training files for a split that val_source / test_source give",
}
TRAINING_REVISION = max(TRAINING_REVISIONS)


def run_revision(summary: dict) -> int:
    """The training revision a run's summary was made with (summaries before revisions existed: 1)."""
    return summary.get("revision", 1)


@dataclass
class TrainConfig:
    """One training run."""

    out_dir: str = "runs/coe"
    """Run directory: checkpoints, metrics.jsonl, TensorBoard events, config.yaml, summary.json."""
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 64
    """Sequences per optimizer step (all micro-batches and, under torchrun, all ranks together)."""
    micro_batch_size: int | None = None
    """Sequences per forward / backward over all ranks (each rank takes micro_batch_size / ranks of them);
    batch_size must be a multiple. None: the whole batch at once."""
    seq_len: int = 512
    """Tokens per sequence."""
    seed: int = 0
    """Seed of the model initialisation, the data order and everything random."""
    eval: EvalSpec = field(default_factory=EvalSpec)
    logging: LoggingSpec = field(default_factory=LoggingSpec)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)

    def __post_init__(self) -> None:
        _positive(self, "steps", "batch_size", "seq_len")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise invalid("seed", self.seed, "must be an integer >= 0")
        if self.micro_batch_size is not None and (
            self.micro_batch_size <= 0 or self.batch_size % self.micro_batch_size
        ):
            raise invalid(
                "micro_batch_size",
                self.micro_batch_size,
                f"must be None or a positive divisor of batch_size={self.batch_size}",
            )

    @property
    def accumulation(self) -> int:
        """Micro-batches per optimizer step."""
        return self.batch_size // (self.micro_batch_size or self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, mapping: dict[str, Any]) -> TrainConfig:
        """A config from a (possibly partial, possibly legacy-spelt) mapping such as a YAML file's."""
        return from_dict(cls, upgrade_legacy(mapping, where="the configuration"))


def _positive(spec: Any, *names: str, section: str | None = None) -> None:
    """Each of ``spec``'s fields ``names`` is a positive integer (``section``: their section's name)."""
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise invalid(f"{section}.{name}" if section else name, value, "must be a positive integer")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# Flat option names before the configuration tree -> where they live now.
LEGACY_NAMES = {
    "tokenizer": "data.tokenizer.path",
    "tokenizer_vocab_size": "data.tokenizer.vocab_size",
    "log_every": "logging.every",
    "tensorboard": "logging.tensorboard",
    "wandb_project": "logging.wandb_project",
    "progress": "logging.progress",
    "eval_every": "eval.every",
    "eval_batches": "eval.batches",
    "accuracy_problems": "eval.accuracy_problems",
    "max_new_tokens": "eval.max_new_tokens",
    "save_every": "checkpoint.every",
    "keep_last": "checkpoint.keep_last",
    "resume": "checkpoint.resume",
    "device": "runtime.device",
    "precision": "runtime.precision",
    "compile": "runtime.compile",
    "activation_memory_budget": "runtime.activation_memory_budget",
    "expert_parallel": "runtime.expert_parallel",
}


def upgrade_legacy(
    mapping: dict[str, Any], *, where: str, warn: bool = True, names: dict[str, str] = LEGACY_NAMES
) -> dict[str, Any]:
    """A copy of a TrainConfig mapping with the flat legacy names (``LEGACY_NAMES``) moved to their sections;
    a deprecation warning names each one unless ``warn`` is False. A value given both ways is an error."""
    out = _deep_copy(mapping)
    for old, new in names.items():
        if old not in out:
            continue
        value = out.pop(old)
        *parents, leaf = new.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if leaf in node and node[leaf] != value:
            raise ValueError(
                f"{where} sets both {old}={value!r} (the old name) and {new}={node[leaf]!r}: keep {new}"
            )
        node[leaf] = value
        if warn:
            log.warning("%s: option %r is deprecated, use %r", where, old, new)
    return out


# Mappings of options (as YAML holds them).


def plain(mapping: dict) -> dict:
    """As YAML stores it (tuples as lists)."""
    return yaml.safe_load(yaml.safe_dump(mapping))


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """``"dotted.name: a's value saved, b's value now"`` for every leaf in which two mappings differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: {x!r} saved, {y!r} now")
    return out


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` on top, nested mappings merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (
            merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return out


# Settings that change how a run is watched and kept, or where it runs, not what it computes: a run trained
# with device='cuda' is the same run for a report made with device='auto' on a machine without a GPU
# (summary.json records the device it trained on).
HOUSEKEEPING = ("logging.progress", "checkpoint.every", "checkpoint.keep_last", "runtime.device")


def _shipped_name(source: Any) -> Any:
    """GSM8K as runs saved before 2026-12-02 named it, by the path of a development copy ending in
    ``data/gsm8k/<split>.parquet``: the same bytes now ship as ``builtin:gsm8k/<split>.parquet``, so such a
    run counts as a run of the same data. Any other source as it is."""
    if isinstance(source, list):
        return [_shipped_name(s) for s in source]
    parts = Path(source).parts if isinstance(source, str) and not source.startswith("builtin:") else ()
    if parts[-3:-1] == ("data", "gsm8k") and parts[-1] in ("train.parquet", "test.parquet"):
        return f"builtin:gsm8k/{parts[-1]}"
    return source


def saved_settings(run_dir: str | Path) -> dict | None:
    """The settings a run directory's config.yaml holds, in today's spelling with today's defaults for what
    it lacks (a run saved before an option existed ran with its default); None when there is none."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return None
    saved = upgrade_legacy(yaml.safe_load(path.read_text()), where=str(path), warn=False)
    data = saved.get("data", {})
    for key in ("source", "val_source", "test_source"):
        if key in data:
            data[key] = _shipped_name(data[key])
    return merged(plain(TrainConfig().to_dict()), saved)


def other_settings(cfg: TrainConfig) -> list[str]:
    """The settings (dotted names) in which the run saved in ``cfg.out_dir`` differs from ``cfg``,
    housekeeping aside; empty when they agree or nothing is saved there."""
    saved = saved_settings(cfg.out_dir)
    if saved is None:
        return []
    return [d for d in differences(saved, plain(cfg.to_dict())) if d.split(":")[0] not in HOUSEKEEPING]


def _deep_copy(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in mapping.items()}


__all__ = [
    "TRAINING_REVISION",
    "TRAINING_REVISIONS",
    "CheckpointSpec",
    "DataSpec",
    "EvalSpec",
    "LoggingSpec",
    "ModelSpec",
    "OptimSpec",
    "RuntimeSpec",
    "TokenizerSpec",
    "TrainConfig",
    "differences",
    "merged",
    "other_settings",
    "plain",
    "run_revision",
    "saved_settings",
    "upgrade_legacy",
]
