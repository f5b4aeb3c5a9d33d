"""The analysis summary of a forced routing against hand-computed values."""

import json
import math

import torch

from coe.analysis.recorder import RoutingRecord
from coe.analysis.summary import summarize
from coe.analysis.tokens import KINDS, TokenKind

# One MoE layer (decoder layer 3), C = 2, T = 4 tokens, K = 2 of N = 6 experts.
FIRST = [[0, 1], [2, 3], [4, 5], [0, 2]]
SECOND = [[1, 5], [4, 0], [5, 4], [3, 1]]
WEIGHTS = [[0.75, 0.25], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4]]


def forced_record(iterations=(FIRST, SECOND)) -> RoutingRecord:
    C, T = len(iterations), 4
    return RoutingRecord(
        token_ids=torch.arange(T),
        positions=torch.arange(T),
        batch_index=torch.zeros(T, dtype=torch.long),
        forward_index=torch.zeros(T, dtype=torch.long),
        experts=torch.tensor([list(iterations)]),
        weights=torch.tensor([[WEIGHTS] * C]),
        entropy=torch.full((1, C, T), 1.0),
        logsumexp=torch.zeros(1, C, T),
        logits=None,
        layers=[3],
        num_experts=6,
    )


def test_summary_of_a_forced_routing():
    kinds = torch.tensor(
        [KINDS.index(k) for k in (TokenKind.DIGITS, TokenKind.WORD, TokenKind.DIGITS, TokenKind.OPERATOR)]
    )
    s = summarize(forced_record(), kinds)
    json.dumps(s, allow_nan=False)  # JSON-ready: no tensors, no NaN
    assert s["tokens"] == 4 and s["notes"] == []
    assert s["model"] == {"layers": [3], "iterations": 2, "experts": 6, "top_k": 2}
    assert s["expert_paths"]["possible"] == math.comb(6, 2) ** 2
    assert s["expert_paths"]["possible_moe_matched"] == math.comb(6, 4)
    (layer,) = s["layers"]
    first, second = layer["iterations"]

    load = first["load"]
    assert load["tokens_per_expert"] == [2, 1, 2, 1, 1, 1] and load["unused_experts"] == []
    assert math.isclose(load["max_over_mean"], 2 / (8 / 6), rel_tol=1e-6)
    mean = 8 / 6
    std = math.sqrt(sum((x - mean) ** 2 for x in [2, 1, 2, 1, 1, 1]) / 6)
    assert math.isclose(load["cv"], std / mean, rel_tol=1e-5)
    assert second["load"]["tokens_per_expert"] == [1, 2, 0, 1, 2, 2]
    assert second["load"]["unused_experts"] == [2]

    gates = first["gate_weights"]
    assert math.isclose(gates["mean"], 0.5, rel_tol=1e-6)  # each token's two weights sum to 1
    assert math.isclose(gates["top1_share"], (0.75 + 0.5 + 0.9 + 0.6) / 4, rel_tol=1e-6)
    assert sum(gates["histogram"]["counts"]) == 8
    assert first["router_entropy"]["mean"] == 1.0

    spec = first["specialisation"]
    assert spec["tokens_per_kind"]["digits"] == 2 and spec["tokens_per_kind"]["operator"] == 1
    # digits: tokens 0 ({0, 1}) and 2 ({4, 5}); other word: token 1 ({2, 3}); operator: token 3 ({0, 2})
    assert spec["tokens_per_expert"]["digits"] == [1, 1, 0, 0, 1, 1]
    assert spec["tokens_per_expert"]["other word"] == [0, 0, 1, 1, 0, 0]
    assert spec["tokens_per_expert"]["operator"] == [1, 0, 1, 0, 0, 0]
    assert spec["tokens_per_expert"]["whitespace"] == [0] * 6
    # lift of (digits, expert 4): observed 1; digits row 4, expert 4 column 1, total 8 -> expected 0.5
    assert spec["lift"][KINDS.index(TokenKind.DIGITS)][4] == 2.0

    (transition,) = layer["transitions"]
    m = torch.tensor(transition["coselection"])
    assert m[0, 1] == 2 and m[0, 3] == 1 and m[4, 5] == 1 and m.sum() == 16
    assert sorted(transition["row_order"]) == sorted(transition["col_order"]) == list(range(6))
    # token 0 keeps 1, token 2 keeps 4 and 5: 3 of 8 slots, 2 of 4 tokens
    assert transition["expert_reselection"] == 3 / 8 and transition["token_reselection"] == 0.5
    p, q = [2, 1, 2, 1, 1, 1], [1, 2, 0, 1, 2, 2]  # tokens choosing each expert in iterations 1 and 2
    assert math.isclose(
        transition["expert_reselection_expected"],
        sum(a * b for a, b in zip(p, q, strict=True)) / 16 / 2,
        rel_tol=1e-6,
    )
    assert transition["per_expert_reselection"] == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]

    paths = layer["paths"]
    # union over iterations: {0, 1, 5}, {0, 2, 3, 4}, {4, 5}, {0, 1, 2, 3}: all distinct
    assert paths["distinct"] == 4 and paths["distinct_expert_sets"] == 4
    assert math.isclose(paths["effective"], 4.0, rel_tol=1e-5)  # four paths, one token each
    assert paths["observable_at_most"] == 4


def test_moe_summary_skips_iteration_to_iteration_parts():
    s = summarize(forced_record((FIRST,)))
    assert s["model"]["iterations"] == 1
    assert s["layers"][0]["transitions"] == []
    assert any("C = 1" in note for note in s["notes"]) and any("specialisation" in n for n in s["notes"])
    assert "specialisation" not in s["layers"][0]["iterations"][0]
    assert s["layers"][0]["paths"]["distinct"] == 4 and s["expert_paths"]["possible"] == math.comb(6, 2)
