"""Packing documents into fixed-length training sequences, and batching them resumably.

Shapes: B batch size (sequences per rank and step), T sequence length, L tokens in the stream, N sequences,
W data-parallel ranks.

Documents are tokenized and joined into one stream, each followed by the end-of-text token, so that the
model learns where a document (a solved problem) ends. The stream is cut into N = (L - 1) // T windows of
T + 1 tokens, window i starting at token i * T: inputs are its first T tokens, labels its last T, and
consecutive windows share one boundary token, so every token but the first is a label exactly once.
Sequences may span document boundaries; nothing is padded or masked.

``BatchIterator`` visits the sequences in an order drawn from ``(seed, epoch)``. At global step s, rank r of
W takes positions ``[(s * W + r) * B, (s * W + r + 1) * B)`` of that order, so ranks never share a
sequence, and every rank runs the same number of steps per epoch (the remainder is dropped). Its position,
``(epoch, index)``, is all the state there is: a trainer that saves ``state_dict()`` and later loads it
gets exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerFast

Batch = dict[str, torch.Tensor]  # {"input_ids": (B, T) int64, "labels": (B, T) int64}


def tokenize_documents(
    tokenizer: PreTrainedTokenizerFast, documents: Sequence[str], *, chunk_size: int = 4096
) -> np.ndarray:
    """The token stream (L,) int32 of ``documents``: each document's ids followed by ``eos_token_id``.

    Documents are encoded in chunks of ``chunk_size`` through the tokenizer's batch call (parallel, in Rust).
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token: it is needed to separate documents")
    if not documents:
        raise ValueError("no documents to tokenize")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    pieces: list[list[int]] = []
    for start in range(0, len(documents), chunk_size):
        chunk = list(documents[start : start + chunk_size])
        ids = tokenizer(chunk, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        for doc_ids in ids:
            pieces.append(doc_ids)
            pieces.append([eos])
    total = sum(len(p) for p in pieces)
    return np.fromiter(chain.from_iterable(pieces), dtype=np.int32, count=total)


class PackedDataset(Dataset):
    """A token stream seen as N sequences of T inputs and T labels (the inputs shifted by one)."""

    def __init__(self, tokens: np.ndarray, seq_len: int) -> None:
        tokens = np.asarray(tokens)
        if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(
                f"tokens must be a 1-D integer array, got shape {tokens.shape} dtype {tokens.dtype}"
            )
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if len(tokens) < seq_len + 1:
            raise ValueError(
                f"{len(tokens)} tokens are too few for one sequence of seq_len + 1 = {seq_len + 1}"
            )
        self.tokens = tokens
        self.seq_len = seq_len
        self._offsets = np.arange(seq_len + 1)  # (T+1,)

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.seq_len

    def __getitem__(self, i: int) -> Batch:
        """Sequence ``i``: ``input_ids`` and ``labels`` of shape (T,)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)} sequences")
        batch = self.batch(np.array([i % len(self)]))
        return {k: v[0] for k, v in batch.items()}

    def batch(self, indices: np.ndarray | Sequence[int]) -> Batch:
        """Sequences ``indices`` (B,) stacked: ``input_ids`` and ``labels`` of shape (B, T)."""
        starts = np.asarray(indices, dtype=np.int64) * self.seq_len  # (B,)
        windows = torch.from_numpy(self.tokens[starts[:, None] + self._offsets].astype(np.int64))  # (B, T+1)
        return {"input_ids": windows[:, :-1], "labels": windows[:, 1:]}


def pack_documents(
    tokenizer: PreTrainedTokenizerFast, documents: Sequence[str], seq_len: int
) -> PackedDataset:
    """``documents`` tokenized (``tokenize_documents``) and cut into sequences of ``seq_len``."""
    return PackedDataset(tokenize_documents(tokenizer, documents), seq_len)


def _check_parallel(batch_size: int, rank: int, world_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")


class BatchIterator:
    """Endless shuffled batches of a ``PackedDataset`` for one data-parallel rank, resumable.

    Each ``next()`` gives ``input_ids`` and ``labels`` of shape (B, T); epochs follow one another without
    end, each in a fresh order drawn from ``(seed, epoch)``.
    """

    def __init__(
        self, dataset: PackedDataset, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        _check_parallel(batch_size, rank, world_size)
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.steps_per_epoch = len(dataset) // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{len(dataset)} sequences are too few for one step of "
                f"{world_size} ranks x {batch_size} sequences"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.index = 0  # the next step within the epoch, < steps_per_epoch
        self._order_epoch = -1
        self._order = np.empty(0, dtype=np.int64)

    def order(self, epoch: int) -> np.ndarray:
        """The order (N,) in which epoch ``epoch`` visits the sequences (the same on every rank)."""
        if epoch != self._order_epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order, self._order_epoch = rng.permutation(len(self.dataset)), epoch
        return self._order

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> Batch:
        start = (self.index * self.world_size + self.rank) * self.batch_size
        indices = self.order(self.epoch)[start : start + self.batch_size]  # (B,)
        self.index += 1
        if self.index == self.steps_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        return self.dataset.batch(indices)

    def state_dict(self) -> dict[str, Any]:
        """The position (``epoch``, ``index``) and what it is only valid with."""
        return {
            "epoch": self.epoch,
            "index": self.index,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "num_sequences": len(self.dataset),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continues from a ``state_dict()``; the data, seed, batch size and world size must be the same."""
        mine = self.state_dict()
        fixed = [k for k in mine if k not in ("epoch", "index")]
        differ = [f"{k}: saved {state.get(k)!r}, now {mine[k]!r}" for k in fixed if state.get(k) != mine[k]]
        if differ:
            raise ValueError(
                "cannot resume the data position with other data or settings: " + "; ".join(differ)
            )
        epoch, index = int(state["epoch"]), int(state["index"])
        if epoch < 0 or not 0 <= index < self.steps_per_epoch:
            raise ValueError(
                f"bad position epoch={epoch}, index={index} (steps per epoch: {self.steps_per_epoch})"
            )
        self.epoch, self.index = epoch, index


def validation_batches(
    dataset: PackedDataset,
    batch_size: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    max_batches: int | None = None,
) -> list[Batch]:
    """Fixed validation batches for one rank: the sequences in order, split among ranks like training steps.

    Every rank gets the same number of batches (at most ``max_batches``), each ``input_ids`` and ``labels``
    of shape (B, T); sequences that do not fill a step of all ranks are left out.
    """
    _check_parallel(batch_size, rank, world_size)
    steps = len(dataset) // (batch_size * world_size)
    if max_batches is not None:
        if max_batches < 1:
            raise ValueError(f"max_batches must be None or >= 1, got {max_batches}")
        steps = min(steps, max_batches)
    if steps == 0:
        raise ValueError(
            f"the validation split has {len(dataset)} sequences, too few for one batch of "
            f"{world_size} ranks x {batch_size} sequences"
        )
    starts = [(s * world_size + rank) * batch_size for s in range(steps)]
    return [dataset.batch(np.arange(start, start + batch_size)) for start in starts]
