"""Data and expert parallelism under torchrun: process group, device meshes, FSDP2 and expert-parallel
sharding, and the few collectives the training loop needs (:func:`take_routing_counts` among them).

    torchrun --nproc_per_node=8 -m coe train --config run.yaml --runtime.expert_parallel 4

Layout for W ranks and E = ``TrainConfig.runtime.expert_parallel`` (E divides W; docs/distributed.md has the
costs):

- Every rank reads its own share of each global batch: data parallelism over all W ranks.
- Mesh "fsdp" (W,): FSDP2 shards the parameters over all ranks, one unit per decoder layer and one for the
  rest (embeddings, final norm, LM head); on CUDA the gathered parameters are bf16, the gradients reduced in
  float32.
- Mesh ("dp", "ep") (W / E, E), rank = dp * E + ep, only when E > 1: each layer's routed experts are split
  over "ep" (tokens travel by all-to-all, :mod:`coe.nn.expert_parallel`) and replicated over "dp". FSDP leaves
  them alone; their gradients are summed over "dp" once per optimizer step by
  :meth:`Parallel.finish_gradients`. The ranks of one "ep" group are consecutive, so with E <= GPUs per node
  the all-to-alls stay on the node.

Outside torchrun (or with one rank) :class:`Parallel` is a stand-in whose collectives do nothing, so the
training loop has one code path and the single-process path is what it was.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from coe.nn.expert_parallel import local_tensor, shard_experts


def torchrun_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


@dataclass
class Parallel:
    """Where this process stands in the run and the collectives the loop uses (no-ops for one process)."""

    rank: int = 0
    world_size: int = 1
    expert_parallel: int = 1
    mesh: DeviceMesh | None = None  # ("fsdp",) all ranks
    expert_mesh: DeviceMesh | None = None  # ("dp", "ep"), with expert parallelism only
    control: dist.ProcessGroup | None = None  # gloo: host-side flags and barriers, never touching the device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, metrics, reports, the summary and the from_pretrained model directory."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(group=self.control)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any (a host-side all-reduce over gloo)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return bool(t.item())

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over all ranks in place (on the device: no host sync)."""
        if self.enabled:
            dist.all_reduce(t)
        return t

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        """Mean of ``t`` over all ranks in place (gloo has no AVG: a sum, then a division)."""
        if self.enabled:
            dist.all_reduce(t)
            t.div_(self.world_size)
        return t

    def mean(self, x: float, device: torch.device) -> float:
        """Mean of a Python number over all ranks."""
        if not self.enabled:
            return x
        return self.mean_(torch.tensor(x, dtype=torch.float64, device=device)).item()

    def set_gradient_sync(self, model: torch.nn.Module, sync: bool) -> None:
        """FSDP2: reduce gradients on this backward (the last micro-batch) or only accumulate them locally."""
        if isinstance(model, FSDPModule):
            model.set_requires_gradient_sync(sync)

    @torch.no_grad()
    def finish_gradients(self, model) -> None:
        """Expert-parallel gradients into the same scale as FSDP's: summed over "dp", divided by W.

        Each rank's expert gradient already sums the contributions of the tokens it received from its "ep"
        group (the all-to-all's backward); FSDP averages the other gradients over all W ranks, so the
        experts' are summed over the "dp" copies and divided by W. Call once per optimizer step, after the
        last backward.
        """
        if self.expert_mesh is None:
            return
        grads = [p.grad.to_local() for p in expert_parameters(model) if p.grad is not None]
        if self.world_size > self.expert_parallel:
            group = self.expert_mesh.get_group("dp")
            for work in [dist.all_reduce(g, group=group, async_op=True) for g in grads]:
                work.wait()
        torch._foreach_mul_(grads, 1.0 / self.world_size)

    @torch.no_grad()
    def clip_grad_norm_(self, model: torch.nn.Module, max_norm: float) -> torch.Tensor:
        """Clip the global gradient norm to ``max_norm``; returns the norm before clipping (on the device).

        One process: torch's own. Several: the squared norms of the local gradient shards are summed over all
        ranks in one all-reduce; an expert shard is held by W / E ranks, so it enters with weight E / W.
        """
        if not self.enabled:
            return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        experts = {id(p) for p in expert_parameters(model)} if self.expert_mesh is not None else set()
        sharded, replicated = [], []
        for p in model.parameters():
            if p.grad is not None:
                (replicated if id(p) in experts else sharded).append(local_tensor(p.grad))
        device = (sharded or replicated)[0].device
        squares = torch.zeros((), device=device, dtype=torch.float32)
        for grads, weight in ((sharded, 1.0), (replicated, self.expert_parallel / self.world_size)):
            if grads:
                squares += torch.stack(torch._foreach_norm(grads)).float().square().sum() * weight
        dist.all_reduce(squares)
        total = squares.sqrt()
        torch._foreach_mul_(sharded + replicated, (max_norm / (total + 1e-6)).clamp(max=1.0))
        return total


@torch.no_grad()
def take_routing_counts(model, par: Parallel | None = None) -> torch.Tensor:
    """The tokens each (MoE layer, iteration) sent to each expert in the training forwards since the last
    take, (MoE layers, C, N) float32 on the model's device, summed over the ranks of ``par`` when it has
    several; the counts start again from zero. The one reader of the counts: load metrics and
    auxiliary-loss-free bias updates (``model.update_router_biases(counts)``) take them from here."""
    config = model.config
    counts = [chain.take_counts() for chain in model.chains()]
    if not counts:
        return torch.zeros(0, config.inner_iter, config.n_routed_experts, device=model.device)
    counts = torch.stack(counts)
    if par is not None and par.enabled:
        dist.all_reduce(counts)
    return counts


def expert_parameters(model) -> list[torch.nn.Parameter]:
    """The routed experts' weight stacks of every MoE layer."""
    return [p for chain in model.chains() for p in chain.experts.parameters()]


@contextlib.contextmanager
def parallel(device: torch.device, expert_parallel: int = 1) -> Iterator[Parallel]:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU) and build the meshes; tear down at exit.

    Outside torchrun, or with WORLD_SIZE=1, yields the single-process stand-in.
    """
    rank, world, _ = torchrun_env()
    if world % expert_parallel:
        raise ValueError(f"expert_parallel={expert_parallel} must divide the number of ranks ({world})")
    if world == 1:
        yield Parallel()
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    try:
        mesh = init_device_mesh(device.type, (world,), mesh_dim_names=("fsdp",))
        expert_mesh = (
            init_device_mesh(
                device.type, (world // expert_parallel, expert_parallel), mesh_dim_names=("dp", "ep")
            )
            if expert_parallel > 1
            else None
        )
        control = dist.new_group(backend="gloo") if backend != "gloo" else None
        yield Parallel(rank, world, expert_parallel, mesh, expert_mesh, control)
    finally:
        dist.destroy_process_group()


def parallelize(model, par: Parallel, *, param_dtype: torch.dtype | None = None) -> None:
    """Shard ``model`` (a CoEForCausalLM on its device, the same weights on every rank) in place.

    Expert parallelism first (each rank keeps its chunk of every layer's experts), then FSDP2 on each decoder
    layer and on the root, leaving the expert-parallel weights out. ``param_dtype``: the dtype FSDP gathers
    parameters in for compute (bf16 on CUDA); gradients are reduced in float32 and the sharded master weights
    and optimizer state stay float32.
    """
    if not par.enabled:
        return
    if par.expert_mesh is not None:
        for chain in model.chains():
            shard_experts(chain.experts, par.expert_mesh)
    for chain in model.chains():
        chain.batch_group = par.mesh.get_group()  # the batch-wise balance loss counts every rank's tokens
    # FSDP2 warns that a decoder layer returns a view (the CoE block's (B, S, D) view of its (T, D) tokens) in
    # case an in-place op drops its pre-backward hook; the model never modifies layer outputs in place.
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    ignored = set(expert_parameters(model)) if par.expert_mesh is not None else None
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for layer in model.model.layers:
        fully_shard(layer, mesh=par.mesh, mp_policy=policy, ignored_params=ignored)
    fully_shard(model, mesh=par.mesh, mp_policy=policy, ignored_params=ignored)
