"""Expert parallelism: the routed experts of a layer split across the ranks of a group, tokens exchanged with
a differentiable all-to-all.

Shapes: N experts in all, P ranks of the expert-parallel group, n experts on this rank, M token copies this
rank sends (sorted by global expert), R token copies it receives, D hidden.

Rank p owns the experts of ``torch.chunk(arange(N), P)[p]`` (so 63 experts over 8 ranks is 8 per rank and 7
on the last). One exchange, per CoE iteration::

    counts (N,) --all-to-all--> (P, n)     how many copies each rank sends to each of my experts
    one device->host copy of the split sizes (the all-to-all needs them on the host: the one inherent sync)
    copies (M, D) --all-to-all--> (R, D)    grouped by sender, then expert; regrouped by expert for grouped_mm
    ... experts ...
    results (R, D) --all-to-all--> (M, D)   back to the senders, in their original order

Backward runs the two all-to-alls in reverse. Nothing here builds process groups: :func:`shard_experts` is
given one by the trainer (``coe.train.distributed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Replicate, Shard

from coe.nn.dispatch import reorder


@dataclass(frozen=True)
class ExpertShard:
    """Which experts this rank holds: the chunk ``rank`` of ``sizes`` experts per rank of ``group``."""

    group: dist.ProcessGroup
    rank: int  # within the group
    sizes: tuple[int, ...]  # (P,) experts per rank, torch.chunk's split of N

    @property
    def num_local(self) -> int:
        return self.sizes[self.rank]


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a DTensor (differentiably), any other tensor as it is."""
    return t.to_local() if isinstance(t, DTensor) else t


def expert_split(num_experts: int, ranks: int) -> tuple[int, ...]:
    """Experts per rank as ``torch.chunk`` (and DTensor's ``Shard(0)``) split them; each rank must get one."""
    sizes = tuple(len(c) for c in torch.arange(num_experts).chunk(ranks))
    if len(sizes) != ranks:
        raise ValueError(
            f"{num_experts} experts cannot be split over {ranks} expert-parallel ranks without "
            f"leaving a rank empty: lower expert_parallel"
        )
    return sizes


class _AllToAll(torch.autograd.Function):
    """``all_to_all_single`` with split sizes; its backward is the same exchange with the splits swapped."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, out_splits: list[int], in_splits: list[int], group) -> torch.Tensor:
        ctx.splits, ctx.group = (in_splits, out_splits), group
        out = x.new_empty(sum(out_splits), *x.shape[1:])
        dist.all_to_all_single(out, x.contiguous(), out_splits, in_splits, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out_splits, in_splits = ctx.splits
        out = grad.new_empty(sum(out_splits), *grad.shape[1:])
        dist.all_to_all_single(out, grad.contiguous(), out_splits, in_splits, group=ctx.group)
        return out, None, None, None


@dataclass
class Exchange:
    """How one all-to-all moved token copies: what the return trip and the local expert groups need."""

    send_splits: list[int]  # (P,) copies sent to each rank
    recv_splits: list[int]  # (P,) copies received from each rank
    order: torch.Tensor  # (R,) received copies regrouped by local expert: position -> received row
    inverse: torch.Tensor  # (R,) received row -> position in the regrouped order
    offsets: torch.Tensor  # (n,) int32 cumulative copies per local expert, for grouped_mm


@torch.compiler.disable  # data-dependent split sizes: kept eager under torch.compile
def send_to_experts(
    xs: torch.Tensor, offsets: torch.Tensor, shard: ExpertShard
) -> tuple[torch.Tensor, Exchange]:
    """Send token copies to the ranks owning their experts.

    xs: (M, D) copies sorted by global expert; offsets: (N,) int32 cumulative copies per expert (from
    ``sort_by_expert``). Returns (R, D) copies for this rank's experts, grouped by expert, and the Exchange.
    """
    P, n, N = len(shard.sizes), shard.num_local, offsets.numel()
    counts = torch.diff(offsets, prepend=offsets.new_zeros(1)).long()  # (N,)
    recv_counts = counts.new_empty(P * n)  # (P, n) flat: copies from rank q for my expert e
    dist.all_to_all_single(recv_counts, counts, [n] * P, list(shard.sizes), group=shard.group)
    # The split sizes must be on the host: one small device->host copy per exchange, the sync EP cannot avoid.
    # Nothing goes the other way: the last expert of each rank is known on the host.
    host = torch.cat([offsets.long(), recv_counts]).tolist()
    sent_cum = [host[end - 1] for end in accumulate(shard.sizes)]  # (P,) copies up to each rank's last expert
    received = host[N:]
    send_splits = [b - a for a, b in zip([0, *sent_cum[:-1]], sent_cum, strict=True)]
    recv_splits = [sum(received[q * n : (q + 1) * n]) for q in range(P)]
    R = sum(recv_splits)
    xr = _AllToAll.apply(xs, recv_splits, send_splits, shard.group)  # (R, D) by sender, then expert
    expert = torch.arange(n, device=xs.device).repeat(P).repeat_interleave(recv_counts, output_size=R)  # (R,)
    order = expert.argsort(stable=True)
    inverse = torch.empty_like(order).scatter_(0, order, torch.arange(R, device=order.device))
    per_expert = recv_counts.view(P, n).sum(0)  # (n,)
    exchange = Exchange(send_splits, recv_splits, order, inverse, per_expert.cumsum(0, dtype=torch.int32))
    return reorder(xr, order, inverse), exchange


@torch.compiler.disable
def return_to_senders(ys: torch.Tensor, exchange: Exchange, shard: ExpertShard) -> torch.Tensor:
    """The inverse of :func:`send_to_experts`: expert outputs (R, D) back to their senders -> (M, D)."""
    ys = reorder(ys, exchange.inverse, exchange.order)  # (R, D) by sender, then expert
    return _AllToAll.apply(ys, exchange.send_splits, exchange.recv_splits, shard.group)


def shard_experts(experts: torch.nn.Module, mesh: DeviceMesh) -> None:
    """Split ``experts`` (a :class:`coe.nn.experts.Experts`) over the mesh dimension "ep", in place.

    ``mesh`` has dimensions ("dp", "ep"): each weight stack (N, ...) becomes a DTensor placed (Replicate,
    Shard(0)), so a rank holds its ep chunk of experts, the same chunk as the ranks of its "dp" column.
    Checkpoints (DCP) see the global shape and reshard to any other layout. Every rank must hold the same
    full weights when this is called (the same seed).
    """
    group = mesh.get_group("ep")
    rank, P = mesh.get_local_rank("ep"), mesh.size(mesh.mesh_dim_names.index("ep"))
    sizes = expert_split(experts.num_experts, P)
    if experts.backend not in ("grouped", "adaptive"):
        raise ValueError(
            "expert parallelism needs the grouped expert backend (or adaptive, which is grouped on a "
            f"shard), not {experts.backend!r}"
        )
    for name in ("gate_up_proj", "down_proj"):
        full = getattr(experts, name)
        local = full.detach().chunk(P)[rank].clone()
        dt = DTensor.from_local(
            local, mesh, [Replicate(), Shard(0)], run_check=False, shape=full.shape, stride=full.stride()
        )
        setattr(experts, name, torch.nn.Parameter(dt, requires_grad=full.requires_grad))
    experts.shard = ExpertShard(group, rank, sizes)
