"""MetaMathQA's four forms of a problem (Yu et al. 2023, arXiv 2309.12284), built from a family's drafts.

- answer augmentation: the question as the family wrote it, with one or more solutions, each worded anew;
- rephrasing: the question reworded (the ask moved, the sentences joined into one condition, the asked
  quantity named), with a solution;
- self-verification: one number of the question replaced by ``x``, the answer stated, ``x`` asked for;
- FOBAR: one number replaced by ``x``, the question kept, then "If we know the answer to the above question
  is 18, what is the value of unknown variable x?".

The backward forms are solved as MetaMathQA's solutions solve them: the forward steps with ``x`` carried
along (``3 * x = 3x``), an equation with the answer, and the steps that isolate ``x``.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction

from coe.data.metamath.engine import Draft, Q, Redraw, Target, final_text, plain
from coe.data.metamath.words import join, lower_first

ANSWER = "#"
"""Where the answer goes in a target's statement: ``"She spends # in total."``."""

FORMS = ("answer_augmentation", "rephrasing", "self_verification", "fobar")
FORM_SHARES = {"answer_augmentation": 0.40, "rephrasing": 0.32, "self_verification": 0.14, "fobar": 0.14}
"""Share of problems in each form: MetaMathQA's (155k, 130k, 55k, 55k of its 395k rows)."""
BACKWARD = ("self_verification", "fobar")

SV_ASK = "What is the value of unknown variable {var}?"
FOBAR_ASK = (
    "If we know the answer to the above question is {answer}, what is the value of unknown variable {var}?"
)

_IMPERATIVES = ("Calculate", "Find", "Determine", "Compute", "Work out", "Figure out", "Find out")
_WH_OPENINGS = ("What is", "What is", "Can you find", "Do you know", "Can you work out", "Can you tell")
_CONDITIONS = ("If", "If", "Given that", "Suppose", "Assuming")


NOUN_ASK = 0.35
"""Chance that a problem asks through the target's noun phrase ("Find the total cost.") instead of its
question, whatever the form: questions are worded in more ways than each family lists."""


def _noun_says_enough(d: Draft) -> bool:
    """Whether the target's noun phrase names every number that its question states (asking through the noun
    must not drop a number the problem needs)."""
    t = d.target
    if t is None or not t.noun:
        return False
    for g in d.givens:
        number = re.compile(rf"(?<![\w.]){re.escape(format(g.q, ''))}(?!\w)")
        if number.search(t.question) and not number.search(t.noun):
            return False
    return True


def reword_ask(d: Draft, allowed: bool | None = None) -> bool:
    """Now and then asks for the target's noun phrase instead of its question (question generator). Returns
    whether the noun could be asked for; a backward run passes the forward run's answer as ``allowed``, so
    that both runs ask the same way."""
    t = d.target
    allowed = _noun_says_enough(d) if allowed is None else allowed
    if d.rng.random() < NOUN_ASK and t is not None and allowed:
        ask = d.pick(_WH_OPENINGS + _IMPERATIVES)
        question = f"{ask} {t.noun}" + ("?" if ask in _WH_OPENINGS else ".")
        d.target = Target(question, t.statement, t.noun)
    return allowed


def question_text(d: Draft) -> str:
    """The question as the family wrote it: its sentences, then what it asks."""
    assert d.target is not None
    return " ".join([*d.sentences, d.target.question])


def answer_text(lines: list[str], final: str) -> str:
    return "\n".join([*lines, f"#### {final}"])


def forward_solution(d: Draft) -> str:
    """The worked solution of a forward draft, ending ``#### answer``."""
    assert d.final is not None
    return answer_text(d.lines, final_text(d.final.value))


def statement(d: Draft) -> str:
    """The target's statement with the forward answer in it: ``"She spends $18 in total."``."""
    assert d.target is not None and d.final is not None
    return d.target.statement.replace(ANSWER, format(Q(d.final.value, d.final.kind), ""))


# --------------------------------------------------------------------------------------------------------
# Rephrasing


def _clause(sentence: str, names: set[str]) -> str:
    """A sentence as a clause of a longer one: the full stop and a leading "Let" or "Suppose" dropped, the
    first letter lowered unless the first word is a name (or an acronym)."""
    return lower_first(re.sub(r"^(Let|Suppose) ", "", sentence.rstrip(".").rstrip()), names)


def _lower_first(text: str, names: set[str]) -> str:
    """A question or request as the second half of a sentence: its first letter lowered, its end kept."""
    return lower_first(text, names)


def rephrase(d: Draft, r: random.Random) -> str:
    """A rewording of the draft's question, drawn with ``r`` among the ways that fit it; ``Redraw`` when the
    draws keep giving the question as it was."""
    original = question_text(d)
    for _ in range(8):
        if (question := _reword(d, r)) != original:
            return question
    raise Redraw("no rewording differs from the question")


def _reword(d: Draft, r: random.Random) -> str:
    t = d.target
    assert t is not None
    names = d.names
    context = " ".join(d.sentences)
    clauses = [_clause(s, names) for s in d.sentences]
    ask = _lower_first(t.question, names)
    if not clauses:  # the question is the whole problem: name what it asks another way
        noun = t.noun or ask.rstrip("?.")
        return r.choice((f"{r.choice(_IMPERATIVES)} {noun}.", f"What is {noun}?", f"Can you find {noun}?"))
    condition = join(clauses)
    options = []
    if _noun_says_enough(d):
        options += [
            lambda: f"{context} {r.choice(_WH_OPENINGS)} {t.noun}?",
            lambda: f"{context} {r.choice(_IMPERATIVES)} {t.noun}.",
            lambda: f"{r.choice(_WH_OPENINGS)} {t.noun} if {condition}?",
            lambda: f"{r.choice(_IMPERATIVES)} {t.noun}, given that {condition}.",
        ]
        if len(clauses) <= 4:
            options.append(lambda: f"{r.choice(_CONDITIONS)} {condition}, what is {t.noun}?")
    if len(clauses) <= 4:
        options.append(lambda: f"{r.choice(_CONDITIONS)} {condition}, {ask}")
    if len(clauses) >= 2:

        def merged() -> str:
            i = r.randrange(len(clauses) - 1)
            pair = f"{d.sentences[i].rstrip('.')}, and {clauses[i + 1]}."
            return " ".join([*d.sentences[:i], pair, *d.sentences[i + 2 :], t.question])

        options.append(merged)
    if not options:  # one sentence and no noun: ask first
        options.append(lambda: f"{t.question[:-1]}, given that {condition}?")
    return r.choice(options)()


# --------------------------------------------------------------------------------------------------------
# The backward forms


def self_verification(back: Draft, answer_statement: str, what: str) -> tuple[str, str, Fraction]:
    """Question and solution of the self-verification form from the backward draft ``back`` (the unknown in
    place); ``answer_statement`` states the forward answer. Returns (question, solution, value of x)."""
    var = back.var
    question = " ".join([*back.sentences, answer_statement, SV_ASK.format(var=var)])
    intro = back.word(
        (
            "To solve this problem, we need to determine the value of {var}, which represents {what}.",
            "To solve this problem, we need to find the value of {var}, which stands for {what}.",
            "Here {var} is {what}, and we need to find it.",
            "Let's work out {var}, {what}.",
        )
    ).format(var=var, what=what)
    back.lines.insert(0, intro[:1].upper() + intro[1:])
    known = _clause(answer_statement, back.names)
    x = back.solve(
        (
            "We can set up the equation as follows: {eq}.",
            f"We know that {known}, so we can write: {{eq}}.",
            f"Since {known}, we have: {{eq}}.",
            f"The question says that {known}, so {{eq}}.",
        )
    )
    return question, answer_text(back.lines, final_text(x)), x


def fobar(back: Draft, answer: Fraction) -> tuple[str, str, Fraction]:
    """Question and solution of the FOBAR form from the backward draft ``back``; ``answer`` is the forward
    answer. Returns (question, solution, value of x)."""
    t = back.target
    assert t is not None
    var = back.var
    told = FOBAR_ASK.format(answer=final_text(answer), var=var)
    question = " ".join([*back.sentences, t.question, told])
    noun = t.noun or "the answer"
    n = plain(answer)
    x = back.solve(
        (
            f"We are given that {noun} is {n}, so we can write: {{eq}}.",
            f"We know that {noun} is {n}, so: {{eq}}.",
            f"We are told that the answer is {n}, so {{eq}}.",
            f"Since the answer is {n}, we can write: {{eq}}.",
        )
    )
    return question, answer_text(back.lines, final_text(x)), x
