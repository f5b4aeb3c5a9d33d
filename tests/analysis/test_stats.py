"""Routing statistics on known, forced routings against hand-computed values and brute-force references."""

import itertools
import math

import torch

from coe.analysis.stats import (
    cluster_order,
    coselection_lift,
    coselection_matrix,
    count_entropy,
    distinct_expert_sets,
    expected_expert_reselection_rate,
    expected_reselection_rate,
    expert_combinations,
    expert_reselection_rate,
    group_expert_counts,
    histogram,
    load_cv,
    load_entropy,
    load_imbalance,
    partner_order,
    per_expert_reselection,
    reselection_rate,
    routing_paths,
    score_entropy,
    token_entropy,
    unused_experts,
)


def test_load_statistics_hand_computed():
    counts = torch.tensor([[4.0, 0.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]])
    assert load_imbalance(counts).tolist() == [2.0, 1.0]
    assert math.isclose(load_cv(counts)[0].item(), math.sqrt(2.0) / 2, rel_tol=1e-6)
    assert load_cv(counts)[1].item() == 0.0
    p = [0.5, 0.25, 0.25]
    assert math.isclose(
        load_entropy(counts)[0].item(), -sum(x * math.log(x) for x in p) / math.log(4), rel_tol=1e-6
    )
    assert math.isclose(load_entropy(counts)[1].item(), 1.0, rel_tol=1e-6)
    assert unused_experts(counts[0]) == [1]
    assert unused_experts(counts[1]) == []


def test_score_entropy():
    uniform = torch.zeros(5, 8)
    assert math.isclose(score_entropy(uniform).item(), math.log(8), rel_tol=1e-6)
    peaked = torch.tensor([[100.0, 0.0, 0.0]])
    assert score_entropy(peaked).item() < 1e-6


def test_token_entropy_normalises_scores():
    scores = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2], [1.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(token_entropy(scores), torch.tensor([math.log(2), math.log(4), 0.0]), atol=1e-6)
    logits = torch.randn(6, 5)
    assert math.isclose(
        token_entropy(logits.softmax(-1)).mean().item(), score_entropy(logits).item(), rel_tol=1e-5
    )
    assert math.isclose(
        token_entropy(logits.sigmoid()).mean().item(), score_entropy(logits, "sigmoid").item(), rel_tol=1e-5
    )


# Four tokens, K = 2, N = 6: previous and current iteration of one layer.
PREVIOUS = torch.tensor([[0, 1], [2, 3], [4, 5], [0, 2]])
CURRENT = torch.tensor([[1, 5], [4, 0], [5, 4], [3, 1]])


def test_coselection_matrix_hand_computed():
    m = coselection_matrix(PREVIOUS, CURRENT, 6)
    expected = torch.zeros(6, 6)
    for prev, cur in zip(PREVIOUS.tolist(), CURRENT.tolist(), strict=True):
        for i in prev:
            for j in cur:
                expected[i, j] += 1
    assert torch.equal(m, expected)
    # by hand: 0 -> 1 by tokens 0 and 3; 0 -> 3 by token 3; 4 -> 5 and 5 -> 4 by token 2 only
    assert m[0, 1] == 2 and m[0, 3] == 1 and m[4, 5] == 1 and m[5, 4] == 1 and m[1, 4] == 0
    assert m.sum() == 4 * 2 * 2  # T * K * K


def test_reselection_on_forced_routing():
    previous = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7]])
    current = torch.tensor([[1, 9], [8, 9], [5, 4], [0, 2]])
    # token 0 re-picks 1, token 2 re-picks 4 and 5, tokens 1 and 3 pick nothing old
    assert reselection_rate(previous, current).item() == 0.5
    # slots kept: token 0 keeps 1 of 2, token 2 keeps 2 of 2 -> 3 of 8
    assert expert_reselection_rate(previous, current).item() == 3 / 8


def test_expected_reselection_under_independence():
    # current always picks experts {0, 1}: a token whose previous set holds 0 or 1 always re-selects
    current = torch.tensor([[0, 1]] * 4)
    previous = torch.tensor([[0, 2], [3, 4], [1, 0], [5, 6]])
    # pairs (a, b) meet for a = 0 and a = 2 whatever b is: 2 of 4 -> 0.5 (the old "draws with replacement"
    # model gave 0.4375 here)
    assert math.isclose(expected_reselection_rate(previous, current, 8).item(), 0.5, rel_tol=1e-6)
    # per slot: p = fraction of tokens choosing e before, q after; q(0) = q(1) = 1, p(0) = 0.5, p(1) = 0.25
    assert math.isclose(
        expected_expert_reselection_rate(previous, current, 8).item(), (0.5 + 0.25) / 2, rel_tol=1e-6
    )


def test_expected_rates_equal_the_mean_over_all_pairs_of_tokens():
    g = torch.Generator().manual_seed(0)
    T, N, K = 37, 9, 3
    previous = torch.stack([torch.randperm(N, generator=g)[:K] for _ in range(T)])
    current = torch.stack([torch.randperm(N, generator=g)[:K] for _ in range(T)])
    any_hit, shared = 0.0, 0.0
    for a, b in itertools.product(range(T), range(T)):  # token a's previous set with token b's current set
        common = len(set(previous[a].tolist()) & set(current[b].tolist()))
        any_hit += common > 0
        shared += common / K
    assert math.isclose(expected_reselection_rate(previous, current, N).item(), any_hit / T**2, rel_tol=1e-6)
    assert math.isclose(
        expected_expert_reselection_rate(previous, current, N).item(), shared / T**2, rel_tol=1e-5
    )


def test_per_expert_reselection_and_lift():
    m = coselection_matrix(PREVIOUS, CURRENT, 6)
    load = torch.bincount(PREVIOUS.flatten(), minlength=6).float()  # [2, 1, 2, 1, 1, 1]
    again = per_expert_reselection(m, load)
    # expert 0: tokens 0 and 3 had it, neither keeps it -> 0 of 2; expert 1: token 0 keeps it -> 1 of 1;
    # experts 4 and 5: token 2 keeps both; experts 2 and 3 are dropped
    assert again.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    lift = coselection_lift(m)
    # cell (4, 5): observed 1; row 4 sums 2 (token 2), column 5 sums 4 (tokens 0 and 2), total 16
    # -> expected 2 * 4 / 16 = 0.5 -> lift 2; with a prior of 1: (1 + 1) / (0.5 + 1) = 4 / 3
    assert lift[4, 5].item() == 2.0
    assert math.isclose(coselection_lift(m, prior=1.0)[4, 5].item(), 4 / 3, rel_tol=1e-6)
    empty = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert torch.isnan(coselection_lift(empty)[1]).all() and torch.isnan(coselection_lift(empty)[:, 1]).all()


def test_routing_paths_and_expert_sets():
    # C = 2, T = 4, K = 2: tokens 0 and 1 take the same path (sets equal up to order), token 2 swaps the
    # iterations of token 0 (a different path, the same expert set), token 3 repeats an expert
    experts = torch.tensor(
        [
            [[0, 1], [1, 0], [2, 3], [0, 1]],
            [[2, 3], [3, 2], [0, 1], [1, 4]],
        ]
    )
    paths, tokens = routing_paths(experts)
    assert tokens.tolist() == [2, 1, 1]
    assert paths[0].tolist() == [[0, 1], [2, 3]]
    assert {tuple(map(tuple, p.tolist())) for p in paths[1:]} == {((2, 3), (0, 1)), ((0, 1), (1, 4))}
    assert distinct_expert_sets(experts) == 2  # {0, 1, 2, 3} and {0, 1, 4}
    assert math.isclose(
        count_entropy(tokens).item(), -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), rel_tol=1e-6
    )
    assert expert_combinations(64, 4, 2) == math.comb(64, 4) ** 2
    assert expert_combinations(63, 8) == math.comb(63, 8)


def test_group_expert_counts():
    groups = torch.tensor([0, 1, 1, 2])
    experts = torch.tensor([[0, 1], [1, 2], [1, 3], [3, 0]])
    counts = group_expert_counts(groups, experts, 3, 4)
    assert counts.tolist() == [[1, 1, 0, 0], [0, 2, 1, 1], [1, 0, 0, 1]]


def test_histogram_clamps_into_the_range():
    edges, counts = histogram(torch.tensor([-1.0, 0.1, 0.6, 0.9, 2.0]), 2, 0.0, 1.0)
    assert edges == [0.0, 0.5, 1.0] and counts == [2, 3]


def test_cluster_order_keeps_blocks_together():
    g = torch.Generator().manual_seed(1)
    blocks = torch.block_diag(*[torch.rand(n, n, generator=g) + 1 for n in (5, 4, 6)])  # (15, 15)
    shuffle = torch.randperm(15, generator=g)
    rows = blocks[shuffle]
    order = cluster_order(rows)
    assert sorted(order.tolist()) == list(range(15))
    block_of = torch.tensor([0] * 5 + [1] * 4 + [2] * 6)[shuffle][order]
    # each block is one contiguous run: the block label changes exactly twice along the order
    assert (block_of[1:] != block_of[:-1]).sum() == 2
    with_zero = torch.cat([torch.zeros(1, 15), rows])
    assert cluster_order(with_zero)[-1] == 0  # an all-zero row goes last


def test_partner_order_makes_a_diagonal():
    # row i's dominant partner is column (2 * i) % 5; rows sorted by that column's position in col order
    matrix = torch.full((5, 5), 0.1)
    for i in range(5):
        matrix[i, (2 * i) % 5] = 1.0 + i / 10
    columns = torch.tensor([4, 3, 2, 1, 0])
    order = partner_order(matrix, columns)
    partners_in_display = [columns.tolist().index((2 * i) % 5) for i in order.tolist()]
    assert partners_in_display == [0, 1, 2, 3, 4]
    matrix[2] = 0
    assert partner_order(matrix, columns)[-1] == 2  # an all-zero row goes last
