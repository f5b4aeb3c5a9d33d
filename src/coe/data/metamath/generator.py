"""Problems of every family in MetaMathQA's four forms, split into train / validation / test by question.

Problem ``index`` of a split is a pure function of ``(seed, split, index)``: a generator seeded from a hash of
them draws the family (uniformly), the form (``FORM_SHARES``) and the seeds of the question and of each
solution's wording. A candidate whose final question hashes to another split (``split_of_question``, as
``synthetic_math``) is dropped and the next one drawn, so the splits share no question.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count

from coe.data.metamath import algebra, chance, everyday, measures, money, numbers, rates
from coe.data.metamath.engine import Draft, Family, Nonlinear, Redraw, final_text, terminates
from coe.data.metamath.forms import (
    BACKWARD,
    FOBAR_ASK,
    FORM_SHARES,
    FORMS,
    SV_ASK,
    fobar,
    forward_solution,
    question_text,
    rephrase,
    reword_ask,
    self_verification,
    statement,
)
from coe.data.metamath.words import open_with_setting, tell_through_someone
from coe.data.synthetic_math import QA_TEMPLATE, SPLITS, split_of_question

_FAMILIES: dict[str, Family] = {
    name: family
    for topic in (everyday, money, measures, rates, numbers, algebra, chance)
    for name, family in topic.FAMILIES.items()
}
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)
"""Names of the problem families, GSM8K's kinds first, then the topics of MATH."""

EXTRA_SOLUTION = 0.06
"""Share of answer-augmentation problems that come with a second, differently worded solution (a second
document with the same question). Kept small so that nearly every document has its own question."""


@dataclass(frozen=True)
class MetaMathProblem:
    """A problem in one of the four forms, with its worked solutions (several only for answer augmentation).

    ``answers`` end with ``#### final``. ``original_question`` and ``original_final`` are the problem as the
    family wrote it (the same question and answer for the forward forms); ``unknown`` is the number that the
    backward forms replaced by ``x``, as the original question writes it (None for the forward forms).
    """

    question: str
    answers: tuple[str, ...]
    final: str
    family: str
    form: str
    original_question: str
    original_final: str
    unknown: str | None = None

    @property
    def answer(self) -> str:
        """The first solution."""
        return self.answers[0]


def format_documents(problem: MetaMathProblem) -> list[str]:
    """The problem's documents, one per solution, in the ``QA_TEMPLATE`` format of ``synthetic_math``."""
    return [QA_TEMPLATE.format(question=problem.question, answer=answer) for answer in problem.answers]


# --------------------------------------------------------------------------------------------------------
# One problem


def _run(
    family: Family, content: int, wording: int, unknown: int | None = None, noun_ask: bool | None = None
) -> Draft:
    d = Draft(
        random.Random(content), random.Random(wording), unknown=unknown, var=family.var, spell=family.spell
    )
    family.build(d)
    if family.observer:
        tell_through_someone(d)
    if family.opening:
        open_with_setting(d)
    d.noun_ask = reword_ask(d, noun_ask)
    if d.target is None or d.final is None:
        raise AssertionError(f"family {family.build.__name__} asked nothing")
    return d


def _backward(name: str, form: str, fwd: Draft, content: int, r: random.Random) -> MetaMathProblem | None:
    """The problem in a backward form, or None when no given can be the unknown."""
    family, final = _FAMILIES[name], fwd.final
    assert final is not None
    candidates = [
        i
        for i, g in enumerate(fwd.givens)
        if g.what and (final.lin >> i) & 1 and not (final.bad >> i) & 1 and terminates(g.q.value)
    ]
    r.shuffle(candidates)
    for i in candidates[:3]:
        try:
            back = _run(family, content, r.getrandbits(64), unknown=i, noun_ask=fwd.noun_ask)
            if form == "self_verification":
                what = fwd.givens[i].what
                assert what is not None
                question, answer, x = self_verification(back, statement(back), what)
            else:
                question, answer, x = fobar(back, final.value)
        except Nonlinear:
            continue
        asked = SV_ASK if form == "self_verification" else FOBAR_ASK
        stem = question[: question.rindex(asked[:12])]
        if not re.search(rf"(?<!\w){back.var}(?!\w)", stem):
            continue  # the number stood only in what the question asks, which this form leaves out
        given = fwd.givens[i].q
        if x != given.value:
            raise AssertionError(f"family {name}: solved x = {x}, but the question had {given.value}")
        return MetaMathProblem(
            question=question,
            answers=(answer,),
            final=final_text(x),
            family=name,
            form=form,
            original_question=question_text(fwd),
            original_final=final_text(final.value),
            unknown=given.n,
        )
    return None


def _build(name: str, form: str, r: random.Random) -> MetaMathProblem:
    family = _FAMILIES[name]
    content = r.getrandbits(64)
    fwd = _run(family, content, r.getrandbits(64))
    assert fwd.final is not None
    original, final = question_text(fwd), final_text(fwd.final.value)
    if form in BACKWARD:
        problem = _backward(name, form, fwd, content, r)
        if problem is not None:
            return problem
        form = "rephrasing"  # no number of this draft can be the unknown
    if form == "rephrasing":
        question, answers = rephrase(fwd, r), (forward_solution(fwd),)
    else:
        question, answers = original, (forward_solution(fwd),)
        if r.random() < EXTRA_SOLUTION:
            for _ in range(3):  # a few tries at a wording that differs
                other = _run(family, content, r.getrandbits(64))
                if question_text(other) != original:
                    raise AssertionError(f"family {name} draws its question from the wording generator")
                if (text := forward_solution(other)) not in answers:
                    answers += (text,)
                    break
    return MetaMathProblem(question, answers, final, name, form, original, final)


# --------------------------------------------------------------------------------------------------------
# Generation


def _check(split: str, families: Sequence[str] | None, forms: Sequence[str] | None) -> tuple[list, list]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    chosen = list(FAMILIES if families is None else families)
    for name in chosen:
        if name not in _FAMILIES:
            raise ValueError(f"unknown family {name!r}; known families: {', '.join(FAMILIES)}")
    shapes = list(FORMS if forms is None else forms)
    for form in shapes:
        if form not in FORM_SHARES:
            raise ValueError(f"unknown form {form!r}; the forms: {', '.join(FORMS)}")
    if not chosen or not shapes:
        raise ValueError("need at least one family and one form")
    return chosen, shapes


def _rng(seed: int, split: str, index: int, attempt: int) -> random.Random:
    digest = hashlib.blake2b(f"metamath/{seed}/{split}/{index}/{attempt}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _generate(split: str, index: int, seed: int, families: list[str], forms: list[str]) -> MetaMathProblem:
    weights = [FORM_SHARES[f] for f in forms]
    for attempt in count():
        r = _rng(seed, split, index, attempt)
        name = families[r.randrange(len(families))]
        form = r.choices(forms, weights)[0]
        try:
            problem = _build(name, form, r)
        except Redraw:
            continue
        if split_of_question(problem.question) == split:
            return problem
    raise AssertionError("unreachable")


def generate_problem(
    split: str,
    index: int,
    *,
    seed: int = 0,
    families: Sequence[str] | None = None,
    forms: Sequence[str] | None = None,
) -> MetaMathProblem:
    """Problem ``index`` (>= 0) of ``split``: a pure function of its arguments. ``families`` and ``forms``
    restrict the draw (all by default; the forms keep their relative shares)."""
    chosen, shapes = _check(split, families, forms)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return _generate(split, index, seed, chosen, shapes)


def iter_problems(
    split: str,
    *,
    seed: int = 0,
    start: int = 0,
    families: Sequence[str] | None = None,
    forms: Sequence[str] | None = None,
) -> Iterator[MetaMathProblem]:
    """Problems ``start, start + 1, ...`` of ``split``, without end (see ``generate_problem``)."""
    chosen, shapes = _check(split, families, forms)
    for index in count(start):
        yield _generate(split, index, seed, chosen, shapes)


def generate(split: str, n: int, *, seed: int = 0, **restrict: Sequence[str] | None) -> list[MetaMathProblem]:
    """The first ``n`` problems of ``split`` (see ``generate_problem``)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    it = iter_problems(split, seed=seed, **restrict)
    return [next(it) for _ in range(n)]


def generate_documents(split: str, n: int, *, seed: int = 0) -> list[str]:
    """The first ``n`` distinct documents of ``split``: the documents of problems 0, 1, ... in order (an
    answer-augmented problem gives one per solution), a document equal to an earlier one left out (small
    families, such as permutation counts, now and then draw a problem twice), cut at ``n``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    documents: dict[str, None] = {}  # ordered set
    it = iter_problems(split, seed=seed)
    while len(documents) < n:
        documents.update(dict.fromkeys(format_documents(next(it))))
    return list(documents)[:n]
