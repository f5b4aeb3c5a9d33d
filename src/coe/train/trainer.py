"""The training loop: AdamW with warm-up, gradient accumulation, bf16 autocast on CUDA, clipping, validation,
router metrics, atomic checkpoints, exact resumption, signal handling and a non-finite-loss stop.

The hot path does not synchronise with the host: losses stay on the device and are read once per log step.
Under torchrun the same loop runs on every rank with FSDP2 and, if asked, expert parallelism
(:mod:`coe.train.distributed`); rank 0 alone writes logs, metrics, the summary and the model directory.
"""

from __future__ import annotations

import json
import math
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from coe.config import CoEConfig
from coe.device import autocast, autocast_dtype, peak_memory_gib, resolve_device
from coe.evaluate import exact_match, validation_loss
from coe.analysis.stats import expert_combinations
from coe.flops import active_parameters, total_parameters
from coe.modeling import CoEForCausalLM
from coe.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, set_rng_state
from coe.train.config import TRAINING_REVISION, TrainConfig
from coe.train.data import RunData, prepare_run_data, restore_position
from coe.train.distributed import Parallel, parallel, parallelize, torchrun_env
from coe.train.metrics import MetricsLogger, router_metric_values


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):  # noqa: N818 - a signal, not a bug
    """SIGINT or SIGTERM arrived; a checkpoint was written first."""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(cfg: TrainConfig):
    warmup = int(cfg.optim.warmup_ratio * cfg.steps)

    def factor(step: int) -> float:  # step = optimizer steps taken so far
        if step < warmup:
            return (step + 1) / warmup
        if cfg.optim.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, cfg.steps - warmup)
        return cfg.optim.min_lr_ratio + (1 - cfg.optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas, fused=device.type == "cuda")


def model_config(cfg: TrainConfig) -> CoEConfig:
    """The preset with the run's overrides, checked against the run's sequence length."""
    config = CoEConfig.from_preset(cfg.model.preset, cfg.model.size, **cfg.model.overrides)
    if cfg.seq_len > config.max_position_embeddings:
        raise ValueError(f"seq_len={cfg.seq_len} is above the model's max_position_embeddings="
                         f"{config.max_position_embeddings}")
    return config


def attach_tokenizer(config: CoEConfig, tokenizer) -> CoEConfig:
    """Special-token ids from the tokenizer, which must fit the model's vocabulary."""
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is "
                         f"{config.vocab_size}: lower tokenizer_vocab_size or raise model.overrides.vocab_size")
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
    """Turns SIGINT / SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.received: int | None = None
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

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(cfg: TrainConfig) -> RunResult:
    """Run (or resume) the training described by ``cfg``; returns the run directory and its summary.

    Under torchrun (WORLD_SIZE > 1) every rank calls this: it joins the process group, shards the model and
    its share of the data, and leaves the group at the end. ``batch_size`` and ``micro_batch_size`` are global,
    so a run trains on the same batches, and to the same losses, on any number of ranks.
    """
    _, world_size, local_rank = torchrun_env()
    device = resolve_device(cfg.device)
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    with parallel(device, cfg.expert_parallel) as par:
        return _train(cfg, device, par)


def _run_data(cfg: TrainConfig, config: CoEConfig, run_dir: Path, tokenizer: str | None,
              par: Parallel) -> RunData:
    def load(tokenizer: str | None) -> RunData:
        return prepare_run_data(cfg.data, run_dir=run_dir, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                                micro_batch_size=cfg.micro_batch_size or cfg.batch_size, seed=cfg.seed,
                                tokenizer=tokenizer, vocab_size=cfg.tokenizer_vocab_size or config.vocab_size,
                                eval_batches=cfg.eval_batches, accuracy_problems=cfg.accuracy_problems,
                                rank=par.rank, world_size=par.world_size)

    if tokenizer is not None or not par.enabled:
        return load(tokenizer)
    # A BPE trained on the training split: rank 0 trains and saves it, the other ranks load what it saved.
    data = load(None) if par.is_main else None
    par.barrier()
    return data if data is not None else load(str(run_dir / "tokenizer"))


@dataclass
class StepResult:
    """What one optimizer step leaves on the device (nothing here has been read by the host)."""

    lm_loss: torch.Tensor  # the language-model loss, mean over the micro-batches
    aux_loss: torch.Tensor | None  # the balance / z losses, likewise; None for a model without them
    grad_norm: torch.Tensor | None  # before clipping; None when grad_clip is 0
    routing_counts: torch.Tensor | None  # (MoE layers, C, N) tokens per expert, summed over ranks when biases update
    output: Any  # the last micro-batch's model output


def train_step(model: CoEForCausalLM, micro_batches: Sequence[dict[str, torch.Tensor]],
               optimizer: torch.optim.Optimizer, par: Parallel, *, amp: torch.dtype | None, grad_clip: float,
               router_logits: bool = False) -> StepResult:
    """One optimizer step over the micro-batches of input_ids / labels: forward with the chunked
    loss and backward for each (gradients reduced across ranks at the last only), the expert-parallel gradient
    reduction, global-norm clipping, AdamW, and the routing counts taken (with the auxiliary-loss-free bias
    update when the model has one). ``router_logits``: return router logits of the last micro-batch. The one
    step the trainer and the benchmarks run; the learning-rate schedule stays with the caller."""
    device = next(model.parameters()).device
    config = model.config
    accumulation = len(micro_batches)
    lm_loss = aux_loss = out = None
    for micro, batch in enumerate(micro_batches):
        last = micro == accumulation - 1
        par.set_gradient_sync(model, last)
        ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
        with autocast(device, amp):
            out = model(ids, shift_labels=labels, use_cache=False, return_logits=False,  # no (B, S, V) logits
                        output_router_logits=router_logits and last and config.num_moe_layers > 0)
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
    counts = None
    if config.num_moe_layers and config.router_bias_update_rate > 0:
        counts = par.sum_routing_counts(model)  # the bias update needs every rank's load
        model.update_router_biases()
    elif config.num_moe_layers:
        counts = model.routing_counts()
        model.reset_routing_counts()
    return StepResult(lm_loss, aux_loss, grad_norm, counts, out)


def _train(cfg: TrainConfig, device: torch.device, par: Parallel) -> RunResult:
    run_dir = Path(cfg.out_dir)
    if par.is_main:
        check_writable(run_dir)
    par.barrier()
    amp = autocast_dtype(cfg.precision, device)
    checkpoint = latest_checkpoint(run_dir) if cfg.resume else None
    seed_everything(cfg.seed)
    config = model_config(cfg)

    data = _run_data(cfg, config, run_dir, str(checkpoint) if checkpoint else cfg.tokenizer, par)
    tokenizer = data.tokenizer
    # A resumed run keeps the model configuration it was saved with.
    config = CoEConfig.from_pretrained(checkpoint) if checkpoint else attach_tokenizer(config, tokenizer)
    if par.is_main:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    seed_everything(cfg.seed)  # the same initial weights on every rank, whatever ran before
    model = CoEForCausalLM(config).to(device)
    model.train()
    parallelize(model, par, param_dtype=amp if device.type == "cuda" else None)  # CPU: float32 throughout
    if cfg.compile and device.type == "cuda":
        compile_layers(model, cfg.activation_memory_budget)
    optimizer = build_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    step, elapsed = 0, 0.0
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model=model, optimizer=optimizer, par=par)
        scheduler.load_state_dict(state["scheduler"])
        restore_position(data.train, state["data"])
        set_rng_state(state["rng"])
        step, elapsed = state["step"], state["elapsed"]

    logger = None
    if par.is_main:
        logger = MetricsLogger(run_dir, tensorboard=cfg.tensorboard, wandb_project=cfg.wandb_project,
                               config=cfg.to_dict(), resume_step=step if checkpoint is not None else None)
        if checkpoint is None and logger.path.stat().st_size:
            logger.path.write_text("")  # a fresh run in a used directory starts a fresh log

    def log(at_step: int, metrics: dict[str, float], split: str = "train") -> None:
        if logger is not None:
            logger.log(at_step, metrics, split)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def save(at_step: int) -> Path:
        return save_checkpoint(run_dir, at_step, model=model, tokenizer=tokenizer, optimizer=optimizer,
                               scheduler=scheduler, keep_last=cfg.keep_last, par=par,
                               trainer_state={"step": at_step, "elapsed": elapsed,
                                              "data": data.train.state_dict()})

    def validate() -> float:  # every rank its share; equal shares, so the mean of the means is the whole mean
        loss = validation_loss(model, data.validation, amp_dtype=amp)
        if config.num_moe_layers:
            model.reset_routing_counts()  # validation tokens are not training load (metrics, bias updates)
        return par.mean(loss, device)

    tokens_per_step = cfg.batch_size * cfg.seq_len
    bias_update = config.num_moe_layers > 0 and config.router_bias_update_rate > 0
    window = torch.zeros(config.num_moe_layers, config.inner_iter, config.n_routed_experts, device=device)
    lm_sum = torch.zeros((), device=device)
    aux_sum = torch.zeros((), device=device)
    window_steps, window_start = 0, time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, disable=not (cfg.progress and par.is_main), unit="step",
               dynamic_ncols=True)
    try:
        with _Signals() as signals:
            while step < cfg.steps:
                log_now = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps
                micro_batches = [next(data.train) for _ in range(cfg.accumulation)]
                result = train_step(model, micro_batches, optimizer, par, amp=amp, grad_clip=cfg.optim.grad_clip,
                                    router_logits=log_now)
                scheduler.step()
                lm_sum += result.lm_loss
                if result.aux_loss is not None:
                    aux_sum += result.aux_loss
                if result.routing_counts is not None:
                    window += result.routing_counts
                step += 1
                window_steps += 1
                bar.update(1)

                if log_now:
                    if config.num_moe_layers and not bias_update:
                        par.sum_(window)  # every rank's load
                    names, values = ["loss", "aux_loss"], [lm_sum / window_steps, aux_sum / window_steps]
                    if result.grad_norm is not None:
                        names.append("grad_norm")
                        values.append(result.grad_norm)
                    if config.num_moe_layers:
                        router_names, router_values = router_metric_values(model, result.output, window)
                        names += router_names
                        values += [router_values]
                    # Averaged over ranks (so every rank sees the same loss and stops together when it is not
                    # finite), then the one host sync of a log window.
                    means = par.mean_(torch.cat([v.float().reshape(-1) for v in values]))
                    means = dict(zip(names, means.tolist()))
                    # Read the clock after that sync: before it, queued GPU work would not be counted.
                    now = time.perf_counter()
                    elapsed += now - window_start
                    lm = means.pop("loss")
                    if not math.isfinite(lm):
                        raise NonFiniteLossError(
                            f"non-finite loss ({lm}) at step {step}; the last good checkpoint "
                            f"{latest_checkpoint(run_dir)} is kept. Lower optim.lr or check the data.")
                    metrics = {"loss": lm, "aux_loss": means.pop("aux_loss"), "lr": scheduler.get_last_lr()[0],
                               "tokens_per_s": window_steps * tokens_per_step / (now - window_start),
                               "tokens": step * tokens_per_step, "elapsed_s": elapsed, **means}
                    log(step, metrics)
                    bar.set_postfix(loss=f"{lm:.3f}", tok_s=f"{metrics['tokens_per_s']:.0f}")
                    lm_sum.zero_()
                    aux_sum.zero_()
                    window.zero_()
                    window_steps, window_start = 0, time.perf_counter()

                if step % cfg.eval_every == 0 or step == cfg.steps:
                    log(step, {"loss": validate()}, "val")
                    window_start = time.perf_counter()  # validation time is not training time
                if step % cfg.save_every == 0 and step < cfg.steps:
                    save(step)
                    window_start = time.perf_counter()
                if par.any(signals.received is not None):  # every rank stops at the same step
                    path = save(step)
                    raise TrainingInterrupted(f"signal {signals.received or 'on another rank'} at step {step}: "
                                              f"checkpoint {path}")
    finally:
        bar.close()

    # The training peak (validation inside the loop included), before the final save and evaluation.
    peak = peak_memory_gib(device)
    final = save(step)
    summary: dict[str, Any] = {
        "preset": cfg.model.preset, "size": cfg.model.size, "steps": step, "tokens": step * tokens_per_step,
        "val_loss": validate(),
        "total_params": total_parameters(config), "active_params": active_parameters(config),
        "expert_combinations": expert_combinations(config.n_routed_experts, config.num_experts_per_tok,
                                                    config.inner_iter), "train_time_s": elapsed,
        "tokens_per_s": step * tokens_per_step / max(elapsed, 1e-9),
        "peak_memory_gib": peak,
        "device": str(device), "ranks": par.world_size, "expert_parallel": par.expert_parallel,
        "revision": TRAINING_REVISION,
    }
    if not par.is_main:
        return RunResult(run_dir, summary)
    if data.problems:
        # Generation stops at a different length for every batch: with several ranks it runs on rank 0 alone,
        # on the whole model read back from the checkpoint just written.
        plain = (model if not par.enabled
                 else CoEForCausalLM.from_pretrained(final, dtype=torch.float32).to(device))
        accuracy, samples = exact_match(plain, tokenizer, data.problems, max_new_tokens=cfg.max_new_tokens,
                                        amp_dtype=amp)
        summary["accuracy"] = accuracy
        summary["accuracy_problems"] = len(samples)
        summary["samples"] = [s.__dict__ for s in samples[:5]]
    log(step, {k: v for k, v in summary.items() if isinstance(v, (int, float))}, "final")
    logger.close()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return RunResult(run_dir, summary)

