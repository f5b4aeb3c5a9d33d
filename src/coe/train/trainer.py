"""The training loop: AdamW with warm-up, gradient accumulation, bf16 autocast on CUDA, clipping, validation,
router metrics, atomic checkpoints, exact resumption, signal handling and a non-finite-loss stop.

A run survives being killed at any moment: it resumes from the newest intact checkpoint
(:mod:`coe.train.checkpoint`) and repeats the steps after it exactly. SIGINT / SIGTERM are handled from the
first step to the end of the final evaluation: in the loop and during a save they stop the run after the
step's checkpoint; after the final checkpoint they stop the evaluation at once.

The hot path does not synchronise with the host: losses stay on the device and are read once per log step.
Under torchrun the same loop runs on every rank with FSDP2 and, if asked, expert parallelism
(:mod:`coe.train.distributed`); rank 0 alone writes logs, metrics, the summary and the model directory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from coe.analysis.stats import expert_combinations
from coe.checks import invalid
from coe.config import CoEConfig
from coe.data import TokenizerSpec
from coe.device import autocast, autocast_dtype, configure_threads, peak_memory_gib, resolve_device
from coe.evaluate import exact_match, model_inputs, validation_sums
from coe.flops import active_parameters, total_parameters
from coe.modeling import CoEForCausalLM
from coe.train.checkpoint import (
    NonFiniteError,
    clean_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from coe.train.config import TRAINING_REVISION, TrainConfig
from coe.train.data import RunData, prepare_run_data, restore_position
from coe.train.distributed import Parallel, parallel, parallelize, take_routing_counts, torchrun_env
from coe.train.metrics import MetricsLogger, NullLogger, router_metric_values

log = logging.getLogger(__name__)


class NonFiniteLossError(NonFiniteError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; a checkpoint was written first."""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(cfg: TrainConfig):
    """The learning-rate factor of the schedule as a function of the optimizer steps taken so far."""
    warmup = int(cfg.optim.warmup_ratio * cfg.steps)
    first = 0 if cfg.optim.warmup_from_zero else 1

    def factor(step: int) -> float:
        if step < warmup:
            return (step + first) / warmup
        if cfg.optim.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, cfg.steps - warmup)
        return cfg.optim.min_lr_ratio + (1 - cfg.optim.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    return factor


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices (on every parameter with optim.decay_all)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim >= 2 or cfg.optim.decay_all]
    no_decay = [p for p in trained if not (p.ndim >= 2 or cfg.optim.decay_all)]
    groups = [
        {"params": decay, "weight_decay": cfg.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas, fused=device.type == "cuda")


def model_config(cfg: TrainConfig) -> CoEConfig:
    """The preset with the run's overrides, checked against the run's sequence length."""
    config = CoEConfig.from_preset(cfg.model.preset, cfg.model.size, **cfg.model.overrides)
    if cfg.seq_len > config.max_position_embeddings:
        raise invalid(
            "seq_len",
            cfg.seq_len,
            f"must be at most the model's max_position_embeddings={config.max_position_embeddings}",
        )
    return config


def attach_tokenizer(config: CoEConfig, tokenizer) -> CoEConfig:
    """Special-token ids from the tokenizer, which must fit the model's vocabulary."""
    if len(tokenizer) > config.vocab_size:
        raise invalid(
            "data.tokenizer",
            f"{len(tokenizer)} tokens",
            f"must fit the model's vocab_size={config.vocab_size}: lower data.tokenizer.vocab_size or "
            "raise model.overrides.vocab_size",
        )
    config.eos_token_id = config.pad_token_id = tokenizer.eos_token_id
    config.bos_token_id = None
    return config


def compile_layers(model: CoEForCausalLM, activation_memory_budget: float = 1.0) -> None:
    """torch.compile every decoder layer in place (the layers share one compiled graph)."""
    # A fresh start for every run: an earlier run in this process (e.g. `coe compare`) may have used up the
    # recompilation limit of the layer's code, which would silently leave these layers eager.
    torch._dynamo.reset()
    torch._functorch.config.activation_memory_budget = activation_memory_budget
    for layer in model.model.layers:
        layer.compile()


def check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"out_dir={str(run_dir)!r} is not writable: {e}") from e


class _Signals:
    """Turns SIGINT / SIGTERM into a flag the loop checks after each step; after :meth:`stop_at_once` (when
    the final checkpoint is written) they raise TrainingInterrupted where the run is."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._at_once: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum
        if self._at_once is not None:
            raise TrainingInterrupted(f"signal {signum} {self._at_once}")

    def stop_at_once(self, why: str) -> None:
        """From now on a signal raises TrainingInterrupted(``"signal N " + why``) at once."""
        self._at_once = why

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(cfg: TrainConfig) -> RunResult:
    """Run (or resume) the training described by ``cfg``; returns the run directory and its summary.

    Under torchrun (WORLD_SIZE > 1) every rank calls this: it joins the process group, shards the model and
    its share of the data, and leaves the group at the end. ``batch_size`` and ``micro_batch_size`` are
    global, so a run trains on the same batches, and to the same losses, on any number of ranks.
    """
    _, world_size, local_rank = torchrun_env()
    configure_threads(cfg.runtime.threads)
    device = resolve_device(cfg.runtime.device)
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    with parallel(device, cfg.runtime.expert_parallel) as par:
        return _train(cfg, device, par)


def _run_data(
    cfg: TrainConfig, config: CoEConfig, run_dir: Path, checkpoint: Path | None, par: Parallel
) -> RunData:
    """The run's data; a resumed run reads the tokenizer saved with its checkpoint."""
    spec = cfg.data.tokenizer
    if spec.vocab_size is None:
        spec = replace(spec, vocab_size=config.vocab_size)

    def load(spec: TokenizerSpec) -> RunData:
        return prepare_run_data(
            cfg.data,
            run_dir=run_dir,
            seq_len=cfg.seq_len,
            batch_size=cfg.batch_size,
            micro_batch_size=cfg.micro_batch_size or cfg.batch_size,
            seed=cfg.seed,
            tokenizer=spec,
            eval_batches=cfg.eval.batches,
            accuracy_problems=cfg.eval.accuracy_problems,
            test_loss=cfg.eval.test_loss,
            rank=par.rank,
            world_size=par.world_size,
        )

    if checkpoint is not None:
        return load(replace(spec, path=str(checkpoint)))  # its tokenizer, in step-N/model
    if spec.path is not None or not par.enabled:
        return load(spec)
    # A BPE trained on the training split: rank 0 trains and saves it, the other ranks load what it saved.
    data = load(spec) if par.is_main else None
    par.barrier()
    return data if data is not None else load(replace(spec, path=str(run_dir / "tokenizer")))


@dataclass
class StepResult:
    """What one optimizer step leaves on the device (nothing here has been read by the host)."""

    lm_loss: torch.Tensor  # the language-model loss, mean over the micro-batches
    aux_loss: torch.Tensor | None  # the balance / z losses, likewise; None for a model without them
    grad_norm: torch.Tensor | None  # before clipping; None when grad_clip is 0
    routing_counts: torch.Tensor  # (MoE layers, C, N) tokens per expert, summed over ranks
    output: Any  # the last micro-batch's model output


def train_step(
    model: CoEForCausalLM,
    micro_batches: Sequence[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    par: Parallel,
    *,
    amp: torch.dtype | None,
    grad_clip: float,
    router_logits: bool = False,
) -> StepResult:
    """One optimizer step over the micro-batches of input_ids / labels (and the masks of their packing,
    ``coe.evaluate.model_inputs``): forward with the chunked loss and backward for each (gradients reduced
    across ranks at the last only), the expert-parallel gradient reduction, global-norm clipping, AdamW, and
    the routing counts taken (with the auxiliary-loss-free bias update when the model has one).
    ``router_logits``: return router logits of the last micro-batch, those of its routed tokens only when it
    has a routing or attention mask (padding takes no part in the router metrics). The one step the trainer
    and the benchmarks run; the learning-rate schedule stays with the caller."""
    device = next(model.parameters()).device
    config = model.config
    accumulation = len(micro_batches)
    lm_loss = aux_loss = out = None
    for micro, batch in enumerate(micro_batches):
        last = micro == accumulation - 1
        par.set_gradient_sync(model, last)
        inputs = model_inputs(batch, device)
        with_router = router_logits and last and config.num_moe_layers > 0
        counted = None  # the router metrics take the tokens the routing mask counts (not the padding)
        if with_router and (mask := batch.get("routing_mask", batch.get("attention_mask"))) is not None:
            counted = mask.flatten().nonzero().squeeze(1).to(device)  # found on the host: no device sync
        with autocast(device, amp):
            out = model(
                **inputs,
                use_cache=False,
                return_logits=False,  # no (B, S, V) logits
                output_router_logits=with_router,
            )
        if counted is not None:
            out.router_logits, out.selected_experts, out.routing_weights = (
                tuple(x.index_select(0, counted) for x in xs)
                for xs in (out.router_logits, out.selected_experts, out.routing_weights)
            )
        (out.loss / accumulation).backward()
        lm = out.lm_loss.detach() / accumulation
        lm_loss = lm if lm_loss is None else lm_loss + lm
        if out.aux_loss is not None:
            aux = out.aux_loss.detach() / accumulation
            aux_loss = aux if aux_loss is None else aux_loss + aux
    par.finish_gradients(model)
    grad_norm = par.clip_grad_norm_(model, grad_clip) if grad_clip > 0 else None
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    counts = take_routing_counts(model, par)  # every rank's load: the bias update and the metrics need it
    if config.router_bias_update_rate > 0:
        model.update_router_biases(counts)
    return StepResult(lm_loss, aux_loss, grad_norm, counts, out)


@dataclass
class _Run:
    """Everything a run holds while it trains."""

    cfg: TrainConfig
    dir: Path
    device: torch.device
    amp: torch.dtype | None
    par: Parallel
    config: CoEConfig
    data: RunData
    model: CoEForCausalLM
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0
    elapsed: float = 0.0  # seconds of training (validation and checkpoints not counted)
    saved_step: int | None = None  # the step of the newest checkpoint this process wrote or resumed from
    # Peak memory (GiB) of the processes that trained this run's earlier steps; None when a resumed checkpoint
    # did not record it (then the run's peak is unknown: this process alone would understate it).
    earlier_peak: float | None = 0.0

    def peak_memory_gib(self) -> float | None:
        """The run's peak memory so far, over every process that trained it (None: unknown)."""
        if self.earlier_peak is None:
            return None
        return max(self.earlier_peak, peak_memory_gib(self.device))

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.batch_size * self.cfg.seq_len


def _train(cfg: TrainConfig, device: torch.device, par: Parallel) -> RunResult:
    run = _start(cfg, device, par)
    # Opened in the `with` below, so that both are closed on every way out (a loop error included).
    open_logger = (
        partial(
            MetricsLogger,
            run.dir,
            tensorboard=cfg.logging.tensorboard,
            wandb_project=cfg.logging.wandb_project,
            config=cfg.to_dict(),
            resume_step=run.step or None,
        )
        if par.is_main
        else NullLogger
    )
    show = cfg.logging.progress and par.is_main
    progress = partial(
        tqdm, total=cfg.steps, initial=run.step, disable=not show, unit="step", dynamic_ncols=True
    )
    with open_logger() as logger, progress() as bar, _Signals() as signals:
        window = _LogWindow(run)
        while run.step < cfg.steps:
            log_now = (run.step + 1) % cfg.logging.every == 0 or run.step + 1 == cfg.steps
            micro_batches = [next(run.data.train) for _ in range(cfg.accumulation)]
            result = train_step(
                run.model,
                micro_batches,
                run.optimizer,
                par,
                amp=run.amp,
                grad_clip=cfg.optim.grad_clip,
                router_logits=log_now,
            )
            run.scheduler.step()
            run.step += 1
            bar.update(1)
            window.add(result)
            if log_now:
                metrics = window.record(result)
                logger.log(run.step, metrics)
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_s']:.0f}")
            if run.step % cfg.eval.every == 0 or run.step == cfg.steps:
                for split, loss in _validate(run).items():
                    logger.log(run.step, {"loss": loss}, split)
                window.restart_clock()  # validation time is not training time
            if run.step % cfg.checkpoint.every == 0 and run.step < cfg.steps:
                _save(run, window)
                window.restart_clock()
            if par.any(signals.received is not None):  # every rank stops at the same step
                path = _save(run, window)
                raise TrainingInterrupted(
                    f"signal {signals.received or 'on another rank'} at step {run.step}: checkpoint {path}"
                )
        summary = _finish(run, logger, window, signals)
    return RunResult(run.dir, summary)


def _start(cfg: TrainConfig, device: torch.device, par: Parallel) -> _Run:
    """The run's model, optimizer, schedule and data: fresh, or restored from the newest checkpoint."""
    run_dir = Path(cfg.out_dir)
    if par.is_main:
        check_writable(run_dir)
        clean_checkpoints(run_dir)  # what a crash left: trash deleted, a complete temporary one recovered
    par.barrier()
    amp = autocast_dtype(cfg.runtime.precision, device)
    checkpoint = resume_checkpoint(run_dir) if cfg.checkpoint.resume else None
    if not cfg.checkpoint.resume and par.is_main and (earlier := latest_checkpoint(run_dir)) is not None:
        log.warning(
            "starting fresh in %s, which holds an earlier run's checkpoints (newest %s): they stay beside "
            "this run's, and a resume takes the newest of all (checkpoint.resume continues the earlier run)",
            run_dir,
            earlier.name,
        )
    config = model_config(cfg)
    data = _run_data(cfg, config, run_dir, checkpoint, par)
    # A resumed run keeps the model configuration it was saved with.
    config = CoEConfig.from_pretrained(checkpoint) if checkpoint else attach_tokenizer(config, data.tokenizer)

    seed_everything(cfg.seed)  # the same initial weights on every rank, whatever ran before in this process
    model = CoEForCausalLM(config).to(device)
    model.train()
    parallelize(model, par, param_dtype=amp if device.type == "cuda" else None)  # CPU: float32 throughout
    if cfg.runtime.compile and device.type == "cuda":
        compile_layers(model, cfg.runtime.activation_memory_budget)
    optimizer = build_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    run = _Run(cfg, run_dir, device, amp, par, config, data, model, optimizer, scheduler)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model=model, optimizer=optimizer, par=par)
        scheduler.load_state_dict(state["scheduler"])
        restore_position(data.train, state["data"])
        set_rng_state(state["rng"])
        run.step, run.elapsed = state["step"], state["elapsed"]
        run.earlier_peak = state.get("peak_memory_gib", 0.0 if run.step == 0 else None)
        run.saved_step = run.step
    if par.is_main:  # only now: a resume that fails its checks leaves the run's config.yaml as it was
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return run


class _LogWindow:
    """The training metrics of the steps since the last record, kept on the device until the record's one
    host sync."""

    def __init__(self, run: _Run) -> None:
        c = run.config
        self.run = run
        self.counts = torch.zeros(c.num_moe_layers, c.inner_iter, c.n_routed_experts, device=run.device)
        self.lm_loss = torch.zeros((), device=run.device)
        self.aux_loss = torch.zeros((), device=run.device)
        self.steps = 0
        self.restart_clock()

    def restart_clock(self) -> None:
        self.start = time.perf_counter()

    def add(self, result: StepResult) -> None:
        self.lm_loss += result.lm_loss
        if result.aux_loss is not None:
            self.aux_loss += result.aux_loss
        self.counts += result.routing_counts
        self.steps += 1

    def check_finite(self) -> None:
        """NonFiniteLossError when a loss of the window's steps (on any rank) is not finite; a host sync."""
        if self.run.par.any(not bool(torch.isfinite(self.lm_loss + self.aux_loss))):
            raise NonFiniteLossError(
                f"non-finite loss at or before step {self.run.step}; the last good checkpoint "
                f"{latest_checkpoint(self.run.dir)} is kept. Lower optim.lr or check the data."
            )

    def record(self, last: StepResult) -> dict[str, float]:
        """The window's means (over steps and ranks) and router statistics of ``last``; starts a new window.
        Raises NonFiniteLossError when the loss is not finite."""
        run, config = self.run, self.run.config
        names, values = ["loss", "aux_loss"], [self.lm_loss / self.steps, self.aux_loss / self.steps]
        if last.grad_norm is not None:
            names.append("grad_norm")
            values.append(last.grad_norm)
        if config.num_moe_layers:
            router_names, router_values = router_metric_values(run.model, last.output, self.counts)
            names += router_names
            values.append(router_values)
        # Averaged over ranks (so every rank sees the same loss and stops together when it is not finite),
        # then the one host sync of a log window; the clock is read after it, when queued GPU work is done.
        means = dict(
            zip(
                names, run.par.mean_(torch.cat([v.float().reshape(-1) for v in values])).tolist(), strict=True
            )
        )
        now = time.perf_counter()
        run.elapsed += now - self.start
        if not math.isfinite(means["loss"]):
            raise NonFiniteLossError(
                f"non-finite loss ({means['loss']}) at step {run.step}; the last good "
                f"checkpoint {latest_checkpoint(run.dir)} is kept. Lower optim.lr or check "
                "the data."
            )
        metrics = {
            "loss": means.pop("loss"),
            "aux_loss": means.pop("aux_loss"),
            "lr": run.scheduler.get_last_lr()[0],
            "tokens_per_s": self.steps * run.tokens_per_step / (now - self.start),
            "tokens": run.step * run.tokens_per_step,
            "elapsed_s": run.elapsed,
            **means,
        }
        self.lm_loss.zero_()
        self.aux_loss.zero_()
        self.counts.zero_()
        self.steps = 0
        self.restart_clock()
        return metrics


def _loss_and_tokens(run: _Run, batches: list) -> tuple[float, int]:
    """The mean loss over ``batches`` and its labelled tokens: every rank its share, token-weighted over all
    ranks (their shares hold different numbers of labelled tokens when documents are padded or masked)."""
    loss_sum, tokens = run.par.sum_(validation_sums(run.model, batches, amp_dtype=run.amp)).tolist()
    return loss_sum / tokens, int(tokens)


def _validate(run: _Run) -> dict[str, float]:
    """The validation loss ("val") and, with eval.test_loss, the test split's ("test")."""
    splits = (("val", run.data.validation), ("test", run.data.test))
    return {split: _loss_and_tokens(run, batches)[0] for split, batches in splits if batches}


def _save(run: _Run, window: _LogWindow) -> Path:
    """Checkpoint the current step, unless this process already did (a signal right after a periodic save).
    NonFiniteLossError instead when a loss since the last record was not finite: such a state is never
    written, and the last good checkpoint stays (save_checkpoint checks the weights)."""
    path = run.dir / "checkpoints" / f"step-{run.step:08d}"
    if run.saved_step == run.step and path.is_dir():
        return path
    window.check_finite()
    path = save_checkpoint(
        run.dir,
        run.step,
        model=run.model,
        tokenizer=run.data.tokenizer,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        keep_last=run.cfg.checkpoint.keep_last,
        par=run.par,
        trainer_state={
            "step": run.step,
            "elapsed": run.elapsed,
            "peak_memory_gib": run.peak_memory_gib(),
            "data": run.data.train.state_dict(),
        },
    )
    run.saved_step = run.step
    return path


def _finish(
    run: _Run, logger: MetricsLogger | NullLogger, window: _LogWindow, signals: _Signals
) -> dict[str, Any]:
    """The final checkpoint, validation loss and (on rank 0) exact-match accuracy: the run's summary, also
    written to summary.json and logged as the "final" record. A signal during the final save stops the run
    after it; one during the evaluation stops it at once (the checkpoint is complete)."""
    cfg, config, par = run.cfg, run.config, run.par
    peak = run.peak_memory_gib()  # the training peak (validation included), before the final save
    final = _save(run, window)
    if par.any(signals.received is not None):
        who = signals.received or "on another rank"
        raise TrainingInterrupted(f"signal {who} at the final step: checkpoint {final}")
    signals.stop_at_once(f"during the final evaluation; the final checkpoint {final} is complete")
    losses = _validate(run)
    by_source = {s: _loss_and_tokens(run, batches) for s, batches in run.data.validation_by_source.items()}
    summary: dict[str, Any] = {
        "preset": cfg.model.preset,
        "size": cfg.model.size,
        "steps": run.step,
        "tokens": run.step * run.tokens_per_step,
        "val_loss": losses["val"],
        **({"test_loss": losses["test"]} if "test" in losses else {}),
        "total_params": total_parameters(config),
        "active_params": active_parameters(config),
        "expert_combinations": expert_combinations(
            config.n_routed_experts, config.num_experts_per_tok, config.inner_iter
        ),
        "train_time_s": run.elapsed,
        "tokens_per_s": run.step * run.tokens_per_step / max(run.elapsed, 1e-9),
        "peak_memory_gib": peak,
        "device": str(run.device),
        "ranks": par.world_size,
        "expert_parallel": par.expert_parallel,
        "revision": TRAINING_REVISION,
    }
    if by_source:  # where the validation loss comes from, source by source
        summary["val_loss_by_source"] = {s: loss for s, (loss, _) in by_source.items()}
        summary["val_tokens_by_source"] = {s: tokens for s, (_, tokens) in by_source.items()}
    if not par.is_main:
        return summary
    if run.data.problems:
        # Generation stops at a different length for every batch: with several ranks it runs on rank 0 alone,
        # on the whole model read back from the checkpoint just written.
        plain = (
            run.model
            if not par.enabled
            else CoEForCausalLM.from_pretrained(final, dtype=torch.float32).to(run.device)
        )
        accuracy, samples = exact_match(
            plain,
            run.data.tokenizer,
            run.data.problems,
            max_new_tokens=cfg.eval.max_new_tokens,
            amp_dtype=run.amp,
            progress=cfg.logging.progress,  # main rank only: the others returned above
        )
        summary["accuracy"] = accuracy
        summary["accuracy_problems"] = len(samples)
        summary["samples"] = [s.__dict__ for s in samples[:5]]
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    source_losses = {f"val_loss/{s}": loss for s, (loss, _) in by_source.items()}
    logger.log(run.step, {**numbers, **source_losses}, "final")
    (run.dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
