"""Evaluation: validation loss over fixed batches and exact-match accuracy by greedy generation.

Exact match follows GSM8K: generate greedily after the prompt, take the number after the ``####`` of the
generated answer and compare it with the reference answer's. Each sequence stops at the end of its answer
(:func:`answer_end`), not after ``max_new_tokens``. Decoding takes the fast path of :mod:`coe.generation` by
default (the static cache; on CUDA its decoding step compiled), which gives the eager dynamic cache's tokens
(tests/test_evaluate.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from coe.data.synthetic_math import extract_final_answer, format_prompt
from coe.device import autocast
from coe.generation import decode_kwargs, uncompiled
from coe.nn.lm_loss import IGNORE_INDEX


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode inside the block, its training flag restored on every exit."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# What a batch may carry beside input_ids and labels, passed to the model under the same names (see
# coe.data.packing and CoEForCausalLM.forward).
BATCH_MASKS = ("attention_mask", "document_ids", "position_ids", "routing_mask")


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The model's keyword arguments for a batch, on ``device``: ``input_ids``, ``shift_labels`` (the batch's
    labels are the next tokens) and whichever of ``BATCH_MASKS`` the batch has."""
    inputs = {"input_ids": batch["input_ids"].to(device), "shift_labels": batch["labels"].to(device)}
    inputs.update({key: batch[key].to(device) for key in BATCH_MASKS if key in batch})
    return inputs


def _disabled(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` option: None (tqdm's own None) turns a bar off unless stderr is
    a terminal."""
    return None if progress is None else not progress


@torch.no_grad()
def validation_loss(
    model,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    amp_dtype: torch.dtype | None = None,
    progress: bool | None = None,
) -> float:
    """Mean language-model loss (token-weighted) over ``batches`` of input_ids / labels (B, S), labels being
    the next tokens, and any masks of the batches' packing (``model_inputs``). The model is put in eval mode
    and restored. ``progress``: a progress bar over the batches (None: shown when stderr is a terminal)."""
    total = len(batches) if hasattr(batches, "__len__") else None
    shown = tqdm(batches, total=total, desc="validation loss", unit="batch", disable=_disabled(progress))
    loss_sum, tokens = validation_sums(model, shown, amp_dtype=amp_dtype)
    if tokens == 0:
        raise ValueError("validation_loss got no tokens: the validation split is empty")
    return (loss_sum / tokens).item()


@torch.no_grad()
def validation_sums(
    model,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """(loss summed over the labelled tokens, their count), float64 on the model's device: what ranks add up
    before dividing, since their batches hold different numbers of labelled tokens (padded or documents
    packing)."""
    device = next(model.parameters()).device
    sums = torch.zeros(2, device=device, dtype=torch.float64)
    with eval_mode(model):
        for batch in batches:
            inputs = model_inputs(batch, device)
            with autocast(device, amp_dtype):
                # Chunked loss: the full (B x S x V) float32 logits would dwarf the model at the paper's
                # vocabulary.
                out = model(**inputs, use_cache=False, return_logits=False)
            n = int((batch["labels"] != IGNORE_INDEX).sum())  # counted on the host's copy: no device sync
            if n:  # a batch of filler rows alone (validation_batches' keep_last) has no loss to add
                sums[0] += out.lm_loss.double() * n
                sums[1] += n
    return sums


@dataclass
class Sample:
    question: str
    reference: str | None
    generated: str
    predicted: str | None

    @property
    def correct(self) -> bool:
        return self.reference is not None and self.predicted == self.reference


# Where a generated answer ends: its final number ("#### 7", complete once a character follows that cannot
# continue it), the "####" line ended without a number, or the start of a next problem the model runs on into.
_ANSWER_END = re.compile(r"####[ \t]*\$?[ \t]*-?[\d,]*\.?\d+(?=[^\d,.])|####[^\n]*\n|\nQuestion:")


def answer_end(text: str) -> int | None:
    """The length of the answer at the start of generated ``text``: up to the end of its ``#### N`` number
    (or of the ``####`` line), or up to a new ``Question:``; None while the answer has not ended."""
    match = _ANSWER_END.search(text)
    if match is None:
        return None
    return match.start() if match.group() == "\nQuestion:" else match.end()


class StopAtAnswerEnd(StoppingCriteria):
    """``generate``'s stopping criterion for the rows whose generated text (after ``prompt_length`` tokens)
    has an answer that ended (:func:`answer_end`): a row stops there, the batch when every row has."""

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        # Decoding needs the tokens on the host: one copy per step, as generate's own end-of-batch check.
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        done = [answer_end(text) is not None for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # (B,)


@torch.no_grad()
def exact_match(
    model,
    tokenizer,
    problems: Sequence[tuple[str, str]],
    *,
    max_new_tokens: int = 256,
    batch_size: int = 32,
    amp_dtype: torch.dtype | None = None,
    progress: bool | None = None,
    decode: str = "auto",
) -> tuple[float, list[Sample]]:
    """Greedy-decode an answer for each (question, reference answer text) and score the final numbers.

    Problems are decoded ``batch_size`` at a time; each row stops at the end of its answer
    (:func:`answer_end`), at the end-of-text token or after ``max_new_tokens``, and the batch when all its
    rows have. ``progress``: a progress bar over the problems (None: shown when stderr is a terminal).
    ``decode``: the decode path (a ``coe.generation.DecodePath`` value; "auto": the static cache, its
    decoding step compiled on CUDA); the static cache is sized once for the longest prompt, so that a compiled
    decoding step is traced once per batch size rather than per prompt length. Decoder layers compiled in
    place (the trainer's) run uncompiled meanwhile (``coe.generation.uncompiled``).

    Returns (accuracy, samples). Prompts use the training documents' template (``format_prompt``);
    ``Sample.generated`` is the answer up to its end.
    """
    if not problems:
        raise ValueError("exact_match got no problems")
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size={batch_size} and max_new_tokens={max_new_tokens} must be positive")
    device = next(model.parameters()).device
    prompts = tokenizer([format_prompt(q) for q, _ in problems]).input_ids  # tokenized once, padded per batch
    settings = decode_kwargs(decode, device)
    if settings.get("cache_implementation") == "static":
        settings["max_cache_len"] = max(map(len, prompts)) + max_new_tokens
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    samples = []
    bar = tqdm(
        total=len(problems),
        desc="exact match",
        unit="problem",
        disable=_disabled(progress),
        dynamic_ncols=True,
    )
    with eval_mode(model), uncompiled(model), bar:
        try:
            for start in range(0, len(problems), batch_size):
                chunk = problems[start : start + batch_size]
                enc = tokenizer.pad({"input_ids": prompts[start : start + batch_size]}, return_tensors="pt")
                enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
                prompt_length = enc["input_ids"].shape[1]
                with autocast(device, amp_dtype):
                    out = model.generate(
                        **enc,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id,
                        stopping_criteria=StoppingCriteriaList([StopAtAnswerEnd(tokenizer, prompt_length)]),
                        **settings,
                    )
                texts = tokenizer.batch_decode(out[:, prompt_length:], skip_special_tokens=True)
                for (question, answer), text in zip(chunk, texts, strict=True):
                    end = answer_end(text)
                    text = text if end is None else text[:end]
                    samples.append(
                        Sample(question, extract_final_answer(answer), text, extract_final_answer(text))
                    )
                bar.update(len(chunk))
        finally:
            tokenizer.padding_side = side
    return sum(s.correct for s in samples) / len(samples), samples
