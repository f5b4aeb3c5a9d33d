import json
import re
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coe.data import sources, synthetic_math
from coe.data.sources import DatasetFetchError, DataSpec, hold_out, load_file, load_splits

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GSM8K = DATA / "gsm8k"
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"

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
    docs = load_file(GSM8K / "test.parquet", template="gsm8k")
    rows = pq.read_table(GSM8K / "test.parquet").to_pylist()
    assert len(docs) == len(rows) == 1319
    assert docs[0] == f"Question: {rows[0]['question']}\nAnswer: {rows[0]['answer']}"
    synthetic = synthetic_math.format_problem(synthetic_math.generate_problem("train", 0))
    pattern = re.compile(r"^Question: .+\nAnswer: (.+\n)+#### [\d,]+$", re.DOTALL)
    assert pattern.match(docs[0]) and pattern.match(synthetic)


def test_txt_file_is_split_into_paragraphs() -> None:
    docs = load_file(SHAKESPEARE)
    text = SHAKESPEARE.read_text()
    # Reference: paragraphs are separated by blank lines (tinyshakespeare has no whitespace-only lines).
    reference = [p.strip() for p in text.split("\n\n") if p.strip()]
    assert docs == reference
    assert docs[0] == "First Citizen:\nBefore we proceed any further, hear me speak."
    assert all(d and "\n\n" not in d for d in docs)


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
    with pytest.raises(ValueError, match="needs column 'query'.*columns are: question, answer, id"):
        load_file(path, template="metamathqa")
    with pytest.raises(ValueError, match="unknown template 'alpaca'.*gsm8k, metamathqa, text"):
        load_file(path, template="alpaca")
    nulls = _write(
        tmp_path / "n.jsonl", [{"question": "q", "answer": None}, {"question": "r", "answer": "a"}], "jsonl"
    )
    with pytest.raises(ValueError, match="column 'answer' .* has 1 null"):
        load_file(nulls)


def test_bad_templates() -> None:
    with pytest.raises(ValueError, match="plain column names"):
        sources.resolve_template("{question!r}")
    with pytest.raises(ValueError, match="plain column names"):
        sources.resolve_template("{a.b}")
    with pytest.raises(ValueError, match="bad template"):
        sources.resolve_template("{question")
    with pytest.raises(ValueError, match="text_field must be a column name"):
        sources.resolve_template("text", "")
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
        source=["synthetic-math", str(GSM8K / "train.parquet")],
        test_source=str(GSM8K / "test.parquet"),
        synthetic_train=100,
        synthetic_eval=10,
        val_fraction=0.05,
    )
    assert spec.source == ("synthetic-math", str(GSM8K / "train.parquet"))
    s = load_splits(spec)
    gsm_val = round(0.05 * 7473)
    assert len(s.train) == 100 + 7473 - gsm_val
    assert len(s.validation) == 10 + gsm_val
    assert s.test == load_file(GSM8K / "test.parquet")
    assert not set(s.train) & set(s.validation)


def test_separate_validation_and_test_sources_take_nothing_from_training() -> None:
    # The paper scale's data: GSM8K train for training (beside the generator), GSM8K test for both.
    spec = DataSpec(source=["synthetic-math", str(GSM8K / "train.parquet")], val_source=str(GSM8K / "test.parquet"),
                    test_source=str(GSM8K / "test.parquet"), synthetic_train=100, synthetic_eval=10,
                    val_fraction=0.05, test_fraction=0.05)
    s = load_splits(spec)
    assert len(s.train) == 100 + 7473 and set(load_file(GSM8K / "train.parquet")) <= set(s.train)
    assert s.validation == s.test == load_file(GSM8K / "test.parquet")
    # With only a test file given, validation is still held out of the training file.
    s = load_splits(DataSpec(source=str(GSM8K / "train.parquet"), test_source=str(GSM8K / "test.parquet"),
                             val_fraction=0.05, test_fraction=0.05))
    assert len(s.validation) == round(0.05 * 7473) and len(s.train) == 7473 - len(s.validation)


def test_directory_source_uses_its_split_files(tmp_path: Path) -> None:
    s = load_splits(DataSpec(source=str(GSM8K), val_fraction=0.1))
    assert s.test == load_file(GSM8K / "test.parquet")
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
    s = load_splits(DataSpec(source="synthetic-math", synthetic_train=5, val_source=str(evaluation),
                             test_source=str(evaluation)))
    assert s.validation == EXPECTED[1:2] and s.test == EXPECTED[2:]
    (evaluation / "test.csv").unlink()
    with pytest.raises(ValueError, match="no test file .* in data directory .*; it holds: validation.jsonl"):
        load_splits(DataSpec(source="synthetic-math", synthetic_train=5, test_source=str(evaluation)))
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="no train file .* in data directory .*; it holds: notes.txt"):
        load_splits(DataSpec(source=str(empty)))


def test_hub_names() -> None:
    assert sources.looks_like_hub_name("openai/gsm8k")
    assert sources.looks_like_hub_name("meta-math/MetaMathQA:default")
    assert not sources.looks_like_hub_name("data/train.parquet")  # a missing file, not a dataset
    assert not sources.looks_like_hub_name("../shared/data")
    assert not sources.looks_like_hub_name(str(GSM8K))


def test_hub_dataset_without_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(
        DatasetFetchError, match="could not fetch .*'owner/name'.*pip install datasets.*local file"
    ):
        load_splits(DataSpec(source="owner/name"))


def test_hub_dataset_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_dataset(repo: str, config: str | None) -> None:
        raise ConnectionError("no route to host")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(
        DatasetFetchError, match="could not fetch .*ConnectionError: no route to host.*local file"
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


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="source must be"):
        DataSpec(source=())
    with pytest.raises(ValueError, match="source must be"):
        DataSpec(source=("synthetic-math", ""))
    with pytest.raises(ValueError, match="val_fraction must be in"):
        DataSpec(val_fraction=1.0)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        DataSpec(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="unknown template"):
        DataSpec(template="chatml")
    with pytest.raises(ValueError, match="synthetic_min_steps=4"):
        DataSpec(synthetic_min_steps=4, synthetic_max_steps=3)
    with pytest.raises(ValueError, match="synthetic_train must be"):
        DataSpec(synthetic_train=0)
    with pytest.raises(ValueError, match="test_source must be"):
        DataSpec(test_source="")
