"""Chunked linear + cross-entropy against the plain computation, across chunk sizes."""

import pytest
import torch
import torch.nn.functional as F

from coe.nn.lm_loss import linear_cross_entropy
from tests.conftest import rel_err


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_matches_full_cross_entropy(chunk):
    h = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(33, 16, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 33, (50,))
    t[[3, 10, 11]] = -100
    ref = F.cross_entropy(h @ w.T, t, ignore_index=-100)
    g_h, g_w = torch.autograd.grad(3.0 * ref, (h, w))
    out = linear_cross_entropy(h, w, t, chunk_size=chunk)
    o_h, o_w = torch.autograd.grad(3.0 * out, (h, w))
    assert rel_err(out, ref) < 1e-12
    assert rel_err(o_h, g_h) < 1e-12 and rel_err(o_w, g_w) < 1e-12


def test_all_ignored_gives_zero_not_nan():
    h = torch.randn(4, 8, requires_grad=True)
    w = torch.randn(5, 8, requires_grad=True)
    out = linear_cross_entropy(h, w, torch.full((4,), -100))
    out.backward()
    assert out.item() == 0.0 and torch.all(h.grad == 0)


def test_no_gradient_work_without_grad_mode(monkeypatch):
    """Under no_grad (validation) the chunked loss computes neither gradient: the same loss, no (V, D)
    buffer."""
    from coe.nn import lm_loss

    hidden = torch.randn(40, 8, requires_grad=True)
    weight = torch.nn.Parameter(torch.randn(50, 8))
    targets = torch.randint(0, 50, (40,))
    expected = lm_loss.linear_cross_entropy(hidden, weight, targets, chunk_size=16)
    allocated = []
    zeros = torch.zeros
    monkeypatch.setattr(lm_loss.torch, "zeros", lambda *a, **k: allocated.append(a) or zeros(*a, **k))
    with torch.no_grad():
        loss = lm_loss.linear_cross_entropy(hidden, weight, targets, chunk_size=16)
    torch.testing.assert_close(loss, expected.detach())
    assert not [a for a in allocated if a and tuple(a[0]) == (50, 8)]
