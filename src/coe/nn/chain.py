"""The Chain-of-Experts block: C iterations of routed + shared experts, each with its own router.

    x_0 = x;   x_t = sum_k g_tk * E_k(x_{t-1}) + S(x_{t-1}) + x_{t-1};   y = x_C

(the inner residual ``+ x_{t-1}`` when ``inner_residual``). MoE is C = 1.

Shapes: B sequences, S positions, T = B * S tokens, D hidden, N routed experts, K choices, C iterations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from coe.config import BalanceLoss, CoEConfig
from coe.nn.experts import Experts
from coe.nn.losses import batch_balance_loss, expert_counts, router_z_loss, sequence_balance_loss
from coe.nn.mlp import SwiGLU
from coe.nn.router import Router, Routing


@dataclass
class ChainOutput:
    hidden: torch.Tensor  # (B, S, D)
    routings: list[Routing]  # one per iteration
    balance_losses: list[torch.Tensor] = field(default_factory=list)  # per iteration, unweighted, training
    z_losses: list[torch.Tensor] = field(default_factory=list)  # likewise (training only)
    token_mask: torch.Tensor | None = None  # (T,) the tokens the losses and counts take; None: all


class ChainOfExperts(nn.Module):
    """The feed-forward block of a CoE layer (of an MoE layer when ``inner_iter == 1``).

    ``tokens_per_expert`` (C, N), a non-persistent buffer, counts the tokens each iteration sent to each
    expert in the training forwards since the last :meth:`take_counts` (the decoder stack calls :meth:`record`
    in training mode only); the counts feed load metrics and auxiliary-loss-free balancing.

    ``batch_group``: with data parallelism, the ranks whose sequences form the batch of the batch-wise
    balance loss; its expert counts are summed over them (set by ``coe.train.distributed``; None alone).
    """

    def __init__(self, config: CoEConfig) -> None:
        super().__init__()
        self.num_iterations = config.inner_iter
        self.inner_residual = config.inner_residual
        self.num_experts = config.n_routed_experts
        self.balance_loss = config.balance_loss
        self.compute_z_loss = config.router_z_loss_coef > 0
        self.routers = nn.ModuleList(Router(config) for _ in range(config.num_routers))
        self.experts = Experts(
            config.n_routed_experts, config.hidden_size, config.moe_intermediate_size, config.expert_backend
        )
        shared_size = config.moe_intermediate_size * config.n_shared_experts
        self.shared_experts = SwiGLU(config.hidden_size, shared_size) if config.n_shared_experts else None
        self.register_buffer(
            "tokens_per_expert", torch.zeros(config.inner_iter, config.n_routed_experts), persistent=False
        )
        self.batch_group: dist.ProcessGroup | None = None

    def route(self, iteration: int, x_TD: torch.Tensor) -> Routing:
        """The routing of ``iteration`` for x_TD (T, D): its router's logits, then its choice."""
        router = self.routers[iteration if len(self.routers) > 1 else 0]
        logits = router(x_TD)  # (T, N) float32; through the adapter when one wraps the router
        return wrapped_module(router).select(logits)

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> ChainOutput:
        """x: (B, S, D), already normalised -> ChainOutput with hidden (B, S, D).

        token_mask: (B, S) the tokens that take part in the balance and z losses and in the routing counts
        (padding is left out this way); None: all. Every token is routed and computed either way."""
        B, S, D = x.shape
        x_TD = x.reshape(B * S, D)
        mask_T = None if token_mask is None else token_mask.reshape(B * S)
        out = ChainOutput(hidden=x, routings=[], token_mask=mask_T)
        cast: dict = {}  # the experts' weights cast once, used by every iteration
        for t in range(self.num_iterations):
            routing = self.route(t, x_TD)
            y_TD = self.experts(x_TD, routing.topk_idx, routing.topk_weight, cast)
            if self.shared_experts is not None:
                y_TD = y_TD + self.shared_experts(x_TD)
            x_TD = y_TD + x_TD if self.inner_residual else y_TD
            out.routings.append(routing)
            if self.training:
                self._add_losses(out, routing, B)
        out.hidden = x_TD.view(B, S, D)
        return out

    def _add_losses(self, out: ChainOutput, routing: Routing, batch_size: int) -> None:
        mask = out.token_mask
        if self.balance_loss == BalanceLoss.SEQ:
            out.balance_losses.append(
                sequence_balance_loss(
                    scores=routing.scores, topk_idx=routing.topk_idx, batch_size=batch_size, token_mask=mask
                )
            )
        elif self.balance_loss == BalanceLoss.BATCH:
            counts, ranks = None, 1
            if self.batch_group is not None:
                counts, ranks = _batch_counts(routing.topk_idx, self.num_experts, self.batch_group, mask)
            out.balance_losses.append(
                batch_balance_loss(
                    scores=routing.scores,
                    topk_idx=routing.topk_idx,
                    counts=counts,
                    token_mask=mask,
                    ranks=ranks,
                )
            )
        if self.compute_z_loss:
            out.z_losses.append(router_z_loss(logits=routing.logits, token_mask=mask))

    @torch.no_grad()
    def record(self, out: ChainOutput) -> None:
        """Add the tokens-per-expert counts of one forward to ``tokens_per_expert`` (on the device)."""
        for t, routing in enumerate(out.routings):
            self.tokens_per_expert[t] += expert_counts(routing.topk_idx, self.num_experts, out.token_mask)

    @torch.no_grad()
    def take_counts(self) -> torch.Tensor:
        """The counts since the last take, (C, N) float32 (a copy), and zero ``tokens_per_expert``."""
        counts = self.tokens_per_expert.clone()
        self.tokens_per_expert.zero_()
        return counts

    @torch.no_grad()
    def update_expert_bias(self, counts: torch.Tensor, rate: float) -> None:
        """Auxiliary-loss-free balancing step: move each router's bias by ``rate * sign(mean load - load)``.

        counts: (C, N) tokens per expert of each iteration (over every rank's tokens with data parallelism). A
        router shared by all iterations sees the load of all of them.
        """
        loads = counts if len(self.routers) > 1 else counts.sum(0, keepdim=True)
        for router, load in zip(map(wrapped_module, self.routers), loads, strict=True):
            if router.expert_bias is not None:
                router.expert_bias += rate * torch.sign(load.mean() - load)


def wrapped_module(module: nn.Module) -> nn.Module:
    """The module itself, or the one an adapter layer wraps. peft's LoRA replaces a targeted module by a layer
    that keeps it as ``base_layer`` (nested when several adapters target it): calls go through the wrapper,
    which adds the adapter's update, while the state (a router's expert bias) stays on the wrapped module."""
    while isinstance(getattr(module, "base_layer", None), nn.Module):
        module = module.base_layer
    return module


@torch.compiler.disable  # a collective: kept eager under torch.compile
def _batch_counts(
    topk_idx: torch.Tensor, num_experts: int, group: dist.ProcessGroup, token_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """Choices per expert (N,) of the tokens of ``token_mask`` (None: all) summed over the ranks of ``group``
    (no gradient flows through counts), and the number of those ranks."""
    counts = expert_counts(topk_idx, num_experts, token_mask)
    dist.all_reduce(counts, group=group)
    return counts, dist.get_world_size(group)
