"""Tokenizers: a byte-level BPE trained on the training documents, or one loaded from disk.

Every function returns a ``transformers.PreTrainedTokenizerFast`` with ``eos_token`` and ``pad_token`` set,
so that the rest of the code has one interface (``eos_token_id``, ``encode`` / ``decode``, batch calls,
``save_pretrained``).

The trained tokenizer is GPT-2's design: bytes are mapped to printable characters (the ByteLevel
pre-tokenizer), so every text encodes without unknown tokens, and ``<|endoftext|>`` is the only special
token, used both as end of document and as padding.

On disk, ``build_tokenizer`` keeps a trained tokenizer in a directory: ``tokenizer.json`` and
``tokenizer_config.json`` (as written by ``save_pretrained``) and ``bpe_training.json``, which records the
vocabulary size, the minimum pair frequency and a fingerprint of the training text, so that a directory is
only reused for the data and settings it was trained with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from coe.checks import invalid
from coe.data.sources import TokenizerSpec
from coe.layout import weights_dir

EOS_TOKEN = "<|endoftext|>"
# End-of-text tokens of common tokenizers, tried in order when a loaded tokenizer does not name its own.
EOS_CANDIDATES = (EOS_TOKEN, "</s>", "<|end_of_text|>", "<eos>", "<|im_end|>")
TRAINING_FILE = "bpe_training.json"


def sample_documents(documents: Sequence[str], max_chars: int) -> list[str]:
    """Every k-th document, k the smallest stride that brings the total to about ``max_chars`` or fewer.

    Taking a stride rather than a prefix keeps the mix of sources (which are concatenated) in the sample.
    """
    total = sum(len(d) for d in documents)
    stride = max(1, -(-total // max_chars))  # ceil division
    return list(documents[::stride])


def train_bpe(
    documents: Sequence[str], *, vocab_size: int, min_frequency: int = 2, max_chars: int = 20_000_000
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``documents``, sampled down to about ``max_chars`` characters."""
    spec = TokenizerSpec(vocab_size=vocab_size, min_frequency=min_frequency, max_train_chars=max_chars)
    if not documents:
        raise ValueError("cannot train a tokenizer on no documents")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in the data or not
        show_progress=False,
    )
    sample = sample_documents(documents, spec.max_train_chars)
    bpe.train_from_iterator(sample, trainer=trainer, length=len(sample))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN)


def load_tokenizer(path: str | Path, *, eos_token: str | None = None) -> PreTrainedTokenizerFast:
    """A tokenizer from a ``tokenizer.json`` file or a Hugging Face tokenizer directory (never the network).

    The end-of-text token is ``eos_token`` if given, else the tokenizer's own, else the first of
    ``EOS_CANDIDATES`` in its vocabulary. A tokenizer without padding token pads with it. A training
    checkpoint ``step-N`` reads ``step-N/model`` (:func:`coe.layout.weights_dir`).
    """
    path = Path(path)
    if path.is_dir():
        path = weights_dir(path)
    if path.is_file():
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path))
    elif (path / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not isinstance(tokenizer, PreTrainedTokenizerFast):
            raise ValueError(f"{path} holds a {type(tokenizer).__name__}, not a fast (tokenizers) tokenizer")
    elif (path / "tokenizer.json").is_file():
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
    else:
        raise FileNotFoundError(
            f"no tokenizer at {path}: expected a tokenizer.json file or a directory with one"
        )
    vocab = tokenizer.get_vocab()
    if eos_token is not None:
        if eos_token not in vocab:
            raise ValueError(f"eos_token {eos_token!r} is not in the vocabulary of the tokenizer at {path}")
        tokenizer.eos_token = eos_token
    elif tokenizer.eos_token is None:
        found = next((t for t in EOS_CANDIDATES if t in vocab), None)
        if found is None:
            raise ValueError(
                f"the tokenizer at {path} has no end-of-text token and none of {EOS_CANDIDATES}: "
                "pass eos_token"
            )
        tokenizer.eos_token = found
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def fingerprint(documents: Sequence[str]) -> str:
    """A hash of the documents' texts and boundaries, to recognise the data a tokenizer was trained on."""
    h = hashlib.blake2b(digest_size=16)
    for d in documents:
        h.update(len(d).to_bytes(8, "little"))
        h.update(d.encode())
    return h.hexdigest()


def build_tokenizer(
    spec: TokenizerSpec, documents: Sequence[str], directory: str | Path | None = None
) -> PreTrainedTokenizerFast:
    """The tokenizer ``spec`` asks for.

    With ``spec.path`` it is loaded from there. Otherwise a BPE is trained on ``documents``; with a
    ``directory``, it is saved there and reused by later calls, provided it was trained with the same
    settings on the same documents (a mismatch raises ``ValueError`` rather than silently mixing them).
    """
    if spec.path is not None:
        return load_tokenizer(spec.path)
    if spec.vocab_size is None:
        raise invalid(
            "data.tokenizer.vocab_size",
            None,
            "must be set to train a BPE (None stands for the model's vocabulary size, which the "
            "caller fills in)",
        )
    record = {
        "vocab_size": spec.vocab_size,
        "min_frequency": spec.min_frequency,
        "documents": fingerprint(sample_documents(documents, spec.max_train_chars)),
    }
    if directory is not None and (Path(directory) / "tokenizer.json").is_file():
        directory = Path(directory)
        saved_record = directory / TRAINING_FILE
        if saved_record.is_file():
            saved = json.loads(saved_record.read_text())
            if saved != record:
                changed = ", ".join(k for k in record if saved.get(k) != record[k])
                raise ValueError(
                    f"the tokenizer in {directory} was trained with other settings or data "
                    f"({changed} differ): delete it or choose another directory"
                )
        return load_tokenizer(directory)
    tokenizer = train_bpe(
        documents,
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        max_chars=spec.max_train_chars,
    )
    if directory is not None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(directory)
        (directory / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return tokenizer
