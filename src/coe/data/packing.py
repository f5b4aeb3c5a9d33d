"""Documents into fixed-length training sequences, and batching them resumably.

Shapes: B batch size (sequences per rank and step), T sequence length, L tokens in the stream, N sequences,
W data-parallel ranks.

Documents are tokenized and joined into one stream, each followed by the end-of-text token (EOS), so that the
model learns where a document (a solved problem) ends. Three ways to make sequences of it (``packing``):

- ``"packed"``: the stream is cut into N = (L - 1) // T windows of T + 1 tokens, window i starting at token
  i * T: inputs are its first T tokens, labels its last T, and consecutive windows share one boundary token,
  so every token but the first is a label exactly once. Attention crosses document boundaries; nothing is
  padded or masked.
- ``"documents"``: the same windows, and ``document_ids`` (B, T) so that attention stays within a document
  and positions restart at each one. A document ends with its EOS; the EOS's label (the next document's first
  token, which nothing in its document predicts) is IGNORE_INDEX. A document within one window has the
  labels and logits it has alone in a padded row, without the padding's compute; one cut by a window's end
  continues in the next window as a document of its own (its tail does not see its beginning).
- ``"padded"``: one document per row (the reference code's batching), truncated on the right to T tokens or
  right-padded with EOS, with ``attention_mask`` (B, T) 1 on its tokens. Labels: every token after the first,
  then the closing EOS predicted by the last token; the padding and the last position of a full row have
  IGNORE_INDEX (the reference's loss mask). Empty documents are left out. With ``pads_in_routing``, a
  ``routing_mask`` of ones counts the padding in the routing losses and counts, as the reference did.

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

from coe.checks import invalid
from coe.nn.lm_loss import IGNORE_INDEX

# {"input_ids": (B, T) int64, "labels": (B, T) int64}; packing "documents" adds "document_ids" (B, T) int64,
# "padded" "attention_mask" (B, T) int64 and, with pads_in_routing, "routing_mask" (B, T) bool.
Batch = dict[str, torch.Tensor]

PACKINGS = ("packed", "documents", "padded")


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


def _check_stream(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be a 1-D integer array, got shape {tokens.shape} dtype {tokens.dtype}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    return tokens


class _Rows(Dataset):
    """What both datasets share: a sequence is one row of ``batch``."""

    def batch(self, indices: np.ndarray | Sequence[int]) -> Batch:
        raise NotImplementedError

    def __getitem__(self, i: int) -> Batch:
        """Sequence ``i``: each tensor of ``batch`` with shape (T,)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)} sequences")
        batch = self.batch(np.array([i % len(self)]))
        return {k: v[0] for k, v in batch.items()}


class PackedDataset(_Rows):
    """A token stream seen as N sequences of T inputs and T labels (the inputs shifted by one).

    ``eos_token_id`` given: packing "documents", whose batches carry ``document_ids`` and ignore the label
    of every EOS input (see the module's docstring)."""

    def __init__(self, tokens: np.ndarray, seq_len: int, *, eos_token_id: int | None = None) -> None:
        tokens = _check_stream(tokens, seq_len)
        if len(tokens) < seq_len + 1:
            raise ValueError(
                f"{len(tokens)} tokens are too few for one sequence of seq_len + 1 = {seq_len + 1}"
            )
        self.tokens = tokens
        self.seq_len = seq_len
        self.eos_token_id = eos_token_id
        self.packing = "packed" if eos_token_id is None else "documents"
        self._offsets = np.arange(seq_len + 1)  # (T+1,)

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.seq_len

    def batch(self, indices: np.ndarray | Sequence[int]) -> Batch:
        """Sequences ``indices`` (B,) stacked: ``input_ids`` and ``labels`` of shape (B, T) (and
        ``document_ids`` (B, T) for packing "documents")."""
        starts = np.asarray(indices, dtype=np.int64) * self.seq_len  # (B,)
        windows = torch.from_numpy(self.tokens[starts[:, None] + self._offsets].astype(np.int64))  # (B, T+1)
        inputs, labels = windows[:, :-1], windows[:, 1:]
        if self.eos_token_id is None:
            return {"input_ids": inputs, "labels": labels}
        ends = inputs == self.eos_token_id  # (B, T): an EOS closes its document
        document_ids = ends.long().cumsum(dim=1) - ends.long()  # the EOS still belongs to the one it closes
        labels = labels.masked_fill(ends, IGNORE_INDEX)
        return {"input_ids": inputs, "labels": labels, "document_ids": document_ids}


class PaddedDataset(_Rows):
    """One document per sequence: the documents of a token stream (the pieces between EOS tokens), each
    truncated to T tokens or right-padded with EOS (see the module's docstring)."""

    packing = "padded"

    def __init__(
        self, tokens: np.ndarray, seq_len: int, *, eos_token_id: int, pads_in_routing: bool = False
    ) -> None:
        tokens = _check_stream(tokens, seq_len)
        ends = np.flatnonzero(tokens == eos_token_id)
        if len(tokens) and tokens[-1] != eos_token_id:
            ends = np.append(ends, len(tokens))  # a last document without its EOS
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        lengths = ends - starts
        keep = lengths > 0
        if not keep.any():
            raise ValueError("the token stream holds no non-empty document")
        self.tokens = tokens
        self.seq_len = seq_len
        self.eos_token_id = eos_token_id
        self.pads_in_routing = pads_in_routing
        self.starts, self.lengths = starts[keep], lengths[keep]  # (N,), (N,)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, indices: np.ndarray | Sequence[int]) -> Batch:
        """Documents ``indices`` (B,) as rows: ``input_ids``, ``labels`` and ``attention_mask`` of shape
        (B, T) (and ``routing_mask`` with ``pads_in_routing``)."""
        indices = np.asarray(indices, dtype=np.int64)
        start, length = self.starts[indices, None], self.lengths[indices, None]  # (B, 1)
        pos = np.arange(self.seq_len)  # (T,)
        real = pos < length  # (B, T)
        inputs = np.where(real, self.tokens[np.where(real, start + pos, 0)], self.eos_token_id)
        # Position j predicts token j + 1 of the document followed by its EOS, for j < min(length, T - 1).
        after = pos + 1 < length  # (B, T)
        next_token = np.where(after, self.tokens[np.where(after, start + pos + 1, 0)], self.eos_token_id)
        labels = np.where(real & (pos < self.seq_len - 1), next_token, IGNORE_INDEX)
        batch = {
            "input_ids": torch.from_numpy(inputs.astype(np.int64)),
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "attention_mask": torch.from_numpy(real.astype(np.int64)),
        }
        if self.pads_in_routing:
            batch["routing_mask"] = torch.ones(real.shape, dtype=torch.bool)
        return batch


Sequences = PackedDataset | PaddedDataset


def make_sequences(
    tokens: np.ndarray,
    seq_len: int,
    *,
    packing: str = "packed",
    eos_token_id: int | None = None,
    pads_in_routing: bool = False,
) -> Sequences:
    """The sequences of a token stream by ``packing`` (``"packed"``, ``"documents"`` or ``"padded"``; the
    last two need ``eos_token_id``). ``pads_in_routing``: padded rows count their padding in the routing
    losses and counts (the reference code's runs)."""
    if packing not in PACKINGS:
        raise invalid("packing", packing, "choose 'packed', 'documents' or 'padded'")
    if packing != "packed" and eos_token_id is None:
        raise ValueError(f"packing {packing!r} needs eos_token_id to find the documents")
    if pads_in_routing and packing != "padded":
        raise invalid("pads_in_routing", pads_in_routing, "only with packing 'padded'")
    if packing == "padded":
        return PaddedDataset(tokens, seq_len, eos_token_id=eos_token_id, pads_in_routing=pads_in_routing)
    return PackedDataset(tokens, seq_len, eos_token_id=eos_token_id if packing == "documents" else None)


def pack_documents(
    tokenizer: PreTrainedTokenizerFast,
    documents: Sequence[str],
    seq_len: int,
    *,
    packing: str = "packed",
    pads_in_routing: bool = False,
) -> Sequences:
    """``documents`` tokenized (``tokenize_documents``) and made into sequences of ``seq_len`` by
    ``packing`` (``make_sequences``)."""
    tokens = tokenize_documents(tokenizer, documents)
    return make_sequences(
        tokens, seq_len, packing=packing, eos_token_id=tokenizer.eos_token_id, pads_in_routing=pads_in_routing
    )


def _check_parallel(batch_size: int, rank: int, world_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")


class BatchIterator:
    """Endless shuffled batches of a ``PackedDataset`` or ``PaddedDataset`` for one data-parallel rank,
    resumable.

    Each ``next()`` gives the dataset's batch of B sequences (``input_ids`` and ``labels`` of shape (B, T),
    and what its packing adds); epochs follow one another without end, each in a fresh order drawn from
    ``(seed, epoch)``.
    """

    def __init__(
        self, dataset: Sequences, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1
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
            "packing": self.dataset.packing,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continues from a ``state_dict()``; the data, packing, seed, batch size and world size must be the
        same."""
        state = {"packing": "packed", **state}  # positions saved before there were other packings
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
    dataset: Sequences,
    batch_size: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    max_batches: int | None = None,
    keep_last: bool = False,
) -> list[Batch]:
    """Fixed validation batches for one rank: the sequences in order, split among ranks like training steps.

    Every rank gets the same number of batches (at most ``max_batches``), each the dataset's batch of B
    sequences; sequences that do not fill a step of all ranks are left out, or with ``keep_last`` make one
    more step, whose missing rows repeat the first sequence with every label ignored (they add no token to a
    loss; every rank still runs the step's forward, as sharded weights need).
    """
    _check_parallel(batch_size, rank, world_size)
    per_step = batch_size * world_size
    steps = len(dataset) // per_step + int(keep_last and len(dataset) % per_step > 0)
    if max_batches is not None:
        if max_batches < 1:
            raise ValueError(f"max_batches must be None or >= 1, got {max_batches}")
        steps = min(steps, max_batches)
    if steps == 0:
        raise ValueError(
            f"the validation split has {len(dataset)} sequences, too few for one batch of "
            f"{world_size} ranks x {batch_size} sequences"
        )
    batches = []
    for step in range(steps):
        rows = (step * world_size + rank) * batch_size + np.arange(batch_size)
        missing = rows >= len(dataset)
        batch = dataset.batch(np.where(missing, 0, rows))
        if missing.any():  # not in place: packed labels are a view of the inputs
            batch["labels"] = batch["labels"].masked_fill(torch.from_numpy(missing)[:, None], IGNORE_INDEX)
        batches.append(batch)
    return batches
