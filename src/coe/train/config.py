"""Typed configuration of a training run: model, data, optimisation, schedule, logging, checkpoints.

Loadable from YAML and overridable from the command line (``coe train --config run.yaml --optim.lr 1e-3``);
every run writes its fully resolved configuration to ``run_dir/config.yaml``. Checks run at construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from coe.data import DataSpec
from coe.presets import PRESETS, SIZES


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
            raise ValueError(f"model.preset={self.preset!r} is unknown: choose one of {', '.join(PRESETS)}")
        if self.size not in SIZES:
            raise ValueError(f"model.size={self.size!r} is unknown: choose one of {', '.join(SIZES)}")


@dataclass
class OptimSpec:
    """AdamW and the learning-rate schedule (the paper's recipe by default)."""

    lr: float = 3e-4
    """Peak learning rate."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    weight_decay: float = 0.01
    """AdamW weight decay, applied to matrices (not to norms or router biases)."""
    warmup_ratio: float = 0.1
    """Fraction of the steps with a linear warm-up from 0."""
    schedule: Literal["constant", "cosine"] = "constant"
    """After warm-up: constant, or cosine decay to min_lr_ratio * lr."""
    min_lr_ratio: float = 0.1
    """Final learning rate of the cosine schedule, relative to lr."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 turns clipping off)."""

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr={self.lr} must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"optim.warmup_ratio={self.warmup_ratio} must be in [0, 1)")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("optim.grad_clip and optim.weight_decay must be >= 0")


# What a run with given settings computes changes when the model, data or recipe code does. The revision is
# written into every run's summary.json so that results of different revisions are never mixed unknowingly
# (`coe compare` will not count an older revision's run as a finished one of this revision). Bump it with any
# such change and say here what changed.
TRAINING_REVISIONS = {
    1: "until 2026-12-01: the EOS (pad) embedding row frozen at zero; 5% of a training file held out and unused "
       "beside val_source",
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
    tokenizer: str | None = None
    """A tokenizer.json file or tokenizer directory; None trains a byte-level BPE on the training split."""
    tokenizer_vocab_size: int | None = None
    """Vocabulary of the trained BPE; None: the model's vocabulary size."""
    log_every: int = 10
    """Steps between train-metric records (loss, learning rate, router statistics)."""
    eval_every: int = 100
    """Steps between validation losses."""
    eval_batches: int = 8
    """Validation batches (of batch_size sequences) per validation loss."""
    accuracy_problems: int = 100
    """Held-out problems scored by exact match at the end (0 skips it)."""
    max_new_tokens: int = 256
    """Generation length for exact match."""
    save_every: int = 200
    """Steps between checkpoints (a final one is always written)."""
    keep_last: int = 2
    """Checkpoints kept."""
    resume: bool = False
    """Continue from the newest checkpoint in out_dir (a fresh start when there is none)."""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu", "cuda" or "cuda:N". Under torchrun each rank takes the GPU of its
    LOCAL_RANK."""
    expert_parallel: int = 1
    """Under torchrun: ranks that split each layer's routed experts between them (expert parallelism), tokens
    travelling by all-to-all; must divide the number of ranks. 1: FSDP shards the experts like every other
    weight. See docs/distributed.md."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """"auto": bf16 autocast on CUDA, float32 on the CPU. "bf16": bf16 autocast (CUDA only)."""
    compile: bool = True
    """On CUDA, torch.compile each decoder layer (fuses the elementwise work; see docs/performance.md)."""
    activation_memory_budget: float = 1.0
    """With compile: below 1, the compiler recomputes cheap operations in backward instead of keeping their
    outputs (0.8 cuts peak memory by about a quarter for about 3% of speed at the paper's shapes)."""
    tensorboard: bool = True
    """Write TensorBoard event files."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "log_every", "eval_every", "eval_batches", "save_every",
                     "keep_last", "max_new_tokens"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.expert_parallel < 1:
            raise ValueError(f"expert_parallel={self.expert_parallel} must be >= 1")
        if not 0 < self.activation_memory_budget <= 1:
            raise ValueError(f"activation_memory_budget={self.activation_memory_budget} must be in (0, 1]")
        if self.accuracy_problems < 0:
            raise ValueError(f"accuracy_problems={self.accuracy_problems} must be >= 0")
        if self.micro_batch_size is not None and (self.micro_batch_size <= 0
                                                  or self.batch_size % self.micro_batch_size):
            raise ValueError(f"batch_size={self.batch_size} is not a multiple of "
                             f"micro_batch_size={self.micro_batch_size}")

    @property
    def accumulation(self) -> int:
        return self.batch_size // (self.micro_batch_size or self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
