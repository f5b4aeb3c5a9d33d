"""Token dispatch as pure functions: sort token copies by expert, permute, combine.

Shapes: T tokens, D hidden, N experts, K choices per token, M = T * K token copies.
Nothing here synchronises with the host: sizes are static and counts stay on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Dispatch:
    """Where each of the M token copies goes, sorted by expert."""

    token: torch.Tensor  # (M,) int64, the source token of each sorted copy
    slot: torch.Tensor  # (M,) int64, the position of each sorted copy in the flat (T * K) choices
    offsets: torch.Tensor  # (N,) int32, cumulative copies per expert: expert e owns [offsets[e-1], offsets[e])


def sort_by_expert(topk_idx: torch.Tensor, num_experts: int) -> Dispatch:
    """Sort the T * K (token, expert) choices by expert. topk_idx: (T, K) -> Dispatch."""
    K = topk_idx.shape[-1]
    flat = topk_idx.flatten()  # (M,)
    slot = flat.argsort(stable=True)
    counts = torch.zeros(num_experts, device=flat.device, dtype=torch.int32)
    counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))
    return Dispatch(token=slot // K, slot=slot, offsets=counts.cumsum(0, dtype=torch.int32))


def permute(x: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """Gather token copies in expert order. x: (T, D) -> (M, D)."""
    return x.index_select(0, dispatch.token)


def combine(y: torch.Tensor, weight: torch.Tensor, dispatch: Dispatch, num_tokens: int) -> torch.Tensor:
    """Weighted sum of expert outputs back per token, in float32 at least. y: (M, D); weight: (T, K) -> (T, D)."""
    dtype = torch.promote_types(y.dtype, torch.float32)
    w = weight.flatten().index_select(0, dispatch.slot).unsqueeze(-1).to(dtype)  # (M, 1)
    out = y.new_zeros(num_tokens, y.shape[-1], dtype=dtype)
    return out.index_add_(0, dispatch.token, y.to(dtype) * w)
