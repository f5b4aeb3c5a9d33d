"""Routing statistics on known, forced routings against hand-computed values."""

import math

import torch

from coe.analysis.stats import (expected_reselection_rate, expert_combinations, load_cv, load_entropy,
                                load_imbalance, reselection_rate, score_entropy)


def test_load_statistics_hand_computed():
    counts = torch.tensor([[4.0, 0.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]])
    assert load_imbalance(counts).tolist() == [2.0, 1.0]
    assert math.isclose(load_cv(counts)[0].item(), math.sqrt(2.0) / 2, rel_tol=1e-6)
    assert load_cv(counts)[1].item() == 0.0
    p = [0.5, 0.25, 0.25]
    assert math.isclose(load_entropy(counts)[0].item(), -sum(x * math.log(x) for x in p) / math.log(4),
                        rel_tol=1e-6)
    assert math.isclose(load_entropy(counts)[1].item(), 1.0, rel_tol=1e-6)


def test_score_entropy():
    uniform = torch.zeros(5, 8)
    assert math.isclose(score_entropy(uniform).item(), math.log(8), rel_tol=1e-6)
    peaked = torch.tensor([[100.0, 0.0, 0.0]])
    assert score_entropy(peaked).item() < 1e-6


def test_reselection_on_forced_routing():
    previous = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7]])
    current = torch.tensor([[1, 9], [8, 9], [5, 4], [0, 2]])
    # token 0 re-picks 1, token 2 re-picks 4 and 5, tokens 1 and 3 pick nothing old
    assert reselection_rate(previous, current).item() == 0.5


def test_expected_reselection_under_independence():
    # current always picks experts {0, 1}: load q = 0.5 on each
    current = torch.tensor([[0, 1]] * 4)
    previous = torch.tensor([[0, 2], [3, 4], [1, 0], [5, 6]])
    # hit masses 0.5, 0, 1, 0 -> 1 - (1 - h)^2 = 0.75, 0, 1, 0 -> mean 0.4375
    assert math.isclose(expected_reselection_rate(previous, current, 8).item(), 0.4375, rel_tol=1e-6)


def test_expert_combinations():
    assert expert_combinations(64, 4, 2) == math.comb(64, 4) ** 2
    assert expert_combinations(63, 8) == math.comb(63, 8)
