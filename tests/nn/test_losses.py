"""Balance losses and the z-loss: hand-computed values, balance = 1, growth with imbalance, gradients."""

import math

import torch

from coe.nn.losses import batch_balance_loss, expert_counts, router_z_loss, sequence_balance_loss


def test_sequence_balance_loss_hand_computed():
    # B=2 sequences of S=2 tokens, N=3 experts, K=1.
    scores = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])
    idx = torch.tensor([[0], [1], [2], [2]])
    # seq 0: counts (1,1,0) * 3/2 = (1.5,1.5,0); P = (0.3,0.45,0.25) -> 0.45 + 0.675 = 1.125
    # seq 1: counts (0,0,2) * 3/2 = (0,0,3);     P = (0.3,0.3,0.4)   -> 1.2
    loss = sequence_balance_loss(scores=scores, topk_idx=idx, batch_size=2)
    assert math.isclose(loss.item(), (1.125 + 1.2) / 2, rel_tol=1e-6)


def test_batch_balance_loss_hand_computed():
    scores = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])
    idx = torch.tensor([[0], [1], [2], [2]])
    f = torch.tensor([0.25, 0.25, 0.5])
    P = scores.mean(0)
    assert math.isclose(
        batch_balance_loss(scores=scores, topk_idx=idx).item(), 3 * (f * P).sum().item(), rel_tol=1e-6
    )


def test_balance_losses_are_one_when_uniform_and_grow_with_imbalance():
    B, S, N, K = 2, 16, 8, 2
    uniform = torch.full((B * S, N), 1.0 / N)
    idx = torch.arange(B * S * K).view(B * S, K) % N  # every expert equally often in each sequence
    for fn in (
        lambda s, i: sequence_balance_loss(scores=s, topk_idx=i, batch_size=B),
        lambda s, i: batch_balance_loss(scores=s, topk_idx=i),
    ):
        assert math.isclose(fn(uniform, idx).item(), 1.0, rel_tol=1e-6)
        previous = fn(uniform, idx).item()
        for skew in (1.0, 2.0, 4.0):  # more and more mass and choices on experts 0 and 1
            logits = torch.zeros(B * S, N)
            logits[:, :2] = skew
            scores = logits.softmax(-1)
            skewed_idx = torch.where(torch.rand(B * S, K) < skew / 5, torch.tensor([[0, 1]]), idx)
            value = fn(scores, skewed_idx).item()
            assert value > previous
            previous = value


def test_balance_loss_gradient_flows_to_scores():
    logits = torch.randn(12, 5, requires_grad=True)
    scores = logits.softmax(-1)
    idx = scores.topk(2).indices
    sequence_balance_loss(scores=scores, topk_idx=idx, batch_size=3).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_z_loss_and_counts():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    expected = (math.log(2.0) ** 2 + math.log(4.0) ** 2) / 2
    assert math.isclose(router_z_loss(logits=logits).item(), expected, rel_tol=1e-6)
    assert expert_counts(torch.tensor([[0, 2], [2, 3]]), 5).tolist() == [1, 0, 2, 1, 0]


def _routing(T: int, N: int = 6, K: int = 2):
    scores = torch.randn(T, N).softmax(-1)
    return scores, scores.topk(K).indices


def test_token_masks_of_ones_change_nothing():
    scores, idx = _routing(12)
    ones = torch.ones(12, dtype=torch.bool)
    torch.testing.assert_close(
        sequence_balance_loss(scores=scores, topk_idx=idx, batch_size=3, token_mask=ones),
        sequence_balance_loss(scores=scores, topk_idx=idx, batch_size=3),
    )
    torch.testing.assert_close(
        batch_balance_loss(scores=scores, topk_idx=idx, token_mask=ones),
        batch_balance_loss(scores=scores, topk_idx=idx),
    )
    logits = torch.randn(12, 6)
    torch.testing.assert_close(router_z_loss(logits=logits, token_mask=ones), router_z_loss(logits=logits))
    assert torch.equal(expert_counts(idx, 6, ones), expert_counts(idx, 6))


def test_masked_losses_equal_the_losses_of_the_counted_tokens_alone():
    # Two sequences of S=5 positions; the first has 3 tokens and 2 pads, the second 5 tokens.
    S = 5
    scores, idx = _routing(2 * S)
    mask = torch.tensor([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], dtype=torch.bool)
    # The sequence-wise loss: the mean over the sequences, each with its own tokens only.
    first = sequence_balance_loss(scores=scores[:3], topk_idx=idx[:3], batch_size=1)
    second = sequence_balance_loss(scores=scores[S:], topk_idx=idx[S:], batch_size=1)
    masked = sequence_balance_loss(scores=scores, topk_idx=idx, batch_size=2, token_mask=mask)
    torch.testing.assert_close(masked, (first + second) / 2)
    # A sequence with no counted token is left out of the mean.
    only_second = mask & (torch.arange(2 * S) >= S)
    torch.testing.assert_close(
        sequence_balance_loss(scores=scores, topk_idx=idx, batch_size=2, token_mask=only_second), second
    )
    torch.testing.assert_close(
        batch_balance_loss(scores=scores, topk_idx=idx, token_mask=mask),
        batch_balance_loss(scores=scores[mask], topk_idx=idx[mask]),
    )
    logits = torch.randn(2 * S, 6)
    torch.testing.assert_close(
        router_z_loss(logits=logits, token_mask=mask), router_z_loss(logits=logits[mask])
    )
    assert torch.equal(expert_counts(idx, 6, mask), expert_counts(idx[mask], 6))


def test_masked_batch_loss_over_ranks_averages_to_the_whole_batch():
    """Ranks with different numbers of counted tokens: with the batch's counts, the mean of the ranks' losses
    is the loss of the whole batch."""
    scores, idx = _routing(16)
    mask = torch.rand(16) < 0.6
    mask[0] = True
    halves = [slice(0, 8), slice(8, 16)]
    counts = sum(expert_counts(idx[h], 6, mask[h]) for h in halves)
    per_rank = [
        batch_balance_loss(scores=scores[h], topk_idx=idx[h], counts=counts, token_mask=mask[h], ranks=2)
        for h in halves
    ]
    whole = batch_balance_loss(scores=scores, topk_idx=idx, token_mask=mask)
    torch.testing.assert_close(sum(per_rank) / 2, whole)
