"""Recording the routing decisions of any forward pass of a CoEForCausalLM, through forward hooks.

    with RoutingRecorder(model, max_tokens=4096) as recorder:
        model(input_ids)                 # any forward: a batch, a validation loop, model.generate(...)
    record = recorder.record()           # RoutingRecord on the CPU

Hooks sit on the decoder stack (token ids and positions of each forward) and on every ChainOfExperts block
(the Routing of each iteration it returns). Inside a forward the hooks only slice and keep device tensors:
nothing is written, printed or synchronised; the one copy to the host happens in :meth:`record`.

Shapes: L MoE layers, C iterations, T recorded tokens, K experts chosen per token, N routed experts.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

import torch

from coe.analysis.stats import token_entropy
from coe.evaluate import eval_mode


@dataclass
class RoutingRecord:
    """What the routers decided for T tokens, layer by layer and iteration by iteration."""

    token_ids: torch.Tensor  # (T,) int64; -1 for forwards that got inputs_embeds
    positions: torch.Tensor  # (T,) int64, position of the token in its sequence
    batch_index: torch.Tensor  # (T,) int64, row of the token in its forward's batch
    forward_index: torch.Tensor  # (T,) int64, which recorded forward the token came from
    experts: torch.Tensor  # (L, C, T, K) int64, chosen experts (in no particular order)
    weights: torch.Tensor  # (L, C, T, K) float32, their gate weights
    entropy: torch.Tensor  # (L, C, T) float32, entropy (nats) of each token's scores normalised to sum 1
    logsumexp: torch.Tensor  # (L, C, T) float32, logsumexp of the router logits (what the z-loss squares)
    logits: torch.Tensor | None  # (L, C, T, N) float32 router logits, only with keep_logits
    layers: list[int]  # the decoder-layer index of each MoE layer
    num_experts: int  # N

    @property
    def num_layers(self) -> int:
        return self.experts.shape[0]

    @property
    def num_iterations(self) -> int:
        return self.experts.shape[1]

    @property
    def num_tokens(self) -> int:
        return self.experts.shape[2]

    @property
    def top_k(self) -> int:
        return self.experts.shape[3]


class RoutingRecorder:
    """Records the routing of every forward of ``model`` while active (a context manager).

    Args:
        model: a CoEForCausalLM
        max_tokens: stop recording after this many tokens (the first ones, in batch-row order), which bounds
            the memory; None records everything
        keep_logits: also keep the full router logits (T, N) per (layer, iteration), not only summaries

    Works with activation checkpointing (blocks recomputed during backward run after the forward has closed
    and are not recorded twice) and with compiled decoder layers (the hooks run, outside the graph).
    """

    def __init__(self, model, *, max_tokens: int | None = 65_536, keep_logits: bool = False) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens={max_tokens} must be a positive integer or None")
        self.model = model
        self.max_tokens = max_tokens
        self.keep_logits = keep_logits
        self.chains = model.chains()
        if not self.chains:
            raise ValueError("the model has no MoE layers: there is no routing to record")
        config = model.config
        self.layers = config.moe_layers
        self.num_experts = config.n_routed_experts
        self._signature = inspect.signature(model.model.forward)
        self._handles: list = []
        self._forwards: list[dict] = []  # finished forwards, device tensors
        self._open: dict | None = None  # the forward in progress
        self.tokens = 0  # tokens recorded so far

    @property
    def full(self) -> bool:
        """True once max_tokens tokens are recorded: further forwards are not recorded."""
        return self.max_tokens is not None and self.tokens >= self.max_tokens

    def __enter__(self) -> Self:
        stack = self.model.model
        self._handles.append(stack.register_forward_pre_hook(self._open_forward, with_kwargs=True))
        self._handles.append(stack.register_forward_hook(self._close_forward))
        for chain in self.chains:
            self._handles.append(chain.register_forward_hook(self._record_chain))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._open = None

    def _open_forward(self, module, args, kwargs) -> None:
        bound = self._signature.bind(*args, **kwargs).arguments
        ids, embeds = bound.get("input_ids"), bound.get("inputs_embeds")
        B, S = (ids if ids is not None else embeds).shape[:2]
        take = B * S if self.max_tokens is None else min(B * S, self.max_tokens - self.tokens)
        if take <= 0:
            self._open = None
            return
        device = (ids if ids is not None else embeds).device
        positions = bound.get("position_ids")
        if positions is None:
            cache = bound.get("cache")
            past = cache.get_seq_length() if cache is not None else 0  # from tensor shapes: no sync
            positions = torch.arange(past, past + S, device=device)
        positions = positions.expand(B, S)
        token_ids = ids if ids is not None else torch.full((B, S), -1, device=device)
        rows = torch.arange(B, device=device)[:, None].expand(B, S)
        self._open = {
            "token_ids": token_ids.reshape(-1)[:take],
            "positions": positions.reshape(-1)[:take],
            "batch_index": rows.reshape(-1)[:take],
            "take": take,
            "chains": [],
        }

    def _record_chain(self, module, args, out) -> None:
        if self._open is None:
            return
        take = self._open["take"]
        iterations = []
        for routing in out.routings:
            # Copies, not views: a view of the first tokens would keep the whole batch's tensor alive.
            logits = routing.logits.detach()[:take].float().clone()  # (T, N)
            iterations.append(
                {
                    "experts": routing.topk_idx.detach()[:take].clone(),
                    "weights": routing.topk_weight.detach()[:take].float().clone(),
                    "entropy": token_entropy(routing.scores.detach()[:take]),
                    "logsumexp": logits.logsumexp(-1),
                    "logits": logits if self.keep_logits else None,
                }
            )
        self._open["chains"].append(iterations)

    def _close_forward(self, module, args, out) -> None:
        if self._open is None:
            return
        if len(self._open["chains"]) != len(self.chains):
            seen = len(self._open["chains"])
            raise RuntimeError(
                f"recorded {seen} of {len(self.chains)} MoE layers in one forward: a block "
                "ran outside the decoder stack's forward"
            )
        self._open["forward_index"] = len(self._forwards)
        self._forwards.append(self._open)
        self.tokens += self._open["take"]
        self._open = None

    def record(self) -> RoutingRecord:
        """Everything recorded so far, concatenated over forwards and moved to the CPU."""
        if not self._forwards:
            raise ValueError("no forward was recorded: run the model inside `with RoutingRecorder(...)`")
        f = self._forwards

        def per_token(key: str) -> torch.Tensor:
            return torch.cat([x[key] for x in f]).long().cpu()

        def stacked(key: str) -> torch.Tensor:  # -> (L, C, T, ...)
            layers = [
                torch.stack(
                    [torch.cat([x["chains"][i][t][key] for x in f]) for t in range(len(f[0]["chains"][i]))]
                )
                for i in range(len(self.chains))
            ]
            return torch.stack(layers).cpu()

        forward_index = torch.cat([torch.full((x["take"],), x["forward_index"]) for x in f])
        return RoutingRecord(
            token_ids=per_token("token_ids"),
            positions=per_token("positions"),
            batch_index=per_token("batch_index"),
            forward_index=forward_index,
            experts=stacked("experts"),
            weights=stacked("weights"),
            entropy=stacked("entropy"),
            logsumexp=stacked("logsumexp"),
            logits=stacked("logits") if self.keep_logits else None,
            layers=list(self.layers),
            num_experts=self.num_experts,
        )


@torch.no_grad()
def collect_routing(
    model,
    batches: Iterable[dict[str, torch.Tensor] | torch.Tensor],
    *,
    max_tokens: int | None = 65_536,
    keep_logits: bool = False,
) -> RoutingRecord:
    """Run ``model`` (in eval mode, restored after) over ``batches`` (input_ids (B, S), or dicts holding
    ``input_ids`` and, for attention within documents, ``document_ids``) until ``max_tokens`` tokens are
    recorded, and return their routing."""
    device = next(model.parameters()).device
    with eval_mode(model), RoutingRecorder(model, max_tokens=max_tokens, keep_logits=keep_logits) as recorder:
        for batch in batches:
            ids = batch["input_ids"] if isinstance(batch, dict) else batch
            documents = batch.get("document_ids") if isinstance(batch, dict) else None
            model(
                ids.to(device),
                document_ids=None if documents is None else documents.to(device),
                use_cache=False,
            )
            if recorder.full:
                break
    return recorder.record()
