"""Chance and statistics: probability, counting, averages."""

from __future__ import annotations

from coe.data.metamath.engine import Draft, Family, plain
from coe.data.metamath.words import SO, join, number_word, people, person

_BAGS = (
    ("bag", "marbles"),
    ("jar", "candies"),
    ("box", "crayons"),
    ("bowl", "buttons"),
    ("drawer", "socks"),
    ("basket", "balls"),
    ("jar", "jelly beans"),
)
_COLORS = ("red", "blue", "green", "yellow", "white", "black", "purple", "orange")
_AS_FRACTION = (
    " Write it as a fraction m/n in lowest terms. What is m + n?",
    " If the probability is m/n in lowest terms, what is m + n?",
)


def _probability_answer(d: Draft, c, question: str, statement: str, noun: str) -> None:
    """Asks for probability ``c`` as a decimal when it terminates (the backward forms can then use it), else
    as m + n of m/n in lowest terms."""
    value = c.value
    if (value * 1000).denominator == 1:
        if not c.symbolic:
            d.say(("As a decimal that is {x}.", "That is {x} as a decimal."), x=plain(value))
        tail = d.pick((" Express your answer as a decimal.", " Give the answer as a decimal."))
        d.ask(c, question + tail, statement, noun)
        return
    d.say(
        ("In lowest terms that is {n}/{m}.", "{n}/{m} is already in lowest terms."),
        n=value.numerator,
        m=value.denominator,
    )
    s = d.calc(d.derived(value.numerator, c), "+", value.denominator)
    d.say(("So m + n = {c}.", "Then m + n = {c}."), c=s.work)
    d.ask(
        s, question + d.pick(_AS_FRACTION), "Written as m/n in lowest terms, m + n is #.", f"m + n for {noun}"
    )


def probability(d: Draft) -> None:
    p = person(d)
    box, items = d.pick(_BAGS)
    colors = d.rng.sample(_COLORS, d.pick((2, 3, 3, 4)))
    total = d.pick((8, 10, 12, 15, 16, 20, 24, 25, 30, 40, 50))
    while True:  # at least two of each color
        cuts = sorted(d.rng.sample(range(1, total), len(colors) - 1))
        counts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
        if min(counts) >= 2:
            break
    qs = [d.given(n, f"the number of {c} {items}") for n, c in zip(counts, colors, strict=True)]
    listed = join([f"{q} {c}" for q, c in zip(qs, colors, strict=True)])
    d.tell(
        d.pick(
            (
                f"A {box} holds {listed} {items}.",
                f"{p.name} has a {box} with {listed} {items}.",
                f"In a {box} there are {listed} {items}.",
            )
        )
    )
    kind = d.pick(("one", "one", "two", "expected"))
    n_all = d.calc(*[x for i, q in enumerate(qs) for x in ([q] if i == 0 else ["+", q])])
    d.say(("There are {c} {it} in all.", "In total the {b} holds {c} {it}."), b=box, it=items, c=n_all.work)
    color = colors[0]
    if kind == "one":
        c = d.calc(qs[0], "/", n_all, fraction=True)
        d.say(("The chance of {col} is {c}.", "{so}, P({col}) = {c}."), col=color, so=d.word(SO), c=c.work)
        _probability_answer(
            d,
            c,
            f"{p.name} picks one of the {items} at random. What is the probability that it is {color}?",
            f"The probability of picking {color} is #.",
            f"the probability of a {color} one",
        )
        return
    if kind == "two" and counts[0] >= 2:
        first = d.calc(qs[0], "/", n_all, fraction=True)
        d.say(("The first is {col} with probability {c}.",), col=color, c=first.work)
        left = d.calc(qs[0], "-", 1)
        rest = d.calc(n_all, "-", 1)
        d.say(("Then {l} of the remaining {r} are {col}.",), l=left.work, r=rest.work, col=color)
        second = d.calc(left, "/", rest, fraction=True)
        c = d.calc(first, "*", second, fraction=True)
        d.say(("Both are {col} with probability {c}.",), col=color, c=c.work)
        _probability_answer(
            d,
            c,
            f"{p.name} takes two of the {items} without looking and without putting the first "
            f"back. What is the probability that both are {color}?",
            f"Both are {color} with probability #.",
            f"the probability that both are {color}",
        )
        return
    draws = d.given(
        d.pick([k for k in range(10, 201, 10) if (k * counts[0]) % total == 0] or [total]),
        "the number of draws",
    )
    d.tell(f"{p.name} draws one at random, notes its color and puts it back, {draws} times.")
    share = d.calc(qs[0], "/", n_all, fraction=True)
    d.say(("Each draw is {col} with probability {c}.",), col=color, c=share.work)
    c = d.calc(draws, "*", share)
    d.say(
        ("{p.He} can expect {c} {col} {it}.", "On average {c} draws are {col}."),
        p=p,
        col=color,
        it=items,
        c=c.work,
    )
    d.ask(
        c,
        f"How many times can {p.he} expect to draw a {color} one?",
        f"{p.He} can expect # {color} draws.",
        f"the expected number of {color} draws",
    )


# fmt: off
_CHOICES = (
    ("{name} has {a} shirts, {b} pairs of pants and {c} pairs of shoes.", "outfits",
     "an outfit of one of each"),
    ("At a cafe, {name} can pick from {a} soups, {b} sandwiches and {c} drinks.", "lunch combos",
     "a lunch of one of each"),
    ("An ice cream shop offers {name} {a} flavors, {b} toppings and {c} kinds of cones.", "sundaes",
     "one flavor, one topping and one cone"),
    ("{name}'s favorite pizza place has {a} crusts, {b} sauces and {c} cheeses.", "pizzas",
     "one crust, one sauce and one cheese"),
    ("{name} can take {a} routes to the park, {b} routes to the library and {c} routes home.", "trips",
     "one route for each part of the trip"),
    ("A bike shop lets {name} choose from {a} frame colors, {b} seat styles and {c} kinds of bells.",
     "bikes", "one color, one seat and one bell"),
    ("{name}'s school lets students pick from {a} clubs, {b} sports and {c} languages.", "schedules",
     "one club, one sport and one language"),
    ("At a sandwich bar, {name} can choose {a} breads, {b} fillings and {c} sauces.", "sandwiches",
     "one bread, one filling and one sauce"),
    ("For the party, {name} can choose {a} cakes, {b} decorations and {c} playlists.", "party plans",
     "one of each"),
    ("The phone {name} wants comes in {a} colors, {b} storage sizes and {c} case styles.", "versions",
     "one of each option"),
    ("{name} packs for a trip with {a} hats, {b} scarves and {c} pairs of gloves.", "sets of winter wear",
     "one hat, one scarf and one pair of gloves"),
    ("A game lets {name} pick {a} characters, {b} worlds and {c} difficulty levels.", "ways to start a game",
     "one character, one world and one level"),
    ("{name} is making a bouquet from {a} kinds of roses, {b} kinds of lilies and {c} ribbon colors.",
     "bouquets", "one rose, one lily and one ribbon"),
    ("A dinner menu gives {name} {a} starters, {b} main dishes and {c} desserts.", "three-course dinners",
     "one of each course"),
    ("{name} can wear {a} jackets, {b} shirts and {c} caps to the game.", "outfits for the game",
     "one jacket, one shirt and one cap"),
)
# fmt: on


def counting(d: Draft) -> None:
    p = person(d)
    kind = d.pick(("product", "product", "handshakes", "committee", "line"))
    if kind == "product":
        text, made, rule = d.pick(_CHOICES)
        a = d.given(d.rng.randint(2, 9), "the number of choices of the first kind")
        b = d.given(d.rng.randint(2, 9), "the number of choices of the second kind")
        c_ = d.given(d.rng.randint(2, 6), "the number of choices of the third kind")
        d.tell(text.format(name=p.name, a=a, b=b, c=c_))
        first = d.calc(a, "*", b)
        d.say(
            ("The first two choices give {c} pairs.", "Pairing the first two gives {c} ways."), c=first.work
        )
        c = d.calc(first, "*", c_)
        d.say(
            (
                "Each pair goes with {k} of the last, so there are {c} {m}.",
                "Multiplying by the {k} last choices gives {c} {m}.",
            ),
            k=c_,
            m=made,
            c=c.work,
        )
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many different {made} are possible, choosing {rule}?",
                        f"There are # different {made}.",
                        f"the number of different {made}",
                    ),
                    (
                        f"How many {made} can {p.he} make with {rule}?",
                        f"{p.He} can make # {made}.",
                        f"the number of possible {made}",
                    ),
                    (
                        f"In how many ways can {p.he} choose?",
                        f"{p.He} can choose in # ways.",
                        f"the number of ways {p.name} can choose",
                    ),
                )
            ),
        )
        return
    if kind == "handshakes":
        who, act = d.pick(
            (
                ("guests", "shakes hands once with every other guest"),
                ("players", "plays one game against every other player"),
                ("teams", "plays every other team once"),
                ("friends", "trades one sticker with every other friend"),
                ("students", "high-fives every other student once"),
                ("chess players", "plays each other player exactly once"),
                ("cousins", "takes one photo with each other cousin"),
            )
        )
        n = d.given(d.rng.randint(3, 25), f"the number of {who}")
        where = d.pick(("party", "tournament", "reunion", "camp", "meeting", "club night"))
        d.tell(
            d.pick(
                (
                    f"At {p.s} {where}, each of {n} {who} {act}.",
                    f"In a group of {n} {who} at a {where}, each one {act}.",
                    f"{p.name} notices that each of the {n} {who} at the {where} {act}.",
                    f"{p.name} organizes a {where} where each of {n} {who} {act}.",
                )
            )
        )
        each = d.calc(n, "-", 1)
        d.say(("Each of them meets {c} others.", "Everyone pairs with {c} others."), c=each.work)
        c = d.calc(n, "*", each, "/", 2)
        d.say(
            ("Every pair is counted twice, so there are {c} pairs.", "Halving the count gives {c}."), c=c.work
        )
        d.ask(
            c,
            *d.pick(
                (
                    ("How many pairs meet in all?", "# pairs meet in all.", "the number of pairs"),
                    (
                        "How many of these meetings take place in total?",
                        "# meetings take place.",
                        "the total number of meetings",
                    ),
                    (
                        f"How many times does this happen at the {where}?",
                        "It happens # times.",
                        f"the number of times it happens at the {where}",
                    ),
                )
            ),
        )
        return
    if kind == "committee":
        group = d.pick(
            ("club", "class", "team", "band", "book club", "student council", "choir", "robotics team")
        )
        job = d.pick(
            (
                "plan a trip",
                "run a bake sale",
                "design a poster",
                "clean the park",
                "lead a project",
                "judge a contest",
            )
        )
        n = d.given(d.rng.randint(5, 15), f"the number of people in the {group}")
        k = d.pick((2, 3))
        d.tell(
            d.pick(
                (
                    f"{p.s} {group} has {n} members and needs to choose {number_word(k)} of them to {job}.",
                    f"{p.name}'s {group} of {n} people picks {number_word(k)} members to {job}.",
                    f"From the {n} members of {p.s} {group}, {number_word(k)} will be chosen to {job}.",
                )
            )
        )
        one_less = d.calc(n, "-", 1)
        if k == 2:
            c = d.calc(n, "*", one_less, "/", 2)
            d.say(("Choosing 2 of {n}, order not mattering, gives {c} ways.",), n=n, c=c.work)
        else:
            two_less = d.calc(n, "-", 2)
            c = d.calc(n, "*", one_less, "*", two_less, "/", 6)
            d.say(("Choosing 3 of {n}, order not mattering, gives {c} ways.",), n=n, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        "In how many ways can the group be chosen?",
                        "The group can be chosen in # ways.",
                        "the number of possible groups",
                    ),
                    (
                        "How many different groups are possible?",
                        "There are # possible groups.",
                        "the number of different groups",
                    ),
                    (
                        f"How many choices does the {group} have?",
                        f"The {group} has # choices.",
                        f"the number of choices the {group} has",
                    ),
                )
            ),
        )
        return
    folks = d.rng.randint(3, 7)
    n = d.given(folks, "the number of people")
    scene = d.pick(
        (
            ("friends line up for a photo", "stand"),
            ("runners finish a race with no ties", "finish"),
            ("books are placed on a shelf", "be arranged"),
            ("students give their talks one after another", "go"),
            ("cars park in a row", "park"),
            ("singers take turns on stage", "perform"),
            ("kids line up for the slide", "line up"),
        )
    )
    d.tell(
        d.pick(
            (f"{n} {scene[0]}.", f"{p.name} watches as {n} {scene[0]}.", f"At {p.s} school, {n} {scene[0]}.")
        )
    )
    chain = [x for i in range(folks, 0, -1) for x in ([i] if i == folks else ["*", i])]
    c = d.calc(*chain)
    d.say(
        (
            "There are {k} choices for the first place, {m} for the second, and so on: {c} orders.",
            "The number of orders is {c}.",
        ),
        k=folks,
        m=folks - 1,
        c=c.work,
    )
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"In how many different orders can they {scene[1]}?",
                    "There are # possible orders.",
                    "the number of orders",
                ),
                (
                    "How many different orders are possible?",
                    "# orders are possible.",
                    "the number of possible orders",
                ),
            )
        ),
    )


_TESTS = (
    ("tests", "scored", "points"),
    ("games", "scored", "points"),
    ("rounds", "scored", "points"),
    ("weeks", "earned", "dollars"),
    ("days", "sold", "cupcakes"),
    ("shifts", "delivered", "packages"),
    ("quizzes", "got", "points"),
    ("matches", "scored", "points"),
    ("days", "picked", "apples"),
    ("nights", "read", "pages"),
    ("weeks", "saved", "dollars"),
    ("hikes", "climbed", "meters"),
    ("practices", "made", "baskets"),
    ("markets", "sold", "jars of jam"),
)


def averages(d: Draft) -> None:
    p = person(d)
    what, verb, unit = d.pick(_TESTS)
    one = what[:-3] if what.endswith("zzes") else what[:-2] if what.endswith("ches") else what[:-1]
    k = d.rng.randint(3, 6)
    mean = d.rng.randint(30, 95)
    values = [mean + d.rng.randint(-5, 5) for _ in range(k - 1)]
    values.append(mean * k - sum(values))
    kw = number_word(k)
    if d.chance(0.5):
        vals = [d.given(v, f"the {unit} in one of the {what}") for v in values]
        listed = join([str(v) for v in vals])
        d.tell(
            d.pick(
                (
                    f"In {kw} {what}, {p.name} {verb} {listed} {unit}.",
                    f"{p.name} {verb} {listed} {unit} in {p.his} last {kw} {what}.",
                    f"Over {kw} {what}, {p.name} {verb} {listed} {unit}.",
                    f"{p.s} results for {kw} {what} were {listed} {unit}.",
                )
            )
        )
        total = d.add_up(vals, ("The total is {c} {u}.", "Together that is {c} {u}."), u=unit)
        c = d.calc(total, "/", k)
        d.say(
            ("The average is {c} {u}.", "Dividing by {k} gives an average of {c} {u}."), u=unit, k=k, c=c.work
        )
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"What is {p.s} average per {one}?",
                        f"{p.s} average is # {unit} per {one}.",
                        f"{p.s} average per {one}",
                    ),
                    (
                        f"On average, how many {unit} is that per {one}?",
                        f"That is # {unit} per {one}.",
                        f"the average number of {unit} per {one}",
                    ),
                    ("What is the mean of these results?", "The mean is #.", "the mean of the results"),
                )
            ),
        )
        return
    vals = [d.given(v, f"the {unit} in one of the {what}") for v in values[:-1]]
    target = d.given(mean, "the average wanted")
    listed = join([str(v) for v in vals])
    d.tell(
        d.pick(
            (
                f"{p.name} {verb} {listed} {unit} in {p.his} first {number_word(k - 1)} {what}.",
                f"In the first {number_word(k - 1)} {what}, {p.name} {verb} {listed} {unit}.",
            )
        ),
        d.pick(
            (
                f"{p.He} wants an average of {target} {unit} over {kw} {what}.",
                f"{p.His} goal is an average of {target} {unit} across all {kw} {what}.",
            )
        ),
    )
    need = d.calc(target, "*", k)
    d.say(
        ("{p.He} needs {c} {u} in all.", "An average of {t} over {k} means {c} {u} in total."),
        p=p,
        t=target,
        k=k,
        u=unit,
        c=need.work,
    )
    so_far = d.add_up(
        vals, ("So far {p.he} has {c} {u}.", "The first {n} add up to {c}."), p=p, u=unit, n=k - 1
    )
    c = d.calc(need, "-", so_far)
    d.say(
        ("{p.He} needs {c} {u} in the last one.", "The last one must bring {c} {u}."), p=p, u=unit, c=c.work
    )
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"How many {unit} does {p.he} need in the next one?",
                    f"{p.He} needs # {unit} in the next one.",
                    f"the {unit} {p.name} needs next",
                ),
                (
                    f"What must {p.he} get in the last {one}?",
                    f"{p.He} must get # {unit} in the last {one}.",
                    f"the result {p.name} needs in the last {one}",
                ),
            )
        ),
    )


def combined_average(d: Draft) -> None:
    a_, b_ = people(d, 2)
    group = d.pick(
        ("class", "team", "club", "section", "choir", "study group", "troop", "band", "relay squad")
    )
    groups = {"class": "classes", "relay squad": "relay squads", "study group": "study groups"}.get(
        group, group + "s"
    )
    what, unit = d.pick(
        (
            ("test score", " points"),
            ("height", " centimeters"),
            ("number of books read", ""),
            ("weekly allowance", " dollars"),
            ("number of push-ups", ""),
            ("quiz score", " points"),
            ("number of hours of sleep", ""),
            ("number of steps walked", ""),
            ("age", " years"),
            ("number of pets", ""),
            ("long jump", " centimeters"),
        )
    )
    na, nb = d.rng.randint(5, 30), d.rng.randint(5, 30)
    total = na + nb
    low, high = {
        "height": (120, 180),
        "number of hours of sleep": (5, 12),
        "age": (8, 60),
        "number of pets": (1, 5),
        "long jump": (150, 400),
    }.get(what, (10, 90))
    while True:
        ma, mb = d.rng.randint(low, high), d.rng.randint(low, high)
        if ((na * ma + nb * mb) * 100) % total == 0:
            break
    a = d.given(na, f"the size of {a_.s} {group}")
    b = d.given(nb, f"the size of {b_.s} {group}")
    xa = d.given(ma, f"the average in {a_.s} {group}")
    xb = d.given(mb, f"the average in {b_.s} {group}")
    forms = (
        "{w}'s {g} has {n} members with an average {x} of {m}{u}.",
        "The {n} members of {w}'s {g} have an average {x} of {m}{u}.",
        "In {w}'s {g} of {n}, the average {x} is {m}{u}.",
        "{w} leads a {g} of {n} whose average {x} is {m}{u}.",
        "{w}'s {g} counts {n} people, and their mean {x} is {m}{u}.",
    )
    first, second = d.pick(forms), d.pick(forms)
    d.tell(
        first.format(w=a_.name, g=group, n=a, x=what, m=xa, u=unit),
        second.format(w=b_.name, g=group, n=b, x=what, m=xb, u=unit),
    )
    sa = d.calc(a, "*", xa)
    d.say(("{w.s} {g} adds up to {c}.", "The total for {w.s} {g} is {c}."), w=a_, g=group, c=sa.work)
    sb = d.calc(b, "*", xb)
    d.say(("{w.s} {g} adds up to {c}.", "The total for {w.s} {g} is {c}."), w=b_, g=group, c=sb.work)
    s = d.calc(sa, "+", sb)
    n = d.calc(a, "+", b)
    d.say(("Together: {s} over {n} members.",), s=s.work, n=n.work)
    c = d.calc(s, "/", n)
    d.say(("The combined average is {c}.", "{so}, the average of everyone is {c}."), so=d.word(SO), c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"What is the average {what} of both {groups} together?",
                    f"The combined average {what} is #.",
                    f"the combined average {what}",
                ),
                (
                    f"If the two {groups} are put together, what is the average {what}?",
                    f"Together the average {what} is #.",
                    f"the average {what} of everyone",
                ),
                (
                    f"What is the mean {what} of everyone in both {groups}?",
                    f"The mean {what} is #.",
                    f"the mean {what} of all of them",
                ),
            )
        ),
    )


FAMILIES = {
    "probability": Family(probability, opening=True, observer=True),
    "counting": Family(counting, opening=True),
    "averages": Family(averages),
    "combined_average": Family(combined_average),
}
