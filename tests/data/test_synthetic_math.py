import re
from collections import Counter
from fractions import Fraction

import pytest

from coe.data import synthetic_math as sm
from coe.data.sources import read_table

# A GSM8K calculator annotation "<<expr=result>>" and the binary expressions our steps use.
ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
BINARY = re.compile(r"^(\d+)([-+*/])(\d+)$")
# Constants a reader knows without being told (legs of an animal, minutes in an hour, days in a week, 10 for
# tenths of a percentage, 1 for oneself, ...).
IMPLICIT = {1, 2, 3, 4, 5, 6, 7, 8, 10, 14, 60}


def _evaluate(left: int, op: str, right: int) -> Fraction:
    """Exact value of ``left op right``: a reference independent of the generator."""
    a, b = Fraction(left), Fraction(right)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]


def _check_problem(p: sm.MathProblem, min_steps: int, max_steps: int) -> None:
    lines = p.answer.split("\n")
    assert lines[-1] == f"#### {p.final}"
    reasoning = lines[:-1]
    assert min_steps <= len(p.steps) <= max_steps
    assert len(reasoning) == len(p.steps), "one computation per reasoning line"
    stated = {int(x) for x in re.findall(r"\d+", p.question)}
    known = stated | IMPLICIT
    for line, step in zip(reasoning, p.steps, strict=True):
        found = ANNOTATION.findall(line)
        assert len(found) == 1, line
        expr, result = found[0]
        m = BINARY.match(expr)
        assert m, f"not a binary expression: {expr!r}"
        left, op, right = int(m.group(1)), m.group(2), int(m.group(3))
        value = _evaluate(left, op, right)
        assert value.denominator == 1 and value >= 0, f"{expr} = {value} is not a non-negative integer"
        assert int(result) == value, f"{expr}={result} is wrong"
        assert (left, op, right, int(result)) == (step.left, step.op, step.right, step.result)
        assert step.expression == expr
        # The visible text shows the same computation, and the number after the annotation is its result.
        assert f"{left} {op} {right} = " in line
        assert re.search(rf">>{result}(?!\d)", line)
        # Every operand was stated in the question, computed before, or is common knowledge.
        assert left in known and right in known, f"{line!r} uses a number from nowhere in {p.question!r}"
        known.add(step.result)
    assert p.final == p.steps[-1].result


@pytest.mark.parametrize(("min_steps", "max_steps"), [(2, 8), (1, 12), (5, 5)])
def test_every_solution_is_correct(min_steps: int, max_steps: int) -> None:
    for split in sm.SPLITS:
        problems = sm.generate(split, 300, seed=3, min_steps=min_steps, max_steps=max_steps)
        for p in problems:
            _check_problem(p, min_steps, max_steps)
        counts = Counter(len(p.steps) for p in problems)
        assert set(counts) == set(range(min_steps, max_steps + 1)), "every step count in range occurs"


def test_every_family_builds_every_step_count_in_its_range() -> None:
    for family in sm.FAMILIES:
        lo, hi = sm.family_step_range(family)
        assert lo <= 2 and hi >= 8, f"{family} cannot serve the default range"
        for n in range(lo, hi + 1):
            for index in range(4):
                p = sm.generate_problem("train", index, seed=n, min_steps=n, max_steps=n, families=[family])
                assert p.family == family
                _check_problem(p, n, n)


def test_deterministic_from_seed() -> None:
    a = sm.generate("train", 50, seed=7)
    b = sm.generate("train", 50, seed=7)
    assert a == b
    c = sm.generate("train", 50, seed=8)
    assert sum(x.question == y.question for x, y in zip(a, c, strict=True)) < 3
    # Random access and iteration from an offset agree with the list.
    assert sm.generate_problem("train", 17, seed=7) == a[17]
    it = sm.iter_problems("train", seed=7, start=40)
    assert [next(it) for _ in range(10)] == a[40:50]


def test_splits_are_disjoint() -> None:
    questions = {
        split: {p.question for p in sm.generate(split, n, seed=0)}
        for split, n in (("train", 3000), ("validation", 1000), ("test", 1000))
    }
    assert not questions["train"] & questions["validation"]
    assert not questions["train"] & questions["test"]
    assert not questions["validation"] & questions["test"]
    # Ownership is a function of the question text alone, so it also holds across seeds.
    other_seed = {p.question for p in sm.generate("test", 1000, seed=1)}
    assert not questions["train"] & other_seed
    for split, qs in questions.items():
        assert all(sm.split_of_question(q) == split for q in qs)


def test_split_shares_partition_the_hash_space() -> None:
    assert sum(sm.SPLIT_SHARES.values()) == pytest.approx(1.0)
    owners = Counter(sm.split_of_question(f"question {i}") for i in range(20000))
    for split, share in sm.SPLIT_SHARES.items():
        assert owners[split] / 20000 == pytest.approx(share, abs=0.02)


def test_variety() -> None:
    problems = sm.generate("train", 2000, seed=1)
    families = Counter(p.family for p in problems)
    assert set(families) == set(sm.FAMILIES) and len(sm.FAMILIES) >= 10
    assert min(families.values()) > 2000 / len(sm.FAMILIES) / 3, families
    assert len({p.question for p in problems}) >= 0.99 * len(problems)
    assert len({p.answer for p in problems}) >= 0.99 * len(problems)
    first_words = Counter(p.question.split()[0] for p in problems)
    assert len(first_words) >= 40  # many names and openings
    finals = {p.final for p in problems}
    assert len(finals) >= 500


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        sm.generate("dev", 1)
    with pytest.raises(ValueError, match="min_steps=5, max_steps=3"):
        sm.generate("train", 1, min_steps=5, max_steps=3)
    with pytest.raises(ValueError, match="max_steps=13"):
        sm.generate("train", 1, max_steps=13)
    with pytest.raises(ValueError, match="unknown family 'poetry'"):
        sm.generate("train", 1, families=["poetry"])
    with pytest.raises(ValueError, match=r"no family .* builds problems of 9 steps"):
        sm.generate("train", 1, min_steps=2, max_steps=9, families=["ages"])
    with pytest.raises(ValueError, match="index must be >= 0"):
        sm.generate_problem("train", -1)


def test_format_problem_and_prompt() -> None:
    p = sm.generate_problem("validation", 0)
    text = sm.format_problem(p)
    assert text == f"Question: {p.question}\nAnswer: {p.answer}"
    assert text.endswith(f"\n#### {p.final}")
    assert text.startswith(sm.format_prompt(p.question) + " ")
    assert sm.extract_final_answer(text) == str(p.final)


def test_extract_final_answer_on_gsm8k() -> None:
    rows = read_table("builtin:gsm8k/test.parquet").to_pylist()
    assert len(rows) > 1000
    with_commas = 0
    for row in rows:
        written = row["answer"].split("####")[-1].strip()
        with_commas += "," in written
        got = sm.extract_final_answer(row["answer"])
        assert got == written.replace(",", ""), row["answer"]
        assert re.fullmatch(r"-?\d+", got)
    assert with_commas > 0  # the normalisation was exercised


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#### 18", "18"),
        ("so #### 1,080\n", "1080"),
        ("#### 3\nmore text #### $42 dollars", "42"),
        ("####  -7", "-7"),
        ("#### 12.50", "12.5"),
        ("#### 12.00", "12"),
        ("no marker 18", None),
        ("#### none", None),
        ("", None),
    ],
)
def test_extract_final_answer_cases(text: str, expected: str | None) -> None:
    assert sm.extract_final_answer(text) == expected


def test_split_question_answer_inverts_the_format() -> None:
    for p in sm.generate("test", 20):
        assert sm.split_question_answer(sm.format_problem(p)) == (p.question, p.answer)
    rows = read_table("builtin:gsm8k/test.parquet").slice(0, 50).to_pylist()
    for row in rows:
        document = sm.QA_TEMPLATE.format(**row)
        assert sm.split_question_answer(document) == (row["question"], row["answer"])
    assert sm.split_question_answer("First Citizen:\nBefore we proceed") is None
    assert sm.split_question_answer("Question: no answer here") is None


def test_generated_data_is_stable():
    """Runs compared across sessions (results/paper) must have seen the same problems: a change to the
    generator's output must be deliberate, with these fingerprints and the affected results updated together.
    The documents are read both from the generator and through the "synthetic-math" source."""
    import hashlib

    from coe.data.sources import DataSpec, load_splits

    def fingerprint(documents: list[str]) -> str:
        return hashlib.sha256("\n\n".join(documents).encode()).hexdigest()

    train = [sm.format_problem(p) for p in sm.generate("train", 200, seed=0)]
    validation = [sm.format_problem(p) for p in sm.generate("validation", 50, seed=0)]
    assert fingerprint(train) == "17511951540a6dab36706b3746bd02d9dbda10189ada79e2ba545057d5fb863b"
    assert fingerprint(validation) == "ab29603702d0ea00f140e3b3f7e330f584fc3cf71d2075708fa06a5db7f822e9"
    splits = load_splits(DataSpec(source="synthetic-math", synthetic_train=200, synthetic_eval=50))
    assert splits.train == train and splits.validation == validation
    assert fingerprint(splits.test) == "0f18132c2098bfa88270281c0e667ba1f2c73acde5090829486ce7af3f6b11a6"
