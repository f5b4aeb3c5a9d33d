"""Synthetic grade-school math word problems with worked solutions, in GSM8K's format.

Nothing is downloaded: every problem is built from embedded templates. A problem is a question paragraph and
an answer of reasoning lines, each showing one computation with GSM8K's calculator annotation, then the
final answer::

    Question: Maria buys 3 notebooks for $4 each and 2 pens for $3 each. How much does she spend in total?
    Answer: She spends 3 * 4 = $<<3*4=12>>12 on notebooks.
    She spends 2 * 3 = $<<2*3=6>>6 on pens.
    In total, she pays 12 + 6 = $<<12+6=18>>18.
    #### 18

Every step is one binary operation on non-negative integers (divisions are exact), and the final answer is
the result of the last step.

Determinism and splits: problem ``index`` of a split is a pure function of ``(seed, split, index)``
(``generate_problem``). Which split a problem belongs to is decided by a hash of its *question text* alone
(``split_of_question``): a candidate whose question hashes to another split is discarded and the next
candidate is drawn. A question therefore belongs to exactly one split, whatever the seed, which makes the
train / validation / test splits disjoint by construction.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count, pairwise

# The one document format shared by the synthetic problems and the GSM8K loader (see ``sources.py``),
# so that both look alike to the model. The answer already ends with the ``#### N`` line.
QA_TEMPLATE = "Question: {question}\nAnswer: {answer}"

SPLITS = ("train", "validation", "test")
# Shares of the question-hash space given to each split. The split sizes themselves are unlimited; the
# shares only set how many candidates are drawn (and discarded) per accepted problem, so the large train
# split gets the large share.
SPLIT_SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}

MAX_STEPS = 12
"""The largest number of steps a problem may have."""


@dataclass(frozen=True)
class Step:
    """One computation of a worked solution: ``left op right = result``."""

    left: int
    op: str
    right: int
    result: int

    @property
    def expression(self) -> str:
        """The expression as GSM8K's calculator annotation writes it, e.g. ``"3*12"``."""
        return f"{self.left}{self.op}{self.right}"


@dataclass(frozen=True)
class MathProblem:
    """A word problem with its worked solution.

    ``answer`` holds the reasoning lines and a last line ``#### <final>``; ``steps`` lists the computations
    of the reasoning lines in order; ``final`` is the result of the last step; ``family`` names the scenario
    template the problem came from.
    """

    question: str
    answer: str
    final: int
    steps: list[Step]
    family: str


def format_problem(problem: MathProblem) -> str:
    """The single-document text of a problem: ``"Question: ...\\nAnswer: ...\\n#### N"``."""
    return QA_TEMPLATE.format(question=problem.question, answer=problem.answer)


def format_prompt(question: str) -> str:
    """The prompt that asks a model trained on ``format_problem`` documents to solve ``question``."""
    return QA_TEMPLATE.format(question=question, answer="").rstrip()


def split_question_answer(document: str) -> tuple[str, str] | None:
    """The (question, answer) of a document in the ``QA_TEMPLATE`` format; None for any other text.

    The inverse of ``format_problem``, for documents of any source rendered with the math templates
    (e.g. to score exact match on held-out GSM8K documents).
    """
    prefix, separator = "Question: ", "\nAnswer: "
    if not document.startswith(prefix):
        return None
    question, found, answer = document[len(prefix) :].partition(separator)
    return (question, answer) if found else None


_FINAL_NUMBER = re.compile(r"\s*\$?\s*(-?[\d,]*\.?\d+)")


def extract_final_answer(text: str) -> str | None:
    """The number after the last ``####`` of ``text``, normalised for exact-match comparison.

    Commas and a leading ``$`` are dropped and a zero fractional part is removed (``"1,080.00"`` ->
    ``"1080"``). Returns None when there is no ``####`` or no number right after the last one.
    """
    _, marker, tail = text.rpartition("####")
    if not marker:
        return None
    match = _FINAL_NUMBER.match(tail)
    if match is None:
        return None
    number = match.group(1).replace(",", "")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    if number in ("", "-", "-0"):
        number = "0"
    return number


def split_of_question(question: str) -> str:
    """The split that owns ``question``: a hash of the text mapped onto ``SPLIT_SHARES``."""
    digest = hashlib.blake2b(question.encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    edge = 0.0
    for split in SPLITS:
        edge += SPLIT_SHARES[split]
        if u < edge:
            return split
    return SPLITS[-1]  # u lies within rounding of 1.0


# --------------------------------------------------------------------------------------------------------
# Building blocks of the scenario templates


@dataclass(frozen=True)
class _Person:
    name: str
    he: str  # subject pronoun
    his: str  # possessive
    him: str  # object pronoun

    @property
    def He(self) -> str:
        return self.he.capitalize()


# First names of the people in the problems (also used by the ``metamath`` generator).
# fmt: off
WOMEN = (
    "Maria", "Aisha", "Sofia", "Emma", "Mei", "Priya", "Fatima", "Olivia", "Chloe", "Yuki", "Amara", "Lucia",
    "Hannah", "Zara", "Ingrid", "Nadia", "Grace", "Leila", "Rosa", "Keiko", "Ava", "Isabel", "Noor", "Elena",
    "Tara", "Beatriz", "Anya", "Naomi", "Julia", "Carmen",
)
MEN = (
    "James", "Omar", "Liam", "Diego", "Kenji", "Ravi", "Noah", "Mateo", "Kwame", "Lucas", "Ethan", "Hassan",
    "Arjun", "Felix", "Tomas", "Samuel", "Jin", "Marco", "Daniel", "Ibrahim", "Leo", "Oscar", "Pablo",
    "Yusuf", "Henry", "Andre", "Viktor", "Malik", "Chen", "Elijah",
)
# fmt: on


def _people(rng: random.Random, k: int) -> list[_Person]:
    """``k`` people with distinct names."""
    chosen = rng.sample([(name, True) for name in WOMEN] + [(name, False) for name in MEN], k)
    return [
        _Person(name, "she", "her", "her") if woman else _Person(name, "he", "his", "him")
        for name, woman in chosen
    ]


def _join(parts: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _apply(left: int, op: str, right: int) -> int:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0 or left % right:
            raise AssertionError(f"inexact division {left}/{right} in a template")
        return left // right
    raise AssertionError(f"unknown operator {op!r}")


@dataclass(frozen=True)
class _Calc:
    value: int
    text: str  # "3 * 12 = <<3*12=36>>36", ready to be placed inside a sentence


class _Solution:
    """Collects the steps and the reasoning lines of one problem while a template builds it."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.lines: list[str] = []

    def calc(self, left: int, op: str, right: int, *, money: bool = False) -> _Calc:
        result = _apply(left, op, right)
        if result < 0 or left < 0 or right < 0:
            raise AssertionError(f"negative number in {left}{op}{right}={result} in a template")
        self.steps.append(Step(left, op, right, result))
        dollar = "$" if money else ""
        return _Calc(result, f"{left} {op} {right} = {dollar}<<{left}{op}{right}={result}>>{result}")

    def say(self, line: str) -> None:
        self.lines.append(line)

    def add_up(self, values: Sequence[int], partial: str, last: str, *, money: bool = False) -> int:
        """Adds ``values`` one at a time (``len(values) - 1`` steps), a line per addition.

        The line of the last addition is ``last``, the others ``partial``, with ``{}`` for the computation.
        """
        total = values[0]
        for i, value in enumerate(values[1:], start=2):
            c = self.calc(total, "+", value, money=money)
            self.say((last if i == len(values) else partial).format(c.text))
            total = c.value
        return total


# --------------------------------------------------------------------------------------------------------
# Scenario families. Each one builds a problem of exactly ``n`` steps into ``sol`` and returns the question.
# Where a family has several shapes (number of items, optional last steps), it lists the shapes whose step
# count is ``n`` and draws one of them.

# fmt: off
_STORES = {  # store: [(item, plural, lowest price, highest price)]
    "stationery store": [
        ("notebook", "notebooks", 2, 6), ("pen", "pens", 1, 3), ("pencil case", "pencil cases", 3, 8),
        ("eraser", "erasers", 1, 2), ("folder", "folders", 1, 4), ("marker", "markers", 2, 5),
        ("ruler", "rulers", 1, 3), ("glue stick", "glue sticks", 1, 3),
    ],
    "grocery store": [
        ("apple", "apples", 1, 2), ("carton of milk", "cartons of milk", 2, 4),
        ("bag of rice", "bags of rice", 3, 9), ("can of beans", "cans of beans", 1, 3),
        ("melon", "melons", 2, 5), ("box of cereal", "boxes of cereal", 3, 6),
        ("jar of honey", "jars of honey", 4, 9),
    ],
    "bakery": [
        ("muffin", "muffins", 2, 4), ("loaf of bread", "loaves of bread", 3, 6),
        ("croissant", "croissants", 2, 4), ("bagel", "bagels", 1, 3), ("cupcake", "cupcakes", 2, 5),
        ("pie", "pies", 8, 15), ("cookie", "cookies", 1, 2),
    ],
    "toy store": [
        ("toy car", "toy cars", 3, 8), ("puzzle", "puzzles", 6, 14), ("yo-yo", "yo-yos", 2, 5),
        ("kite", "kites", 7, 12), ("board game", "board games", 10, 25), ("ball", "balls", 2, 6),
        ("doll", "dolls", 8, 16),
    ],
    "garden center": [
        ("flower pot", "flower pots", 3, 9), ("packet of seeds", "packets of seeds", 1, 4),
        ("rose bush", "rose bushes", 6, 15), ("bag of soil", "bags of soil", 4, 8),
        ("watering can", "watering cans", 5, 12), ("pair of gloves", "pairs of gloves", 3, 7),
    ],
}
# fmt: on


def _shopping(rng: random.Random, n: int, sol: _Solution) -> str:
    # k items (a product each, then a running sum), then possibly the change from a bill.
    k, change = rng.choice([(k, c) for k in range(1, 7) for c in (0, 1) if 2 * k - 1 + c == n])
    (p,) = _people(rng, 1)
    store = rng.choice(list(_STORES))
    bought = [
        (rng.randint(2, 12), plural, rng.randint(lo, hi))
        for _, plural, lo, hi in rng.sample(_STORES[store], k)
    ]
    each = rng.choice(("for ${} each", "at ${} apiece", "that cost ${} each"))
    verb = rng.choice(("buys", "picks up", "gets"))
    listed = _join([f"{q} {plural} {each.format(price)}" for q, plural, price in bought])
    question = f"{p.name} goes to the {store}. {p.He} {verb} {listed}."
    line = rng.choice(("The {pl} cost {t}.", "{He} spends {t} on {pl}.", "For the {pl}, {he} pays {t}."))
    costs = []
    for q, plural, price in bought:
        c = sol.calc(q, "*", price, money=True)
        sol.say(line.format(pl=plural, t=c.text, He=p.He, he=p.he))
        costs.append(c.value)
    so_far = rng.choice(("That makes {} so far.", f"So far {p.he} has spent {{}}."))
    in_total = rng.choice((f"In total, {p.he} pays {{}}.", f"Altogether {p.he} spends {{}}."))
    total = sol.add_up(costs, so_far, in_total, money=True)
    if not change:
        ask = rng.choice(("How much does {he} spend in total?", "How many dollars does {he} pay altogether?"))
        return f"{question} {ask.format(he=p.he)}"
    bill = (total // 50 + 1) * 50 + rng.choice((0, 0, 50))
    c = sol.calc(bill, "-", total, money=True)
    sol.say(f"{p.He} gets {c.text} in change.")
    return f"{question} {p.He} pays with ${bill}. How much change does {p.he} get?"


# fmt: off
_JOBS = (  # (what, pay), {q} a count, {r} a rate in dollars
    ("mows {q} lawns", "for ${r} each"), ("washes {q} cars", "for ${r} per car"),
    ("babysits for {q} hours", "at ${r} an hour"), ("walks dogs for {q} hours", "at ${r} per hour"),
    ("sells {q} bracelets", "for ${r} each"),
)
_TREATS = (
    "book", "video game", "pair of shoes", "jacket", "bike helmet", "concert ticket", "backpack", "watch",
)
# fmt: on
_RELATIVES = ("grandmother", "grandfather", "aunt", "uncle", "mother", "father")
_THEN = ("Then", "After that", "Next", "Later", "Afterwards")


def _savings(rng: random.Random, n: int, sol: _Solution) -> str:
    # A running balance changed by events of one step (gift, purchase, doubling, halving) or two (earnings
    # as a product, then added), drawn until the steps add up to n.
    (p,) = _people(rng, 1)
    money = rng.randint(2, 40) * 5
    opening = rng.choice(
        (
            "{name} has ${m} in {his} piggy bank.",
            "{name} has saved ${m}.",
            "{name} starts the month with ${m}.",
        )
    )
    question = [opening.format(name=p.name, m=money, his=p.his)]
    while len(sol.steps) < n:
        events = ["gift"]
        events += ["job", "weekly"] if n - len(sol.steps) >= 2 else []
        events += ["spend"] if money >= 2 else []
        events += ["half"] if money % 2 == 0 and money >= 10 else []
        events += ["double"] if money <= 3000 else []
        event = rng.choice(events)
        then = rng.choice(_THEN) if len(question) > 1 else "First"
        if event in ("job", "weekly"):
            q = rng.randint(2, 9)
            if event == "job":
                job, pay = rng.choice(_JOBS)
                r = rng.randint(3, 15)
                question.append(f"{then}, {p.he} {job.format(q=q)} {pay.format(r=r)}.")
                c = sol.calc(q, "*", r, money=True)
                sol.say(f"{p.He} earns {c.text}.")
            else:
                r = rng.randint(2, 25)
                question.append(f"{then}, {p.he} saves ${r} every week for {q} weeks.")
                c = sol.calc(r, "*", q, money=True)
                sol.say(f"Over {q} weeks {p.he} saves {c.text}.")
            c = sol.calc(money, "+", c.value, money=True)
            sol.say(f"{p.He} now has {c.text}.")
        elif event == "gift":
            g = rng.randint(1, 20) * 5
            question.append(f"{then}, {p.his} {rng.choice(_RELATIVES)} gives {p.him} ${g}.")
            c = sol.calc(money, "+", g, money=True)
            sol.say(f"After the gift {p.he} has {c.text}.")
        elif event == "spend":
            s, treat = rng.randint(1, money - 1), rng.choice(_TREATS)
            question.append(f"{then}, {p.he} spends ${s} on a {treat}.")
            c = sol.calc(money, "-", s, money=True)
            sol.say(f"After buying the {treat}, {p.he} has {c.text} left.")
        elif event == "double":
            question.append(f"{then}, {p.his} {rng.choice(_RELATIVES)} doubles the money {p.he} has.")
            c = sol.calc(money, "*", 2, money=True)
            sol.say(f"Doubled, {p.his} money becomes {c.text}.")
        else:
            question.append(f"{then}, {p.he} spends half of {p.his} money on a {rng.choice(_TREATS)}.")
            c = sol.calc(money, "/", 2, money=True)
            sol.say(f"Half of {p.his} money is spent, so {p.he} keeps {c.text}.")
        money = c.value
    ask = rng.choice(
        ("How much money does {name} have now?", "How many dollars does {name} have at the end?")
    )
    return " ".join(question) + " " + ask.format(name=p.name)


# fmt: off
_TRAVEL = (  # verb, unit of speed, unit of distance, speeds
    ("drives", "miles per hour", "miles", range(30, 80, 5)),
    ("cycles", "kilometers per hour", "kilometers", range(8, 25)),
    ("walks", "miles per hour", "miles", range(2, 6)),
    ("rides a train", "kilometers per hour", "kilometers", range(60, 130, 10)),
    ("sails", "knots", "nautical miles", range(5, 20)),
)
# fmt: on


def _travel(rng: random.Random, n: int, sol: _Solution) -> str:
    # k legs (a product each, then a running sum), then possibly the distance left and the time it takes.
    k, extra = rng.choice([(k, e) for k in range(1, 7) for e in range(3) if 2 * k - 1 + e == n])
    (p,) = _people(rng, 1)
    verb, speed_unit, unit, speeds = rng.choice(_TRAVEL)
    legs = [(rng.choice(speeds), rng.randint(1, 5)) for _ in range(k)]
    parts = [f"at {s} {speed_unit} for {h} hour{'s' * (h > 1)}" for s, h in legs]
    question = f"{p.name} {verb} {parts[0]}"
    question += "".join(rng.choice((", then ", ", and after a break ")) + part for part in parts[1:]) + "."
    distances = []
    for i, (s, h) in enumerate(legs):
        c = sol.calc(s, "*", h)
        where = "In the first part" if i == 0 else rng.choice(("Next", "In the next part", "Then"))
        sol.say(f"{where}, {p.he} covers {c.text} {unit}." if k > 1 else f"{p.He} covers {c.text} {unit}.")
        distances.append(c.value)
    done = sol.add_up(distances, f"That is {{}} {unit} so far.", f"Altogether {p.he} travels {{}} {unit}.")
    if extra == 0:
        return f"{question} How many {unit} does {p.he} travel in total?"
    last_speed = rng.choice(speeds)
    rest = last_speed * rng.randint(1, 4) if extra == 2 else rng.randint(1, 60) * 5
    trip = done + rest
    question += f" The whole trip is {trip} {unit} long."
    c = sol.calc(trip, "-", done)
    sol.say(f"{p.He} still has {c.text} {unit} to go.")
    if extra == 1:
        return f"{question} How many more {unit} does {p.he} have to go?"
    c = sol.calc(c.value, "/", last_speed)
    sol.say(f"At {last_speed} {speed_unit} that takes {c.text} more hours.")
    rest_of_way = f"If {p.he} goes the rest of the way at {last_speed} {speed_unit}"
    return f"{question} {rest_of_way}, how many more hours will it take?"


# fmt: off
_INGREDIENTS = (  # name, lowest and highest grams
    ("flour", 150, 500), ("sugar", 50, 250), ("butter", 50, 200), ("oats", 50, 150),
    ("chocolate chips", 40, 120), ("chopped nuts", 20, 80), ("milk", 100, 300), ("raisins", 30, 90),
)
# fmt: on
_DISHES = ("cookies", "muffins", "pancakes", "bread rolls", "brownies", "scones")


def _recipe(rng: random.Random, n: int, sol: _Solution) -> str:
    # Even n: one step for the number of batches; then k ingredients (a product each, then a running sum).
    scaled = n % 2 == 0
    k = n // 2 if scaled else (n + 1) // 2
    (p,) = _people(rng, 1)
    dish = rng.choice(_DISHES)
    unit = rng.choice(("grams", "grams", "ounces"))
    ingredients = [
        (name, rng.randint(lo // 10, hi // 10) * 10 if unit == "grams" else rng.randint(2, 12))
        for name, lo, hi in rng.sample(_INGREDIENTS, k)
    ]
    servings, batches = rng.choice((6, 8, 10, 12, 16, 20, 24)), rng.randint(2, 6)
    question = (
        f"A recipe for {servings} {dish} uses " + _join([f"{a} {unit} of {x}" for x, a in ingredients]) + "."
    )
    if scaled:
        question += f" {p.name} wants to make {servings * batches} {dish}."
        c = sol.calc(servings * batches, "/", servings)
        sol.say(f"{p.He} needs {c.text} batches of the recipe.")
    else:
        question += f" {p.name} makes {batches} batches of the recipe."
    line = rng.choice(("That takes {t} {u} of {x}.", "{He} uses {t} {u} of {x}."))
    amounts = []
    for name, a in ingredients:
        c = sol.calc(a, "*", batches)
        sol.say(line.format(t=c.text, u=unit, x=name, He=p.He))
        amounts.append(c.value)
    sol.add_up(amounts, f"That is {{}} {unit} so far.", f"In total that is {{}} {unit}.")
    if k == 1:
        return f"{question} How many {unit} of {ingredients[0][0]} does {p.he} need?"
    return f"{question} How many {unit} of these ingredients does {p.he} need in total?"


def _ages(rng: random.Random, n: int, sol: _Solution) -> str:
    # A chain of c age relations, then the last age, that age some years later, or the sum of all ages.
    chain, ending = rng.choice(
        [
            (c, e)
            for c in range(1, 8)
            for e, cost in (("last", c), ("future", c + 1), ("sum", 2 * c))
            if cost == n
        ]
    )
    people = _people(rng, chain + 1)
    ages = [rng.randint(4, 40)]
    question = [f"{people[0].name} is {ages[0]} years old."]
    for prev, person in pairwise(people):
        a = ages[-1]
        relations = []  # (op, operand, wording); every result stays within 3..95 years
        if a <= 93:
            relations.append(("+", rng.randint(2, min(30, 95 - a)), "{x} years older than {p}"))
        if a > 6:
            relations.append(("-", rng.randint(1, a - 3), "{x} years younger than {p}"))
        if a * 2 <= 95:
            relations.append(("*", 2, "twice as old as {p}"))
        if a * 3 <= 95:
            relations.append(("*", 3, "three times as old as {p}"))
        if a % 2 == 0 and a >= 6:
            relations.append(("/", 2, "half as old as {p}"))
        op, x, words = rng.choice(relations)
        c = sol.calc(a, op, x)
        question.append(f"{person.name} is {words.format(x=x, p=prev.name)}.")
        sol.say(f"{person.name} is {c.text} years old.")
        ages.append(c.value)
    last = people[-1]
    if ending == "last":
        return " ".join(question) + f" How old is {last.name}?"
    if ending == "future":
        years = rng.randint(2, 15)
        c = sol.calc(ages[-1], "+", years)
        sol.say(f"In {years} years, {last.name} will be {c.text} years old.")
        return " ".join(question) + f" How old will {last.name} be in {years} years?"
    sol.add_up(ages, "Adding the next age gives {} years.", "Together they are {} years old.")
    return " ".join(question) + " What is the sum of their ages?"


# fmt: off
_PRODUCTS = (  # made item, unit of packing, packing sizes, price range per pack
    ("cookies", "boxes", (6, 8, 10, 12), (4, 12)), ("cupcakes", "trays", (4, 6, 12), (8, 20)),
    ("toy cars", "crates", (5, 10, 20), (20, 60)), ("candles", "packs", (4, 5, 6, 8), (6, 15)),
    ("scarves", "bundles", (2, 4, 5), (20, 45)), ("bars of soap", "gift sets", (3, 4, 6), (8, 18)),
)
# fmt: on


def _work(rng: random.Random, n: int, sol: _Solution) -> str:
    # k workers (rate * hours, then a running sum), then possibly: * days, / pack size, * price per pack.
    k, extra = rng.choice([(k, e) for k in range(1, 7) for e in range(4) if 2 * k - 1 + e == n])
    people = _people(rng, k)
    item, pack, sizes, (low, high) = rng.choice(_PRODUCTS)
    size = rng.choice(sizes)
    # Rates are multiples of the pack size, so that packing divides exactly.
    work = [(w, size * rng.randint(1, 6), rng.randint(2, 8)) for w in people]
    question = _join([f"{w.name} makes {r} {item} per hour for {h} hours" for w, r, h in work]) + "."
    made = []
    for w, r, h in work:
        c = sol.calc(r, "*", h)
        sol.say(f"{w.name} makes {c.text} {item}.")
        made.append(c.value)
    total = sol.add_up(made, f"Together that is {{}} {item} so far.", f"In one day they make {{}} {item}.")
    who, do = ("they", "do") if k > 1 else (people[0].he, "does")
    ask = f"How many {item} {do} {who} make?"
    if extra >= 1:
        days = rng.randint(2, 7)
        question += f" {who.capitalize()} {'work' if k > 1 else 'works'} like this for {days} days."
        c = sol.calc(total, "*", days)
        sol.say(f"In {days} days that is {c.text} {item}.")
        total = c.value
        ask = f"How many {item} {do} {who} make in {days} days?"
    if extra >= 2:
        question += f" The {item} are packed into {pack} of {size}."
        c = sol.calc(total, "/", size)
        sol.say(f"That fills {c.text} {pack}.")
        total = c.value
        ask = f"How many {pack} are filled?"
    if extra >= 3:
        price = rng.randint(low, high)
        question += f" Each of the {pack} sells for ${price}."
        c = sol.calc(total, "*", price, money=True)
        sol.say(f"Selling them brings in {c.text}.")
        ask = f"How much money do the {pack} bring in?"
    return f"{question} {ask}"


# fmt: off
_SALE_ITEMS = (
    ("jacket", "jackets"), ("pair of shoes", "pairs of shoes"), ("shirt", "shirts"), ("lamp", "lamps"),
    ("chair", "chairs"), ("backpack", "backpacks"), ("pair of headphones", "pairs of headphones"),
    ("rug", "rugs"), ("suitcase", "suitcases"),
)
_ONE_STEP_DISCOUNTS = (  # percent, divisor, the line that computes it
    (10, 10, "10% of ${total} is {t}."), (20, 5, "20% is a fifth, so the discount is {t}."),
    (25, 4, "25% is a quarter, so the discount is {t}."), (50, 2, "50% is half, so the discount is {t}."),
)
# fmt: on


def _discount(rng: random.Random, n: int, sol: _Solution) -> str:
    # k items (the first one possibly bought singly, which needs no product), a running sum, d steps for the
    # discount (one for 10/20/25/50%, two for 30% = 3 * 10%), and the price paid.
    k, single, d = rng.choice(
        [(k, s, d) for k in range(1, 6) for s in (0, 1) for d in (1, 2) if (k - s) + (k - 1) + d + 1 == n]
    )
    (p,) = _people(rng, 1)
    # Prices are multiples of 20, so that every total divides by 2, 4, 5 and 10.
    bought = [
        (1 if single and i == 0 else rng.randint(2, 5), names, rng.randint(1, 10) * 20)
        for i, names in enumerate(rng.sample(_SALE_ITEMS, k))
    ]
    listed = _join(
        [
            f"a {one} for ${price}" if q == 1 else f"{q} {many} for ${price} each"
            for q, (one, many), price in bought
        ]
    )
    costs = []
    for q, (_, many), price in bought:
        if q == 1:
            costs.append(price)
            continue
        c = sol.calc(q, "*", price, money=True)
        sol.say(f"The {many} cost {c.text}.")
        costs.append(c.value)
    total = sol.add_up(costs, "That makes {} so far.", "Before the discount the total is {}.", money=True)
    if d == 1:
        pct, divisor, line = rng.choice(_ONE_STEP_DISCOUNTS)
        c = sol.calc(total, "/", divisor, money=True)
        sol.say(line.format(total=total, t=c.text))
    else:
        pct = rng.choice((30, 40, 60, 70, 80))
        c = sol.calc(total, "/", 10, money=True)
        sol.say(f"10% of ${total} is {c.text}.")
        c = sol.calc(c.value, "*", pct // 10, money=True)
        sol.say(f"So {pct}% is {c.text}.")
    off = rng.choice(
        (
            "The store takes {pct}% off the whole purchase.",
            "{He} has a coupon for {pct}% off the total.",
            "Everything is on sale for {pct}% off.",
        )
    )
    c = sol.calc(total, "-", c.value, money=True)
    sol.say(f"{p.He} pays {c.text}.")
    return (
        f"{p.name} buys {listed}. {off.format(pct=pct, He=p.He)} How much does {p.he} pay after the discount?"
    )


_SHARE_ITEMS = ("candies", "stickers", "marbles", "cookies", "trading cards", "crayons", "seashells")
_CONTAINERS = ("bags", "boxes", "jars", "tins", "packs", "buckets", "baskets")


def _sharing(rng: random.Random, n: int, sol: _Solution) -> str:
    # k containers (a product each, then a running sum), possibly counting the sharer in, the equal share,
    # and possibly what each one has left after using some.
    k, with_self, used = rng.choice(
        [(k, s, u) for k in range(1, 7) for s in (0, 1) for u in (0, 1) if 2 * k + s + u == n]
    )
    (p,) = _people(rng, 1)
    item = rng.choice(_SHARE_ITEMS)
    friends = rng.randint(2, 7)
    people = friends + with_self
    # Container sizes are multiples of the number of people, so that the share divides exactly.
    lots = [(rng.randint(2, 6), box, people * rng.randint(1, 5)) for box in rng.sample(_CONTAINERS, k)]
    question = f"{p.name} has " + _join([f"{q} {box} with {s} {item} in each" for q, box, s in lots]) + "."
    sizes = []
    for q, box, s in lots:
        c = sol.calc(q, "*", s)
        sol.say(f"The {box} hold {c.text} {item}.")
        sizes.append(c.value)
    total = sol.add_up(sizes, f"That is {{}} {item} so far.", f"{p.He} has {{}} {item} in total.")
    if with_self:
        question += f" {p.He} shares them equally between {p.him}self and {friends} friends."
        c = sol.calc(friends, "+", 1)
        sol.say(f"There are {c.text} people sharing.")
    else:
        question += f" {p.He} shares them equally among {friends} friends."
    c = sol.calc(total, "/", people)
    sol.say(f"Each person gets {c.text} {item}.")
    who = "each of them" if with_self else "each friend"
    if not used:
        return f"{question} How many {item} does {who} get?"
    # Each container holds at least `people` items and there are at least two of each, so a share is >= 2.
    gone = rng.randint(1, c.value - 1)
    verb = "eats" if item in ("candies", "cookies") else "gives away"
    c = sol.calc(c.value, "-", gone)
    sol.say(f"After that, each has {c.text} {item} left.")
    return f"{question} Then {who} {verb} {gone} of them. How many {item} does {who} have left?"


_ROOMS = ("living room", "kitchen", "bedroom", "hallway", "office", "dining room", "playroom", "guest room")
_BEDS = ("vegetable bed", "flower bed", "herb bed", "lawn", "strawberry patch", "pumpkin patch", "play area")
_FLOORS = (("carpet", "costs"), ("tiles", "cost"), ("wood flooring", "costs"))  # cover, verb agreeing with it
_GROUND_COVERS = (("turf", "costs"), ("mulch", "costs"), ("topsoil", "costs"))


# (where, places, unit, unit singular, side range, price range per square unit, what covers it)
_AREA_SCENES = (
    ("house", _ROOMS, "feet", "foot", (6, 20), (2, 9), _FLOORS),
    ("garden", _BEDS, "meters", "meter", (2, 12), (3, 15), _GROUND_COVERS),
)


def _area(rng: random.Random, n: int, sol: _Solution) -> str:
    # k rectangles (a product each, then a running sum), then possibly the cost and a fixed fee.
    k, extra = rng.choice([(k, e) for k in range(1, 7) for e in range(3) if 2 * k - 1 + e == n])
    (p,) = _people(rng, 1)
    # (random() then sample then choice: the draw order the generated data set depends on)
    where, rooms, unit, one, dims, prices, covers = _AREA_SCENES[0 if rng.random() < 0.5 else 1]
    places = rng.sample(rooms, k)
    cover, costs = rng.choice(covers)
    shapes = [(place, rng.randint(*dims), rng.randint(*dims)) for place in places]
    listed = _join([f"the {place}, which is {a} by {b} {unit}" for place, a, b in shapes])
    question = f"{p.name} wants to cover parts of {p.his} {where} with {cover}: {listed}."
    areas = []
    for place, a, b in shapes:
        c = sol.calc(a, "*", b)
        sol.say(f"The {place} is {c.text} square {unit}.")
        areas.append(c.value)
    total = sol.add_up(areas, f"That is {{}} square {unit} so far.", f"The total area is {{}} square {unit}.")
    if extra == 0:
        return f"{question} How many square {unit} does {p.he} need to cover?"
    rate = rng.randint(*prices)
    question += f" The {cover} {costs} ${rate} per square {one}."
    c = sol.calc(total, "*", rate, money=True)
    sol.say(f"The {cover} {costs} {c.text}.")
    if extra == 1:
        return f"{question} How much {'do' if costs == 'cost' else 'does'} the {cover} cost?"
    fee = rng.randint(2, 30) * 10
    c = sol.calc(c.value, "+", fee, money=True)
    sol.say(f"With the fee, {p.he} pays {c.text}.")
    return f"{question} Installing it costs a fixed fee of ${fee} more. How much does {p.he} pay in total?"


# fmt: off
_ACTIVITIES = (  # what one does, what one spends time on
    ("practices piano", "piano"), ("reads", "reading"), ("walks {his} dog", "dog walks"), ("jogs", "jogging"),
    ("does homework", "homework"), ("stretches", "stretching"), ("plays chess", "chess"),
    ("practices drawing", "drawing"), ("studies Spanish", "Spanish"),
)
# fmt: on
_SPANS = ((5, "5 days"), (6, "6 days"), (7, "a week"), (10, "10 days"), (14, "two weeks"), (30, "30 days"))


def _time(rng: random.Random, n: int, sol: _Solution) -> str:
    # k activities, ``repeated`` of them done several times a day (one product each), a running sum, a step
    # for the number of days, and possibly one converting minutes to hours.
    k, repeated, hours = rng.choice(
        [(k, r, h) for k in range(1, 6) for r in range(k + 1) for h in (0, 1) if r + (k - 1) + 1 + h == n]
    )
    (p,) = _people(rng, 1)
    activities = [(does.format(his=p.his), what) for does, what in rng.sample(_ACTIVITIES, k)]
    times = [rng.randint(2, 4) for _ in range(repeated)] + [1] * (k - repeated)
    rng.shuffle(times)
    while True:  # redraw until the total converts to whole hours: one draw in 12 at worst
        days, span = rng.choice(_SPANS)
        minutes = [rng.randint(1, 12) * 5 for _ in range(k)]
        if not hours or sum(t * m for t, m in zip(times, minutes, strict=True)) * days % 60 == 0:
            break
    listed = _join(
        [
            f"{does} for {m} minutes" + (f" {t} times a day" if t > 1 else " a day")
            for (does, _), m, t in zip(activities, minutes, times, strict=True)
        ]
    )
    daily = []
    for (_, what), m, t in zip(activities, minutes, times, strict=True):
        if t > 1:
            c = sol.calc(m, "*", t)
            sol.say(f"{p.He} spends {c.text} minutes a day on {what}.")
            m = c.value
        daily.append(m)
    sol.add_up(
        daily, "That is {} minutes so far.", f"Each day {p.he} spends {{}} minutes on these activities."
    )
    c = sol.calc(sum(daily), "*", days)
    sol.say(f"In {days} days that is {c.text} minutes.")
    on = "these activities" if k > 1 else activities[0][1]
    if not hours:
        return f"{p.name} {listed}. How many minutes does {p.he} spend on {on} in {span}?"
    c = sol.calc(c.value, "/", 60)
    sol.say(f"That is {c.text} hours.")
    return f"{p.name} {listed}. How many hours does {p.he} spend on {on} in {span}?"


# fmt: off
_COUNTABLES = (  # place, how some leave, what is counted, [(kind, count per kind)]
    ("farm", "{name} sells {what}.", "legs", [
        ("chickens", 2), ("ducks", 2), ("geese", 2), ("cows", 4), ("goats", 4), ("sheep", 4), ("pigs", 4),
        ("horses", 4),
    ]),
    ("parking lot", "Then {what} drive away.", "wheels", [
        ("bicycles", 2), ("tricycles", 3), ("cars", 4), ("motorcycles", 2), ("trucks", 6), ("vans", 4),
    ]),
    ("pet shop", "{name} sells {what}.", "legs", [
        ("parrots", 2), ("spiders", 8), ("hamsters", 4), ("rabbits", 4), ("lizards", 4), ("canaries", 2),
    ]),
)
# fmt: on


def _counting(rng: random.Random, n: int, sol: _Solution) -> str:
    # k kinds (``removed`` of them reduced by a subtraction first, then a product each), then a running sum.
    k, removed = rng.choice([(k, r) for k in range(1, 7) for r in range(k + 1) if 2 * k - 1 + r == n])
    (p,) = _people(rng, 1)
    place, leave, counted, kinds = rng.choice(_COUNTABLES)
    chosen = rng.sample(kinds, k)
    counts = [rng.randint(3, 25) for _ in chosen]
    reduced = set(rng.sample(range(k), removed))
    gone = [rng.randint(1, c - 1) if i in reduced else 0 for i, c in enumerate(counts)]
    question = (
        f"At {p.name}'s {place} there are "
        + _join([f"{c} {kind}" for c, (kind, _) in zip(counts, chosen, strict=True)])
        + "."
    )
    if removed:
        what = _join([f"{g} of the {kind}" for g, (kind, _) in zip(gone, chosen, strict=True) if g])
        question += " " + leave.format(name=p.name, what=what)
    totals = []
    for count_, g, (kind, per) in zip(counts, gone, chosen, strict=True):
        if g:
            c = sol.calc(count_, "-", g)
            sol.say(f"There are {c.text} {kind} left.")
            count_ = c.value
        c = sol.calc(count_, "*", per)
        sol.say(f"The {kind} have {c.text} {counted}.")
        totals.append(c.value)
    sol.add_up(totals, f"That is {{}} {counted} so far.", f"Altogether there are {{}} {counted}.")
    return f"{question} How many {counted} are there at the {place}{' now' if removed else ''}?"


def _reading(rng: random.Random, n: int, sol: _Solution) -> str:
    # k reading sessions (s of them computed), a running sum, the pages left, and possibly the days needed.
    k, s, finish = rng.choice([(k, n - k - f, f) for k in range(1, 7) for f in (0, 1) if 0 <= n - k - f <= k])
    (p,) = _people(rng, 1)
    computed = set(rng.sample(range(k), s))
    question, read, day, yesterday = [], [], 1, 0  # ``yesterday``: pages read on the day before ``day``
    for i in range(k):
        kinds = ["given"] if i not in computed else ["run"] + (["more", "twice"] if yesterday else [])
        if i in computed and yesterday % 2 == 0 and yesterday >= 4:
            kinds.append("half")
        kind = rng.choice(kinds)
        if kind == "given":
            pages = rng.randint(5, 60)
            question.append(f"On day {day} {p.he} reads {pages} pages.")
            read.append(pages)
            day, yesterday = day + 1, pages
        elif kind == "run":
            per, span = rng.randint(5, 30), rng.randint(2, 4)
            question.append(f"From day {day} to day {day + span - 1} {p.he} reads {per} pages a day.")
            c = sol.calc(per, "*", span)
            sol.say(f"From day {day} to day {day + span - 1} {p.he} reads {c.text} pages.")
            read.append(c.value)
            day, yesterday = day + span, per
        else:
            x, op, words = {
                "more": (rng.randint(2, 20), "+", "{x} more pages than the day before"),
                "twice": (2, "*", "twice as many pages as the day before"),
                "half": (2, "/", "half as many pages as the day before"),
            }[kind]
            question.append(f"On day {day} {p.he} reads {words.format(x=x)}.")
            c = sol.calc(yesterday, op, x)
            sol.say(f"On day {day} {p.he} reads {c.text} pages.")
            read.append(c.value)
            day, yesterday = day + 1, c.value
    done = sol.add_up(read, "That is {} pages so far.", f"{p.He} has read {{}} pages.")
    rate = rng.randint(10, 40)
    left = rate * rng.randint(2, 9) if finish else rng.randint(20, 300)
    question.insert(0, f"{p.name} is reading a book with {done + left} pages.")
    c = sol.calc(done + left, "-", done)
    sol.say(f"{p.He} has {c.text} pages left.")
    if not finish:
        return " ".join(question) + f" How many pages does {p.he} still have to read?"
    c = sol.calc(c.value, "/", rate)
    sol.say(f"At {rate} pages a day, {p.he} needs {c.text} more days.")
    ask = f"If {p.he} reads {rate} pages a day from now on, how many more days will {p.he} need to finish it?"
    return " ".join(question) + " " + ask


_TICKETS = ("adult", "child", "student", "senior", "family", "VIP")
_EVENTS = ("school play", "charity concert", "talent show", "science fair", "dance recital", "bake-off")


def _tickets(rng: random.Random, n: int, sol: _Solution) -> str:
    # k ticket kinds (a product each, then a running sum), then possibly the costs, then an equal split.
    k, costs, split = rng.choice(
        [(k, c, s) for k in range(1, 7) for c, s in ((0, 0), (1, 0), (1, 1)) if 2 * k - 1 + c + s == n]
    )
    event = rng.choice(_EVENTS)
    sold = [(kind, rng.randint(10, 150), rng.randint(2, 15)) for kind in rng.sample(_TICKETS, k)]
    listed = _join([f"{q} {kind} tickets at ${price} each" for kind, q, price in sold])
    question = f"For the {event}, the organizers sell {listed}."
    earned = []
    for kind, q, price in sold:
        c = sol.calc(q, "*", price, money=True)
        sol.say(f"The {kind} tickets bring in {c.text}.")
        earned.append(c.value)
    revenue = sol.add_up(earned, "That is {} so far.", "The tickets bring in {} in total.", money=True)
    if not costs:
        return f"{question} How much money do the tickets bring in?"
    groups = rng.randint(2, 6)
    if split:
        # A profit that is a multiple of the number of classes and between 10% and 90% of the revenue
        # (revenue >= 20, so the range is never empty).
        profit = groups * rng.randint(max(1, revenue // (10 * groups)), 9 * revenue // (10 * groups))
        cost = revenue - profit
    else:
        cost = rng.randint(revenue // 10, 9 * revenue // 10)
    question += f" Putting on the {event} costs ${cost}."
    c = sol.calc(revenue, "-", cost, money=True)
    sol.say(f"The profit is {c.text}.")
    if not split:
        return f"{question} How much profit do they make?"
    c = sol.calc(c.value, "/", groups, money=True)
    sol.say(f"Each class gets {c.text}.")
    return f"{question} The profit is shared equally among {groups} classes. How much does each class get?"


@dataclass(frozen=True)
class _Family:
    build: Callable[[random.Random, int, _Solution], str]
    min_steps: int
    max_steps: int


_FAMILIES: dict[str, _Family] = {
    "shopping": _Family(_shopping, 1, 12),
    "savings": _Family(_savings, 1, 12),
    "travel": _Family(_travel, 1, 12),
    "recipe": _Family(_recipe, 1, 12),
    "ages": _Family(_ages, 1, 8),
    "work": _Family(_work, 1, 12),
    "discount": _Family(_discount, 2, 12),
    "sharing": _Family(_sharing, 2, 12),
    "area": _Family(_area, 1, 12),
    "time": _Family(_time, 1, 11),
    "counting": _Family(_counting, 1, 12),
    "reading": _Family(_reading, 1, 12),
    "tickets": _Family(_tickets, 1, 12),
}

FAMILIES: tuple[str, ...] = tuple(_FAMILIES)
"""Names of the scenario families (shopping, savings, travel, ...)."""


def family_step_range(family: str) -> tuple[int, int]:
    """The smallest and largest number of steps ``family`` can build."""
    if family not in _FAMILIES:
        raise ValueError(f"unknown family {family!r}; known families: {', '.join(FAMILIES)}")
    f = _FAMILIES[family]
    return f.min_steps, f.max_steps


# --------------------------------------------------------------------------------------------------------
# Generation


def _check_args(
    split: str, min_steps: int, max_steps: int, families: Sequence[str] | None
) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 1 <= min_steps <= max_steps <= MAX_STEPS:
        raise ValueError(
            f"need 1 <= min_steps <= max_steps <= {MAX_STEPS}, "
            f"got min_steps={min_steps}, max_steps={max_steps}"
        )
    chosen = FAMILIES if families is None else tuple(families)
    for family in chosen:
        family_step_range(family)  # raises on unknown names
    for n in range(min_steps, max_steps + 1):
        if not any(_FAMILIES[f].min_steps <= n <= _FAMILIES[f].max_steps for f in chosen):
            raise ValueError(
                f"no family in {chosen} builds problems of {n} steps; their ranges: "
                + ", ".join(f"{f} {family_step_range(f)}" for f in chosen)
            )
    return chosen


def _rng(seed: int, split: str, index: int, attempt: int) -> random.Random:
    # Hash the coordinates rather than adding them, so that nearby (seed, index) pairs give unrelated streams.
    digest = hashlib.blake2b(f"{seed}/{split}/{index}/{attempt}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _draft(rng: random.Random, min_steps: int, max_steps: int, families: tuple[str, ...]) -> MathProblem:
    n = rng.randint(min_steps, max_steps)
    name = rng.choice([f for f in families if _FAMILIES[f].min_steps <= n <= _FAMILIES[f].max_steps])
    sol = _Solution()
    question = _FAMILIES[name].build(rng, n, sol)
    if len(sol.steps) != n:
        raise AssertionError(f"family {name} built {len(sol.steps)} steps instead of {n}")
    final = sol.steps[-1].result
    answer = "\n".join([*sol.lines, f"#### {final}"])
    return MathProblem(question=question, answer=answer, final=final, steps=sol.steps, family=name)


def generate_problem(
    split: str,
    index: int,
    *,
    seed: int = 0,
    min_steps: int = 2,
    max_steps: int = 8,
    families: Sequence[str] | None = None,
) -> MathProblem:
    """Problem ``index`` (>= 0) of ``split``: a pure function of its arguments.

    Candidates are drawn from ``(seed, split, index, attempt)`` for attempt = 0, 1, ... until one whose
    question belongs to ``split`` (``split_of_question``); the number of steps is uniform in
    ``[min_steps, max_steps]`` and the family uniform among ``families`` (all by default) that can build it.
    """
    chosen = _check_args(split, min_steps, max_steps, families)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return _generate(split, index, seed, min_steps, max_steps, chosen)


def _generate(
    split: str, index: int, seed: int, min_steps: int, max_steps: int, families: tuple[str, ...]
) -> MathProblem:
    for attempt in count():
        problem = _draft(_rng(seed, split, index, attempt), min_steps, max_steps, families)
        if split_of_question(problem.question) == split:
            return problem
    raise AssertionError("unreachable")


def iter_problems(
    split: str,
    *,
    seed: int = 0,
    start: int = 0,
    min_steps: int = 2,
    max_steps: int = 8,
    families: Sequence[str] | None = None,
) -> Iterator[MathProblem]:
    """Problems ``start, start + 1, ...`` of ``split``, without end (see ``generate_problem``)."""
    chosen = _check_args(split, min_steps, max_steps, families)
    for index in count(start):
        yield _generate(split, index, seed, min_steps, max_steps, chosen)


def generate(
    split: str,
    n: int,
    *,
    seed: int = 0,
    min_steps: int = 2,
    max_steps: int = 8,
    families: Sequence[str] | None = None,
) -> list[MathProblem]:
    """The first ``n`` problems of ``split`` (see ``generate_problem``)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    it = iter_problems(split, seed=seed, min_steps=min_steps, max_steps=max_steps, families=families)
    return [next(it) for _ in range(n)]
