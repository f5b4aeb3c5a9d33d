"""Router losses as pure functions: load balancing (per sequence or per batch) and the router z-loss.

Shapes: B sequences, S positions, T = B * S tokens, N routed experts, K experts chosen per token.
"""

from __future__ import annotations

import torch


def expert_counts(topk_idx: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Tokens routed to each expert along the last-but-one axis: topk_idx (..., T, K) -> (..., N) float32."""
    flat = topk_idx.flatten(-2)
    counts = torch.zeros(*flat.shape[:-1], num_experts, device=flat.device, dtype=torch.float32)
    return counts.scatter_add_(-1, flat, torch.ones_like(flat, dtype=torch.float32))


def sequence_balance_loss(*, scores: torch.Tensor, topk_idx: torch.Tensor, batch_size: int) -> torch.Tensor:
    """DeepSeek-V2's sequence-wise balance loss (the reference's ``seq_aux``), unweighted.

    For each sequence b: ``f_i = N / (K * S) * #(tokens of b choosing i)``, ``P_i = mean_s scores_i``;
    returns ``mean_b sum_i f_i * P_i`` (1.0 when perfectly balanced). scores: (T, N); topk_idx: (T, K).
    """
    T, N = scores.shape
    K = topk_idx.shape[-1]
    S = T // batch_size
    f = expert_counts(topk_idx.view(batch_size, S, K), N) * (N / (K * S))  # (B, N)
    P = scores.view(batch_size, S, N).mean(dim=1)  # (B, N)
    return (f * P).sum(dim=1).mean()


def batch_balance_loss(
    *, scores: torch.Tensor, topk_idx: torch.Tensor, counts: torch.Tensor | None = None
) -> torch.Tensor:
    """The Switch Transformer balance loss over all tokens, ``N * sum_i f_i * P_i``, unweighted.

    ``f_i`` is the fraction of the T * K choices that went to expert i, ``P_i`` the mean score of expert i.
    scores: (T, N); topk_idx: (T, K).

    counts: (N,) choices per expert over a batch spread over several ranks (summed over them), or None for
    this rank's own. The loss is linear in ``P`` once ``f`` is fixed, so with the batch's ``f`` the mean of
    the ranks' losses (what data-parallel gradients and logs take) equals the loss of the whole batch.
    """
    N = scores.shape[-1]
    f = expert_counts(topk_idx, N) / topk_idx.numel() if counts is None else counts / counts.sum()
    return N * (f * scores.mean(dim=0)).sum()


def router_z_loss(*, logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE's router z-loss, ``mean_t logsumexp(logits_t)^2``. logits: (T, N) float32."""
    return torch.logsumexp(logits, dim=-1).pow(2).mean()
