"""Evaluation: validation loss over fixed batches and exact-match accuracy by greedy generation.

Exact match follows GSM8K: generate greedily after the prompt, take the number after the last ``####`` of the
generated text and compare it with the reference answer's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from coe.data.synthetic_math import extract_final_answer, format_prompt
from coe.device import autocast
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


@torch.no_grad()
def validation_loss(
    model,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    amp_dtype: torch.dtype | None = None,
) -> float:
    """Mean language-model loss (token-weighted) over ``batches`` of input_ids / labels (B, S), labels being
    the next tokens, and any masks of the batches' packing (``model_inputs``). The model is put in eval mode
    and restored."""
    loss_sum, tokens = validation_sums(model, batches, amp_dtype=amp_dtype)
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


@torch.no_grad()
def exact_match(
    model,
    tokenizer,
    problems: Sequence[tuple[str, str]],
    *,
    max_new_tokens: int = 256,
    batch_size: int = 32,
    amp_dtype: torch.dtype | None = None,
) -> tuple[float, list[Sample]]:
    """Greedy-decode an answer for each (question, reference answer text) and score the final numbers.

    Returns (accuracy, samples). Prompts use the training documents' template (``format_prompt``).
    """
    if not problems:
        raise ValueError("exact_match got no problems")
    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    samples = []
    with eval_mode(model):
        try:
            for start in range(0, len(problems), batch_size):
                chunk = problems[start : start + batch_size]
                enc = tokenizer([format_prompt(q) for q, _ in chunk], return_tensors="pt", padding=True)
                enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
                # Compiled layers would recompile for every new cache length: decode eagerly.
                with autocast(device, amp_dtype), torch.compiler.set_stance("force_eager"):
                    out = model.generate(
                        **enc,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id,
                    )
                texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                for (question, answer), text in zip(chunk, texts, strict=True):
                    # A model may run on into a new "Question:" after its answer: score the first answer only.
                    text = text.split("\nQuestion:")[0]
                    samples.append(
                        Sample(question, extract_final_answer(answer), text, extract_final_answer(text))
                    )
        finally:
            tokenizer.padding_side = side
    return sum(s.correct for s in samples) / len(samples), samples
