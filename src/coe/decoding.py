"""A decoding loop outside generate(): a static cache, one compiled graph per step, no host sync per token.

generate() (coe.generation's fast path) spends host time on every step around the compiled forward: input
preparation, logits processors, stopping criteria (which read a flag back from the device), and the guards of
the compiled forward over every parameter. On the H200 that sets a floor of about 1.5 ms a token for a 4-layer
model at batch 1 (ours and transformers' DeepseekV2 alike; docs/performance.md), far above what the kernels
take. :class:`StepDecoder` keeps the loop minimal, as compact inference engines do: the prompt is
prefilled into a static cache, then each step is one call of a compiled function that runs the model on the
last tokens and picks the next ones (greedy or sampled), captured as a CUDA graph on CUDA (mode
"reduce-overhead"). Finished rows are tracked on the device; the host looks at them every ``check_every``
steps.

Shapes: B rows, P prompt length (left-padded), N new tokens, L = P + N cache slots, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.cache_utils import StaticCache

from coe.checks import invalid


def sampling_warpers(temperature: float, top_k: int | None, top_p: float | None) -> LogitsProcessorList:
    """transformers' own sampling warpers, in generate()'s order: temperature, top-k, top-p."""
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_k is not None:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


def pick(logits: torch.Tensor, warpers: LogitsProcessorList | None) -> torch.Tensor:
    """The next token of each row from its last logits (B, V): the argmax (``warpers`` None), or a sample from
    the softmax of the logits ``warpers`` (:func:`sampling_warpers`) leave. Returns (B,) int64."""
    if warpers is None:
        return logits.argmax(-1)
    probs = warpers(None, logits.float()).softmax(-1)  # the warpers read the scores alone
    # A draw from the softmax without torch.multinomial (which a CUDA graph cannot hold): the argmax of
    # p_i / e_i with e_i ~ Exp(1) is token i with probability p_i.
    return (probs / torch.empty_like(probs).exponential_(1)).argmax(-1)


CACHE_BUCKET = 256


class StepDecoder:
    """Decoding with ``model`` (a CoEForCausalLM) in a loop of compiled steps.

    Args:
        model: the model, in eval mode, on its device and dtype
        compile: compile the step (None: on CUDA, with CUDA graphs; elsewhere eager, where compiling costs
            more than it saves for one call, docs/performance.md)
        check_every: steps between two looks at whether every row has finished (each is a host sync)

    The compiled step is kept between calls: calls of the same batch size and cache length reuse it.
    """

    def __init__(self, model, *, compile: bool | None = None, check_every: int = 16) -> None:
        if check_every < 1:
            raise invalid("check_every", check_every, "a positive number of steps")
        self.model, self.check_every = model, check_every
        device = next(model.parameters()).device
        if compile is None:
            compile = device.type == "cuda"
        self._step: Callable = self._forward_and_pick
        if compile:
            mode = "reduce-overhead" if device.type == "cuda" else "default"
            self._step = torch.compile(self._forward_and_pick, fullgraph=True, dynamic=False, mode=mode)

    def _forward_and_pick(self, tokens, positions, mask, cache, warpers):
        """One decoding step: tokens (B, 1) at positions (B, 1) into the cache; the next tokens (B,)."""
        logits = self.model(
            tokens, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        ).logits[:, -1]
        return pick(logits, warpers)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        max_new_tokens: int,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
    ) -> torch.Tensor:
        """The prompt (B, P) (left-padded where ``attention_mask`` (B, P) has zeros) followed by up to
        ``max_new_tokens`` new tokens (B, P + n): what ``model.generate`` returns for the same arguments.
        A row that has produced an end token continues with ``pad_token_id``; decoding stops once every row
        has (looked at every ``check_every`` steps, the output cut where generate() would have stopped).
        Sampling draws from torch's global generator (seed it with ``torch.manual_seed``)."""
        if max_new_tokens < 1:
            raise invalid("max_new_tokens", max_new_tokens, "a positive number of tokens")
        if do_sample and temperature <= 0:
            raise invalid("temperature", temperature, "a positive number when sampling")
        if top_p is not None and not 0 < top_p <= 1:
            raise invalid("top_p", top_p, "a probability in (0, 1]")
        eos = (
            [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else eos_token_id
        )
        if eos and pad_token_id is None:
            raise invalid(
                "pad_token_id", pad_token_id, "a token id to fill finished rows with (given end tokens)"
            )
        B, P = input_ids.shape
        device = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # Cache lengths rounded up, so that calls of other prompt or output lengths reuse the compiled step
        # (its shapes are the cache's): one compilation per batch size and 256 slots.
        L = -(-(P + max_new_tokens) // CACHE_BUCKET) * CACHE_BUCKET
        cache = StaticCache(config=self.model.config, max_cache_len=L)
        # One mask for every step: the prompt's padding, then the new slots (later ones are masked by
        # causality). Rotary positions count each row's real tokens, so a left-padded row decodes as alone.
        mask = torch.ones(B, L, dtype=attention_mask.dtype, device=device)
        mask[:, :P] = attention_mask
        prompt_positions = (attention_mask.cumsum(-1) - 1).clamp_min(0)
        warpers = sampling_warpers(temperature, top_k, top_p) if do_sample else None
        logits = self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=prompt_positions,
            cache=cache,
            use_cache=True,
        ).logits[:, -1]
        out = torch.empty(max_new_tokens, B, dtype=input_ids.dtype, device=device)  # (N, B): rows contiguous
        out[0] = pick(logits, warpers)
        stop_ids = torch.tensor(eos, dtype=input_ids.dtype, device=device)
        finished = torch.isin(out[0], stop_ids)
        positions = attention_mask.sum(-1, keepdim=True)  # (B, 1): the first new token's position
        n = 1
        while n < max_new_tokens:
            if eos and n % self.check_every == 0 and bool(finished.all()):
                break
            # out[n - 1] is contiguous for any max_new_tokens: no new strides in the compiled step's guards.
            chosen = self._step(out[n - 1].unsqueeze(1), positions + (n - 1), mask, cache, warpers)
            if eos:
                chosen = torch.where(finished, pad_token_id, chosen)
                finished = finished | torch.isin(chosen, stop_ids)
            out[n] = chosen  # a copy: a CUDA graph's output is overwritten by its next replay
            n += 1
        if eos:  # generate() stops after the step at which the last row finished
            ended = torch.isin(out[:n], stop_ids)  # (n, B)
            last = torch.where(ended.any(0), ended.int().argmax(0), n - 1)
            n = int(last.max()) + 1
        return torch.cat([input_ids, out[:n].T], dim=1)
