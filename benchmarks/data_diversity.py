"""How varied the training documents are: the MetaMathQA-like generator (synthetic-metamath), the older
synthetic-math and GSM8K train, each read through coe.data. CPU only; about a minute for 64,000 documents.

A line's *skeleton* is the line with every number replaced by one symbol and every capitalised word (names,
and the first word of a sentence) by another, so two lines that differ only in numbers and names count once.
The table gives, per source: documents, the distinct skeletons of the answers' lines, the distinct question
skeletons as a share of the documents and of the distinct questions (a problem with several solutions gives
several documents with one question), and how long the generator took (one process, one core).

    python benchmarks/data_diversity.py                    # 64,000 documents of each generator
    python benchmarks/data_diversity.py --documents 5000
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from coe.data import DataSpec, load_file, load_splits, split_question_answer  # noqa: E402

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
NAME = re.compile(r"\b[A-Z][a-z]*\b")
GSM8K_TRAIN = "builtin:gsm8k/train.parquet"


def skeleton(text: str) -> str:
    """``text`` with numbers replaced by ``N`` and capitalised words by ``A``."""
    return NUMBER.sub("N", NAME.sub("A", text))


def diversity(documents: list[str]) -> dict:
    """Counts of one corpus of ``Question: ...\\nAnswer: ...`` documents."""
    questions, line_skeletons, lines = set(), set(), 0
    distinct_questions = set()
    for document in documents:
        parts = split_question_answer(document)
        if parts is None:
            raise ValueError(f"not a question-answer document: {document[:80]!r}")
        question, answer = parts
        questions.add(skeleton(question))
        distinct_questions.add(question)
        for line in answer.split("\n"):
            lines += 1
            line_skeletons.add(skeleton(line))
    return {
        "documents": len(documents),
        "answer_lines": lines,
        "answer_line_skeletons": len(line_skeletons),
        "question_skeleton_share": len(questions) / len(documents),
        "question_skeletons_per_distinct_question": len(questions) / len(distinct_questions),
    }


def _synthetic(source: str, n: int) -> tuple[list[str], float]:
    start = time.perf_counter()
    documents = load_splits(DataSpec(source=source, synthetic_train=n, synthetic_eval=0)).train
    return documents, time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=64_000, help="documents of each generator")
    args = parser.parse_args(argv)
    rows = []
    for source in ("synthetic-metamath", "synthetic-math"):
        documents, seconds = _synthetic(source, args.documents)
        rows.append({"source": source, **diversity(documents), "seconds": seconds})
    gsm8k = load_file(GSM8K_TRAIN, template="gsm8k")
    rows.append({"source": GSM8K_TRAIN, **diversity(gsm8k), "seconds": None})

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{datetime.date.today().isoformat()}, {cores} CPU cores, Python {platform.python_version()}, "
        f"{platform.machine()}"
    )
    print()
    print(
        "| source | documents | answer lines | distinct answer-line skeletons | distinct question skeletons "
        "(share of documents) | (share of distinct questions) | generation time |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f} s"
        counts = f"{r['documents']:,} | {r['answer_lines']:,} | {r['answer_line_skeletons']:,}"
        shares = f"{r['question_skeleton_share']:.1%} | {r['question_skeletons_per_distinct_question']:.1%}"
        print(f"| {r['source']} | {counts} | {shares} | {seconds} |")
    return rows


if __name__ == "__main__":
    main()
