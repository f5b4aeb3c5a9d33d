"""What a training run needs from the data package: tokenizer, training batches, validation batches and
held-out problems for exact match, built once from a DataSpec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coe.checks import invalid
from coe.data import (
    BatchIterator,
    DataSpec,
    DataSplits,
    TokenizerSpec,
    build_tokenizer,
    load_splits,
    pack_documents,
    validation_batches,
)
from coe.data.synthetic_math import split_question_answer


@dataclass
class RunData:
    tokenizer: object  # transformers.PreTrainedTokenizerFast
    train: BatchIterator  # endless micro-batches, resumable through state_dict()
    validation: list  # fixed micro-batches
    problems: list[tuple[str, str]]  # held-out (question, worked answer) pairs for exact match
    test: list  # fixed micro-batches of the test split for its loss (empty unless asked for)
    # Each training source's own validation documents as fixed micro-batches (its sequences made apart from
    # the other sources', the last step filled up: keep_last; at most as many batches as `validation`), for
    # the final evaluation's loss by source; empty unless the validation documents come from two or more
    # training sources (DataSplits.validation_by_source).
    validation_by_source: dict[str, list] = field(default_factory=dict)


def prepare_run_data(
    spec: DataSpec,
    *,
    run_dir: Path,
    seq_len: int,
    batch_size: int,
    micro_batch_size: int,
    seed: int,
    tokenizer: TokenizerSpec,
    eval_batches: int,
    accuracy_problems: int,
    test_loss: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> RunData:
    """Load the splits, get the tokenizer (loaded from ``tokenizer.path``, or a BPE trained on the training
    split and kept in ``run_dir/tokenizer``), make ``seq_len`` sequences of the documents as ``spec.packing``
    says and set up the batches.

    ``batch_size`` and ``micro_batch_size`` count sequences over all ``world_size`` ranks; this rank's batches
    hold ``micro_batch_size / world_size`` of them, and the ranks of one micro-batch together read exactly the
    sequences a single process would (without overlap), so any world size trains on the same data.
    ``test_loss``: also batches of the test split, made like the validation ones.
    """
    if micro_batch_size % world_size:
        raise ValueError(
            f"micro_batch_size={micro_batch_size} (batch_size when not set) must be a multiple of "
            f"the number of ranks ({world_size})"
        )
    splits = load_splits(spec)
    tok = build_tokenizer(tokenizer, splits.train, Path(run_dir) / "tokenizer")
    packing = dict(packing=spec.packing, pads_in_routing=spec.pads_in_routing)
    train_set = pack_documents(tok, splits.train, seq_len, **packing)
    if len(train_set) < batch_size:
        raise ValueError(
            f"the training split makes {len(train_set)} sequences of {seq_len} tokens "
            f"(packing {spec.packing!r}), fewer than one batch of {batch_size}: add data or lower "
            "batch_size / seq_len"
        )
    val_set = pack_documents(tok, splits.validation, seq_len, **packing)
    accumulation = batch_size // micro_batch_size
    local = micro_batch_size // world_size
    fixed = dict(rank=rank, world_size=world_size, max_batches=eval_batches * accumulation)
    validation = validation_batches(val_set, local, **fixed)
    test = []
    if test_loss:
        if not splits.test:
            raise invalid("eval.test_loss", True, "the data has no test split: set data.test_source")
        test = validation_batches(pack_documents(tok, splits.test, seq_len, **packing), local, **fixed)
    by_source = {
        source: validation_batches(
            pack_documents(tok, documents, seq_len, **packing), local, keep_last=True, **fixed
        )
        for source, documents in splits.validation_by_source.items()
    }
    problems = held_out_problems(splits, accuracy_problems)
    train = BatchIterator(train_set, local, seed=seed, rank=rank, world_size=world_size)
    return RunData(tok, train, validation, problems, test, by_source)


def held_out_problems(splits: DataSplits, limit: int) -> list[tuple[str, str]]:
    """Up to ``limit`` (question, worked answer) pairs for exact match: the test split, else validation."""
    documents = splits.test or splits.validation
    return [qa for qa in map(split_question_answer, documents) if qa is not None][:limit]


def restore_position(batches: BatchIterator, state: dict) -> None:
    """Continue ``batches`` from a ``state_dict()`` saved with any number of ranks.

    A position (epoch, step within the epoch) means the same sequences for any world size as long as the
    global micro-batch (sequences per rank x ranks) is the same, so a run saved on N ranks resumes on M.
    """
    saved, mine = state["batch_size"] * state["world_size"], batches.batch_size * batches.world_size
    if saved != mine:
        raise ValueError(
            f"cannot resume the data position: the checkpoint read micro-batches of {saved} "
            f"sequences over all ranks, this run reads {mine}; keep micro_batch_size the same"
        )
    batches.load_state_dict({**state, "batch_size": batches.batch_size, "world_size": batches.world_size})
