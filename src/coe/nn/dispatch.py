"""Token dispatch as pure functions: sort token copies by expert, permute, combine.

Shapes: T tokens, D hidden, N experts, K choices per token, M = T * K token copies.
Nothing here synchronises with the host: sizes are static and counts stay on the device.

Two ways back to tokens: :func:`combine` (gathers only: deterministic and atomic-free on a GPU) and, for the
CPU, :func:`sorted_weights` with :func:`sum_copies` (the routing weight applied to the F-wide expert hidden
state, the copies added into their tokens in one pass; CPU index_add is sequential, so deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Dispatch:
    """Where each of the M token copies goes, sorted by expert."""

    token: torch.Tensor  # (M,) int64, the source token of each sorted copy
    slot: torch.Tensor  # (M,) int64, the position of each sorted copy in the flat (T * K) choices
    offsets: torch.Tensor  # (N,) int32, cumulative copies per expert: e owns [offsets[e-1], offsets[e])
    inverse: torch.Tensor  # (M,) int64, where each flat (token, choice) copy sits in the sorted order


def sort_by_expert(topk_idx: torch.Tensor, num_experts: int) -> Dispatch:
    """Sort the T * K (token, expert) choices by expert. topk_idx: (T, K) -> Dispatch."""
    K = topk_idx.shape[-1]
    flat = topk_idx.flatten()  # (M,)
    slot = flat.argsort(stable=True)
    counts = torch.zeros(num_experts, device=flat.device, dtype=torch.int32)
    counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))
    inverse = torch.empty_like(slot).scatter_(0, slot, torch.arange(slot.numel(), device=slot.device))
    return Dispatch(token=slot // K, slot=slot, offsets=counts.cumsum(0, dtype=torch.int32), inverse=inverse)


class _PermuteRows(torch.autograd.Function):
    """``x[rows]`` for a permutation-like gather whose backward is another gather, never an atomic scatter.

    Forward gathers ``x.index_select(0, rows)``; backward gathers the gradient with ``back`` and, when each
    source row was copied ``copies`` times, sums the copies (``rows`` = token of each sorted copy, ``back`` =
    sorted position of each (token, choice)). Deterministic, and far faster than bf16 index_add.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: torch.Tensor, back: torch.Tensor, copies: int) -> torch.Tensor:
        ctx.save_for_backward(back)
        ctx.copies = copies
        return x.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (back,) = ctx.saved_tensors
        g = grad.index_select(0, back)
        if ctx.copies > 1:
            g = g.view(-1, ctx.copies, g.shape[-1]).sum(1)
        return g, None, None, None


def permute(x: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """Gather token copies in expert order. x: (T, D) -> (M, D)."""
    K = dispatch.token.numel() // x.shape[0]
    return _PermuteRows.apply(x, dispatch.token, dispatch.inverse, K)


def reorder(x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Rows of x in a new order, ``x[order]``, with a gather backward. x: (M, D); order, inverse: (M,) a
    permutation and its inverse -> (M, D)."""
    return _PermuteRows.apply(x, order, inverse, 1)


def combine(y: torch.Tensor, weight: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """Weighted sum of each token's K expert outputs. y: (M, D) in expert order; weight: (T, K) -> (T, D).

    The copies are put back in (token, choice) order with a gather (a permutation: no atomics, deterministic)
    and reduced over K by a multiply-and-sum (the sum accumulates in float32 for bf16 inputs). A batched
    (1 x K) @ (K x D) matmul does the same but runs as T tiny GEMMs at a tenth of the memory bandwidth.
    """
    T, K = weight.shape
    unsorted = _PermuteRows.apply(y, dispatch.inverse, dispatch.slot, 1).view(T, K, -1)  # (T, K, D)
    return (unsorted * weight.to(y.dtype).unsqueeze(-1)).sum(1)


def sorted_weights(weight: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """Each sorted copy's routing weight, for scaling inside the expert. weight: (T, K) -> (M, 1)."""
    flat = weight.reshape(-1, 1)
    return _PermuteRows.apply(flat, dispatch.slot, dispatch.inverse, 1)


def sum_copies(y: torch.Tensor, dispatch: Dispatch, num_tokens: int) -> torch.Tensor:
    """Each token's sum of its K (already weighted) copies. y: (M, D) in expert order -> (T, D), at least
    float32 (bf16 copies are added in float32, as :func:`combine` does).

    One ``index_add`` pass over y; its backward is the gather ``grad[token]``. Meant for the CPU, where
    index_add runs sequentially: on a GPU it takes atomics (non-deterministic, slow in bf16), and
    :func:`combine` is the way there.
    """
    dtype = torch.promote_types(y.dtype, torch.float32)
    return y.new_zeros(num_tokens, y.shape[-1], dtype=dtype).index_add_(0, dispatch.token, y.to(dtype))
