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


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int,
                compute_dtype: torch.dtype) -> torch.Tensor:
        T = hidden.shape[0]
        acc = torch.promote_types(compute_dtype, torch.float32)  # softmax and sums: float32 at least
        valid = targets != IGNORE_INDEX
        count = valid.sum().clamp_min(1).to(acc)
        w = weight.to(compute_dtype)
        loss = torch.zeros((), device=hidden.device, dtype=acc)
        needs_grad = hidden.requires_grad or weight.requires_grad
        grad_hidden = torch.empty_like(hidden) if hidden.requires_grad else None
        grad_weight = torch.zeros(weight.shape, device=weight.device, dtype=acc) if weight.requires_grad else None
        for start in range(0, T, chunk_size):
            h = hidden[start:start + chunk_size].to(compute_dtype)
            t = targets[start:start + chunk_size]
            v = valid[start:start + chunk_size]
            logits = (h @ w.T).to(acc)  # (chunk, V)
            lse = torch.logsumexp(logits, dim=-1)
            safe_t = torch.where(v, t, 0)
            target_logit = logits.gather(-1, safe_t.unsqueeze(-1)).squeeze(-1)
            loss += ((lse - target_logit) * v).sum()
            if needs_grad:
                # d(mean CE)/d(logits) = (softmax - onehot) / count, zero for ignored rows
                grad = logits.sub_(lse.unsqueeze(-1)).exp_()
                grad.scatter_add_(-1, safe_t.unsqueeze(-1), -torch.ones_like(target_logit).unsqueeze(-1))
                grad.mul_((v.to(acc) / count).unsqueeze(-1))
                grad = grad.to(compute_dtype)
                if grad_hidden is not None:
                    grad_hidden[start:start + chunk_size] = (grad @ w).to(hidden.dtype)
                if grad_weight is not None:
                    grad_weight += (grad.T @ h).to(acc)
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return loss / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        gh = grad_hidden * grad_loss.to(grad_hidden.dtype) if grad_hidden is not None else None
        gw = (grad_weight * grad_loss).to(ctx.weight_dtype) if grad_weight is not None else None
        return gh, gw, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                         chunk_size: int = 4096) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, ignoring IGNORE_INDEX.

    hidden: (T, D); weight: (V, D); targets: (T,). Logits are computed in the autocast dtype when autocast is
    on (else hidden's dtype) and the softmax in float32, ``chunk_size`` tokens at a time.
    """
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    with torch.autocast(device, enabled=False):
        return _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_size, dtype)
