"""Numbers: fractions of amounts, fraction arithmetic, percentages, ratios, exponents, roots, divisors and
multiples, remainders."""

from __future__ import annotations

import math
from fractions import Fraction

from coe.data.metamath.engine import Draft, Family, plain
from coe.data.metamath.words import SO, people, person, presented

# fmt: off
_GROUPS = (  # the whole, its members, a first kind, the rest, a property of some of the rest
    ("class", "students", "boys", "girls", "wear glasses"),
    ("orchard", "trees", "apple trees", "pear trees", "are in bloom"),
    ("library shelf", "books", "novels", "textbooks", "are borrowed"),
    ("parking garage", "cars", "electric cars", "gas cars", "are red"),
    ("choir", "singers", "sopranos", "altos", "sing solos"),
    ("bakery tray", "pastries", "croissants", "muffins", "have icing"),
    ("aquarium", "fish", "goldfish", "guppies", "are striped"),
    ("club", "members", "adults", "teenagers", "play chess"),
    ("garden", "flowers", "roses", "daisies", "are yellow"),
    ("stamp album", "stamps", "foreign stamps", "local stamps", "show birds"),
    ("marching band", "musicians", "drummers", "horn players", "are new this year"),
    ("zoo", "animals", "mammals", "birds", "are asleep"),
    ("toy box", "toys", "cars", "dolls", "need new batteries"),
    ("farm", "animals", "cows", "sheep", "are black"),
)
# fmt: on


_FRACTION_WORDS = {
    Fraction(1, 2): "half",
    Fraction(1, 3): "a third",
    Fraction(2, 3): "two thirds",
    Fraction(1, 4): "a quarter",
    Fraction(3, 4): "three quarters",
    Fraction(1, 5): "a fifth",
    Fraction(2, 5): "two fifths",
    Fraction(3, 5): "three fifths",
    Fraction(4, 5): "four fifths",
    Fraction(1, 6): "a sixth",
    Fraction(5, 6): "five sixths",
    Fraction(1, 8): "an eighth",
    Fraction(3, 8): "three eighths",
    Fraction(5, 8): "five eighths",
    Fraction(7, 8): "seven eighths",
    Fraction(1, 10): "a tenth",
    Fraction(3, 10): "three tenths",
    Fraction(7, 10): "seven tenths",
}
# fmt: on


def _share(d: Draft) -> Fraction:
    return d.pick(list(_FRACTION_WORDS))


def _fraction_words(d: Draft, f: Fraction) -> str:
    """``2/5`` or ``two fifths``, drawn."""
    return _FRACTION_WORDS[f] if d.chance(0.5) else f"{f.numerator}/{f.denominator}"


def fraction_of(d: Draft) -> None:
    whole_name, members, first, rest, some = d.pick(_GROUPS)
    f1, f2 = _share(d), _share(d)
    lcm = math.lcm(f1.denominator, (1 - f1).denominator * f2.denominator)
    total = d.given(lcm * d.rng.randint(1, max(1, 120 // lcm)), f"the number of {members}")
    p = person(d)
    d.tell(
        d.pick(
            (
                f"There are {total} {members} in the {whole_name}.",
                f"A {whole_name} has {total} {members}.",
                f"{p.name} counts {total} {members} in the {whole_name}.",
                f"{p.s} {whole_name} has {total} {members}.",
                f"{p.name} looks after a {whole_name} with {total} {members}.",
            )
        ),
        d.pick(
            (
                f"{_fraction_words(d, f1).capitalize()} of them are {first} and the rest are {rest}.",
                f"Of these, {_fraction_words(d, f1)} are {first}; the others are {rest}.",
                f"{_fraction_words(d, f1).capitalize()} of the {members} are {first}, and all the others are "
                f"{rest}.",
            )
        ),
    )
    a = d.calc(total, "*", f1.numerator, "/", f1.denominator)
    d.say(
        ("There are {c} {x}.", "{fw} of {t} is {c}, the number of {x}."),
        x=first,
        fw=f"{f1.numerator}/{f1.denominator}",
        t=total,
        c=a.work,
    )
    b = d.calc(total, "-", a)
    d.say(("That leaves {c} {x}.", "The other {c} are {x}."), x=rest, c=b.work)
    if d.chance(0.4):
        d.ask(
            b,
            *d.pick(
                (
                    (f"How many {rest} are there?", f"There are # {rest}.", f"the number of {rest}"),
                    (
                        f"How many of the {members} are {rest}?",
                        f"# of the {members} are {rest}.",
                        f"the number of {members} that are {rest}",
                    ),
                )
            ),
        )
        return
    d.tell(
        d.pick(
            (
                f"{_fraction_words(d, f2).capitalize()} of the {rest} {some}.",
                f"Among the {rest}, {_fraction_words(d, f2)} {some}.",
            )
        )
    )
    c = d.calc(b, "*", f2.numerator, "/", f2.denominator)
    d.say(("{c} of the {x} {s}.", "{so}, {c} {x} {s}."), x=rest, s=some, so=d.word(SO), c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (f"How many {rest} {some}?", f"# {rest} {some}.", f"the number of {rest} that {some}"),
                (
                    f"What is the number of {rest} that {some}?",
                    f"The number of {rest} that {some} is #.",
                    f"the count of {rest} that {some}",
                ),
            )
        ),
    )


def _proper(d: Draft) -> Fraction:
    """A proper fraction with a denominator from 2 to 12, in lowest terms."""
    q = d.rng.randint(2, 12)
    return Fraction(d.rng.randint(1, q - 1), q)


_OPS = {
    "+": ("sum", "plus", "add"),
    "-": ("difference", "minus", "subtract"),
    "*": ("product", "times", "multiply"),
    "/": ("quotient", "divided by", "divide"),
}
_AS_FRACTION = (
    " Write it as a fraction m/n in lowest terms. What is m + n?",
    " If the answer is m/n in lowest terms, what is m + n?",
    " Express the answer as m/n in lowest terms and give m + n.",
)
_AS_DECIMAL = (
    " Express your answer as a decimal.",
    " Give the answer as a decimal.",
    " Write it as a decimal.",
)


def fraction_arithmetic(d: Draft) -> None:
    a, b = _proper(d), _proper(d)
    while a == b:
        b = _proper(d)
    op = d.pick(("+", "-", "*", "/"))
    if op == "-" and a < b:
        a, b = b, a
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    decimal = (value * 1000).denominator == 1
    fa = d.given(a, "the first fraction", kind="frac")
    fb = d.given(b, "the second fraction", kind="frac")
    word, verb, _ = _OPS[op]
    thing = d.pick(_PORTIONS)
    story = d.chance(0.6) and (op not in "+" or a + b <= 1)
    if story:
        p = person(d)
        ingredient = d.pick(("sugar", "flour", "milk", "oats", "rice", "water", "cocoa", "butter"))
        stories = {
            "+": (
                (
                    f"{p.name} eats {fa} of a {thing} at lunch and {fb} of it at dinner.",
                    f"What fraction of the {thing} does {p.he} eat?",
                    f"{p.He} eats # of the {thing}.",
                    f"the fraction of the {thing} {p.name} eats",
                ),
                (
                    f"{p.name} uses {fa} of a {thing} in the morning and another {fb} of it later.",
                    f"How much of the {thing} is used, as a fraction?",
                    f"# of the {thing} is used.",
                    f"the part of the {thing} used",
                ),
                (
                    f"A recipe calls for {fa} cup of {ingredient} and {fb} cup more for the topping.",
                    f"How many cups of {ingredient} does it need in all?",
                    f"It needs # cups of {ingredient}.",
                    f"the cups of {ingredient} the recipe needs",
                ),
                (
                    f"{p.name} walks {fa} of a mile to the park and then {fb} of a mile to the library.",
                    f"How far does {p.he} walk in all, in miles?",
                    f"{p.He} walks # miles.",
                    f"the distance {p.name} walks in miles",
                ),
            ),
            "-": (
                (
                    f"{p.name} has {fa} of a {thing} and gives {fb} of the whole {thing} to a friend.",
                    f"What fraction of the {thing} is left?",
                    f"# of the {thing} is left.",
                    f"the fraction of the {thing} left",
                ),
                (
                    f"There is {fa} of a {thing} left, and {p.name} uses {fb} of the whole {thing}.",
                    f"How much of the {thing} remains?",
                    f"# of the {thing} remains.",
                    f"the part of the {thing} left",
                ),
                (
                    f"{p.name} has {fa} cup of {ingredient} and a recipe uses {fb} cup of it.",
                    f"How much {ingredient} is left, in cups?",
                    f"# cups of {ingredient} are left.",
                    f"the cups of {ingredient} left",
                ),
                (
                    f"A trail is {fa} of a mile long, and {p.name} has walked {fb} of a mile of it.",
                    f"How much farther does {p.he} have to walk, in miles?",
                    f"{p.He} has # miles left to walk.",
                    f"the distance {p.name} still has to walk",
                ),
            ),
            "*": (
                (
                    f"{p.name} has {fa} of a {thing} and eats {fb} of what {p.he} has.",
                    f"What fraction of the whole {thing} does {p.he} eat?",
                    f"{p.He} eats # of the whole {thing}.",
                    f"the fraction of the whole {thing} {p.name} eats",
                ),
                (
                    f"A field is {fa} of a mile long, and {p.name} mows {fb} of its length.",
                    f"How many miles of it does {p.he} mow?",
                    f"{p.He} mows # miles.",
                    f"the length {p.name} mows in miles",
                ),
                (
                    f"{p.name} makes {fb} of a recipe that needs {fa} cup of {ingredient}.",
                    f"How many cups of {ingredient} does {p.he} use?",
                    f"{p.He} uses # cups of {ingredient}.",
                    f"the cups of {ingredient} {p.name} uses",
                ),
            ),
            "/": (
                (
                    f"{p.name} has {fa} cup of {ingredient} and a scoop that holds {fb} cup.",
                    f"How many scoops does the {ingredient} fill?",
                    f"The {ingredient} fills # scoops.",
                    f"the number of scoops the {ingredient} fills",
                ),
                (
                    f"A ribbon is {fa} of a yard long, and {p.name} cuts pieces of {fb} of a yard.",
                    "How many pieces is that?",
                    "That is # pieces.",
                    "the number of pieces",
                ),
                (
                    f"{p.name} runs {fa} of a mile in {fb} of an hour.",
                    f"What is {p.his} speed in miles per hour?",
                    f"{p.His} speed is # miles per hour.",
                    f"{p.s} speed in miles per hour",
                ),
            ),
        }
        sentence, question, statement, noun = d.pick(stories[op])
        d.tell(sentence)
    else:
        verb = d.pick(
            {
                "+": ("plus", "added to", "+"),
                "-": ("minus", "take away", "-"),
                "*": ("times", "multiplied by", "*"),
                "/": ("divided by", "divided by", "/"),
            }[op]
        )
        expression = f"{fa} {verb} {fb}"
        question, statement, noun = d.pick(
            (
                (f"What is {expression}?", f"{expression} is #.", expression),
                (
                    f"What is the {word} of {fa} and {fb}?",
                    f"The {word} of {fa} and {fb} is #.",
                    f"the {word} of {fa} and {fb}",
                ),
                (f"Compute {expression}.", f"{expression} equals #.", f"the value of {expression}"),
                (
                    f"Find the value of {expression}.",
                    f"The value of {expression} is #.",
                    f"the value of {expression}",
                ),
                (f"Simplify {expression}.", f"{expression} simplifies to #.", f"{expression}, simplified"),
            )
        )
        if d.chance(0.85):
            sentence, _ = presented(
                d, d.pick(("the expression", "the problem", "a fraction problem,")) + f" {expression}"
            )
            d.tell(sentence)
    c = d.calc(fa, op, fb, fraction=True)
    d.say(("The {w} is {c}.", "{so}, the result is {c}.", "We get {c}."), w=word, so=d.word(SO), c=c.work)
    if value.denominator == 1:
        d.ask(c, question, statement, noun)
    elif decimal:
        if not c.symbolic:
            d.say(("As a decimal, {f} = {x}.", "Written as a decimal that is {x}."), f=c.n, x=plain(value))
        d.ask(c, question + d.pick(_AS_DECIMAL), statement, noun)
    else:
        d.say(
            ("In lowest terms that is {n}/{m}.", "{n}/{m} cannot be reduced further."),
            n=value.numerator,
            m=value.denominator,
        )
        s = d.calc(d.derived(value.numerator, c), "+", value.denominator)
        d.say(("So m + n = {c}.", "Adding numerator and denominator gives {c}."), c=s.work)
        d.ask(
            s,
            question + d.pick(_AS_FRACTION),
            "Written as m/n in lowest terms, m + n is #.",
            f"m + n, where m/n is {noun} in lowest terms",
        )


def percent_change(d: Draft) -> None:
    p = person(d)
    thing = d.pick(_CHANGING)
    start = d.money(d.rng.randint(4, 60) * 10, f"the first price of the {thing}")
    up = d.percent(d.pick((10, 20, 25, 30, 40, 50)), "the increase in percent")
    down = d.percent(d.pick((10, 20, 25, 30, 40, 50)), "the decrease in percent")
    steps = ((up, "+"), (down, "-")) if d.chance(0.5) else ((down, "-"), (up, "+"))
    rise = (
        "The price goes up by {pct}.",
        "The store raises the price by {pct}.",
        "Its price increases by {pct}.",
    )
    fall = (
        "The price goes down by {pct}.",
        "The store cuts the price by {pct}.",
        "It goes on sale for {pct} off.",
    )
    rise2 = (
        "Then the new price goes up by {pct}.",
        "Later the new price is raised by {pct}.",
        "A month later it rises {pct} more.",
    )
    fall2 = (
        "Then the new price is cut by {pct}.",
        "Later the new price drops by {pct}.",
        "After that it is marked down {pct}.",
    )
    d.tell(
        d.pick(
            (
                f"A {thing} costs {start}.",
                f"The price of a {thing} is {start}.",
                f"{p.name} sees a {thing} priced at {start}.",
                f"A shop sells a {thing} for {start}.",
            )
        ),
        d.pick(rise if steps[0][1] == "+" else fall).format(pct=steps[0][0]),
        d.pick(rise2 if steps[1][1] == "+" else fall2).format(pct=steps[1][0]),
    )
    price = start
    for pct, op in steps:
        change = d.calc(price, "*", pct, "/", 100)
        d.say(("{pct} of {pr} is {c}.", "The change is {c}."), pct=pct, pr=price, c=change.work)
        price = d.calc(price, op, change)
        d.say(("The price becomes {c}.", "Now it costs {c}."), c=price.work)
    d.ask(
        price,
        *d.pick(
            (
                (
                    f"What is the final price of the {thing}?",
                    f"The final price of the {thing} is #.",
                    f"the final price of the {thing}",
                ),
                (
                    f"How much does the {thing} cost now?",
                    f"The {thing} now costs #.",
                    f"the new price of the {thing}",
                ),
                (
                    f"How much would {p.name} pay for the {thing} after both changes?",
                    f"After both changes {p.name} would pay #.",
                    "the price after both changes",
                ),
            )
        ),
    )


# fmt: off
_SCORES = (  # the sentence ({name}, {n}, {k}), the question, the statement of the answer (#)
    ("In a test with {n} questions, {name} answers {k} of them correctly.",
     "What percent of the questions does {he} answer correctly?",
     "{He} answers # percent of the questions correctly."),
    ("{name} takes {n} free throws this season and makes {k} of them.",
     "What percent of {his} free throws does {he} make?",
     "{He} makes # percent of {his} free throws."),
    ("{name} plants {n} seeds and {k} of them sprout.",
     "What percent of the seeds sprout?",
     "# percent of the seeds sprout."),
    ("{name} asks {n} people, and {k} of them say they like tea.",
     "What percent of the people like tea?",
     "# percent of the people like tea."),
    ("Out of {n} emails {name} gets this week, {k} are spam.",
     "What percent of the emails are spam?",
     "# percent of the emails are spam."),
    ("{name} bakes {n} cookies and {k} of them are chocolate chip.",
     "What percent of the cookies are chocolate chip?",
     "# percent of the cookies are chocolate chip."),
    ("Of the {n} students in {name}'s grade, {k} walk to school.",
     "What percent of the students walk to school?",
     "# percent of the students walk to school."),
    ("{name}'s orchard has {n} trees, and {k} of them are apple trees.",
     "What percent of the trees are apple trees?",
     "# percent of the trees are apple trees."),
    ("{name} shoots {n} arrows and hits the target {k} times.",
     "What percent of {his} shots hit the target?",
     "# percent of {his} shots hit the target."),
    ("A library lends {n} books on Monday; {name} counts {k} of them as novels.",
     "What percent of the books lent are novels?",
     "# percent of the books lent are novels."),
    ("{name}'s team plays {n} games and wins {k} of them.",
     "What percent of the games does the team win?",
     "The team wins # percent of its games."),
    ("{name} picks {n} strawberries and {k} of them are ripe.",
     "What percent of the strawberries are ripe?",
     "# percent of the strawberries are ripe."),
    ("A factory makes {n} toys, and {name} finds {k} with defects.",
     "What percent of the toys have defects?",
     "# percent of the toys have defects."),
    ("{name} has {n} songs on a playlist and {k} of them are pop songs.",
     "What percent of the songs are pop songs?",
     "# percent of the songs are pop songs."),
    ("{name} sells {n} raffle tickets, and {k} of them are bought by teachers.",
     "What percent of the tickets are bought by teachers?",
     "Teachers buy # percent of the tickets."),
    ("{name} flips a coin {n} times and gets heads {k} times.",
     "What percent of the flips are heads?",
     "# percent of the flips are heads."),
    ("Of the {n} apples in {name}'s basket, {k} are green.",
     "What percent of the apples are green?",
     "# percent of the apples are green."),
    ("{name} sends {n} invitations and {k} guests reply yes.",
     "What percent of the invitations get a yes?",
     "# percent of the invitations get a yes."),
    ("{name} reads {n} pages this week, and {k} of them are from a comic book.",
     "What percent of the pages are from the comic book?",
     "# percent of the pages are from the comic book."),
    ("A survey by {name} finds that {k} of {n} neighbors own a dog.",
     "What percent of the neighbors own a dog?",
     "# percent of the neighbors own a dog."),
    ("{name} bakes {n} rolls and {k} of them burn.",
     "What percent of the rolls burn?",
     "# percent of the rolls burn."),
    ("Of {n} tickets {name} checks at the gate, {k} are for children.",
     "What percent of the tickets are for children?",
     "# percent of the tickets are for children."),
    ("{name} kicks {n} penalty shots in practice and scores {k}.",
     "What percent of {his} penalty shots go in?",
     "# percent of {his} penalty shots go in."),
    ("{name} waters {n} plants, and {k} of them bloom by June.",
     "What percent of the plants bloom by June?",
     "# percent of the plants bloom by June."),
    ("There are {n} cars in the lot where {name} works, and {k} of them are white.",
     "What percent of the cars are white?",
     "# percent of the cars are white."),
    ("{name} answers {k} of the {n} emails {he} gets before noon.",
     "What percent of the emails does {he} answer?",
     "{He} answers # percent of the emails."),
    ("Of {n} pumpkins in {name}'s patch, {k} are ready to pick.",
     "What percent of the pumpkins are ready?",
     "# percent of the pumpkins are ready."),
    ("{name} sorts {n} coins and finds {k} quarters.",
     "What percent of the coins are quarters?",
     "# percent of the coins are quarters."),
    ("In {name}'s class of {n} students, {k} bring lunch from home.",
     "What percent of the students bring lunch from home?",
     "# percent of the students bring lunch from home."),
    ("{name} tries {n} puzzles in a book and solves {k} of them.",
     "What percent of the puzzles does {he} solve?",
     "{He} solves # percent of the puzzles."),
)
# fmt: on


def percent_of(d: Draft) -> None:
    p = person(d)
    total = d.pick((20, 25, 40, 50, 80, 100, 125, 200, 250, 400, 500))
    sentence, question, statement = d.pick(_SCORES)
    n = d.given(total, "the total number")
    k = d.given(d.rng.randint(1, total - 1), "the number counted")
    d.tell(sentence.format(name=p.name, n=n, k=k, he=p.he, his=p.his))
    if d.word((True, False)):
        c = d.calc(k, "/", n, "*", 100)
    else:
        share = d.calc(k, "/", n)
        d.say(("That is {c} of them.", "As a share that is {c}."), c=share.work)
        c = d.calc(share, "*", 100)
    d.say(("That is {c}%.", "{so}, the percentage is {c}%."), so=d.word(SO), c=c.work)
    fields = {"he": p.he, "He": p.He, "his": p.his}
    question = question.format(**fields)
    if d.chance(0.4):
        question = d.pick(
            (
                "What percentage is that?",
                "What is that as a percentage?",
                "Express that as a percent.",
                "What percent is that?",
            )
        )
    d.ask(c, question, statement.format(**fields), "the percentage")


def ratio(d: Draft) -> None:
    a_, b_ = people(d, 2)
    thing = d.pick(_SHARED_THINGS)
    r1, r2 = d.rng.randint(1, 9), d.rng.randint(1, 9)
    if r1 == r2:
        r2 += 1
    unit = d.rng.randint(2, 20)
    x = d.given(r1, f"{a_.s} part of the ratio", spell=False)
    y = d.given(r2, f"{b_.s} part of the ratio", spell=False)
    if d.chance(0.5):
        total = d.given((r1 + r2) * unit, f"the number of {thing} in all")
        d.tell(
            d.pick(
                (
                    f"{a_.name} and {b_.name} share {total} {thing} in the ratio {x}:{y}.",
                    f"{total} {thing} are split between {a_.name} and {b_.name} in the ratio {x}:{y}.",
                    f"{a_.name} and {b_.name} divide {total} {thing} so that their shares are in the ratio "
                    f"{x}:{y}.",
                    f"A prize of {total} {thing} goes to {a_.name} and {b_.name} in the ratio {x}:{y}.",
                    f"{a_.name} and {b_.name} win {total} {thing} together and split them {x}:{y}.",
                    f"Their {d.pick(('grandmother', 'teacher', 'coach', 'uncle'))} gives {a_.name} and "
                    f"{b_.name} {total} {thing} to share in the ratio {x}:{y}.",
                    f"Out of {total} {thing}, {a_.name} and {b_.name} take shares in the ratio {x}:{y}.",
                )
            )
        )
        parts = d.calc(x, "+", y)
        d.say(
            (
                "There are {c} parts in all.",
                "The ratio has {c} parts.",
                "Together the ratio counts {c} parts.",
            ),
            c=parts.work,
        )
        one = d.calc(total, "/", parts)
        d.say(("One part is {c} {t}.", "Each part is worth {c} {t}."), t=thing, c=one.work)
        who, mine = d.pick(((a_, x), (b_, y)))
        c = d.calc(one, "*", mine)
        d.say(("{w.name} gets {c} {t}.", "{w.name}'s share is {c} {t}."), w=who, t=thing, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many {thing} does {who.name} get?",
                        f"{who.name} gets # {thing}.",
                        f"the number of {thing} {who.name} gets",
                    ),
                    (f"What is {who.s} share?", f"{who.s} share is # {thing}.", f"{who.s} share"),
                    (
                        f"How many {thing} end up with {who.name}?",
                        f"# {thing} end up with {who.name}.",
                        f"the {thing} that end up with {who.name}",
                    ),
                )
            ),
        )
        return
    known = d.given(r1 * unit, f"the number of {thing} {a_.name} has")
    d.tell(
        d.pick(
            (
                f"The ratio of {a_.s} {thing} to {b_.s} {thing} is {x}:{y}.",
                f"{a_.name} and {b_.name} have {thing} in the ratio {x}:{y}.",
                f"For every {x} {thing} {a_.name} has, {b_.name} has {y}.",
                f"{a_.s} {thing} and {b_.s} {thing} are in the ratio {x} to {y}.",
                f"{a_.name} owns {x} {thing} for every {y} that {b_.name} owns.",
            )
        ),
        d.pick(
            (
                f"{a_.name} has {known} {thing}.",
                f"{a_.s} total is {known} {thing}.",
                f"{a_.name} counts {known} {thing}.",
            )
        ),
    )
    one = d.calc(known, "/", x)
    d.say(("One part is {c} {t}.", "Each part of the ratio is {c} {t}."), t=thing, c=one.work)
    c = d.calc(one, "*", y)
    d.say(("{w.name} has {c} {t}.", "So {w.name} has {c} {t}."), w=b_, t=thing, c=c.work)
    if d.chance(0.5):
        t = d.calc(known, "+", c)
        d.say(("Together they have {c} {t}.", "In all there are {c} {t}."), t=thing, c=t.work)
        d.ask(
            t,
            *d.pick(
                (
                    (
                        f"How many {thing} do they have together?",
                        f"Together they have # {thing}.",
                        f"the number of {thing} they have together",
                    ),
                    (
                        f"What is the combined number of {thing}?",
                        "The combined number is #.",
                        f"the combined number of {thing}",
                    ),
                    (
                        f"How many {thing} do {a_.name} and {b_.name} have in all?",
                        f"They have # {thing} in all.",
                        f"the {thing} of both",
                    ),
                )
            ),
        )
        return
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"How many {thing} does {b_.name} have?",
                    f"{b_.name} has # {thing}.",
                    f"the number of {thing} {b_.name} has",
                ),
                (f"What is {b_.s} total?", f"{b_.s} total is # {thing}.", f"{b_.s} total"),
                (
                    f"How many {thing} belong to {b_.name}?",
                    f"# {thing} belong to {b_.name}.",
                    f"the {thing} that belong to {b_.name}",
                ),
            )
        ),
    )


def exponents(d: Draft) -> None:
    base = d.pick((2, 2, 3, 3, 5, 7, 10))
    kind = d.pick(("product", "quotient", "power", "value", "value"))
    if kind == "value":
        a = d.given(d.pick((2, 3, 4, 5, 6)), "the base")
        e = d.given(d.rng.randint(2, 5), "the exponent")
        k = d.given(d.rng.randint(1, 60), "the number added")
        sign = d.pick(("+", "-")) if a.value**e.value > k.value else "+"
        expression = f"{a}^{e} {sign} {k}"
        c = d.calc(a, "**", e)
        d.say(
            ("First the power: {c}.", "We start with the power: {c}.", "The power comes first: {c}."),
            a=a,
            e=e,
            c=c.work,
        )
        c = d.calc(c, sign, k)
        d.say(
            ("{w} {k} gives {c}.", "Then {c}."), w="Adding" if sign == "+" else "Subtracting", k=k, c=c.work
        )
        if d.chance(0.85):
            sentence, _ = presented(d, f"the expression {expression}")
            d.tell(sentence)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"What is the value of {expression}?",
                        f"{expression} = #.",
                        f"the value of {expression}",
                    ),
                    (f"Evaluate {expression}.", f"{expression} equals #.", expression),
                    (f"What number is {expression}?", f"{expression} is #.", f"the number {expression}"),
                    (
                        f"Work out {expression}.",
                        f"{expression} works out to #.",
                        f"the value of {expression}",
                    ),
                )
            ),
        )
        return
    a = d.given(d.rng.randint(2, 9), "the first exponent")
    b = d.given(d.rng.randint(2, 9), "the second exponent")
    if kind == "quotient" and a.value < b.value:
        a, b = b, a
    left = (
        f"({base}^{a})^{b}"
        if kind == "power"
        else f"{base}^{a} {'*' if kind == 'product' else '/'} {base}^{b}"
    )
    letter = d.pick(("n", "k", "m", "p"))
    rule = {
        "product": ("Multiplying powers of the same base adds the exponents", "+"),
        "quotient": ("Dividing powers of the same base subtracts the exponents", "-"),
        "power": ("A power of a power multiplies the exponents", "*"),
    }[kind]
    c = d.calc(a, rule[1], b)
    d.say(("{r}: {l} = {c}.", "{r}, so {l} = {c}."), r=rule[0], l=letter, c=c.work)
    if d.chance(0.3) and not c.symbolic:
        d.say(("So {x} = {b}^{n}.", "Check: {x} is {b}^{n}."), x=left, b=base, n=c.n)
    if d.chance(0.85):
        sentence, _ = presented(d, f"the equation {left} = {base}^{letter}")
        d.tell(sentence)
        question = d.pick((f"What is {letter}?", f"What value of {letter} makes it true?", f"Find {letter}."))
        d.ask(c, question, f"{left} = {base}^#.", f"the value of {letter}")
        return
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"If {left} = {base}^{letter}, what is {letter}?",
                    f"{left} = {base}^#.",
                    f"the exponent {letter} in {left} = {base}^{letter}",
                ),
                (
                    f"{left} can be written as {base}^{letter}. Find {letter}.",
                    f"{left} equals {base}^#.",
                    f"{letter} such that {left} = {base}^{letter}",
                ),
                (
                    f"For what {letter} is {base}^{letter} equal to {left}?",
                    f"{base}^# is equal to {left}.",
                    f"the {letter} with {base}^{letter} = {left}",
                ),
                (
                    f"Write {left} as a single power of {base}. What is the exponent?",
                    f"{left} = {base}^#.",
                    f"the exponent when {left} is written as a power of {base}",
                ),
            )
        ),
    )


def roots(d: Draft) -> None:
    p = person(d)
    shape = d.pick(("square", "square", "cube"))
    if shape == "square":
        side = d.rng.randint(2, 30)
        thing = d.pick(
            (
                "garden",
                "tile",
                "rug",
                "photo",
                "field",
                "chessboard",
                "window",
                "patio",
                "sandbox",
                "quilt",
                "mirror",
                "pen for the goats",
                "courtyard",
                "napkin",
            )
        )
        unit = d.pick(("feet", "meters", "inches", "yards", "centimeters"))
        area = d.given(side * side, f"the area of the {thing}")
        d.tell(
            d.pick(
                (
                    f"A square {thing} has an area of {area} square {unit}.",
                    f"{p.s} square {thing} covers {area} square {unit}.",
                    f"{p.name} measures a square {thing} and finds that its area is {area} square {unit}.",
                    f"The area of a square {thing} is {area} square {unit}.",
                    f"{p.name} buys a square {thing} with an area of {area} square {unit}.",
                )
            )
        )
        s = d.root(area)
        d.say(
            (
                "Each side is {s} {u}, since {c}.",
                "The side is the square root of {a}, which is {s} {u}: {c}.",
            ),
            s=s.n,
            a=area,
            u=unit,
            c=s.work,
        )
        if d.chance(0.4):
            d.ask(
                s,
                *d.pick(
                    (
                        (
                            f"How long is each side in {unit}?",
                            f"Each side is # {unit} long.",
                            f"the side of the {thing}",
                        ),
                        (
                            f"What is the side length of the {thing}?",
                            f"The side length is # {unit}.",
                            f"the side length of the {thing}",
                        ),
                    )
                ),
            )
            return
        c = d.calc(4, "*", s)
        d.say(("The perimeter is {c} {u}.", "Four sides make {c} {u}."), u=unit, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"What is the perimeter of the {thing} in {unit}?",
                        f"The perimeter is # {unit}.",
                        f"the perimeter of the {thing}",
                    ),
                    (
                        f"How many {unit} of trim go around the {thing}?",
                        f"# {unit} of trim go around it.",
                        f"the length of trim around the {thing}",
                    ),
                )
            ),
        )
        return
    edge = d.rng.randint(2, 12)
    box = d.pick(
        ("cube", "cube-shaped box", "block of ice", "cube-shaped tank", "wooden cube", "cube of clay")
    )
    unit = d.pick(("centimeters", "inches"))
    v = d.given(edge**3, f"the volume of the {box}")
    d.tell(
        d.pick(
            (
                f"A {box} has a volume of {v} cubic {unit}.",
                f"{p.s} {box} holds {v} cubic {unit}.",
                f"The volume of a {box} is {v} cubic {unit}.",
            )
        )
    )
    s = d.root(v, 3)
    d.say(
        ("Each edge is {s} {u}, since {c}.", "The edge is the cube root of {v}, {s}: {c}."),
        s=s.n,
        v=v,
        u=unit,
        c=s.work,
    )
    c = d.calc(s, "*", s)
    d.say(("One face has an area of {c} square {u}.", "A face is {c} square {u}."), u=unit, c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"What is the area of one face in square {unit}?",
                    f"One face is # square {unit}.",
                    "the area of one face",
                ),
                (
                    f"How many square {unit} is one side of the {box}?",
                    f"One side is # square {unit}.",
                    f"the area of one side of the {box}",
                ),
            )
        ),
    )


# fmt: off
_KITS = (
    ("red beads", "blue beads", "bracelets"), ("pencils", "erasers", "school kits"),
    ("roses", "tulips", "bouquets"),
    ("apples", "oranges", "fruit baskets"), ("chocolate bars", "lollipops", "gift bags"),
    ("boys", "girls", "teams"),
    ("granola bars", "juice boxes", "snack packs"), ("stickers", "postcards", "party favors"),
    ("bandages", "wipes", "first aid kits"), ("blue tiles", "white tiles", "panels"),
)
# fmt: on


def gcd(d: Draft) -> None:
    p = person(d)
    a_name, b_name, groups = d.pick(_KITS)
    g = d.rng.randint(2, 15)
    u, v = d.rng.randint(2, 9), d.rng.randint(2, 9)
    while math.gcd(u, v) != 1:
        v = d.rng.randint(2, 12)
    a = d.given(g * u, f"the number of {a_name}")
    b = d.given(g * v, f"the number of {b_name}")
    d.tell(
        *d.pick(
            (
                (
                    f"{p.name} has {a} {a_name} and {b} {b_name}.",
                    d.pick(
                        (
                            f"{p.He} wants to make identical {groups} with no items left over.",
                            f"All the {groups} must be the same and use everything.",
                            f"{p.He} splits them into identical {groups}, using every item.",
                        )
                    ),
                ),
                (
                    f"There are {a} {a_name} and {b} {b_name} in {p.s} "
                    f"{d.pick(('kitchen', 'classroom', 'shop', 'garage'))}.",
                    f"{p.name} wants to make identical {groups} from them with nothing left over.",
                ),
                (
                    f"{p.name} is making {groups} from {a} {a_name} and {b} {b_name}.",
                    f"Every one of the {groups} must have the same contents, and nothing may be left.",
                ),
            )
        )
    )
    k = d.derived(g, a, b)
    d.say(
        (
            "The greatest number of {gr} is the greatest common divisor of {a} and {b}.",
            "We need the largest number that divides both {a} and {b}.",
        ),
        gr=groups,
        a=a.value,
        b=b.value,
    )
    ca = d.calc(k, "*", u)
    cb = d.calc(k, "*", v)
    d.say(
        (
            "{ca} and {cb}, and {u} and {v} share no factor, so it is {g}.",
            "Since {ca} and {cb}, with {u} and {v} sharing no factor, the answer is {g}.",
        ),
        ca=ca.work,
        cb=cb.work,
        u=u,
        v=v,
        g=g,
    )
    if d.chance(0.5):
        d.ask(
            k,
            *d.pick(
                (
                    (
                        f"What is the greatest number of {groups} {p.he} can make?",
                        f"{p.He} can make at most # {groups}.",
                        f"the greatest number of {groups}",
                    ),
                    (
                        f"How many {groups} can there be at most?",
                        f"There can be at most # {groups}.",
                        f"the largest possible number of {groups}",
                    ),
                )
            ),
        )
        return
    per = d.calc(u, "+", v)
    d.say(
        ("Each of the {gr} gets {u} {a} and {v} {b}, {c} items in all.",),
        gr=groups,
        u=u,
        v=v,
        a=a_name,
        b=b_name,
        c=per.work,
    )
    d.ask(
        per,
        *d.pick(
            (
                (
                    f"If {p.he} makes as many {groups} as possible, how many items are in each?",
                    f"Each of the {groups} has # items.",
                    f"the number of items in each of the {groups}",
                ),
                (
                    f"With the most {groups} possible, how many items does each one hold?",
                    "Each one holds # items.",
                    "the number of items in each one",
                ),
            )
        ),
    )


def lcm(d: Draft) -> None:
    one, many, unit, verb, base, where = d.pick(_CYCLES)
    p = person(d)
    a_val, b_val = d.rng.randint(2, 20), d.rng.randint(2, 20)
    if a_val == b_val:
        b_val += d.rng.randint(1, 5)
    m = math.lcm(a_val, b_val)
    a = d.given(a_val, f"the time between the first {one}'s events")
    b = d.given(b_val, f"the time between the second {one}'s events")
    d.tell(
        d.pick(
            (
                f"At the {where}, one {one} {verb} every {a} {unit} and another {verb} every {b} {unit}.",
                f"{p.name} notices that one {one} {verb} every {a} {unit} and another every {b} {unit}.",
                f"Near {p.s} home, a {one} {verb} every {a} {unit}, and a second one every {b} {unit}.",
                f"One {one} {verb} every {a} {unit}, and a second {one} {verb} every {b} {unit}.",
                f"Two {many} run on a schedule: the first {verb} every {a} {unit}, the second every {b} "
                f"{unit}.",
            )
        ),
        d.pick(
            (
                f"They both {base} at the same moment.",
                f"The two {many} just {base} together.",
                f"Right now they {base} at the same time.",
            )
        ),
    )
    k = d.derived(m, a, b)
    d.say(
        (
            "They next coincide after the least common multiple of {a} and {b}.",
            "We need the smallest number that both {a} and {b} divide.",
        ),
        a=a.value,
        b=b.value,
    )
    ca = d.calc(a, "*", m // a_val)
    cb = d.calc(b, "*", m // b_val)
    d.say(
        (
            "{m} is a multiple of both, {ca} and {cb}, and no smaller number is.",
            "The smallest common multiple is {m}: {ca} and {cb}.",
        ),
        m=m,
        ca=ca.work,
        cb=cb.work,
    )
    if d.chance(0.5):
        d.ask(
            k,
            *d.pick(
                (
                    (
                        f"After how many {unit} do they next {base} together?",
                        f"They next {base} together after # {unit}.",
                        f"the number of {unit} until they coincide",
                    ),
                    (
                        f"How many {unit} pass before they {base} together again?",
                        f"# {unit} pass before they {base} together again.",
                        f"the wait in {unit} until they {base} together again",
                    ),
                )
            ),
        )
        return
    span = d.given(m * d.rng.randint(2, 10), f"the length of the time window in {unit}")
    c = d.calc(span, "/", k)
    d.say(("They coincide {c} times in that time.", "That happens {c} times."), c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"How many more times do they {base} together in the next {span} {unit}?",
                    f"They {base} together # more times in the next {span} {unit}.",
                    f"the number of times they coincide in the next {span} {unit}",
                ),
                (
                    f"In the next {span} {unit}, how many times do they {base} together again?",
                    f"They {base} together # times in the next {span} {unit}.",
                    f"the number of times they coincide again in the next {span} {unit}",
                ),
            )
        ),
    )


def remainders(d: Draft) -> None:
    p = person(d)
    thing, box = d.pick(_PACKS)
    size = d.rng.randint(3, 12)
    full = d.rng.randint(2, 30)
    rest = d.rng.randint(1, size - 1)
    n = d.given(size * full + rest, f"the number of {thing}")
    s = d.given(size, f"the number of {thing} per group")
    d.tell(
        d.pick(
            (
                f"{p.name} has {n} {thing}.",
                f"There are {n} {thing}.",
                f"{p.name} collects {n} {thing}.",
                f"A delivery brings {n} {thing} to {p.s} shop.",
            )
        ),
        d.pick(
            (
                f"{p.He} puts them into {box} of {s}.",
                f"Each of the {box} holds {s} {thing}.",
                f"{p.He} packs {s} {thing} into each of the {box}.",
                f"They go into {box} that hold {s} each.",
            )
        ),
    )
    k = d.derived(full, n, s)
    c = d.calc(s, "*", k)
    d.say(
        ("{k} full {b} hold {c} {t}.", "The most {b} {p.he} can fill is {k}, which use {c} {t}."),
        k=full,
        b=box,
        t=thing,
        p=p,
        c=c.work,
    )
    if d.chance(0.5):
        d.ask(
            k,
            *d.pick(
                (
                    (
                        f"How many full {box} are there?",
                        f"There are # full {box}.",
                        f"the number of full {box}",
                    ),
                    (
                        f"How many {box} can {p.he} fill completely?",
                        f"{p.He} can fill # {box} completely.",
                        f"the number of {box} filled completely",
                    ),
                )
            ),
        )
        return
    left = d.calc(n, "-", c)
    d.say(("{c} {t} are left over.", "The remainder is {c}."), t=thing, c=left.work)
    d.ask(
        left,
        *d.pick(
            (
                (
                    f"How many {thing} are left over?",
                    f"# {thing} are left over.",
                    f"the number of {thing} left over",
                ),
                (
                    f"How many {thing} do not fit in a full one?",
                    f"# {thing} do not fit.",
                    f"the number of {thing} that do not fit",
                ),
            )
        ),
    )


_PORTIONS = (
    "pizza",
    "cake",
    "pie",
    "chocolate bar",
    "tank of gas",
    "jug of juice",
    "bag of flour",
    "watermelon",
    "roll of tape",
    "box of cereal",
    "bottle of syrup",
    "loaf of bread",
    "spool of thread",
    "can of paint",
)


_CHANGING = (
    "bike",
    "jacket",
    "phone",
    "tablet",
    "lamp",
    "guitar",
    "camera",
    "stroller",
    "printer",
    "sofa",
    "watch",
    "tent",
    "blender",
    "scooter",
    "painting",
    "desk chair",
    "kayak",
    "microwave",
)


# fmt: off
_CYCLES = (  # one, many, unit, verb, base verb, place
    ("bus", "buses", "minutes", "leaves", "leave", "station"),
    ("bell", "bells", "seconds", "rings", "ring", "tower"),
    ("light", "lights", "seconds", "flashes", "flash", "harbor"),
    ("ferry", "ferries", "minutes", "departs", "depart", "pier"),
    ("sprinkler", "sprinklers", "minutes", "turns on", "turn on", "park"),
    ("train", "trains", "minutes", "arrives", "arrive", "station"),
    ("alarm", "alarms", "minutes", "beeps", "beep", "lab"),
    ("fountain", "fountains", "seconds", "sprays", "spray", "plaza"),
)
# fmt: on


_PACKS = (
    ("eggs", "cartons"),
    ("cookies", "tins"),
    ("pencils", "packs"),
    ("chairs", "rows"),
    ("books", "shelves"),
    ("cupcakes", "boxes"),
    ("apples", "bags"),
    ("marbles", "jars"),
    ("photos", "albums"),
    ("seedlings", "trays"),
    ("bottles", "crates"),
    ("candles", "boxes"),
    ("socks", "drawers"),
)


_SHARED_THINGS = (
    "marbles",
    "stickers",
    "dollars",
    "cards",
    "stamps",
    "coins",
    "points",
    "beads",
    "shells",
    "votes",
    "cookies",
    "tokens",
    "comic books",
    "seeds",
    "raffle tickets",
    "crayons",
    "baseball cards",
    "apples",
    "candies",
    "pencils",
    "puzzles",
    "gift cards",
)


FAMILIES = {
    "fraction_of": Family(fraction_of, opening=True, observer=True),
    "fraction_arithmetic": Family(fraction_arithmetic, var="X", spell=False, opening=True),
    "percent_change": Family(percent_change, opening=True, observer=True),
    "percent_of": Family(percent_of, opening=True),
    "ratio": Family(ratio, observer=True),
    "exponents": Family(exponents, var="X", spell=False, opening=True),
    "roots": Family(roots, observer=True),
    "gcd": Family(gcd, opening=True),
    "lcm": Family(lcm, opening=True, observer=True),
    "remainders": Family(remainders, opening=True, observer=True),
}
