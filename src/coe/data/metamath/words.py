"""Words shared by the problem families: people and their pronouns, lists, numbers in words, connectives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from coe.data.metamath.engine import NUMBER_WORDS, Draft
from coe.data.synthetic_math import MEN, WOMEN

# fmt: off
MORE_WOMEN = (
    "Janet", "Sarah", "Lily", "Megan", "Rachel", "Jenna", "Kim", "Paula", "Wendy", "Tina", "Layla", "Ines",
    "Marta", "Sana", "Hana", "Alice", "Brenda", "Diana", "Fiona", "Gloria", "Helen", "Irene", "Joy", "Kate",
    "Linda", "Mona", "Nina", "Olga", "Penny", "Ruth",
)
MORE_MEN = (
    "John", "Mark", "Tom", "Peter", "Carlos", "Ahmed", "Bruno", "Dev", "Eric", "Frank", "George", "Hugo",
    "Ivan", "Jack", "Kevin", "Luis", "Max", "Nate", "Owen", "Paul", "Raj", "Sam", "Theo", "Umar", "Victor",
    "Will", "Xavier", "Yosef", "Zack", "Alan",
)
# fmt: on
_EVERYONE = [(name, True) for name in WOMEN + MORE_WOMEN] + [(name, False) for name in MEN + MORE_MEN]


@dataclass(frozen=True)
class Person:
    name: str
    he: str  # subject pronoun
    him: str  # object pronoun
    his: str  # possessive
    self: str  # reflexive

    @property
    def He(self) -> str:
        return self.he.capitalize()

    @property
    def His(self) -> str:
        return self.his.capitalize()

    @property
    def s(self) -> str:
        """The possessive of the name: ``Maria's``."""
        return f"{self.name}'s"


def people(d: Draft, k: int) -> list[Person]:
    """``k`` people with names distinct from each other and from the draft's other people, drawn with the
    question's generator and known to ``d`` as names."""
    chosen = d.rng.sample([(name, woman) for name, woman in _EVERYONE if name not in d.names], k)
    out = [
        Person(name, "she", "her", "her", "herself") if woman else Person(name, "he", "him", "his", "himself")
        for name, woman in chosen
    ]
    d.names.update(p.name for p in out)
    return out


def person(d: Draft) -> Person:
    """One person (see ``people``)."""
    return people(d, 1)[0]


def join(parts: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


_ORDINALS = (
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)


def number_word(n: int) -> str:
    """``3`` -> ``"three"`` up to twelve, digits above."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def ordinal(n: int) -> str:
    """``3`` -> ``"third"`` up to ten, ``"11th"`` above."""
    if 0 <= n < len(_ORDINALS):
        return _ORDINALS[n]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def a_an(word: str) -> str:
    """``word`` with its indefinite article: ``"an adult"``, ``"a VIP"``, ``"an 8%"``."""
    vowel = word[:1].lower() in "aeio" or word.startswith(("8", "11", "18")) or word[:2] in ("un",)
    return f"{'an' if vowel and not word.startswith(('VIP', 'uni', 'use')) else 'a'} {word}"


def plural(n: int | object, one: str, many: str) -> str:
    """``one`` when ``n`` is 1, else ``many``."""
    return one if str(n) == "1" else many


def lower_first(sentence: str, names: set[str]) -> str:
    """``sentence`` as it reads inside a longer one: its first letter lowered unless the first word is a name,
    an acronym or "I"."""
    first = re.match(r"[A-Za-z]+", sentence)
    word = first.group(0) if first else ""
    if word in names or (len(word) > 1 and word.isupper()) or word == "I":
        return sentence
    return sentence[:1].lower() + sentence[1:]


# fmt: off
OPENINGS = (
    "On Saturday", "On Sunday afternoon", "This week", "Today", "This morning", "During the summer",
    "During spring break", "After school", "Before the holidays", "At the start of the month",
    "On a rainy afternoon", "On the weekend", "In the morning", "In the afternoon", "One Friday",
    "One sunny morning", "Over the holidays", "Right after lunch", "Early on Tuesday", "Late on Thursday",
    "At the beginning of the year", "In early June", "During the winter break", "After work",
    "On a busy Monday",
    "Next weekend", "On a snowy day", "At the end of the term", "Before dinner", "On a quiet evening",
    "During a heat wave", "On the last day of school", "In the spring", "In late October", "At lunchtime",
    "On an ordinary Wednesday", "Early one morning", "One windy afternoon", "On a cold December day",
    "This Friday", "On a Thursday afternoon", "In the middle of July", "Over the long weekend",
    "In the first week of school", "On a sunny Sunday", "During the autumn break", "One Tuesday evening",
    "At the end of the day", "In the evening", "On New Year's Day", "On a foggy morning", "In mid-August",
    "At the start of spring", "During the last week of May", "On a warm September day", "Late one night",
)
"""Time and purpose adjuncts that may open a word problem's first sentence ("On Saturday, Maria buys ...")."""
# fmt: on


_OBSERVERS = (
    "notices that",
    "reads that",
    "learns that",
    "hears that",
    "finds out that",
    "writes down that",
    "is told that",
    "sees that",
    "remembers that",
    "reads in the paper that",
    "explains to a friend that",
    "points out that",
)


def tell_through_someone(d: Draft, chance: float = 0.5) -> None:
    """Now and then tells a first sentence that names nobody through a person: "Maria notices that a bag holds
    ..." (question generator)."""
    if not d.sentences or set(re.findall(r"[A-Z][a-z]+", d.sentences[0])) & d.names:
        return
    if d.rng.random() < chance:
        p = person(d)
        d.sentences[0] = f"{p.name} {d.pick(_OBSERVERS)} {lower_first(d.sentences[0], d.names)}"


# A time the sentence states already ("reads 40 pages this week"): an opening would give it a second one.
_TIME = re.compile(
    r"\b(?:today|tonight|tomorrow|yesterday|(?:this|last|next) (?:week|month|year|morning|afternoon|evening)"
    r"|(?:on|every) (?:mon|tues|wednes|thurs|fri|satur|sun)day|in the (?:morning|afternoon|evening))\b",
    re.IGNORECASE,
)


def open_with_setting(d: Draft, chance: float = 0.7) -> None:
    """Now and then opens the question's first sentence with an adjunct of ``OPENINGS`` (question generator),
    where that sentence is about a person (it names one) and states no time of its own."""
    first = d.sentences[0] if d.sentences else ""
    if not set(re.findall(r"[A-Z][a-z]+", first)) & d.names or _TIME.search(first):
        return
    if d.rng.random() < chance:
        d.sentences[0] = f"{d.pick(OPENINGS)}, {lower_first(d.sentences[0], d.names)}"


# fmt: off
_PRESENTERS = (
    "{name}'s {adult} writes {thing} on the board.", "{name} finds {thing} in {his} math homework.",
    "On a quiz, {name} is given {thing}.", "{name}'s {sib} challenges {him} with {thing}.",
    "In a math contest, {name} meets {thing}.", "{name} is practicing with {thing} before a test.",
    "{name}'s {adult} shows {him} {thing}.", "A puzzle book gives {name} {thing}.",
    "{name} copies {thing} from the textbook.", "In class, {name} has to work with {thing}.",
    "{name}'s study group looks at {thing}.", "For homework, {name} gets {thing}.",
    "{name} sees {thing} on a worksheet.", "At the math club, {name} is shown {thing}.",
    "{name} writes {thing} in {his} notebook.", "{name}'s {sib} asks {him} about {thing}.",
    "On the bus home, {name} thinks about {thing}.", "{name} gets stuck on {thing} while studying.",
    "{name}'s {adult} puts {thing} on a test.", "{name} invents {thing} to test a friend.",
    "{name} spots {thing} in a library book.", "During a math game, {name} draws a card with {thing}.",
)
_ADULTS = ("teacher", "tutor", "math coach", "aunt", "uncle", "father", "mother", "grandmother", "neighbor")
_SIBLINGS = ("older brother", "older sister", "cousin", "best friend", "classmate", "younger brother",
"lab partner")
# fmt: on


def presented(d: Draft, thing: str) -> tuple[str, Person]:
    """A sentence in which a person meets ``thing`` (``"the equation 3x + 7 = 25"``), and that person."""
    p = person(d)
    text = d.pick(_PRESENTERS).format(
        name=p.name, thing=thing, his=p.his, him=p.him, sib=d.pick(_SIBLINGS), adult=d.pick(_ADULTS)
    )
    return text, p


# Openings of a solution's lines, drawn with the wording generator so that the same step reads differently.
SO = ("So", "Thus", "Therefore", "This means", "That means", "Hence")
FIRST = ("First", "To begin", "First of all", "We start with")
TOTAL_WORDS = ("in total", "altogether", "in all", "overall")
