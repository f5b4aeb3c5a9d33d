"""Every number of a routing analysis, from a RoutingRecord, as one JSON-ready dict.

Per (MoE layer, iteration): expert load, router entropy, gate weights, token-kind specialisation.
Per (MoE layer, iteration t -> t+1): the co-selection matrix (ordered for display), re-selection against
independence. Per MoE layer: the routing paths used against those possible.

Shapes: L MoE layers, C iterations, T tokens, K experts chosen per token, N routed experts.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from coe.analysis import stats
from coe.analysis.recorder import RoutingRecord
from coe.analysis.tokens import KINDS
from coe.nn.losses import expert_counts

HISTOGRAM_BINS = 80
TOP_PATHS = 10
# expected_reselection_rate is O(T^2): above this many tokens it runs on an evenly spaced subsample.
EXPECTED_PAIR_TOKENS = 4096


def _floats(x: torch.Tensor) -> Any:
    """A tensor as (nested lists of) Python floats, NaN as None (JSON has no NaN)."""

    def clean(v):
        return [clean(u) for u in v] if isinstance(v, list) else (None if math.isnan(v) else v)

    return clean(x.double().tolist())


def _distribution(values: torch.Tensor, low: float, high: float) -> dict[str, Any]:
    edges, counts = stats.histogram(values, HISTOGRAM_BINS, low, high)
    q = torch.quantile(values.float(), torch.tensor([0.05, 0.5, 0.95])).tolist()
    return {
        "mean": values.float().mean().item(),
        "std": values.float().std(unbiased=False).item(),
        "min": values.min().item(),
        "max": values.max().item(),
        "p05": q[0],
        "median": q[1],
        "p95": q[2],
        "histogram": {"edges": edges, "counts": counts},
    }


def summarize(record: RoutingRecord, kinds: torch.Tensor | None = None) -> dict[str, Any]:
    """All statistics of ``record`` (see the module docstring) as a JSON-ready dict.

    Args:
        record: the routing of T tokens
        kinds: (T,) index into :data:`coe.analysis.tokens.KINDS` of each token; None skips specialisation
    """
    _, C, T, K = record.experts.shape
    N = record.num_experts
    notes = []
    if C == 1:
        notes.append(
            "C = 1 (an MoE model): there is no next iteration, so co-selection, re-selection and "
            "multi-iteration paths are not computed; paths are single expert sets."
        )
    if kinds is None:
        notes.append("Token kinds were not given: specialisation is not computed.")
    out: dict[str, Any] = {
        "tokens": T,
        "model": {"layers": record.layers, "iterations": C, "experts": N, "top_k": K},
        "expert_paths": {
            "possible": stats.expert_combinations(N, K, C),
            "possible_moe_matched": math.comb(N, min(N, K * C)),
            "note": "possible: C(N, K)^C paths through a CoE layer (unordered within an iteration, ordered "
            "across iterations); possible_moe_matched: C(N, K*C) expert sets of the MoE that chooses "
            "the same K*C experts at once.",
        },
        "kinds": [str(k) for k in KINDS],
        "notes": notes,
        "layers": [],
    }
    for i, layer in enumerate(record.layers):
        experts = record.experts[i]  # (C, T, K)
        loads = expert_counts(experts, N)  # (C, N)
        entry: dict[str, Any] = {"layer": layer, "iterations": [], "transitions": []}
        for t in range(C):
            entry["iterations"].append(_iteration(record, i, t, loads[t], kinds))
        for t in range(C - 1):
            entry["transitions"].append(_transition(experts[t], experts[t + 1], loads[t], N))
        paths, tokens = stats.routing_paths(experts)
        entropy = stats.count_entropy(tokens).item()
        possible = stats.expert_combinations(N, K, C)
        entry["paths"] = {
            "distinct": len(tokens),
            "effective": math.exp(entropy),
            "entropy": entropy,
            "possible": possible,
            "observable_at_most": min(T, possible),
            "distinct_expert_sets": stats.distinct_expert_sets(experts),
            "top": [
                {"path": p.tolist(), "tokens": int(n)}
                for p, n in zip(paths[:TOP_PATHS], tokens[:TOP_PATHS], strict=True)
            ],
        }
        out["layers"].append(entry)
    return out


def _iteration(
    record: RoutingRecord, i: int, t: int, load: torch.Tensor, kinds: torch.Tensor | None
) -> dict[str, Any]:
    N = record.num_experts
    weights = record.weights[i, t]  # (T, K)
    result: dict[str, Any] = {
        "iteration": t + 1,
        "load": {
            "tokens_per_expert": load.long().tolist(),
            "max_over_mean": stats.load_imbalance(load).item(),
            "cv": stats.load_cv(load).item(),
            "entropy": stats.load_entropy(load).item(),
            "unused_experts": stats.unused_experts(load),
        },
        "router_entropy": {
            **_distribution(record.entropy[i, t], 0.0, math.log(N)),
            "max_possible": math.log(N),
        },
        "router_logsumexp": {
            "mean": record.logsumexp[i, t].mean().item(),
            "std": record.logsumexp[i, t].std(unbiased=False).item(),
        },
        "gate_weights": {
            **_distribution(weights.flatten(), 0.0, max(weights.max().item(), 1e-6)),
            "top1_share": (weights.amax(-1) / weights.sum(-1).clamp_min(1e-30)).mean().item(),
        },
    }
    if kinds is not None:
        counts = stats.group_expert_counts(kinds, record.experts[i, t], len(KINDS), N)  # (kinds, N)
        tokens_per_kind = torch.bincount(kinds, minlength=len(KINDS))
        result["specialisation"] = {
            "tokens_per_kind": dict(zip(map(str, KINDS), tokens_per_kind.tolist(), strict=True)),
            "tokens_per_expert": {str(k): row.long().tolist() for k, row in zip(KINDS, counts, strict=True)},
            "lift": _floats(stats.coselection_lift(counts)),  # kind x expert, observed / independent
        }
    return result


def _transition(
    previous: torch.Tensor, current: torch.Tensor, previous_load: torch.Tensor, N: int
) -> dict[str, Any]:
    T = previous.shape[0]
    coselection = stats.coselection_matrix(previous, current, N)  # (N, N)
    conditional = coselection / previous_load.clamp_min(1)[:, None]  # P(j next | i now), rows sum to K
    sample = torch.linspace(0, T - 1, min(T, EXPECTED_PAIR_TOKENS)).long()
    # Columns clustered by who picks them; rows by their dominant partner: partners form a diagonal.
    col_order = stats.cluster_order(conditional.T)
    return {
        "coselection": coselection.long().tolist(),
        "row_order": stats.partner_order(conditional, col_order).tolist(),
        "col_order": col_order.tolist(),
        "expert_reselection": stats.expert_reselection_rate(previous, current).item(),
        "expert_reselection_expected": stats.expected_expert_reselection_rate(previous, current, N).item(),
        "token_reselection": stats.reselection_rate(previous, current).item(),
        "token_reselection_expected": stats.expected_reselection_rate(
            previous[sample], current[sample], N
        ).item(),
        "per_expert_reselection": _floats(stats.per_expert_reselection(coselection, previous_load)),
    }
