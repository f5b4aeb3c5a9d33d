"""The MetaMathQA-like generator: every step checked against an independent evaluator, the four forms, the
backward forms' answers, splits, determinism and the "synthetic-metamath" source."""

import ast
import re
from collections import Counter
from fractions import Fraction

import pytest

from coe.data import metamath
from coe.data.metamath import forms, generator
from coe.data.metamath.engine import NUMBER_WORDS, counted, fix_articles
from coe.data.metamath.generator import EXTRA_SOLUTION
from coe.data.metamath.words import OPENINGS
from coe.data.sources import DataSpec, load_splits
from coe.data.synthetic_math import SPLITS, extract_final_answer, split_of_question, split_question_answer

ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>([-\d.,/]+)")
FINAL = re.compile(r"-?\d+(\.\d+)?")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def evaluate(text: str) -> Fraction:
    """Exact value of an arithmetic expression (+ - * / **, brackets, unary minus, decimals): a reference
    independent of the generator."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div):
                assert b != 0, text
                return a / b
            if isinstance(node.op, ast.Pow):
                assert b.denominator == 1, text
                return a ** int(b)
            return _OPS[type(node.op)](a, b)
        raise AssertionError(f"unexpected {ast.dump(node)} in {text!r}")

    return walk(ast.parse(text, mode="eval"))


def number(text: str) -> Fraction:
    """A number as the documents write it: ``12``, ``12.50``, ``-3``, ``19/12``, ``three``."""
    text = text.replace(",", "")
    if text in NUMBER_WORDS:
        return Fraction(NUMBER_WORDS.index(text))
    return Fraction(text)


def check_solution(answer: str, final: str) -> None:
    """Every calculator annotation computes what it says, the number shown after it is its result, and the
    answer ends with ``#### final`` that ``extract_final_answer`` reads back."""
    lines = answer.split("\n")
    assert lines[-1] == f"#### {final}"
    assert FINAL.fullmatch(final), final
    assert extract_final_answer(answer) == final
    assert len(lines) >= 2
    for line in lines[:-1]:
        assert line.strip() == line and line, repr(line)
        for expression, result, shown in ANNOTATION.findall(line):
            assert evaluate(expression) == number(result), line
            assert number(shown.rstrip(".,")) == number(result), line


@pytest.mark.parametrize("family", metamath.FAMILIES)
def test_every_family_gives_checked_solutions(family: str) -> None:
    problems = metamath.generate("train", 40, seed=11, families=[family])
    assert {p.family for p in problems} == {family}
    for p in problems:
        for answer in p.answers:
            check_solution(answer, p.final)
        assert "<<" in p.answer or p.form in forms.BACKWARD, p.answer  # at least one computed step
        if p.form not in forms.BACKWARD:
            assert p.final == p.original_final and p.unknown is None
            assert not re.search(r"\b[xX]\b", p.question) or family in ("linear_equation", "quadratic")


def test_enough_families_and_topics() -> None:
    assert len(metamath.FAMILIES) >= 40
    assert len(set(metamath.FAMILIES)) == len(metamath.FAMILIES)
    # GSM8K's kinds and the topics of MATH the generator is meant to cover
    for name in ("shopping", "fraction_arithmetic", "percent_change", "ratio", "unit_conversion",
                 "linear_equation", "linear_system", "quadratic", "exponents", "roots", "gcd", "lcm",
                 "probability", "counting", "perimeter", "area", "volume", "arithmetic_sequence",
                 "work_together", "averages", "simple_interest", "compound_interest"):  # fmt: skip
        assert name in metamath.FAMILIES, name


def test_deterministic_and_random_access() -> None:
    a = metamath.generate("train", 60, seed=5)
    assert a == metamath.generate("train", 60, seed=5)
    assert metamath.generate_problem("train", 17, seed=5) == a[17]
    it = metamath.iter_problems("train", seed=5, start=50)
    assert [next(it) for _ in range(10)] == a[50:]
    other = metamath.generate("train", 60, seed=6)
    assert sum(x.question == y.question for x, y in zip(a, other, strict=True)) == 0


def test_splits_are_disjoint_by_question() -> None:
    questions = {
        split: {p.question for p in metamath.generate(split, n, seed=0)}
        for split, n in (("train", 2000), ("validation", 300), ("test", 300))
    }
    assert not questions["train"] & questions["validation"]
    assert not questions["train"] & questions["test"]
    assert not questions["validation"] & questions["test"]
    for split, qs in questions.items():
        assert all(split_of_question(q) == split for q in qs)


def test_documents_and_their_count() -> None:
    docs = metamath.generate_documents("validation", 37, seed=2)
    assert len(docs) == 37
    problems = metamath.generate("validation", 37, seed=2)
    flat = [d for p in problems for d in metamath.format_documents(p)]
    assert docs == flat[:37]
    for doc in docs:
        question, answer = split_question_answer(doc)
        assert doc == f"Question: {question}\nAnswer: {answer}"


def test_the_four_forms_with_their_shares() -> None:
    problems = metamath.generate("train", 3000, seed=1)
    shares = Counter(p.form for p in problems)
    assert set(shares) == set(forms.FORMS)
    # The backward forms fall back to rephrasing where no number of a problem can be the unknown.
    assert shares["answer_augmentation"] / 3000 == pytest.approx(
        forms.FORM_SHARES["answer_augmentation"], abs=0.03
    )
    for form in forms.BACKWARD:
        assert 0.7 * forms.FORM_SHARES[form] < shares[form] / 3000 <= forms.FORM_SHARES[form] + 0.02
    several = [p for p in problems if len(p.answers) > 1]
    assert len(several) / shares["answer_augmentation"] == pytest.approx(EXTRA_SOLUTION, abs=0.02)
    for p in several:
        assert p.form == "answer_augmentation" and len(set(p.answers)) == len(p.answers)
    for p in problems:
        if p.form == "answer_augmentation":
            assert p.question == p.original_question
        if p.form == "rephrasing":
            assert p.question != p.original_question
            assert p.question[-1] in "?."


def _common_prefix(a: str, b: str) -> str:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]


def _substitute(text: str, var: str, value: str) -> str:
    return re.sub(rf"(?<!\w){var}(?!\w)", value, text)


def _linear_value(expression: str, var: str, x: Fraction) -> Fraction:
    """The value of ``3x + 6``, ``(x + 46)/7``, ``(2/3)x``, ``50 - 4x`` at ``x``."""
    expression = re.sub(rf"(?<=[\d)]){var}", f"*({x})", expression)
    return evaluate(re.sub(rf"\b{var}\b", f"({x})", expression))


@pytest.mark.parametrize("form", forms.BACKWARD)
def test_backward_forms_are_right(form: str) -> None:
    seen = Counter()
    for family in metamath.FAMILIES:
        for p in metamath.generate("train", 12, seed=3, families=[family], forms=[form]):
            if p.form != form:  # no number of this problem can be the unknown
                continue
            seen[family] += 1
            var = "X" if re.search(r"\bX\b", p.question) else "x"
            asked = forms.SV_ASK if form == "self_verification" else forms.FOBAR_ASK
            stem = p.question[: p.question.rindex(asked.split(" ", 1)[0])]
            assert re.search(rf"(?<!\w){var}(?!\w)", stem), p.question  # the unknown stands in the question
            x = number(p.final)
            assert x == number(p.unknown), p.question
            original = Fraction(p.original_final)
            told = forms.FOBAR_ASK.format(answer=p.original_final, var=var)
            if form == "fobar":
                assert p.question.endswith(" " + told)
                assert _substitute(p.question.removesuffix(" " + told), var, p.unknown) == p.original_question
            else:
                ask = forms.SV_ASK.format(var=var)
                assert p.question.endswith(" " + ask)
                restored = _substitute(p.question.removesuffix(" " + ask), var, p.unknown)
                # The original question's sentences, then the statement of its answer instead of the ask.
                common = _common_prefix(restored, p.original_question)
                cut = max(common.rfind(". "), common.rfind("? ")) + 2 if re.search(r"[.?] ", common) else 0
                assert p.original_question.count(". ") + p.original_question.count("? ") >= (cut > 0)
                assert p.original_final.split(".")[0] in re.sub(r"[$,%]", "", restored[cut:]), (restored, p)
            # The equation that the solution sets up holds at the unknown's value.
            lead = r"(?:write: |have: |so: |follows: |, so )"
            equations = [
                m for line in p.answer.split("\n")
                if (m := re.search(rf"{lead}([^:=]*{var}(?!\w)[^=:]*) = (-?[\d.]+)\.$", line))
            ]  # fmt: skip
            assert equations, p.answer
            lhs, rhs = equations[-1].groups()
            assert Fraction(rhs) == original
            assert _linear_value(lhs, var, x) == original, (lhs, x, original)
            assert p.answer.split("\n")[-2].endswith(f"{var} is {p.final}.") or f"{var} = " in p.answer
    assert len(seen) >= 35, f"only {len(seen)} families gave the {form} form"


def test_extract_final_answer_reads_every_document() -> None:
    for doc in metamath.generate_documents("train", 1500, seed=4):
        final = extract_final_answer(doc)
        assert final is not None and FINAL.fullmatch(final)
        assert doc.endswith(f"#### {final}")


def test_source_loads_through_dataspec() -> None:
    spec = DataSpec(source="synthetic-metamath", synthetic_train=40, synthetic_eval=7, synthetic_seed=3)
    splits = load_splits(spec)
    assert splits.train == metamath.generate_documents("train", 40, seed=3)
    assert splits.validation == metamath.generate_documents("validation", 7, seed=3)
    assert splits.test == metamath.generate_documents("test", 7, seed=3)
    mixed = load_splits(
        DataSpec(
            source=("synthetic-metamath", "synthetic-math"),
            val_source="synthetic-metamath",
            synthetic_train=10,
            synthetic_eval=5,
        )
    )
    assert mixed.train[:10] == metamath.generate_documents("train", 10)
    assert mixed.validation == metamath.generate_documents("validation", 5)


def test_questions_are_varied() -> None:
    skeleton = re.compile(r"\b[A-Z][a-z]*\b")
    problems = metamath.generate("train", 3000, seed=9)
    skeletons = {skeleton.sub("A", re.sub(r"\d+(?:[.,]\d+)*", "0", p.question)) for p in problems}
    assert len(skeletons) >= 0.97 * len(problems)
    lines = {
        skeleton.sub("A", re.sub(r"\d+(?:[.,]\d+)*", "0", line))
        for p in problems
        for line in p.answer.split("\n")
    }
    assert len(lines) >= 2500


def test_articles_and_counted_nouns() -> None:
    assert (
        fix_articles("A aquarium has a ice chest and a orange one.")
        == "An aquarium has an ice chest and an orange one."
    )
    assert fix_articles("a eight by four rectangle, a hour") == "an eight by four rectangle, an hour"
    kept = "If a is 9 and b is 2, a and b; a used car, a unit, a one-way ticket, an hour, a x"
    assert fix_articles(kept) == kept
    assert counted("the hours it takes Ana") == "the number of hours it takes Ana"
    assert counted("the candies that belong to Jo") == "the number of candies that belong to Jo"
    for noun in (
        "the total cost",
        "the class average",
        "the sum of the roots",
        "the savings of Jo",
        "term 3",
    ):
        assert counted(noun) == noun


def test_no_known_wording_defects() -> None:
    """Defects once found in 64,000 generated documents, each a pattern that must not come back."""
    docs = [d for p in metamath.generate("train", 3000, seed=4) for d in metamath.format_documents(p)]
    vowel = re.compile(
        r"\b[Aa] (?!(?:and|are|as|at|equals|if|in|into|is|of|on|or|over|only|one|once)\b)[aeio]\w"
    )
    time = re.compile(r"\b(?:today|this week|this month|on monday|in the morning)\b", re.IGNORECASE)
    defects = {
        "a before a vowel": [d for d in docs if vowel.search(d)],
        "0 more / 0 fewer": [d for d in docs if re.search(r"\b0 (?:more|fewer)\b", d)],
        "what is the <plural>": [d for d in docs if re.search(r"[Ww]hat is the [a-z-]+[^su\W]s\b", d)],
        "a doubled word": [d for d in docs if re.search(r"\b(identical|the|a|of|to) \1\b", d)],
        "a month on a weekly schedule": [d for d in docs if re.search(r"this month[^\n]*\bweeks\b", d)],
        "two times in one sentence": [
            d
            for d in docs
            for opening in OPENINGS
            if d.startswith(f"Question: {opening}, ")
            and time.search(re.split(r"(?<=[.?!]) ", d[len(f"Question: {opening}, ") :])[0])
        ],
    }
    assert {name: found[:2] for name, found in defects.items() if found} == {}


def test_documents_are_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = metamath.generate("train", 6, seed=3)
    repeated = [problems[0], problems[1], problems[0], problems[2], problems[1], *problems[3:]]
    monkeypatch.setattr(generator, "iter_problems", lambda split, seed: iter(repeated))
    docs = generator.generate_documents("train", 4)
    flat = [d for p in problems for d in metamath.format_documents(p)]
    assert docs == list(dict.fromkeys(flat))[:4]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        metamath.generate("dev", 1)
    with pytest.raises(ValueError, match="unknown family 'poetry'"):
        metamath.generate("train", 1, families=["poetry"])
    with pytest.raises(ValueError, match="unknown form 'haiku'"):
        metamath.generate("train", 1, forms=["haiku"])
    with pytest.raises(ValueError, match="index must be >= 0"):
        metamath.generate_problem("train", -1)
    assert set(SPLITS) == {"train", "validation", "test"}
