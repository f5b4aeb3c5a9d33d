"""Data: synthetic math problems, document sources, tokenizers, and packed, resumable batches.

The names below load on first use: the configuration classes (``DataSpec``, ``TokenizerSpec``) come without
torch or transformers, so that ``coe train --help`` starts quickly.
"""

from __future__ import annotations

from coe.lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
__all__ = sorted(_LAZY)
