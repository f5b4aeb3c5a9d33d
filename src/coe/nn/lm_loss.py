"""Linear + cross-entropy in chunks of tokens, so the full (tokens x vocabulary) logits never exist.

At the paper's shapes one batch has 32,768 tokens and a vocabulary of 102,400: float32 logits alone would take
13.4 GB, and their gradient as much again. This computes the loss and both gradients chunk by chunk during the
forward pass (the gradient of a mean cross-entropy is known once the logits are), keeping only the gradients
of the hidden states (T, D) and of the head weight (V, D); backward then only scales them.

Shapes: T tokens, D hidden, V vocabulary.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def _chunk_loss_and_grad(
    logits: torch.Tensor,
    targets: torch.Tensor,
    scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of one chunk and d(mean CE)/d(logits) = (softmax - onehot) * scale.

    logits: (c, V); targets: (c,) with IGNORE_INDEX rows contributing nothing; scale: 1 / valid tokens.
    The softmax runs in float32 (float64 for float64 logits); the gradient comes back in the logits' dtype.
    """
    acc = torch.promote_types(logits.dtype, torch.float32)
    x = logits.to(acc)
    valid = targets != IGNORE_INDEX
    safe = torch.where(valid, targets, 0).unsqueeze(-1)
    lse = torch.logsumexp(x, dim=-1, keepdim=True)
    loss = ((lse - x.gather(-1, safe)).squeeze(-1) * valid).sum()
    # The one-hot is a comparison, not a scatter, so that the compiled gradient is one pointwise kernel.
    p = (x - lse).exp()
    is_target = torch.arange(x.shape[-1], device=x.device) == safe
    grad = torch.where(is_target, p - 1, p) * (valid.to(acc) * scale).unsqueeze(-1)
    return loss, grad.to(logits.dtype)


_compiled_chunk = None


def _chunk_fn(device: torch.device):
    """On CUDA the chunk's elementwise work is fused by torch.compile: two passes over the logits, not
    eight."""
    global _compiled_chunk
    if device.type != "cuda":
        return _chunk_loss_and_grad
    if _compiled_chunk is None:
        _compiled_chunk = torch.compile(_chunk_loss_and_grad, dynamic=False)
    return _compiled_chunk


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk_size: int,
        compute_dtype: torch.dtype,
    ) -> torch.Tensor:
        T = hidden.shape[0]
        acc = torch.promote_types(compute_dtype, torch.float32)
        scale = 1.0 / (targets != IGNORE_INDEX).sum().clamp_min(1).to(acc)
        w = weight.to(compute_dtype)
        chunk = _chunk_fn(hidden.device)
        loss = torch.zeros((), device=hidden.device, dtype=acc)
        grad_hidden = torch.empty_like(hidden) if hidden.requires_grad else None
        grad_weight = (
            torch.zeros(weight.shape, device=weight.device, dtype=acc) if weight.requires_grad else None
        )
        for start in range(0, T, chunk_size):
            h = hidden[start : start + chunk_size].to(compute_dtype)
            chunk_loss, grad = chunk(h @ w.T, targets[start : start + chunk_size], scale)  # logits (c, V)
            loss += chunk_loss
            if grad_hidden is not None:
                grad_hidden[start : start + chunk_size] = (grad @ w).to(hidden.dtype)
            if grad_weight is not None:
                grad_weight += (grad.T @ h).to(acc)
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return loss * scale

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        gh = grad_hidden * grad_loss.to(grad_hidden.dtype) if grad_hidden is not None else None
        gw = (grad_weight * grad_loss).to(ctx.weight_dtype) if grad_weight is not None else None
        return gh, gw, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *, chunk_size: int = 2048
) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, ignoring IGNORE_INDEX.

    hidden: (T, D); weight: (V, D); targets: (T,). Logits are computed in the autocast dtype when autocast is
    on (else hidden's dtype) and the softmax in float32, ``chunk_size`` tokens at a time.
    """
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    # Validation: no gradient work (the Function sees requires_grad, not no_grad).
    if not torch.is_grad_enabled():
        hidden, weight = hidden.detach(), weight.detach()
    with torch.autocast(device, enabled=False):
        return _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_size, dtype)
