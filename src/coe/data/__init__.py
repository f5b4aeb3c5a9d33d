"""Data: synthetic math problems, document sources, tokenizers, and packed, resumable batches.

The names below load on first use: the configuration classes (``DataSpec``, ``TokenizerSpec``) come without
torch or transformers, so that ``coe train --help`` starts quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Batch": "coe.data.packing",
    "BatchIterator": "coe.data.packing",
    "DataSpec": "coe.data.sources",
    "DataSplits": "coe.data.sources",
    "DatasetFetchError": "coe.data.sources",
    "EOS_TOKEN": "coe.data.tokenizer",
    "FAMILIES": "coe.data.synthetic_math",
    "MathProblem": "coe.data.synthetic_math",
    "PACKINGS": "coe.data.packing",
    "PackedDataset": "coe.data.packing",
    "PaddedDataset": "coe.data.packing",
    "QA_TEMPLATE": "coe.data.synthetic_math",
    "SYNTHETIC": "coe.data.sources",
    "SYNTHETIC_METAMATH": "coe.data.sources",
    "Step": "coe.data.synthetic_math",
    "TEMPLATES": "coe.data.sources",
    "TokenizerSpec": "coe.data.sources",
    "build_tokenizer": "coe.data.tokenizer",
    "extract_final_answer": "coe.data.synthetic_math",
    "format_problem": "coe.data.synthetic_math",
    "format_prompt": "coe.data.synthetic_math",
    "generate": "coe.data.synthetic_math",
    "generate_problem": "coe.data.synthetic_math",
    "hold_out": "coe.data.sources",
    "iter_problems": "coe.data.synthetic_math",
    "load_file": "coe.data.sources",
    "load_splits": "coe.data.sources",
    "load_tokenizer": "coe.data.tokenizer",
    "make_sequences": "coe.data.packing",
    "pack_documents": "coe.data.packing",
    "resolve_template": "coe.data.sources",
    "split_of_question": "coe.data.synthetic_math",
    "split_question_answer": "coe.data.synthetic_math",
    "tokenize_documents": "coe.data.packing",
    "train_bpe": "coe.data.tokenizer",
    "validation_batches": "coe.data.packing",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'coe.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "EOS_TOKEN",
    "FAMILIES",
    "PACKINGS",
    "QA_TEMPLATE",
    "SYNTHETIC",
    "SYNTHETIC_METAMATH",
    "TEMPLATES",
    "Batch",
    "BatchIterator",
    "DataSpec",
    "DataSplits",
    "DatasetFetchError",
    "MathProblem",
    "PackedDataset",
    "PaddedDataset",
    "Step",
    "TokenizerSpec",
    "build_tokenizer",
    "extract_final_answer",
    "format_problem",
    "format_prompt",
    "generate",
    "generate_problem",
    "hold_out",
    "iter_problems",
    "load_file",
    "load_splits",
    "load_tokenizer",
    "make_sequences",
    "pack_documents",
    "resolve_template",
    "split_of_question",
    "split_question_answer",
    "tokenize_documents",
    "train_bpe",
    "validation_batches",
]
