"""Router losses as pure functions: load balancing (per sequence or per batch) and the router z-loss.

Shapes: B sequences, S positions, T = B * S tokens, N routed experts, K experts chosen per token.

``token_mask`` (T,), where a function takes one, marks the tokens that count: padding takes no part in the
routing losses and counts unless asked to. None counts every token with the arithmetic of an unmasked batch.
"""

from __future__ import annotations

import torch


def expert_counts(
    topk_idx: torch.Tensor, num_experts: int, token_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Tokens routed to each expert along the last-but-one axis: topk_idx (..., T, K) -> (..., N) float32.

    token_mask: (..., T), the tokens to count (None: all)."""
    flat = topk_idx.flatten(-2)
    if token_mask is None:
        ones = torch.ones_like(flat, dtype=torch.float32)
    else:
        ones = token_mask.to(torch.float32).unsqueeze(-1).expand(topk_idx.shape).flatten(-2)
    counts = torch.zeros(*flat.shape[:-1], num_experts, device=flat.device, dtype=torch.float32)
    return counts.scatter_add_(-1, flat, ones)


def sequence_balance_loss(
    *,
    scores: torch.Tensor,
    topk_idx: torch.Tensor,
    batch_size: int,
    token_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """DeepSeek-V2's sequence-wise balance loss (the reference's ``seq_aux``), unweighted.

    For each sequence b: ``f_i = N / (K * S) * #(tokens of b choosing i)``, ``P_i = mean_s scores_i``;
    returns ``mean_b sum_i f_i * P_i`` (1.0 when perfectly balanced). scores: (T, N); topk_idx: (T, K).

    token_mask: (T,) the tokens that count; S is then each sequence's number of them, and the mean runs over
    the sequences that have any.
    """
    T, N = scores.shape
    K = topk_idx.shape[-1]
    S = T // batch_size
    if token_mask is None:
        f = expert_counts(topk_idx.view(batch_size, S, K), N) * (N / (K * S))  # (B, N)
        P = scores.view(batch_size, S, N).mean(dim=1)  # (B, N)
        return (f * P).sum(dim=1).mean()
    mask = token_mask.view(batch_size, S).to(scores.dtype)  # (B, S)
    tokens = mask.sum(dim=1, keepdim=True)  # (B, 1)
    f = expert_counts(topk_idx.view(batch_size, S, K), N, mask) * N / (K * tokens.clamp_min(1))  # (B, N)
    P = (scores.view(batch_size, S, N) * mask.unsqueeze(-1)).sum(dim=1) / tokens.clamp_min(1)  # (B, N)
    return (f * P).sum() / (tokens > 0).sum().clamp_min(1)


def batch_balance_loss(
    *,
    scores: torch.Tensor,
    topk_idx: torch.Tensor,
    counts: torch.Tensor | None = None,
    token_mask: torch.Tensor | None = None,
    ranks: int = 1,
) -> torch.Tensor:
    """The Switch Transformer balance loss over all tokens, ``N * sum_i f_i * P_i``, unweighted.

    ``f_i`` is the fraction of the T * K choices that went to expert i, ``P_i`` the mean score of expert i.
    scores: (T, N); topk_idx: (T, K).

    counts: (N,) choices per expert over a batch spread over ``ranks`` ranks (summed over them), or None for
    this rank's own. The loss is linear in ``P`` once ``f`` is fixed, so with the batch's ``f`` the mean of
    the ranks' losses (what data-parallel gradients and logs take) equals the loss of the whole batch.

    token_mask: (T,) the tokens that count (None: all). With ``counts``, ``P`` is this rank's score sum over
    the batch's mean tokens per rank (``counts.sum() / (K * ranks)``), so that the mean of the ranks' losses
    is still the whole batch's when ranks hold different numbers of tokens.
    """
    N = scores.shape[-1]
    if token_mask is None:
        f = expert_counts(topk_idx, N) / topk_idx.numel() if counts is None else counts / counts.sum()
        return N * (f * scores.mean(dim=0)).sum()
    if counts is None:
        counts, ranks = expert_counts(topk_idx, N, token_mask), 1
    choices = counts.sum()
    score_sum = (scores * token_mask.to(scores.dtype).unsqueeze(-1)).sum(dim=0)  # (N,)
    P = score_sum * (topk_idx.shape[-1] * ranks) / choices.clamp_min(1)
    return N * (counts / choices.clamp_min(1) * P).sum()


def router_z_loss(*, logits: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ST-MoE's router z-loss, ``mean_t logsumexp(logits_t)^2``. logits: (T, N) float32; token_mask: (T,) the
    tokens the mean runs over (None: all)."""
    z = torch.logsumexp(logits, dim=-1).pow(2)
    if token_mask is None:
        return z.mean()
    mask = token_mask.to(z.dtype)
    return (z * mask).sum() / mask.sum().clamp_min(1)
