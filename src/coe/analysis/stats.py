"""Routing statistics as pure functions of counts, logits and chosen experts.

Shapes: T tokens, N routed experts, K experts chosen per token, C iterations, G token groups.

Sets of chosen experts are unordered: ``(T, K)`` index tensors say which experts a token chose, not in which
order. "Independent" below always means: the two choices of a token are drawn independently, each from its
own observed (empirical) distribution over the T tokens.
"""

from __future__ import annotations

import math

import torch

from coe.nn.losses import expert_counts

# Pairs of tokens compared at once by expected_reselection_rate: bounds its memory to ~64 MiB of float32.
_PAIR_CHUNK = 1 << 24


def load_imbalance(counts: torch.Tensor) -> torch.Tensor:
    """max / mean tokens per expert over the last axis (1 = perfectly balanced). counts: (..., N)."""
    return counts.amax(-1) / counts.mean(-1).clamp_min(1e-12)


def load_cv(counts: torch.Tensor) -> torch.Tensor:
    """Coefficient of variation of the tokens per expert (std / mean) over the last axis."""
    return counts.std(-1, unbiased=False) / counts.mean(-1).clamp_min(1e-12)


def load_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy of the load distribution over experts, divided by log N (1 = uniform)."""
    return count_entropy(counts) / math.log(counts.shape[-1])


def unused_experts(counts: torch.Tensor) -> list[int]:
    """Indices of the experts no token chose. counts: (N,)."""
    return (counts == 0).nonzero().flatten().tolist()


def token_entropy(scores: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each token's router scores, normalised to sum 1 first: (T, N) -> (T,).

    Softmax scores already sum to 1; sigmoid scores are normalised, as in :func:`score_entropy`.
    """
    return count_entropy(scores)


def score_entropy(logits: torch.Tensor, scoring_func: str = "softmax") -> torch.Tensor:
    """Mean over tokens of the entropy (nats) of each token's routing distribution. logits: (T, N).

    For sigmoid routers the scores are normalised to sum 1 per token first.
    """
    logits = logits.float()
    if scoring_func == "softmax":
        logp = logits.log_softmax(-1)
        return -(logp.exp() * logp).sum(-1).mean()
    return token_entropy(logits.sigmoid()).mean()


def multi_hot(topk_idx: torch.Tensor, num_experts: int) -> torch.Tensor:
    """(T, K) chosen experts -> (T, N) float32 with 1 where a token chose an expert."""
    out = torch.zeros(topk_idx.shape[0], num_experts, device=topk_idx.device)
    return out.scatter_(-1, topk_idx, 1.0)


def coselection_matrix(previous: torch.Tensor, current: torch.Tensor, num_experts: int) -> torch.Tensor:
    """``M[i, j]`` = tokens that chose expert i in ``previous`` and expert j in ``current``: (N, N) float32.

    previous, current: (T, K) chosen experts of two iterations. Each token adds K * K entries, so every row
    sums to K times that expert's load in ``previous``. Exact (integer) up to 2^24 tokens.
    """
    return multi_hot(previous, num_experts).T @ multi_hot(current, num_experts)


def reselection_rate(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Fraction of tokens that choose in ``current`` at least one expert they chose in ``previous``.

    previous, current: (T, K) expert indices of two consecutive iterations.
    """
    shared = (previous.unsqueeze(-1) == current.unsqueeze(-2)).any(-1).any(-1)  # (T,)
    return shared.float().mean()


def expected_reselection_rate(
    previous: torch.Tensor, current: torch.Tensor, num_experts: int
) -> torch.Tensor:
    """:func:`reselection_rate` if the two iterations chose independently: the mean over all T^2 pairs
    (a, b) of tokens of whether token a's ``previous`` set meets token b's ``current`` set.

    Exact for the empirical distributions of sets (a token's K choices are distinct, so the per-slot
    "K draws with replacement from the load" approximation underestimates: with a current load concentrated
    on exactly K experts it gives 1 - (1 - 1/K)^K instead of 1 for a token that had one of them).
    Costs O(T^2 N) in chunks of ~2^24 pairs; subsample tokens first if T is large.
    """
    a = multi_hot(previous, num_experts)  # (T, N)
    b = multi_hot(current, num_experts)
    T = a.shape[0]
    rows = max(1, _PAIR_CHUNK // max(1, b.shape[0]))
    misses = torch.zeros((), dtype=torch.long, device=a.device)  # integer: exact beyond 2^24 pairs
    for start in range(0, T, rows):
        misses += ((a[start : start + rows] @ b.T) == 0).sum()  # pairs with no common expert
    return 1 - misses / (T * b.shape[0])


def expert_reselection_rate(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """How often an expert chosen in ``previous`` is chosen again in ``current``: the mean over tokens of
    ``|S_prev & S_cur| / K``. previous, current: (T, K)."""
    shared = (previous.unsqueeze(-1) == current.unsqueeze(-2)).any(-1)  # (T, K): slot k of previous kept
    return shared.float().mean()


def expected_expert_reselection_rate(
    previous: torch.Tensor, current: torch.Tensor, num_experts: int
) -> torch.Tensor:
    """:func:`expert_reselection_rate` if the two iterations chose independently, exactly:
    ``sum_e p(e) q(e) / K`` with p(e), q(e) the fractions of tokens that chose e in each iteration
    (linearity of expectation over experts: E|S & S'| = sum_e P(e in S) P(e in S'))."""
    T, K = previous.shape
    p = expert_counts(previous, num_experts) / T
    q = expert_counts(current, num_experts) / current.shape[0]
    return (p * q).sum() / K


def per_expert_reselection(coselection: torch.Tensor, previous_load: torch.Tensor) -> torch.Tensor:
    """P(expert i chosen again | chosen in the previous iteration) for each i: ``M[i, i] / load[i]``, NaN
    for unused experts. coselection: (N, N) from :func:`coselection_matrix`; previous_load: (N,)."""
    diagonal = coselection.diagonal()
    return torch.where(previous_load > 0, diagonal / previous_load.clamp_min(1), float("nan"))


def coselection_lift(coselection: torch.Tensor, *, prior: float = 0.0) -> torch.Tensor:
    """Observed / expected co-selection, expected under independence: ``M[i, j] * total / (row_i col_j)``,
    total = sum(M). 1 = independent, > 1 = the pair is chosen together more often than chance. NaN where a
    row or column is empty. coselection: (N, N), or any table of counts (G, N).

    ``prior`` > 0 gives ``(M + prior) / (expected + prior)``, which pulls cells with little evidence (few
    expected tokens) towards 1, so that a heatmap shows structure rather than the noise of empty cells.
    """
    rows, cols = coselection.sum(1, keepdim=True), coselection.sum(0, keepdim=True)
    expected = rows * cols / coselection.sum().clamp_min(1e-12)
    lift = (coselection + prior) / (expected + prior).clamp_min(1e-30)
    return torch.where((rows > 0) & (cols > 0), lift, float("nan"))


def expert_combinations(num_experts: int, k: int, iterations: int = 1) -> int:
    """Possible routing paths of a token through one layer: C(N, K)^C (unordered within an iteration)."""
    return math.comb(num_experts, k) ** iterations


def routing_paths(experts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct routing paths of T tokens through one layer and how many tokens took each.

    experts: (C, T, K) chosen experts per iteration. A path is the sequence over iterations of the *sets* of
    experts (unordered within an iteration, ordered across iterations), as counted by
    :func:`expert_combinations`. Returns (paths (P, C, K) with each set sorted, tokens (P,)), most used first.
    """
    C, T, K = experts.shape
    keys = experts.sort(-1).values.permute(1, 0, 2).reshape(T, C * K)  # (T, C*K)
    paths, counts = keys.unique(dim=0, return_counts=True)
    order = counts.argsort(descending=True, stable=True)
    return paths[order].view(-1, C, K), counts[order]


def distinct_expert_sets(experts: torch.Tensor) -> int:
    """Distinct sets of experts tokens used over all iterations together (order and repeats dropped): what
    an MoE choosing all of them at once would need. experts: (C, T, K)."""
    C, T, K = experts.shape
    used = multi_hot(experts.permute(1, 0, 2).reshape(T, C * K), int(experts.max()) + 1) > 0  # (T, N')
    return used.unique(dim=0).shape[0]


def count_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the distribution given by non-negative counts (...,) over the last axis;
    ``exp`` of it is the effective number of outcomes (paths, experts)."""
    p = counts.float() / counts.float().sum(-1, keepdim=True).clamp_min(1e-12)
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


def group_expert_counts(
    groups: torch.Tensor, experts: torch.Tensor, num_groups: int, num_experts: int
) -> torch.Tensor:
    """``counts[g, e]`` = tokens of group g that chose expert e: groups (T,) in [0, G), experts (T, K) ->
    (G, N) float32. Each token adds K entries to its group's row."""
    flat = (groups.unsqueeze(-1) * num_experts + experts).flatten()  # (T*K,)
    counts = torch.zeros(num_groups * num_experts, device=experts.device)
    counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))
    return counts.view(num_groups, num_experts)


def histogram(values: torch.Tensor, bins: int, low: float, high: float) -> tuple[list[float], list[int]]:
    """``bins`` equal bins over [low, high] (values outside are clamped in): (edges (bins + 1), counts)."""
    counts = torch.histc(values.float().clamp(low, high), bins=bins, min=low, max=high)
    edges = torch.linspace(low, high, bins + 1)
    return edges.tolist(), counts.long().tolist()


def cluster_order(profiles: torch.Tensor) -> torch.Tensor:
    """An order of the rows of ``profiles`` (M, F) that keeps similar rows together: the leaf order of an
    average-linkage agglomerative clustering on cosine distance, so that every cluster of the dendrogram is
    a contiguous run (what a clustered heatmap shows). All-zero rows go last. O(M^3), for M up to a few
    hundred. Returns (M,) int64 indices.
    """
    x = profiles.detach().double().cpu()
    norms = x.norm(dim=1)
    live = (norms > 0).nonzero().flatten().tolist()
    dead = (norms == 0).nonzero().flatten().tolist()
    if len(live) < 2:
        return torch.tensor(live + dead, dtype=torch.long)
    unit = x[live] / norms[live, None]
    distance = (1 - unit @ unit.T).clamp_min(0)  # (M', M') cosine distance between live rows
    distance.fill_diagonal_(float("inf"))
    clusters: list[list[int] | None] = [[i] for i in live]
    sizes = torch.ones(len(live), dtype=torch.float64)
    for _ in range(len(live) - 1):
        flat = int(distance.argmin())
        i, j = divmod(flat, distance.shape[0])
        i, j = min(i, j), max(i, j)
        # Average linkage: the merged cluster's distance to k is the size-weighted mean of its parts'.
        merged = (sizes[i] * distance[i] + sizes[j] * distance[j]) / (sizes[i] + sizes[j])
        distance[i], distance[:, i] = merged, merged
        distance[i, i] = float("inf")
        distance[j], distance[:, j] = float("inf"), float("inf")
        clusters[i] = clusters[i] + clusters[j]
        clusters[j] = None
        sizes[i] += sizes[j]
    (order,) = [c for c in clusters if c is not None]
    return torch.tensor(order + dead, dtype=torch.long)


def partner_order(matrix: torch.Tensor, column_order: torch.Tensor) -> torch.Tensor:
    """An order of the rows of ``matrix`` (M, F) for display beside columns shown in ``column_order`` (F,):
    rows sorted by where their largest entry (dominant partner) sits in that order, stronger first among rows
    with the same partner, all-zero rows last. Rows with distinct partners then form a diagonal. -> (M,)."""
    position = torch.empty_like(column_order)
    position[column_order] = torch.arange(len(column_order))
    strength, partner = matrix.max(1)
    key = torch.where(strength > 0, position[partner], len(column_order))  # all-zero rows after the others
    by_strength = strength.argsort(descending=True, stable=True)
    return by_strength[key[by_strength].argsort(stable=True)]
