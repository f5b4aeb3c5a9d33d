"""Routing statistics as pure functions of counts, logits and chosen experts.

Shapes: T tokens, N routed experts, K experts chosen per token.
"""

from __future__ import annotations

import math

import torch


def load_imbalance(counts: torch.Tensor) -> torch.Tensor:
    """max / mean tokens per expert over the last axis (1 = perfectly balanced). counts: (..., N)."""
    return counts.amax(-1) / counts.mean(-1).clamp_min(1e-12)


def load_cv(counts: torch.Tensor) -> torch.Tensor:
    """Coefficient of variation of the tokens per expert (std / mean) over the last axis."""
    return counts.std(-1, unbiased=False) / counts.mean(-1).clamp_min(1e-12)


def load_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy of the load distribution over experts, divided by log N (1 = uniform)."""
    p = counts / counts.sum(-1, keepdim=True).clamp_min(1e-12)
    return -(p * p.clamp_min(1e-30).log()).sum(-1) / math.log(counts.shape[-1])


def score_entropy(logits: torch.Tensor, scoring_func: str = "softmax") -> torch.Tensor:
    """Mean over tokens of the entropy (nats) of each token's routing distribution. logits: (T, N).

    For sigmoid routers the scores are normalised to sum 1 per token first.
    """
    logits = logits.float()
    if scoring_func == "softmax":
        logp = logits.log_softmax(-1)
    else:
        s = logits.sigmoid()
        logp = (s / s.sum(-1, keepdim=True)).clamp_min(1e-30).log()
    return -(logp.exp() * logp).sum(-1).mean()


def reselection_rate(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Fraction of tokens that choose in ``current`` at least one expert they chose in ``previous``.

    previous, current: (T, K) expert indices of two consecutive iterations.
    """
    shared = (previous.unsqueeze(-1) == current.unsqueeze(-2)).any(-1).any(-1)  # (T,)
    return shared.float().mean()


def expected_reselection_rate(previous: torch.Tensor, current: torch.Tensor, num_experts: int) -> torch.Tensor:
    """The re-selection rate expected if the two iterations chose independently with their observed loads.

    A token's ``current`` choice is modelled as K draws from the load distribution q of ``current``; the chance
    that none of them hits its ``previous`` set S is ``(1 - q(S))^K`` (draws with replacement, a close
    approximation for K << N). Averaged over tokens.
    """
    K = current.shape[-1]
    q = torch.zeros(num_experts, device=current.device).scatter_add_(
        0, current.flatten(), torch.ones(current.numel(), device=current.device)) / current.numel()
    hit = q[previous].sum(-1).clamp(max=1.0)  # (T,) probability mass of the previous set
    return (1 - (1 - hit) ** K).mean()


def expert_combinations(num_experts: int, k: int, iterations: int = 1) -> int:
    """Possible routing paths of a token through one layer: C(N, K)^C (unordered within an iteration)."""
    return math.comb(num_experts, k) ** iterations
