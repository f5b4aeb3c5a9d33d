"""Text documents for training and evaluation: the synthetic generator, local files, Hugging Face datasets.

A *source* is one of

- ``"synthetic-math"``: the embedded generator of ``synthetic_math``, with its own train / validation / test
  splits;
- ``"synthetic-metamath"``: the embedded MetaMathQA-like generator of ``coe.data.metamath`` (GSM8K's kinds and
  MATH's topics in MetaMathQA's four forms), with its own splits;
- a local file: ``.parquet``, ``.jsonl``, ``.json``, ``.csv``, ``.tsv`` (rows rendered through a template) or
  ``.txt`` (one document per paragraph, i.e. per run of text between blank lines);
- a local directory of split files named ``train*``, ``validation*`` / ``val*`` / ``valid*`` / ``dev*`` and
  ``test*`` (as GSM8K or a downloaded Hugging Face dataset come);
- data shipped in the package, ``builtin:<path>`` (``builtin_sources()`` lists them): ``builtin:gsm8k``
  (GSM8K, MIT licence: its train and test split files), ``builtin:gsm8k/train.parquet`` (7,473 problems),
  ``builtin:gsm8k/test.parquet`` (1,319). The name, not the path it resolves to, is what a spec keeps, so
  a saved run configuration reads the same on every machine;
- a Hugging Face dataset ``owner/name`` or ``owner/name:config``: any string that is not an existing path
  and looks like that. It needs the optional ``datasets`` package and network access.

Tabular rows become documents through a *template*: a named one (``gsm8k``: question / answer,
``metamathqa``: query / response, ``text``: the single column ``text_field``) or a format string such as
``"Question: {question}\\nAnswer: {answer}"``. The math templates give the same document format as
``synthetic_math.format_problem``, so synthetic and real problems look alike to the model.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from coe.checks import from_dict, invalid
from coe.data import metamath, synthetic_math
from coe.data.synthetic_math import QA_TEMPLATE

SYNTHETIC = "synthetic-math"
SYNTHETIC_METAMATH = "synthetic-metamath"
BUILTIN = "builtin:"
"""Prefix of the sources shipped in the package, named by their path under ``BUILTIN_ROOT``."""
# Package data lies beside this module: pip installs packages as directories, never zipped.
BUILTIN_ROOT = Path(__file__).resolve().parent / "builtin"

TEMPLATES: dict[str, str] = {
    "gsm8k": QA_TEMPLATE,  # columns question, answer
    "metamathqa": "Question: {query}\nAnswer: {response}",  # columns query, response
}
"""Named templates; ``"text"`` (the column ``text_field`` as it is) is resolved by ``resolve_template``."""

TABLE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".tsv")
TEXT_SUFFIXES = (".txt",)

# File-name stems (before the first "-" or ".") that name each split in a dataset directory.
_SPLIT_STEMS = {
    "train": ("train",),
    "validation": ("validation", "val", "valid", "dev"),
    "test": ("test",),
}
_HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$")


class DatasetFetchError(RuntimeError):
    """A Hugging Face dataset could not be fetched (no ``datasets`` package, no network, no such dataset)."""


MIN_VOCAB_SIZE = 256 + 1  # every byte, plus the end-of-text token


@dataclass(frozen=True)
class TokenizerSpec:
    """Which tokenizer a run uses (``data.tokenizer``). Checked when built."""

    path: str | None = None
    """A ``tokenizer.json`` file or a Hugging Face tokenizer directory to load; None trains a byte-level BPE
    on the training documents (kept in the run directory)."""
    vocab_size: int | None = None
    """Vocabulary size of the trained BPE, end-of-text token included (at least 257: 256 bytes and it); None:
    the model's vocabulary size."""
    min_frequency: int = 2
    """A pair of tokens is merged only if it occurs at least this often in the training text."""
    max_train_chars: int = 20_000_000
    """Train on an evenly spaced sample of the documents of about this many characters, to bound the time."""

    def __post_init__(self) -> None:
        if self.path is not None and not self.path.strip():
            raise invalid("data.tokenizer.path", self.path, "must be None or a tokenizer path")
        if self.vocab_size is not None and self.vocab_size < MIN_VOCAB_SIZE:
            raise invalid(
                "data.tokenizer.vocab_size",
                self.vocab_size,
                f"must be None or >= {MIN_VOCAB_SIZE} (256 bytes + end of text)",
            )
        if self.min_frequency < 1:
            raise invalid("data.tokenizer.min_frequency", self.min_frequency, "must be >= 1")
        if self.max_train_chars < 1:
            raise invalid("data.tokenizer.max_train_chars", self.max_train_chars, "must be >= 1")


@dataclass(frozen=True)
class DataSplits:
    """Documents of each split."""

    train: list[str]
    validation: list[str]
    test: list[str]
    validation_by_source: dict[str, list[str]] = field(default_factory=dict)
    """With no ``val_source`` and validation documents from two or more distinct training sources: each such
    source's, whose concatenation in the sources' order is ``validation``; empty otherwise."""


@dataclass(frozen=True)
class DataSpec:
    """Where the documents come from and how they are split.

    Values are checked when the spec is built; files are only read by ``load_splits``.
    """

    source: str | tuple[str, ...] = SYNTHETIC
    """Training data: ``"synthetic-math"``, ``"synthetic-metamath"``, a local file or directory, data shipped
    in the package (``builtin:gsm8k``, ``builtin:gsm8k/train.parquet``, ``builtin:gsm8k/test.parquet``; kept
    as named, not as the path they resolve to) or a Hugging Face dataset ``owner/name[:config]``. Several
    sources (a tuple) are mixed by concatenating their documents."""
    template: str = "gsm8k"
    """How table rows become documents: ``"gsm8k"``, ``"metamathqa"``, ``"text"`` or a format string with
    ``{column}`` fields. Not used by ``.txt`` files and the synthetic generator, whose documents are ready."""
    text_field: str = "text"
    """The column of the ``"text"`` template."""
    val_source: str | None = None
    """Validation data, any kind of single ``source`` (a file: all its documents; a directory or dataset: its
    validation split; ``"synthetic-math"``, ``"synthetic-metamath"``: the generator's validation split). None:
    each training source's own validation split."""
    test_source: str | None = None
    """Test data, as ``val_source`` (the test split of directories and datasets)."""
    val_fraction: float = 0.05
    """Share of a source's documents held out for validation when it has no validation split of its own and
    ``val_source`` is not set."""
    test_fraction: float = 0.0
    """Share held out for testing when a source has no test split of its own and ``test_source`` is not
    set."""
    split_seed: int = 0
    """Seed of the held-out selection (which documents go to validation / test)."""
    synthetic_train: int = 50_000
    """Number of training documents of a synthetic source (one per problem of ``synthetic-math``; a problem of
    ``synthetic-metamath`` in the answer-augmentation form may give several, one per solution)."""
    synthetic_eval: int = 500
    """Number of documents of a synthetic source in each of the validation and test splits."""
    synthetic_min_steps: int = 2
    """Fewest computation steps of a ``synthetic-math`` problem."""
    synthetic_max_steps: int = 8
    """Most computation steps of a ``synthetic-math`` problem."""
    synthetic_seed: int = 0
    """Seed of the synthetic generators."""
    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)
    """The tokenizer: loaded from a path, or a byte-level BPE trained on the training split."""
    packing: Literal["packed", "documents", "padded"] = "packed"
    """How documents become training and validation sequences: ``"packed"`` joins them into one stream cut
    into ``seq_len`` windows, attention crossing documents; ``"documents"`` packs the same way but attention
    stays within each document and positions restart at each one; ``"padded"`` puts one document per row,
    truncated to ``seq_len`` or padded with EOS, as the reference code trained (``coe.data.packing``)."""
    pads_in_routing: bool = False
    """With ``packing: padded``: count the padding in the routing losses (balance, z), the routing counts
    and the router metrics as if it were text, as the reference code's sequence-wise balance loss did (for
    matching its runs). False: padding is routed but counted nowhere."""

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            object.__setattr__(self, "source", tuple(self.source))  # a list from a config file
        if isinstance(self.tokenizer, Mapping):  # a mapping from a config file
            spec = from_dict(TokenizerSpec, dict(self.tokenizer), name="data.tokenizer")
            object.__setattr__(self, "tokenizer", spec)
        if not isinstance(self.tokenizer, TokenizerSpec):
            raise invalid(
                "data.tokenizer", self.tokenizer, "must be a TokenizerSpec or a mapping of its fields"
            )
        if not self.sources or any(not isinstance(s, str) or not s.strip() for s in self.sources):
            raise invalid("data.source", self.source, "must be a non-empty string or a list of them")
        for source in self.sources:
            resolve_source(source)  # an unknown builtin name fails here, not when the files are read
        for name in ("val_source", "test_source"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise invalid(f"data.{name}", value, "must be None or a non-empty string")
            if value is not None:
                resolve_source(value, option=f"data.{name}")
        resolve_template(self.template, self.text_field)
        if self.packing not in ("packed", "documents", "padded"):
            raise invalid("data.packing", self.packing, "choose 'packed', 'documents' or 'padded'")
        if self.pads_in_routing and self.packing != "padded":
            raise invalid("data.pads_in_routing", self.pads_in_routing, "only with data.packing 'padded'")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise invalid(f"data.{name}", value, "must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise invalid(
                "data.val_fraction + data.test_fraction",
                self.val_fraction + self.test_fraction,
                "must be < 1",
            )
        if self.synthetic_train < 1:
            raise invalid("data.synthetic_train", self.synthetic_train, "must be >= 1")
        if self.synthetic_eval < 0:
            raise invalid("data.synthetic_eval", self.synthetic_eval, "must be >= 0")
        if not 1 <= self.synthetic_min_steps <= self.synthetic_max_steps <= synthetic_math.MAX_STEPS:
            raise invalid(
                "data.synthetic_min_steps, data.synthetic_max_steps",
                (self.synthetic_min_steps, self.synthetic_max_steps),
                f"need 1 <= min <= max <= {synthetic_math.MAX_STEPS}",
            )

    @property
    def sources(self) -> tuple[str, ...]:
        """The training sources as a tuple."""
        return (self.source,) if isinstance(self.source, str) else self.source


# --------------------------------------------------------------------------------------------------------
# Data shipped in the package


@cache
def builtin_sources() -> tuple[str, ...]:
    """The ``builtin:`` source names, sorted: every data file under ``BUILTIN_ROOT`` and every directory
    holding one (its licence and README are not data files)."""
    names: set[str] = set()
    for path in BUILTIN_ROOT.rglob("*"):
        if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES + TEXT_SUFFIXES:
            relative = path.relative_to(BUILTIN_ROOT)
            names.add(relative.as_posix())
            names.update(parent.as_posix() for parent in relative.parents if parent != Path("."))
    return tuple(BUILTIN + name for name in sorted(names))


def resolve_source(source: str, *, option: str = "data.source") -> str:
    """The local path that a ``builtin:`` source names; any other source as it is.

    An unknown builtin name raises ``ValueError`` naming ``option`` and listing the builtin names.
    """
    if not source.startswith(BUILTIN):
        return source
    if source not in builtin_sources():
        raise invalid(option, source, f"builtin files are: {', '.join(builtin_sources())}")
    return str(BUILTIN_ROOT / source.removeprefix(BUILTIN))


# --------------------------------------------------------------------------------------------------------
# Templates


def resolve_template(template: str, text_field: str = "text") -> str:
    """The format string of ``template``: a named template, ``"text"`` or a format string itself."""
    if template == "text":
        if not text_field or not text_field.isidentifier():
            raise invalid("data.text_field", text_field, "must be a column name")
        return "{" + text_field + "}"
    if template in TEMPLATES:
        return TEMPLATES[template]
    if "{" not in template:
        raise invalid(
            "data.template",
            template,
            f"unknown template: use one of {', '.join([*TEMPLATES, 'text'])} "
            'or a format string with {column} fields, e.g. "Question: {question}\\nAnswer: {answer}"',
        )
    template_fields(template)  # checks the syntax
    return template


def template_fields(fmt: str) -> list[str]:
    """The column names a format string uses, in order of first use."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as e:
        raise invalid("data.template", fmt, f"bad format string ({e})") from None
    fields: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise invalid(
                "data.template", fmt, f"fields must be plain column names like {{answer}}, not {{{name}}}"
            )
        if name not in fields:
            fields.append(name)
    if not fields:
        raise invalid("data.template", fmt, "uses no {column} field")
    return fields


def render_table(table: pa.Table, fmt: str, *, origin: str) -> list[str]:
    """One document per row of ``table``: ``fmt`` filled with the row's columns.

    ``origin`` names the data in error messages (a missing column names it and lists the columns there are).
    """
    fields = template_fields(fmt)
    for name in fields:
        if name not in table.column_names:
            raise ValueError(
                f"template {fmt!r} needs column {name!r}, which {origin} lacks; "
                f"its columns are: {', '.join(table.column_names)}"
            )
    columns = []
    for name in fields:
        column = table.column(name)
        if column.null_count:
            raise ValueError(f"column {name!r} of {origin} has {column.null_count} null values")
        columns.append(column.to_pylist())
    return [fmt.format_map(dict(zip(fields, values, strict=True))) for values in zip(*columns, strict=True)]


# --------------------------------------------------------------------------------------------------------
# Local files


def split_paragraphs(text: str) -> list[str]:
    """The paragraphs of ``text`` (runs of text between blank lines), stripped, empty ones dropped."""
    return [p.strip() for p in re.split(r"\n[ \t\r\f\v]*\n", text) if p.strip()]


def read_table(path: str | Path) -> pa.Table:
    """A table file read with pyarrow: ``.parquet``, ``.jsonl`` / ``.json`` (JSON Lines, or one JSON array of
    objects), ``.csv``, ``.tsv``."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix in (".jsonl", ".json"):
        with path.open("rb") as f:
            head = f.read(4096).lstrip()
        if head.startswith(b"["):  # a single JSON array, which pyarrow's JSON Lines reader does not take
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not all(isinstance(row, dict) for row in rows):
                raise ValueError(f"{path} must hold a JSON array of objects (one per row)")
            return pa.Table.from_pylist(rows)
        return pa_json.read_json(path)
    if suffix == ".csv":
        return pa_csv.read_csv(path)
    if suffix == ".tsv":
        return pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(delimiter="\t"))
    raise ValueError(_unsupported(path))


def load_file(path: str | Path, *, template: str = "gsm8k", text_field: str = "text") -> list[str]:
    """The documents of a local file: the paragraphs of a ``.txt`` file or table rows through ``template``."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        documents = split_paragraphs(path.read_text(encoding="utf-8"))
    elif suffix in TABLE_SUFFIXES:
        fmt = resolve_template(template, text_field)
        documents = render_table(read_table(path), fmt, origin=str(path))
    else:
        raise ValueError(_unsupported(path))
    if not documents:
        raise ValueError(f"data file has no documents: {path}")
    return documents


def _existing_file(path: str | Path) -> Path:
    path = Path(resolve_source(path) if isinstance(path, str) else path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if path.suffix.lower() not in TABLE_SUFFIXES + TEXT_SUFFIXES:
        raise ValueError(_unsupported(path))
    if path.stat().st_size == 0:
        raise ValueError(f"data file is empty: {path}")
    return path


def _unsupported(path: Path) -> str:
    return (
        f"unsupported file extension {path.suffix!r} of {path}; "
        f"supported: {', '.join(TABLE_SUFFIXES + TEXT_SUFFIXES)}"
    )


def split_files(directory: str | Path) -> dict[str, list[Path]]:
    """The data files of each split in ``directory``, by name (``train-00000-of-00002.parquet`` is train).
    Splits without files are left out; which splits are needed is the caller's to say."""
    directory = Path(directory)
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix.lower() not in TABLE_SUFFIXES + TEXT_SUFFIXES:
            continue
        stem = re.split(r"[-.]", path.name.lower(), maxsplit=1)[0]
        for split, stems in _SPLIT_STEMS.items():
            if stem in stems:
                found.setdefault(split, []).append(path)
    return found


# --------------------------------------------------------------------------------------------------------
# Hugging Face datasets


def looks_like_hub_name(source: str) -> bool:
    """Whether ``source`` reads as ``owner/name[:config]`` and is not a local path or file name."""
    if Path(source).exists() or not _HUB_NAME.match(source):
        return False
    return Path(source.split(":")[0]).suffix.lower() not in TABLE_SUFFIXES + TEXT_SUFFIXES


def load_hub_tables(name: str) -> dict[str, pa.Table]:
    """The splits of Hugging Face dataset ``owner/name[:config]`` as Arrow tables, via ``datasets``."""
    repo, _, config = name.partition(":")
    hint = (
        "; download it where there is network access and pass the local file "
        "(parquet, jsonl, csv, txt) instead"
    )
    try:
        import datasets  # optional dependency
    except ImportError:
        raise DatasetFetchError(
            f"could not fetch Hugging Face dataset {name!r}: the `datasets` package is not installed "
            f"(pip install datasets){hint}"
        ) from None
    try:
        loaded: Any = datasets.load_dataset(repo, config or None)
    except Exception as e:  # network, authentication, missing dataset: all mean the same to the caller
        raise DatasetFetchError(
            f"could not fetch Hugging Face dataset {name!r} ({type(e).__name__}: {e}){hint}"
        ) from e
    return {split: ds.with_format("arrow")[:] for split, ds in loaded.items()}


# --------------------------------------------------------------------------------------------------------
# Splits


def hold_out(
    documents: list[str], *, val_fraction: float, test_fraction: float = 0.0, seed: int = 0
) -> DataSplits:
    """Splits ``documents`` into train / validation / test, deterministically and without shared texts.

    Documents are ranked by a hash of ``(seed, text)``; the first ``round(val_fraction * N)`` (at least one
    when the fraction is positive) go to validation, the next ones to test. Copies of a held-out text are
    removed from the later splits, so no text is in two splits. The order within each split is kept.
    """
    n = len(documents)
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    if n_val + n_test >= n:
        raise ValueError(
            f"cannot hold out {n_val} validation and {n_test} test documents of only {n}: "
            "use more data or smaller fractions"
        )

    def key(i: int) -> tuple[bytes, int]:
        return hashlib.blake2b(f"{seed}\0{documents[i]}".encode(), digest_size=8).digest(), i

    ranked = sorted(range(n), key=key)
    val_ids, test_ids = set(ranked[:n_val]), set(ranked[n_val : n_val + n_test])
    val = [documents[i] for i in range(n) if i in val_ids]
    val_texts = set(val)
    test = [documents[i] for i in range(n) if i in test_ids and documents[i] not in val_texts]
    held = val_texts | set(test)
    train = [d for i, d in enumerate(documents) if i not in val_ids and i not in test_ids and d not in held]
    return DataSplits(train=train, validation=val, test=test)


def load_splits(spec: DataSpec) -> DataSplits:
    """The train / validation / test documents that ``spec`` describes.

    Each training source contributes its training documents and, unless ``val_source`` / ``test_source``
    say otherwise, its own validation and test documents: a synthetic split, a directory's or dataset's split
    file, or a share held out with ``hold_out``.
    """
    parts = [_source_splits(source, spec) for source in spec.sources]
    train = [d for part in parts for d in part.train]
    val = (
        _split_of(spec.val_source, "validation", spec)
        if spec.val_source
        else [d for p in parts for d in p.validation]
    )
    test = (
        _split_of(spec.test_source, "test", spec) if spec.test_source else [d for p in parts for d in p.test]
    )
    by_source = {s: p.validation for s, p in zip(spec.sources, parts, strict=True) if p.validation}
    if spec.val_source or len(by_source) < 2 or len(set(spec.sources)) < len(spec.sources):
        by_source = {}  # one source of validation documents, or one named twice: nothing to tell apart
    return DataSplits(train=train, validation=val, test=test, validation_by_source=by_source)


def _synthetic(source: str, split: str, n: int, spec: DataSpec) -> list[str]:
    """The first ``n`` documents of ``split`` of the generator that ``source`` names."""
    if source == SYNTHETIC_METAMATH:
        return metamath.generate_documents(split, n, seed=spec.synthetic_seed)
    problems = synthetic_math.generate(
        split,
        n,
        seed=spec.synthetic_seed,
        min_steps=spec.synthetic_min_steps,
        max_steps=spec.synthetic_max_steps,
    )
    return [synthetic_math.format_problem(p) for p in problems]


def _source_splits(source: str, spec: DataSpec) -> DataSplits:
    """Train / validation / test documents of one source."""
    if source in (SYNTHETIC, SYNTHETIC_METAMATH):
        return DataSplits(
            train=_synthetic(source, "train", spec.synthetic_train, spec),
            validation=_synthetic(source, "validation", spec.synthetic_eval, spec),
            test=_synthetic(source, "test", spec.synthetic_eval, spec),
        )
    source = resolve_source(source)
    # Hold out only what neither val_source / test_source nor the source itself provides: a share held out
    # for a split that comes from elsewhere would be lost to training.
    val_fraction = 0.0 if spec.val_source else spec.val_fraction
    test_fraction = 0.0 if spec.test_source else spec.test_fraction
    by_split = _named_splits(source, spec)
    if by_split is None:  # a single file
        return hold_out(
            load_file(source, template=spec.template, text_field=spec.text_field),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=spec.split_seed,
        )
    if "train" not in by_split:
        raise ValueError(_missing_split(source, "train", by_split))
    rest = hold_out(
        by_split["train"],
        val_fraction=0.0 if "validation" in by_split else val_fraction,
        test_fraction=0.0 if "test" in by_split else test_fraction,
        seed=spec.split_seed,
    )
    return DataSplits(
        train=rest.train,
        validation=by_split.get("validation", rest.validation),
        test=by_split.get("test", rest.test),
    )


def _named_splits(source: str, spec: DataSpec) -> dict[str, list[str]] | None:
    """The documents of each split a directory or hub dataset provides; None for a single file."""
    path = Path(source)
    if path.is_dir():
        return {
            split: [
                d for f in files for d in load_file(f, template=spec.template, text_field=spec.text_field)
            ]
            for split, files in split_files(path).items()
        }
    if path.exists() or not looks_like_hub_name(source):
        return None  # a file; load_file reports a missing one or a bad extension
    fmt = resolve_template(spec.template, spec.text_field)
    tables = load_hub_tables(source)
    by_split: dict[str, list[str]] = {}
    for name, table in tables.items():
        split = next((s for s, stems in _SPLIT_STEMS.items() if name.lower() in stems), None)
        if split is not None and split not in by_split:
            by_split[split] = render_table(table, fmt, origin=f"dataset {source!r} split {name!r}")
    return by_split


def _missing_split(source: str, split: str, by_split: dict[str, list[str]]) -> str:
    """The error for a directory or dataset without ``split``, naming what it does hold."""
    if Path(source).is_dir():
        files = ", ".join(p.name for p in sorted(Path(source).iterdir())) or "nothing"
        return (
            f"no {split} file ({split}.parquet, {split}.jsonl, ...) in data directory {source}; "
            f"it holds: {files}"
        )
    return f"dataset {source!r} has no {split} split; its splits are: {', '.join(by_split) or 'none we know'}"


def _split_of(source: str, split: str, spec: DataSpec) -> list[str]:
    """The documents of ``split`` from an evaluation source (``val_source`` / ``test_source``)."""
    if source in (SYNTHETIC, SYNTHETIC_METAMATH):
        return _synthetic(source, split, spec.synthetic_eval, spec)
    source = resolve_source(source)  # known to be valid: the spec checked it
    by_split = _named_splits(source, spec)
    if by_split is None:
        return load_file(source, template=spec.template, text_field=spec.text_field)
    if split not in by_split:
        raise ValueError(_missing_split(source, split, by_split))
    return by_split[split]
