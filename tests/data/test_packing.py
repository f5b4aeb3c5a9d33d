import json

import numpy as np
import pytest
import torch
from transformers import PreTrainedTokenizerFast

from coe.data import synthetic_math
from coe.data.packing import (
    BatchIterator,
    PackedDataset,
    PaddedDataset,
    make_sequences,
    pack_documents,
    tokenize_documents,
    validation_batches,
)
from coe.data.tokenizer import EOS_TOKEN, train_bpe
from coe.nn.lm_loss import IGNORE_INDEX

T = 8  # sequence length of the synthetic streams


@pytest.fixture(scope="module")
def documents() -> list[str]:
    return [synthetic_math.format_problem(p) for p in synthetic_math.generate("train", 300)]


@pytest.fixture(scope="module")
def tokenizer(documents: list[str]) -> PreTrainedTokenizerFast:
    return train_bpe(documents, vocab_size=500)


def _arange_dataset(n_tokens: int, seq_len: int = T) -> PackedDataset:
    # Token i is the number i, so a sequence tells where it came from: input_ids[0] // seq_len.
    return PackedDataset(np.arange(n_tokens, dtype=np.int32), seq_len)


def _sequence_ids(batch: dict[str, torch.Tensor], seq_len: int = T) -> list[int]:
    return (batch["input_ids"][:, 0] // seq_len).tolist()


def test_tokenize_documents_matches_a_plain_loop(
    tokenizer: PreTrainedTokenizerFast, documents: list[str]
) -> None:
    expected = []
    for d in documents:
        expected += [*tokenizer.encode(d, add_special_tokens=False), tokenizer.eos_token_id]
    for chunk_size in (4096, 7):
        stream = tokenize_documents(tokenizer, documents, chunk_size=chunk_size)
        assert stream.dtype == np.int32
        assert stream.tolist() == expected
    # Decoding the stream gives back the documents, each closed by the end-of-text token.
    assert tokenizer.decode(stream.tolist()) == "".join(d + EOS_TOKEN for d in documents)


def test_packed_sequences_are_shifted_windows() -> None:
    ds = _arange_dataset(8 * 10 + 1)
    assert len(ds) == 10
    for i in range(len(ds)):
        item = ds[i]
        assert item["input_ids"].dtype == torch.int64 and item["input_ids"].shape == (T,)
        assert item["input_ids"].tolist() == list(range(i * T, i * T + T))
        assert item["labels"].tolist() == list(range(i * T + 1, i * T + T + 1))
    # Every token but the first is a label exactly once.
    labels = torch.cat([ds[i]["labels"] for i in range(len(ds))])
    assert labels.tolist() == list(range(1, 81))
    batch = ds.batch([3, 0, 7])
    assert batch["input_ids"].shape == batch["labels"].shape == (3, T)
    assert torch.equal(batch["input_ids"][1], ds[0]["input_ids"]) and torch.equal(
        ds[-1]["labels"], ds[9]["labels"]
    )
    assert len(_arange_dataset(8 * 10 + 8)) == 10  # a tail shorter than T + 1 is dropped
    with pytest.raises(IndexError):
        ds[10]


def test_packed_dataset_errors() -> None:
    with pytest.raises(ValueError, match="too few for one sequence"):
        PackedDataset(np.arange(8), 8)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        PackedDataset(np.arange(8), 0)
    with pytest.raises(ValueError, match="1-D integer array"):
        PackedDataset(np.zeros((4, 4), dtype=np.int64), 2)


def test_batches_cover_an_epoch_without_repeats() -> None:
    ds = _arange_dataset(8 * 103 + 1)  # 103 sequences: 10 steps of 10, 3 dropped
    it = BatchIterator(ds, 10, seed=0)
    assert it.steps_per_epoch == 10
    seen = [i for _ in range(10) for i in _sequence_ids(next(it))]
    assert len(set(seen)) == 100
    assert it.state_dict()["epoch"] == 1 and it.state_dict()["index"] == 0
    second = [i for _ in range(10) for i in _sequence_ids(next(it))]
    assert second != seen, "each epoch has its own order"
    assert seen != sorted(seen), "the order is shuffled"


def test_batches_are_deterministic_from_the_seed() -> None:
    ds = _arange_dataset(8 * 50 + 1)
    a = [next(it)["input_ids"] for it in [BatchIterator(ds, 4, seed=3)] for _ in range(20)]
    b = [next(it)["input_ids"] for it in [BatchIterator(ds, 4, seed=3)] for _ in range(20)]
    c = [next(it)["input_ids"] for it in [BatchIterator(ds, 4, seed=4)] for _ in range(20)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("stop", [0, 3, 7, 12, 25])
def test_resuming_gives_the_batches_of_an_uninterrupted_run(stop: int) -> None:
    ds = _arange_dataset(8 * 29 + 1)  # 29 sequences, 7 steps of 4 per epoch: stops cross epochs
    straight = BatchIterator(ds, 4, seed=11)
    expected = [next(straight) for _ in range(30)]
    first = BatchIterator(ds, 4, seed=11)
    for _ in range(stop):
        next(first)
    state = json.loads(json.dumps(first.state_dict()))  # as a trainer would store it
    resumed = BatchIterator(ds, 4, seed=11)
    resumed.load_state_dict(state)
    for want in expected[stop:]:
        got = next(resumed)
        assert torch.equal(got["input_ids"], want["input_ids"]) and torch.equal(got["labels"], want["labels"])


def test_resuming_with_other_settings_fails() -> None:
    ds = _arange_dataset(8 * 29 + 1)
    state = BatchIterator(ds, 4, seed=11).state_dict()
    with pytest.raises(ValueError, match="batch_size: saved 4, now 2"):
        BatchIterator(ds, 2, seed=11).load_state_dict(state)
    with pytest.raises(ValueError, match="num_sequences: saved 29, now 30"):
        BatchIterator(_arange_dataset(8 * 30 + 1), 4, seed=11).load_state_dict(state)
    with pytest.raises(ValueError, match="bad position"):
        BatchIterator(ds, 4, seed=11).load_state_dict({**state, "index": 7})


def test_ranks_share_out_the_global_batch_without_overlap() -> None:
    ds = _arange_dataset(8 * 100 + 1)
    world = 3
    ranks = [BatchIterator(ds, 4, seed=5, rank=r, world_size=world) for r in range(world)]
    # Reference: one process taking the whole global batch of world * 4 sequences.
    whole = BatchIterator(ds, 4 * world, seed=5)
    assert ranks[0].steps_per_epoch == whole.steps_per_epoch == 8
    seen: list[int] = []
    for _ in range(2 * whole.steps_per_epoch):
        parts = [next(it)["input_ids"] for it in ranks]
        assert torch.equal(torch.cat(parts), next(whole)["input_ids"])
        ids = [i for p in parts for i in (p[:, 0] // T).tolist()]
        assert len(set(ids)) == len(ids)
        seen += ids
    assert len(set(seen[: 8 * 12])) == 8 * 12, "no sequence twice within an epoch"


def test_iterator_errors() -> None:
    ds = _arange_dataset(8 * 10 + 1)
    with pytest.raises(ValueError, match="too few for one step of 2 ranks x 6 sequences"):
        BatchIterator(ds, 6, world_size=2)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size=2\), got 2"):
        BatchIterator(ds, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BatchIterator(ds, 0)


def test_validation_batches_are_fixed_and_sharded() -> None:
    ds = _arange_dataset(8 * 50 + 1)
    batches = validation_batches(ds, 4)
    assert len(batches) == 12
    assert [_sequence_ids(b) for b in batches[:2]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    again = validation_batches(ds, 4)
    assert all(torch.equal(a["labels"], b["labels"]) for a, b in zip(batches, again, strict=True))
    per_rank = [validation_batches(ds, 4, rank=r, world_size=2) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1]) == 6
    ids = [i for batches_r in per_rank for b in batches_r for i in _sequence_ids(b)]
    assert sorted(ids) == list(range(48))
    assert len(validation_batches(ds, 4, max_batches=3)) == 3
    with pytest.raises(ValueError, match="too few for one batch"):
        validation_batches(ds, 30, world_size=2)


@pytest.mark.parametrize("packing", ["packed", "documents", "padded"])
def test_validation_batches_keep_the_last_sequences_in_a_step_of_filler_rows(packing: str) -> None:
    """keep_last: the sequences short of a full step make one more, on every rank, whose missing rows are the
    first sequence with no label; every sequence is labelled exactly once over the ranks, as it is alone."""
    eos = 999
    stream = np.arange(8 * 13 + 1, dtype=np.int32)
    stream[7::9] = eos  # documents of 8 tokens and their EOS
    ds = make_sequences(stream, T, packing=packing, eos_token_id=eos)
    n = len(ds)
    per_rank = [validation_batches(ds, 4, rank=r, world_size=2, keep_last=True) for r in range(2)]
    assert n % 8 and len(per_rank[0]) == len(per_rank[1]) == n // 8 + 1
    first = ds.batch([0])
    for rank, batches in enumerate(per_rank):
        for step, batch in enumerate(batches):
            for row in range(4):
                index = (step * 2 + rank) * 4 + row
                if index < n:  # the sequence as it is alone
                    alone = ds.batch([index])
                    assert all(torch.equal(batch[key][row], alone[key][0]) for key in batch)
                else:  # a filler: the first sequence, inputs intact, no label
                    assert (batch["labels"][row] == IGNORE_INDEX).all()
                    assert all(
                        torch.equal(batch[key][row], first[key][0]) for key in batch if key != "labels"
                    )
    assert len(validation_batches(ds, 4, world_size=2)) == n // 8  # without keep_last: full steps only
    assert len(validation_batches(ds, 4, max_batches=1, keep_last=True)) == 1  # the cap still holds


def test_end_to_end_from_documents(tokenizer: PreTrainedTokenizerFast, documents: list[str]) -> None:
    ds = pack_documents(tokenizer, documents, seq_len=64)
    batch = next(BatchIterator(ds, 8, seed=0))
    assert batch["input_ids"].shape == batch["labels"].shape == (8, 64)
    assert torch.equal(batch["input_ids"][:, 1:], batch["labels"][:, :-1])
    assert int(batch["input_ids"].max()) < len(tokenizer)
    text = "".join(d + EOS_TOKEN for d in documents)
    for row in batch["input_ids"]:
        assert tokenizer.decode(row.tolist()) in text


# Packing "documents" and "padded". A stream of documents, each closed by EOS = 0 (an empty one included).
EOS = 0
DOCS = [[5, 6, 7], [8], [], [9, 10, 11, 12, 13, 14, 15, 16, 17, 18], [19, 20, 21, 22, 23, 24, 25, 26]]
STREAM = np.array([t for doc in DOCS for t in [*doc, EOS]], dtype=np.int32)  # 27 tokens


def test_document_packing_marks_documents_and_ignores_the_label_after_each_eos() -> None:
    packed = make_sequences(STREAM, T, packing="packed")
    docs = make_sequences(STREAM, T, packing="documents", eos_token_id=EOS)
    assert docs.packing == "documents" and len(docs) == len(packed) == 3
    for i in range(len(docs)):
        plain, item = packed[i], docs[i]
        assert torch.equal(item["input_ids"], plain["input_ids"])
        ids, labels, doc_ids = item["input_ids"].tolist(), item["labels"].tolist(), item["document_ids"]
        for j in range(T):
            # A document runs up to and including its EOS; the next one starts after it.
            ends_before = sum(t == EOS for t in ids[:j])
            assert doc_ids[j] == ends_before
            want = IGNORE_INDEX if ids[j] == EOS else plain["labels"][j].item()
            assert labels[j] == want
    assert docs[0]["document_ids"].tolist() == [0, 0, 0, 0, 1, 1, 2, 3]  # [5 6 7 E 8 E E 9]


def reference_rows(doc: list[int], seq_len: int) -> tuple[list[int], list[int], list[int]]:
    """The reference code's row of one document: input ids right-padded with the pad token (EOS) or truncated,
    the attention mask, and its labels: the next token where the loss mask (the attention mask without its
    last position) is 1."""
    ids = (doc + [EOS] * seq_len)[:seq_len]
    mask = [1] * min(len(doc), seq_len) + [0] * max(0, seq_len - len(doc))
    loss_mask = mask[:-1]
    labels = [ids[j + 1] if loss_mask[j] else IGNORE_INDEX for j in range(seq_len - 1)] + [IGNORE_INDEX]
    return ids, mask, labels


def test_padded_rows_are_the_reference_codes() -> None:
    ds = make_sequences(STREAM, T, packing="padded", eos_token_id=EOS)
    assert isinstance(ds, PaddedDataset) and ds.packing == "padded"
    kept = [doc for doc in DOCS if doc]  # the empty document has no row
    assert len(ds) == len(kept)
    batch = ds.batch(np.arange(len(ds)))
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    for i, doc in enumerate(kept):
        ids, mask, labels = reference_rows(doc, T)
        assert batch["input_ids"][i].tolist() == ids
        assert batch["attention_mask"][i].tolist() == mask
        assert batch["labels"][i].tolist() == labels
    # The short document: every token after the first, then EOS as the last token's label.
    assert batch["labels"][0].tolist() == [6, 7, EOS] + [IGNORE_INDEX] * (T - 3)
    # Longer than T: truncated on the right; its last position has no label.
    assert batch["labels"][2].tolist() == [*range(10, 17), IGNORE_INDEX]
    # pads_in_routing: the padding counts in routing.
    counted = make_sequences(STREAM, T, packing="padded", eos_token_id=EOS, pads_in_routing=True)
    routing = counted.batch([0, 1])["routing_mask"]
    assert routing.dtype == torch.bool and routing.all() and routing.shape == (2, T)


def test_make_sequences_errors() -> None:
    with pytest.raises(ValueError, match=r"packing='rows' is invalid"):
        make_sequences(STREAM, T, packing="rows")
    with pytest.raises(ValueError, match="needs eos_token_id"):
        make_sequences(STREAM, T, packing="padded")
    with pytest.raises(ValueError, match=r"pads_in_routing=True is invalid"):
        make_sequences(STREAM, T, packing="documents", eos_token_id=EOS, pads_in_routing=True)
    with pytest.raises(ValueError, match="no non-empty document"):
        PaddedDataset(np.zeros(4, dtype=np.int32), T, eos_token_id=EOS)


@pytest.mark.parametrize("packing", ["documents", "padded"])
def test_other_packings_resume_and_split_among_ranks(packing: str) -> None:
    stream = np.array([t for n in range(200) for t in [*range(1, n % 11 + 2), EOS]], dtype=np.int32)
    ds = make_sequences(stream, T, packing=packing, eos_token_id=EOS)
    straight = BatchIterator(ds, 4, seed=2)
    want = [next(straight) for _ in range(12)]
    first = BatchIterator(ds, 4, seed=2)
    for _ in range(5):
        next(first)
    resumed = BatchIterator(ds, 4, seed=2)
    resumed.load_state_dict(first.state_dict())
    for expected in want[5:]:
        got = next(resumed)
        assert set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in got)
    ranks = [BatchIterator(ds, 2, seed=2, rank=r, world_size=2) for r in range(2)]
    for expected in want[:3]:
        parts = [next(it) for it in ranks]
        assert all(torch.equal(torch.cat([p[k] for p in parts]), expected[k]) for k in expected)
    # A position saved with another packing of the same data does not load; one saved before packings
    # existed (no "packing" entry) is a "packed" position.
    with pytest.raises(ValueError, match="packing"):
        BatchIterator(make_sequences(stream, T, packing="packed"), 4, seed=2).load_state_dict(
            {**straight.state_dict(), "num_sequences": len(make_sequences(stream, T, packing="packed"))}
        )
    packed = BatchIterator(make_sequences(stream, T, packing="packed"), 4, seed=2)
    old = packed.state_dict()
    del old["packing"]
    packed.load_state_dict(old)


def test_padded_end_to_end_from_documents(tokenizer: PreTrainedTokenizerFast, documents: list[str]) -> None:
    ds = pack_documents(tokenizer, documents, seq_len=64, packing="padded")
    assert len(ds) == len(documents)
    batch = next(BatchIterator(ds, 8, seed=0))
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        text = tokenizer.decode(ids[mask.bool()].tolist())
        assert any(d.startswith(text) for d in documents)  # a document, truncated to 64 tokens


def test_data_spec_checks_the_packing() -> None:
    from coe.data import DataSpec

    assert DataSpec().packing == "packed" and not DataSpec().pads_in_routing  # the default stays
    with pytest.raises(ValueError, match=r"data.packing='rows' is invalid: choose 'packed', 'documents'"):
        DataSpec(packing="rows")
    with pytest.raises(ValueError, match=r"data.pads_in_routing=True is invalid: only with data.packing"):
        DataSpec(packing="documents", pads_in_routing=True)
    assert DataSpec(packing="padded", pads_in_routing=True).pads_in_routing
