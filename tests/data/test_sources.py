import hashlib
import json
import re
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import coe.data
from coe.data import sources, synthetic_math
from coe.data.sources import DatasetFetchError, DataSpec, TokenizerSpec, hold_out, load_file, load_splits

GSM8K_TRAIN, GSM8K_TEST = "builtin:gsm8k/train.parquet", "builtin:gsm8k/test.parquet"
GSM8K_DIR = sources.BUILTIN_ROOT / "gsm8k"
# The files as packaged in the Chain-of-Experts reference repository (data/gsm8k).
SHA256 = {
    "train.parquet": "8a7c1d0047049ef1b810c63814771c5a550fd90937980cda42c5278f5af3de47",
    "test.parquet": "b08118136d6696a6aa1b7c494698e6ff5774444b4728bef802e78e1878032983",
}
# A GSM8K-format document: the question, then worked lines and the final "#### <number>" line.
QA_DOCUMENT = re.compile(r"^Question: .+\nAnswer: (.+\n)+#### -?[\d,]+$", re.DOTALL)

ROWS = [
    {"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5", "id": 1},
    {"question": "What is 4 * 6?", "answer": "4 * 6 = <<4*6=24>>24\n#### 24", "id": 2},
    {"question": "What is 9 - 1?", "answer": "9 - 1 = <<9-1=8>>8\n#### 8", "id": 3},
]
EXPECTED = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in ROWS]


def _write(path: Path, rows: list[dict], kind: str) -> Path:
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "json":
        path.write_text(json.dumps(rows, indent=1))
    else:  # csv / tsv through pyarrow's writer, which quotes the newlines inside answers
        import pyarrow.csv as pa_csv

        delimiter = "\t" if kind == "tsv" else ","
        pa_csv.write_csv(pa.Table.from_pylist(rows), path, pa_csv.WriteOptions(delimiter=delimiter))
    return path


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "json", "csv", "tsv"])
def test_table_files_render_through_the_gsm8k_template(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path / f"data.{kind}", ROWS, kind)
    assert load_file(path, template="gsm8k") == EXPECTED
    custom = load_file(path, template="Q{id}: {question} => {answer}")
    assert custom == [f"Q{r['id']}: {r['question']} => {r['answer']}" for r in ROWS]


def test_metamathqa_and_text_templates(tmp_path: Path) -> None:
    rows = [{"query": "1+1?", "response": "2", "type": "x"}, {"query": "2+2?", "response": "4", "type": "y"}]
    path = _write(tmp_path / "mm.jsonl", rows, "jsonl")
    assert load_file(path, template="metamathqa") == [
        "Question: 1+1?\nAnswer: 2",
        "Question: 2+2?\nAnswer: 4",
    ]
    path = _write(tmp_path / "t.csv", [{"content": "hello world"}, {"content": "second doc"}], "csv")
    assert load_file(path, template="text", text_field="content") == ["hello world", "second doc"]


def test_gsm8k_file_matches_the_synthetic_format() -> None:
    docs = load_file(GSM8K_TEST, template="gsm8k")
    rows = pq.read_table(GSM8K_DIR / "test.parquet").to_pylist()
    assert len(docs) == len(rows) == 1319
    assert docs[0] == f"Question: {rows[0]['question']}\nAnswer: {rows[0]['answer']}"
    synthetic = synthetic_math.format_problem(synthetic_math.generate_problem("train", 0))
    assert QA_DOCUMENT.match(docs[0]) and QA_DOCUMENT.match(synthetic)


def test_builtin_gsm8k_is_the_packaged_data_with_its_licence() -> None:
    assert sources.builtin_sources() == ("builtin:gsm8k", GSM8K_TEST, GSM8K_TRAIN)
    for name, digest in SHA256.items():
        assert hashlib.sha256((GSM8K_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (GSM8K_DIR / "LICENSE").read_text()
    assert "Copyright (c) 2021 OpenAI" in (GSM8K_DIR / "LICENSE").read_text()
    assert "openai/grade-school-math" in (GSM8K_DIR / "README.md").read_text()
    for name, rows in ((GSM8K_TRAIN, 7473), (GSM8K_TEST, 1319)):
        table = sources.read_table(name)
        assert table.num_rows == rows and table.column_names == ["question", "answer"]
        docs = load_file(name)
        assert len(docs) == rows and all(QA_DOCUMENT.match(d) for d in docs), name


def test_builtin_sources_resolve_in_a_spec_that_keeps_their_names() -> None:
    spec = DataSpec(
        source=["synthetic-math", "builtin:gsm8k"],
        val_source=GSM8K_TEST,
        test_source=GSM8K_TEST,
        synthetic_train=10,
        synthetic_eval=2,
    )
    # The names, not this machine's paths, so that a saved run configuration reads the same everywhere.
    assert spec.source == ("synthetic-math", "builtin:gsm8k")
    assert spec.val_source == spec.test_source == GSM8K_TEST
    s = load_splits(spec)
    assert s.train[10:] == load_file(GSM8K_DIR / "train.parquet")
    assert s.validation == s.test == load_file(GSM8K_DIR / "test.parquet")
    assert sources.resolve_source(GSM8K_TRAIN) == str(GSM8K_DIR / "train.parquet")
    assert sources.resolve_source("data/train.parquet") == "data/train.parquet"


@pytest.mark.parametrize("option", ["source", "val_source", "test_source"])
def test_an_unknown_builtin_fails_when_the_spec_is_built(option: str) -> None:
    listed = "builtin files are: builtin:gsm8k, builtin:gsm8k/test.parquet, builtin:gsm8k/train.parquet"
    for name in ("builtin:gsm8k/validation.parquet", "builtin:mmlu", "builtin:", "builtin:gsm8k/LICENSE"):
        with pytest.raises(ValueError, match=re.escape(f"data.{option}={name!r} is invalid: {listed}")):
            DataSpec(**{option: name})
    with pytest.raises(ValueError, match=re.escape(f"data.source='builtin:nope' is invalid: {listed}")):
        load_file("builtin:nope")


def test_txt_file_is_split_into_paragraphs(tmp_path: Path) -> None:
    paragraphs = [
        "First Citizen:\nBefore we proceed any further, hear me speak.",
        "All:\nSpeak, speak.",
        "First Citizen:\nYou are all resolved rather to die than to famish?",
    ]
    path = tmp_path / "play.txt"
    path.write_text("\n\n".join(paragraphs) + "\n\n\n")
    assert load_file(path) == paragraphs


def test_split_paragraphs_handles_whitespace_lines() -> None:
    assert sources.split_paragraphs("a\nb\n \t\nc\n\n\n\nd  \n") == ["a\nb", "c", "d"]


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_file(tmp_path / "missing.parquet")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="data file is empty"):
        load_file(tmp_path / "empty.jsonl")
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    with pytest.raises(ValueError, match="no documents"):
        load_file(tmp_path / "blank.txt")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"unsupported file extension '\.xlsx'.*\.parquet"):
        load_file(tmp_path / "data.xlsx")
    path = _write(tmp_path / "d.parquet", ROWS, "parquet")
    with pytest.raises(ValueError, match=r"needs column 'query'.*columns are: question, answer, id"):
        load_file(path, template="metamathqa")
    with pytest.raises(
        ValueError,
        match=r"data.template='alpaca' is invalid: unknown template: use one of gsm8k, metamathqa, text",
    ):
        load_file(path, template="alpaca")
    nulls = _write(
        tmp_path / "n.jsonl", [{"question": "q", "answer": None}, {"question": "r", "answer": "a"}], "jsonl"
    )
    with pytest.raises(ValueError, match=r"column 'answer' .* has 1 null"):
        load_file(nulls)


def test_bad_templates() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "data.template='{question!r}' is invalid: fields must be "
            "plain column names like {answer}, not {question}"
        ),
    ):
        sources.resolve_template("{question!r}")
    with pytest.raises(ValueError, match=re.escape("data.template='{a.b}' is invalid: fields must be plain")):
        sources.resolve_template("{a.b}")
    with pytest.raises(ValueError, match=re.escape("data.template='{question' is invalid: bad format")):
        sources.resolve_template("{question")
    with pytest.raises(ValueError, match=re.escape("data.template='{}' is invalid: fields must be plain")):
        sources.resolve_template("{}")
    with pytest.raises(ValueError, match=re.escape("data.text_field='' is invalid: must be a column name")):
        sources.resolve_template("text", "")
    with pytest.raises(ValueError, match=re.escape("data.text_field='a b' is invalid: must be a column")):
        DataSpec(template="text", text_field="a b")
    assert sources.template_fields("{b} {a} {b}") == ["b", "a"]


def test_hold_out_is_deterministic_disjoint_and_order_preserving() -> None:
    docs = [f"doc {i}" for i in range(1000)]
    a = hold_out(docs, val_fraction=0.1, test_fraction=0.05, seed=0)
    b = hold_out(docs, val_fraction=0.1, test_fraction=0.05, seed=0)
    assert a == b
    assert (len(a.train), len(a.validation), len(a.test)) == (850, 100, 50)
    assert not set(a.train) & set(a.validation)
    assert not set(a.train) & set(a.test)
    assert not set(a.validation) & set(a.test)
    assert set(a.train) | set(a.validation) | set(a.test) == set(docs)
    for split in (a.train, a.validation, a.test):
        positions = [docs.index(d) for d in split]
        assert positions == sorted(positions)
    c = hold_out(docs, val_fraction=0.1, seed=1)
    assert c.validation != a.validation and c.test == []
    with pytest.raises(ValueError, match="cannot hold out"):
        hold_out(["a", "b"], val_fraction=0.5, test_fraction=0.4)


def test_hold_out_keeps_copies_together() -> None:
    docs = ["same"] * 50 + [f"d{i}" for i in range(50)]
    for seed in range(20):
        s = hold_out(docs, val_fraction=0.2, test_fraction=0.2, seed=seed)
        where = [
            name for name, split in (("t", s.train), ("v", s.validation), ("e", s.test)) if "same" in split
        ]
        assert len(where) == 1


def test_synthetic_source() -> None:
    spec = DataSpec(synthetic_train=200, synthetic_eval=30, synthetic_min_steps=3, synthetic_max_steps=4)
    s = load_splits(spec)
    assert (len(s.train), len(s.validation), len(s.test)) == (200, 30, 30)
    assert not set(s.train) & set(s.validation) and not set(s.train) & set(s.test)
    assert s.train[0] == synthetic_math.format_problem(
        synthetic_math.generate_problem("train", 0, min_steps=3, max_steps=4)
    )
    assert all(3 <= d.count("<<") <= 4 for d in s.train)


def test_mixed_sources_with_separate_eval_files() -> None:
    spec = DataSpec(
        source=["synthetic-math", str(GSM8K_DIR / "train.parquet")],
        test_source=str(GSM8K_DIR / "test.parquet"),
        synthetic_train=100,
        synthetic_eval=10,
        val_fraction=0.05,
    )
    assert spec.source == ("synthetic-math", str(GSM8K_DIR / "train.parquet"))
    s = load_splits(spec)
    gsm_val = round(0.05 * 7473)
    assert len(s.train) == 100 + 7473 - gsm_val
    assert len(s.validation) == 10 + gsm_val
    assert s.test == load_file(GSM8K_TEST)
    assert not set(s.train) & set(s.validation)


def test_separate_validation_and_test_sources_take_nothing_from_training() -> None:
    # The paper scale's data: GSM8K train for training (beside the generator), GSM8K test for both.
    spec = DataSpec(
        source=["synthetic-math", GSM8K_TRAIN],
        val_source=GSM8K_TEST,
        test_source=GSM8K_TEST,
        synthetic_train=100,
        synthetic_eval=10,
        val_fraction=0.05,
        test_fraction=0.05,
    )
    s = load_splits(spec)
    assert len(s.train) == 100 + 7473 and set(load_file(GSM8K_TRAIN)) <= set(s.train)
    assert s.validation == s.test == load_file(GSM8K_TEST)
    # With only a test file given, validation is still held out of the training file.
    s = load_splits(
        DataSpec(source=GSM8K_TRAIN, test_source=GSM8K_TEST, val_fraction=0.05, test_fraction=0.05)
    )
    assert len(s.validation) == round(0.05 * 7473) and len(s.train) == 7473 - len(s.validation)


def test_directory_source_uses_its_split_files(tmp_path: Path) -> None:
    s = load_splits(DataSpec(source=str(GSM8K_DIR), val_fraction=0.1))
    assert s.test == load_file(GSM8K_TEST)
    assert len(s.validation) == round(0.1 * 7473) and len(s.train) == 7473 - len(s.validation)
    # A directory with its own validation file, in Hugging Face shard naming.
    _write(tmp_path / "train-00000-of-00002.jsonl", ROWS[:2], "jsonl")
    _write(tmp_path / "train-00001-of-00002.jsonl", ROWS[2:], "jsonl")
    _write(tmp_path / "validation.csv", ROWS[:1], "csv")
    s = load_splits(DataSpec(source=str(tmp_path), test_fraction=0.0, val_fraction=0.5))
    assert s.train == EXPECTED and s.validation == EXPECTED[:1] and s.test == []
    # val_source pointing at a directory takes its validation split.
    s = load_splits(DataSpec(source="synthetic-math", synthetic_train=5, val_source=str(tmp_path)))
    assert s.validation == EXPECTED[:1]
    # ... and an evaluation directory needs no training file.
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    _write(evaluation / "validation.jsonl", ROWS[1:2], "jsonl")
    _write(evaluation / "test.csv", ROWS[2:], "csv")
    s = load_splits(
        DataSpec(
            source="synthetic-math",
            synthetic_train=5,
            val_source=str(evaluation),
            test_source=str(evaluation),
        )
    )
    assert s.validation == EXPECTED[1:2] and s.test == EXPECTED[2:]
    (evaluation / "test.csv").unlink()
    with pytest.raises(ValueError, match=r"no test file .* in data directory .*; it holds: validation.jsonl"):
        load_splits(DataSpec(source="synthetic-math", synthetic_train=5, test_source=str(evaluation)))
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"no train file .* in data directory .*; it holds: notes.txt"):
        load_splits(DataSpec(source=str(empty)))


def test_hub_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sources.looks_like_hub_name("openai/gsm8k")
    assert sources.looks_like_hub_name("meta-math/MetaMathQA:default")
    assert not sources.looks_like_hub_name("data/train.parquet")  # a missing file, not a dataset
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not sources.looks_like_hub_name("owner/name")  # an existing directory of that shape is a path
    assert not sources.looks_like_hub_name(str(GSM8K_DIR))
    assert not sources.looks_like_hub_name(GSM8K_TRAIN)


def test_hub_dataset_without_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(
        DatasetFetchError, match=r"could not fetch .*'owner/name'.*pip install datasets.*local file"
    ):
        load_splits(DataSpec(source="owner/name"))


def test_hub_dataset_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_dataset(repo: str, config: str | None) -> None:
        raise ConnectionError("no route to host")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(
        DatasetFetchError, match=r"could not fetch .*ConnectionError: no route to host.*local file"
    ):
        load_splits(DataSpec(source="owner/name:main"))


def test_hub_dataset_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeDataset:
        def __init__(self, rows: list[dict]) -> None:
            self.table = pa.Table.from_pylist(rows)

        def with_format(self, kind: str) -> "FakeDataset":
            assert kind == "arrow"
            return self

        def __getitem__(self, key: slice) -> pa.Table:
            return self.table

    calls = []

    def load_dataset(repo: str, config: str | None) -> dict:
        calls.append((repo, config))
        return {"train": FakeDataset(ROWS), "test": FakeDataset(ROWS[:1])}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    s = load_splits(DataSpec(source="owner/name:main", val_fraction=1 / 3))
    assert calls == [("owner/name", "main")]
    assert s.test == EXPECTED[:1]
    assert len(s.validation) == 1 and sorted(s.train + s.validation) == sorted(EXPECTED)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": ()}, "data.source=() is invalid: must be a non-empty string or a list of them"),
        ({"source": ("synthetic-math", "")}, "data.source=('synthetic-math', '') is invalid: must be a non-"),
        ({"val_fraction": 1.0}, "data.val_fraction=1.0 is invalid: must be in [0, 1)"),
        ({"test_fraction": -0.1}, "data.test_fraction=-0.1 is invalid: must be in [0, 1)"),
        (
            {"val_fraction": 0.6, "test_fraction": 0.5},
            "data.val_fraction + data.test_fraction=1.1 is invalid: must be < 1",
        ),
        ({"template": "chatml"}, "data.template='chatml' is invalid: unknown template"),
        (
            {"synthetic_min_steps": 4, "synthetic_max_steps": 3},
            "data.synthetic_min_steps, data.synthetic_max_steps=(4, 3) is invalid: need 1 <= min <= max <= ",
        ),
        ({"synthetic_train": 0}, "data.synthetic_train=0 is invalid: must be >= 1"),
        ({"synthetic_eval": -1}, "data.synthetic_eval=-1 is invalid: must be >= 0"),
        ({"val_source": " "}, "data.val_source=' ' is invalid: must be None or a non-empty string"),
        ({"test_source": ""}, "data.test_source='' is invalid: must be None or a non-empty string"),
        (
            {"tokenizer": {"vocab": 300}},
            "data.tokenizer.vocab=300 is invalid: not an option; the options here are: path, vocab_size, "
            "min_",
        ),
        (
            {"tokenizer": "bpe"},
            "data.tokenizer='bpe' is invalid: must be a TokenizerSpec or a mapping of its",
        ),
        (
            {"tokenizer": {"vocab_size": 100}},
            "data.tokenizer.vocab_size=100 is invalid: must be None or >= 257",
        ),
    ],
)
def test_spec_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        DataSpec(**kwargs)


def test_tokenizer_spec_nested_in_the_data_spec() -> None:
    # TokenizerSpec lives in sources (DataSpec nests it) and is still exported where it used to be.
    assert coe.data.TokenizerSpec is coe.data.tokenizer.TokenizerSpec is TokenizerSpec
    assert DataSpec().tokenizer == TokenizerSpec() and TokenizerSpec().vocab_size is None  # the model's
    spec = DataSpec(tokenizer={"vocab_size": 300, "min_frequency": 3})  # as a config file gives it
    assert spec.tokenizer == TokenizerSpec(vocab_size=300, min_frequency=3)
    assert DataSpec(tokenizer={}).tokenizer == TokenizerSpec()
    assert DataSpec(tokenizer=TokenizerSpec(path="tok.json")).tokenizer.path == "tok.json"


def test_validation_by_source_holds_each_training_source_s_own_documents() -> None:
    """Two training sources: each one's validation documents, in order, make up the validation split; a
    single source, or validation from val_source, has nothing to tell apart."""
    spec = DataSpec(source=("synthetic-math", "synthetic-metamath"), synthetic_train=10, synthetic_eval=3)
    s = load_splits(spec)
    assert list(s.validation_by_source) == ["synthetic-math", "synthetic-metamath"]
    assert [d for docs in s.validation_by_source.values() for d in docs] == s.validation
    assert s.validation_by_source["synthetic-math"] != s.validation_by_source["synthetic-metamath"]
    assert load_splits(DataSpec(synthetic_train=10, synthetic_eval=3)).validation_by_source == {}
    with_val = DataSpec(source=spec.source, val_source=GSM8K_TEST, synthetic_train=10, synthetic_eval=3)
    assert load_splits(with_val).validation_by_source == {}
