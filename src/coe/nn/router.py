"""The router of one CoE iteration: float32 logits, softmax or sigmoid scores, top-K, gate weights.

Shapes: T tokens, D hidden, N routed experts, K experts chosen per token.

The router is an ``nn.Linear`` (D -> N, no bias) whose forward gives the logits; :meth:`Router.select` turns
them into the choice. Split this way, adapter libraries treat the scoring projection as any other linear
layer: peft's LoRA wraps the router and adds its low-rank update to the logits, and merging folds it into
``weight``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from coe.config import CoEConfig, ScoringFunc, TopkMethod


@dataclass
class Routing:
    """What a router decided for T tokens."""

    logits: torch.Tensor  # (T, N) float32 (float64 for a float64 model)
    scores: torch.Tensor  # (T, N), softmax or sigmoid of the logits
    topk_idx: torch.Tensor  # (T, K) int64, the chosen experts (in no particular order)
    topk_weight: torch.Tensor  # (T, K), their gate weights


class Router(nn.Linear):
    """``logits = x W^T`` in float32 without bias (the forward), then scores and a greedy (or group-limited)
    top-K (:meth:`select`).

    The gate weights are the chosen scores, renormalised to sum 1 when ``norm_topk_prob`` (and K > 1), then
    times ``routed_scaling_factor``. Note: the reference code skips the scaling factor when it renormalises;
    converted reference checkpoints carry ``routed_scaling_factor = 1`` in that case.

    With auxiliary-loss-free balancing (``router_bias_update_rate > 0``) a per-expert bias is added to the
    scores for the choice only; the gate weights stay the unbiased scores (DeepSeek-V3).
    """

    def __init__(self, config: CoEConfig) -> None:
        super().__init__(config.hidden_size, config.n_routed_experts, bias=False)  # weight (N, D)
        self.top_k = config.num_experts_per_tok
        self.scoring_func = config.scoring_func
        self.topk_method = config.topk_method
        self.n_group, self.topk_group = config.n_group, config.topk_group
        self.norm_topk_prob = config.norm_topk_prob and self.top_k > 1
        self.routed_scaling_factor = config.routed_scaling_factor
        self.expert_bias: torch.Tensor | None
        if config.router_bias_update_rate > 0:
            self.register_buffer("expert_bias", torch.zeros(config.n_routed_experts))
        else:
            self.expert_bias = None

    def reset_parameters(self) -> None:
        # The model draws router weights in its _init_weights (config.router_init); nn.Linear's draw here
        # would only move the random stream, and so change every weight drawn after it for the same seed.
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, D) -> logits (T, N) in float32 (float64 for float64 x), also under autocast."""
        dtype = torch.promote_types(x.dtype, torch.float32)
        N = self.out_features
        # A float32 GEMM with N = 63 outputs misses the aligned kernels; a zero row makes it 64 (sliced off).
        weight = F.pad(self.weight.to(dtype), (0, 0, 0, -N % 4))
        with torch.autocast(x.device.type, enabled=False):  # autocast would run this GEMM in bf16
            return F.linear(x.to(dtype), weight)[:, :N]

    def select(self, logits: torch.Tensor) -> Routing:
        """logits: (T, N), this router's forward (plus whatever an adapter adds to it) -> Routing."""
        scores = logits.softmax(dim=-1) if self.scoring_func == ScoringFunc.SOFTMAX else logits.sigmoid()
        choice = scores.detach()
        if self.expert_bias is not None:
            choice = choice + self.expert_bias
        if self.topk_method == TopkMethod.GROUP_LIMITED_GREEDY:
            grouped = choice.unflatten(-1, (self.n_group, -1))  # (T, groups, N / groups)
            top_groups = grouped.amax(dim=-1).topk(self.topk_group, dim=-1, sorted=False).indices
            keep = torch.zeros_like(grouped[..., 0], dtype=torch.bool).scatter_(-1, top_groups, True)
            choice = grouped.masked_fill(~keep[..., None], float("-inf")).flatten(-2)
        topk_idx = choice.topk(self.top_k, dim=-1, sorted=False).indices
        weight = scores.gather(-1, topk_idx)
        if self.norm_topk_prob:
            weight = weight / (weight.sum(dim=-1, keepdim=True) + 1e-20)
        return Routing(logits, scores, topk_idx, weight * self.routed_scaling_factor)
