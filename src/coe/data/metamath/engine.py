"""What a problem family writes into: exact quantities, worked steps, the question's sentences and the unknown
of MetaMathQA's backward forms.

A family is a function ``family(d: Draft) -> None`` that draws its numbers from ``d.rng``, writes the
question's sentences (``d.tell``), computes the solution step by step (``d.calc``, ``d.add_up``; each step a
line, ``d.say``) and names what is asked (``d.ask``). It is run once per problem, and run again, from the same
``d.rng`` state, for the backward forms (self-verification and FOBAR): then one *given* (a number the question
states, ``d.given``) is the unknown ``x``. The question writes ``x`` where the number was, and every step that
the unknown enters computes a linear expression (``3 * x = 3x``) instead of a number; the solution ends by
solving ``a x + b = answer`` (``d.solve``).

Numbers are exact (``Fraction``). A step is shown as GSM8K shows it, with a calculator annotation that gives
the expression and its value, ``3 * $4 = $<<3*4=12>>12``; steps in the unknown carry none (there is nothing
to compute). Which givens can be the unknown is tracked in the first run: bit ``i`` of ``Q.lin`` says that
the value depends on given ``i`` linearly, bit ``i`` of ``Q.bad`` that it depends on it in another way (a
product in which it enters twice, a division by it, a power).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

ZERO = Fraction(0)
ONE = Fraction(1)
KINDS = ("num", "money", "percent", "frac")
"""How a quantity is written: ``12``, ``$12.50``, ``25%``, ``3/4``."""

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 3}
# fmt: off
NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
)
# fmt: on
SPELLED = 0.25
"""Chance that the question writes a given count from 2 to 12 as a word (``three``), as people often do."""
WORDED_UNITS = 0.2
"""Chance that the question writes a given percentage or whole amount of dollars with a word (``25 percent``,
``5 dollars``)."""


# "a" before a vowel sound is "an": family templates write "a {thing}" whatever the thing drawn ("a ice
# chest", "a eight by four"). Not before the variable words of algebra ("if a is 9", "a and b") or u- and
# one-words that sound like "you" / "won".
_ARTICLE = re.compile(
    r"\b([Aa]) (?=(?!(?:and|are|as|at|equals|if|in|into|is|of|on|or|over|only|one|once)\b|one-)"
    r"(?:[aeio][a-z-]|u[nmpg](?!i)|hour|honest))"
)
# A counted thing as the subject of "what is ..." / "... is 5" needs "the number of": "the hours it takes" ->
# "the number of hours it takes".
_PLURAL_NOUN = re.compile(
    r"the (?!(?:odds|savings|earnings|winnings|means|news|remains|proceeds|sales|goods|series) )"
    r"([a-z-]*[^su\W]s|[a-z-]*ies) "
)


def fix_articles(text: str) -> str:
    """``text`` with "a" before a vowel sound made "an"."""
    return _ARTICLE.sub(r"\1n ", text)


def counted(noun: str) -> str:
    """A noun phrase headed by a plural count as a singular quantity: "the pages Kate needs next" -> "the
    number of pages Kate needs next"; other phrases as they are."""
    return re.sub(r"^the ", "the number of ", noun) if _PLURAL_NOUN.match(noun) else noun


class Nonlinear(Exception):
    """The unknown entered a step that is not linear in it (``x * x``, ``12 / x``, ``x ** 2``)."""


class Redraw(Exception):
    """A family drew numbers it cannot use (a share that does not divide, an empty range); draw again."""


# --------------------------------------------------------------------------------------------------------
# Writing numbers


def terminates(value: Fraction) -> bool:
    """Whether ``value`` has a terminating decimal (its denominator has no prime factor but 2 and 5)."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def decimal(value: Fraction) -> str:
    """``value`` as a terminating decimal without trailing zeros (``5/2`` -> ``"2.5"``); the integer form for
    integers. Raises ``ValueError`` when the decimal does not terminate."""
    if value.denominator == 1:
        return str(value.numerator)
    if not terminates(value):
        raise ValueError(f"{value} has no terminating decimal")
    sign, value = ("-", -value) if value < 0 else ("", value)
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    digits = str(int(value * 10**places)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def plain(value: Fraction, kind: str = "num") -> str:
    """A number as the text writes it, without ``$`` or ``%``: an integer, a decimal (money with two places
    when it has cents) or, where the decimal does not terminate, a fraction ``p/q``."""
    if value.denominator == 1:
        return str(value.numerator)
    if kind == "frac":
        return f"{value.numerator}/{value.denominator}"
    if kind == "money" and (value * 100).denominator == 1:
        cents = int(abs(value) * 100)
        return f"{'-' if value < 0 else ''}{cents // 100}.{cents % 100:02d}"
    if terminates(value):
        return decimal(value)
    return f"{value.numerator}/{value.denominator}"


def final_text(value: Fraction) -> str:
    """How the ``#### N`` line writes an answer: an integer or a terminating decimal (what
    ``extract_final_answer`` reads back unchanged)."""
    return decimal(value)


def _coefficient(a: Fraction, var: str) -> str:
    """``a x`` for a > 0: ``x``, ``3x``, ``1.5x``, ``(2/3)x``."""
    if a == 1:
        return var
    if a.denominator == 1 or terminates(a):
        return f"{decimal(a)}{var}"
    return f"({a.numerator}/{a.denominator}){var}"


def _short(value: Fraction) -> bool:
    """Whether ``value`` writes as a decimal of at most three places (``0.075``, not ``0.0125``)."""
    return (value * 1000).denominator == 1


def _common_denominator(coef: Fraction, const: Fraction) -> int:
    """1 when both terms write as short decimals, else the least common denominator of the two."""
    if _short(coef) and _short(const):
        return 1
    return math.lcm(coef.denominator, const.denominator)


def linear_text(coef: Fraction, const: Fraction, var: str, kind: str = "num") -> str:
    """``coef * var + const`` as a reader writes it: ``3x + 6``, ``50 - 4x``, ``$3x + $6``, ``(x + 46)/7``."""
    if (m := _common_denominator(coef, const)) > 1:
        return (
            f"({linear_text(coef * m, const * m, var)})/{m}"
            if const
            else f"{linear_text(coef * m, const, var)}/{m}"
        )
    unit = "$" if kind == "money" else ""
    term = unit + _coefficient(abs(coef), var)
    number = unit + plain(abs(const), kind)
    if const == 0:
        return term if coef > 0 else f"-{term}"
    if coef > 0:
        return f"{term} {'+' if const > 0 else '-'} {number}"
    if const > 0:
        return f"{number} - {term}"
    return f"-{term} - {number}"


# --------------------------------------------------------------------------------------------------------
# Quantities


@dataclass(frozen=True, slots=True)
class Q:
    """A quantity of a problem: its exact value and how to write it.

    In the second run of a backward form, ``coef`` is its coefficient in the unknown ``var`` and ``value``
    its value at the unknown's true value (so the constant term is ``value - coef * x``, kept in ``const``).
    ``work`` holds the worked computation that produced it (``"3 * 4 = <<3*4=12>>12"``), for the solution's
    lines.
    """

    value: Fraction
    kind: str = "num"
    coef: Fraction = ZERO
    const: Fraction = ZERO
    var: str = "x"
    lin: int = 0
    bad: int = 0
    work: str = ""
    spell: bool = False  # the question writes it as a word ("three")
    worded_unit: bool = False  # the question writes "25 percent" or "5 dollars" rather than "25%" or "$5"

    @property
    def symbolic(self) -> bool:
        """Whether the unknown enters this quantity (second run of a backward form)."""
        return self.coef != 0

    @property
    def c0(self) -> Fraction:
        """The constant term: ``const`` when the unknown enters, else the value."""
        return self.const if self.coef else self.value

    @property
    def n(self) -> str:
        """The number without ``$`` or ``%`` (``x`` or ``3x + 6`` when the unknown enters it)."""
        if self.symbolic:
            return linear_text(self.coef, self.const, self.var)
        if self.spell:
            return NUMBER_WORDS[self.value.numerator]
        return plain(self.value, self.kind)

    def __format__(self, spec: str) -> str:
        if self.worded_unit:
            return f"{self.n} {'percent' if self.kind == 'percent' else 'dollars'}"
        if self.symbolic:
            text = linear_text(self.coef, self.const, self.var, self.kind)
            return f"{text}%" if self.kind == "percent" else text
        if self.spell:
            return NUMBER_WORDS[self.value.numerator]
        text = plain(self.value, self.kind)
        if self.kind == "money":
            return f"-${text[1:]}" if text.startswith("-") else f"${text}"
        return f"{text}%" if self.kind == "percent" else text

    def __str__(self) -> str:
        return format(self, "")

    def __int__(self) -> int:
        if self.value.denominator != 1:
            raise ValueError(f"{self.value} is not an integer")
        return self.value.numerator

    def deps(self) -> int:
        return self.lin | self.bad


def _atom(q: Q) -> tuple[str, str, int, bool]:
    """(display, annotation, precedence, negative) of an operand: a number or ``3x`` binds like an atom (4),
    ``3/4`` like a quotient (2), ``3x + 6`` like a sum (1)."""
    if q.symbolic:
        text = linear_text(q.coef, q.const, q.var, "money" if q.kind == "money" else "num")
        if "/" in text:
            level = 2  # (x + 46)/7, 3x/7
        else:
            level = 1 if " + " in text or " - " in text else 4
        return text, "", level, text.startswith("-")
    number = plain(q.value, "frac" if q.kind == "frac" else "num")
    shown = (
        format(replace(q, spell=False, worded_unit=False), "")
        if q.kind == "money"
        else plain(q.value, q.kind)
    )
    return shown, number, 2 if "/" in number else 4, q.value < 0


def _same_expression(a: str, b: str) -> bool:
    """Whether two written expressions differ only in spacing or in the order of two added terms."""
    a, b = a.replace(" ", ""), b.replace(" ", "")
    return a == b or ("-" not in a + b and sorted(a.split("+")) == sorted(b.split("+")))


def _bracket_left(level: int, negative: bool, op: str) -> bool:
    if negative:
        level = min(level, 2)  # -3 * 4 reads right; (-3) ** 2 needs the brackets
    return level < _PRECEDENCE[op] or (op == "**" and level <= 3)


def _bracket_right(level: int, negative: bool, op: str) -> bool:
    p = _PRECEDENCE[op]
    return negative or level < p or (level == p and op in "-/") or (op == "**" and level <= 3)


@dataclass(frozen=True)
class Family:
    """A problem family: the function that writes a problem into a draft, and the letter of the unknown of the
    backward forms (``X`` where the problem has an ``x`` of its own, as MetaMathQA's MATH problems)."""

    build: Callable[[Draft], None]
    var: str = "x"
    spell: bool = True
    """Whether the question may write small counts as words (not where numbers stand in formulas)."""
    opening: bool = False
    observer: bool = False
    """Whether a first sentence that names nobody may be told through someone ("Maria notices that ...")."""
    """Whether the question's first sentence may open with a time or a purpose ("On Saturday, Maria buys
    ...")."""


@dataclass(frozen=True)
class Given:
    """A number the question states: its quantity, and what it is (for the self-verification form)."""

    q: Q
    what: str | None


@dataclass(frozen=True)
class Step:
    """One computed line: the annotation's expression and result (``"3*4"``, ``"12"``); for a step in the
    unknown, the expression and result as written (``"3 * x"``, ``"3x"``) and ``symbolic`` set."""

    expression: str
    result: str
    symbolic: bool = False


@dataclass(frozen=True)
class Target:
    """What the question asks, in three wordings: as a question, as a statement of the answer (``{}`` where
    the answer goes) and as a noun phrase (for the rephrased forms; None when the family gives none)."""

    question: str
    statement: str
    noun: str | None = None


# --------------------------------------------------------------------------------------------------------
# The draft a family writes into


class Draft:
    """One run of a family: the question's sentences, the solution's lines and steps, the target.

    ``rng`` draws everything the question depends on; ``say_rng`` draws only the wording of the solution,
    so that one problem can be solved in several wordings. ``unknown``: the index of the given that is the
    unknown ``var`` in this run, None for the forward run.
    """

    def __init__(
        self,
        rng: random.Random,
        say_rng: random.Random,
        *,
        unknown: int | None = None,
        var: str = "x",
        spell: bool = True,
    ) -> None:
        self.rng = rng
        self.say_rng = say_rng
        self.unknown = unknown
        self.var = var
        self.spell = spell
        self.givens: list[Given] = []
        self.sentences: list[str] = []
        self.lines: list[str] = []
        self.steps: list[Step] = []
        self.names: set[str] = set()
        self.target: Target | None = None
        self.final: Q | None = None
        self.noun_ask = False  # whether the question may ask through the target's noun (set by the generator)

    # -- drawing ------------------------------------------------------------------------------------------

    def pick(self, options: Sequence[Any]) -> Any:
        """One of ``options``, drawn with the question's generator."""
        return options[self.rng.randrange(len(options))]

    def word(self, options: Sequence[Any]) -> Any:
        """One of ``options``, drawn with the solution-wording generator."""
        return options[self.say_rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        """True with probability ``p`` (question generator)."""
        return self.rng.random() < p

    # -- the question -------------------------------------------------------------------------------------

    def given(
        self, value: int | Fraction | str, what: str | None = None, *, kind: str = "num", spell: bool = True
    ) -> Q:
        """A number the question states. ``what`` says what it is (``"the number of pens Ann buys"``); only
        givens with a ``what`` can become the unknown of the backward forms. ``spell``: whether the question
        may write it as a word (never where it stands in a formula or a ratio)."""
        index = len(self.givens)
        v = Fraction(value)
        spell = (
            spell
            and self.spell
            and kind == "num"
            and v.denominator == 1
            and 2 <= v <= 12
            and self.rng.random() < SPELLED
        )
        worded = self.spell and (kind == "percent" or (kind == "money" and v.denominator == 1 and v > 1))
        worded = worded and self.rng.random() < WORDED_UNITS
        if self.unknown == index:
            q = Q(v, kind, coef=ONE, const=ZERO, var=self.var, lin=1 << index, worded_unit=worded)
        else:
            q = Q(v, kind, lin=1 << index if what else 0, spell=spell, worded_unit=worded)
        self.givens.append(Given(q, what))
        return q

    def money(self, value: int | Fraction | str, what: str | None = None) -> Q:
        """A given amount of money, written ``$12`` or ``$12.50``."""
        return self.given(value, what, kind="money")

    def percent(self, value: int | Fraction | str, what: str | None = None) -> Q:
        """A given percentage, written ``25%``; computations use the number 25."""
        return self.given(value, what, kind="percent")

    def tell(self, *sentences: str) -> None:
        """Appends sentences to the question."""
        self.sentences.extend(fix_articles(sentence) for sentence in sentences)

    def ask(self, final: Q, question: str, statement: str, noun: str | None = None) -> None:
        """Sets what the question asks and its answer ``final`` (see ``Target``)."""
        self.final = final
        noun = counted(fix_articles(noun)) if noun else noun
        self.target = Target(fix_articles(question), fix_articles(statement), noun)

    # -- the solution -------------------------------------------------------------------------------------

    def say(self, options: str | Sequence[str], /, **fields: Any) -> None:
        """Appends a solution line: one of ``options`` (solution-wording generator) formatted with ``fields``.
        The first letter is capitalised."""
        text = options if isinstance(options, str) else self.word(options)
        line = fix_articles(text.format(**fields))
        # "x pens cost ...", "n = 20": an unknown or a variable opening the line keeps its case
        if not re.match(rf"\$?{self.var}\b|[a-z]( =|\^| \*|\()", line):
            line = line[:1].upper() + line[1:]
        self.lines.append(line)

    def calc(self, *chain: Q | int | Fraction | str, kind: str | None = None, fraction: bool = False) -> Q:
        """The value of ``a op b op c ...`` evaluated left to right, e.g. ``calc(price, "*", q, "/", 100)``;
        ops ``+ - * / **``. Returns the result with ``work`` set to the written computation.

        The result's kind is ``kind`` or follows the operands (money times a number is money, money over
        money is a number). A result that is not a terminating decimal is an error unless ``fraction``.
        """
        if len(chain) % 2 == 0:
            raise TypeError("calc takes operand (op operand)*")
        operands = [self._operand(x) for x in chain[0::2]]
        ops = [str(op) for op in chain[1::2]]
        acc = operands[0]
        shown, annotated, level, negative = _atom(acc)
        for op, right in zip(ops, operands[1:], strict=True):
            r_shown, r_annotated, r_level, r_negative = _atom(right)
            if _bracket_left(level, negative, op):
                shown, annotated = f"({shown})", f"({annotated})"
            if _bracket_right(r_level, r_negative, op):
                r_shown, r_annotated = f"({r_shown})", f"({r_annotated})"
            shown = f"{shown}^{r_shown}" if op == "**" else f"{shown} {op} {r_shown}"
            annotated = f"{annotated}{op}{r_annotated}"
            level, negative = _PRECEDENCE[op], False
            acc = _apply(acc, op, right, self.var)
        if kind is not None or fraction:
            acc = replace(acc, kind=kind or "frac")
        if acc.symbolic:
            result = format(acc, "")
            work = shown if _same_expression(shown, result) else f"{shown} = {result}"
            self.steps.append(Step(shown, result, symbolic=True))
            return replace(acc, work=work)
        if not fraction and not terminates(acc.value):
            raise AssertionError(f"{annotated} = {acc.value} does not terminate as a decimal")
        number = plain(acc.value, "frac" if acc.kind == "frac" else "num")
        unit = "$" if acc.kind == "money" else ""
        shown_result = plain(acc.value, acc.kind)
        if acc.kind == "money" and acc.value < 0:
            unit, shown_result = "-$", shown_result[1:]
        self.steps.append(Step(annotated, number))
        return replace(acc, work=f"{shown} = {unit}<<{annotated}={number}>>{shown_result}")

    def add_up(
        self,
        values: Sequence[Q],
        last: str | Sequence[str],
        partial: str | Sequence[str] = (
            "That makes {c} so far.",
            "So far that is {c}.",
            "That is {c} so far.",
        ),
        **fields: Any,
    ) -> Q:
        """The sum of ``values``: one line ``last`` with every term, or (drawn with the wording generator, for
        three or more terms) a running sum, a line ``partial`` per addition and ``last`` for the final one.
        ``{c}`` in the lines is the computation; ``fields`` fill the rest."""
        if len(values) == 1:
            return values[0]
        if len(values) == 2 or self.say_rng.random() < 0.5:
            chain: list[Q | str] = [values[0]]
            for v in values[1:]:
                chain += ["+", v]
            c = self.calc(*chain)
            self.say(last, c=c.work, **fields)
            return c
        total = values[0]
        for i, v in enumerate(values[1:], start=2):
            total = self.calc(total, "+", v)
            self.say(last if i == len(values) else partial, c=total.work, **fields)
        return total

    def solve(self, lead: str) -> Fraction:
        """The last lines of a backward form: ``lead`` (``{eq}`` in it is the equation ``a x + b = v``, v the
        forward answer), the steps that isolate the unknown, and its value, which is returned."""
        final = self.final
        if final is None or not final.symbolic:
            raise Nonlinear("the answer does not depend on the unknown")
        a, b, var = final.coef, final.const, self.var
        self.say(lead, eq=f"{final.n} = {plain(final.value)}")
        rhs = Q(final.value, var=var)
        if (m := _common_denominator(a, b)) > 1:
            a, b = a * m, b * m
            rhs = self.calc(rhs, "*", m)
            self.say(
                "Multiplying both sides by {m}, we get: {lhs} = {c}.",
                m=m,
                lhs=linear_text(a, b, var),
                c=rhs.work,
            )
        ax = _coefficient(abs(a), var)
        if b != 0:
            if a > 0:
                rhs = self.calc(rhs, "-", b) if b > 0 else self.calc(rhs, "+", -b)
                how = (
                    self.word(
                        (f"Subtracting {plain(b)} from both sides", f"Taking {plain(b)} from both sides")
                    )
                    if b > 0
                    else self.word((f"Adding {plain(-b)} to both sides", f"Adding {plain(-b)} to each side"))
                )
            else:  # b - |a| x = v  ->  |a| x = b - v
                rhs = self.calc(b, "-", rhs)
                how = self.word(("Rearranging", "Moving the terms around", f"Adding {ax} to both sides"))
            self.say("{how}, we get: {ax} = {c}.", how=how, ax=ax, c=rhs.work)
        elif a < 0:
            rhs = Q(-rhs.value, var=var)
            self.say("Multiplying both sides by -1, we get: {ax} = {n}.", ax=ax, n=plain(rhs.value))
        a = abs(a)
        if a != 1:
            if a.denominator == 1 or (terminates(a) and a.numerator != 1):
                rhs = self.calc(rhs, "/", a)
                how = f"Dividing both sides by {decimal(a)}"
            else:
                rhs = self.calc(rhs, "*", 1 / a)
                how = f"Multiplying both sides by {plain(1 / a)}"
            self.say("{how}, we get: {var} = {c}.", how=how, var=var, c=rhs.work)
        x = rhs.value
        self.say(
            ("The value of {var} is {x}.", "The value of {var} is {x}.", "So the value of {var} is {x}."),
            var=var,
            x=plain(x),
        )
        return x

    def root(self, q: Q, k: int = 2) -> Q:
        """The ``k``-th root of ``q``, a perfect power. Its ``work`` is the checked step that proves it,
        ``"12 * 12 = <<12*12=144>>144"``. Not linear in anything ``q`` depends on."""
        if q.symbolic:
            raise Nonlinear(f"root of an expression in {self.var}")
        r = round(float(q.value) ** (1 / k))
        if Fraction(r) ** k != q.value:
            raise AssertionError(f"{q.value} is not a perfect {k}-th power")
        check = self.calc(r, "*", r) if k == 2 else self.calc(r, "**", k)
        return Q(Fraction(r), q.kind, var=self.var, bad=q.deps(), work=check.work)

    def derived(self, value: int | Fraction, *sources: Q, kind: str = "num") -> Q:
        """A number found from ``sources`` by reasoning rather than arithmetic (a greatest common divisor, a
        count of multiples); no given it depends on can be the unknown."""
        return Q(Fraction(value), kind, var=self.var, bad=nonlinear(*sources))

    # -- helpers ------------------------------------------------------------------------------------------

    def _operand(self, x: Q | int | Fraction | str) -> Q:
        return x if isinstance(x, Q) else Q(Fraction(x), var=self.var)


def _apply(a: Q, op: str, b: Q, var: str) -> Q:
    """``a op b`` with the unknown's coefficient and the dependency bits carried along."""
    kind = _result_kind(a.kind, op, b.kind)
    if op in "+-":
        sign = 1 if op == "+" else -1
        return Q(
            a.value + sign * b.value,
            kind,
            coef=a.coef + sign * b.coef,
            const=a.c0 + sign * b.c0,
            var=var,
            lin=a.lin | b.lin,
            bad=a.bad | b.bad,
        )
    if op == "*":
        if a.symbolic and b.symbolic:
            raise Nonlinear(f"product of two expressions in {var}")
        bad = a.bad | b.bad | (a.deps() & b.deps())  # a given in both factors enters squared
        lin = (a.lin | b.lin) & ~bad
        return Q(
            a.value * b.value,
            kind,
            coef=a.coef * b.c0 + b.coef * a.c0,
            const=a.c0 * b.c0,
            var=var,
            lin=lin,
            bad=bad,
        )
    if op == "/":
        if b.symbolic:
            raise Nonlinear(f"division by an expression in {var}")
        if b.value == 0:
            raise AssertionError("division by zero in a family")
        bad = a.bad | b.deps()  # a given in the divisor enters as 1 / x
        lin = a.lin & ~bad
        return Q(
            a.value / b.value, kind, coef=a.coef / b.value, const=a.c0 / b.value, var=var, lin=lin, bad=bad
        )
    if op == "**":
        if a.symbolic or b.symbolic:
            raise Nonlinear(f"power of an expression in {var}")
        if b.value.denominator != 1:
            raise AssertionError("fractional exponent in a family")
        return Q(a.value**b.value.numerator, kind, var=var, bad=a.deps() | b.deps())
    raise AssertionError(f"unknown operator {op!r}")


def _result_kind(a: str, op: str, b: str) -> str:
    if op == "/" and a == "money" and b == "money":
        return "num"
    if "frac" in (a, b):
        return "frac"
    if "money" in (a, b):
        return "money"
    if op in "+-" and a == b == "percent":
        return "percent"
    return "num"


def nonlinear(*qs: Q) -> int:
    """The dependency bits of a result computed from ``qs`` in a way that is not linear (a gcd, a floor, a
    comparison): pass them as ``bad`` to mark those givens as unfit for the unknown."""
    bits = 0
    for q in qs:
        if q.symbolic:
            raise Nonlinear("a non-arithmetic step in the unknown")
        bits |= q.deps()
    return bits
