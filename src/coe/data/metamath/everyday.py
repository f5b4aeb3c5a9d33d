"""GSM8K's kinds of problem: shopping, savings, trips, recipes, ages, production, sharing, time spent, legs
and wheels, reading, comparisons, gardens and collections."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

from coe.data.metamath.engine import Draft, Family, Redraw
from coe.data.metamath.words import SO, TOTAL_WORDS, join, ordinal, people, person

# fmt: off
STORES = {  # store: [(item, plural, lowest price, highest price in dollars)]
    "stationery store": [
        ("notebook", "notebooks", 2, 6), ("pen", "pens", 1, 3), ("pencil case", "pencil cases", 3, 8),
        ("eraser", "erasers", 1, 2), ("folder", "folders", 1, 4), ("marker", "markers", 2, 5),
        ("ruler", "rulers", 1, 3), ("glue stick", "glue sticks", 1, 3), ("stapler", "staplers", 4, 9),
        ("sketchbook", "sketchbooks", 5, 12),
    ],
    "grocery store": [
        ("apple", "apples", 1, 2), ("carton of milk", "cartons of milk", 2, 4),
        ("bag of rice", "bags of rice", 3, 9), ("can of beans", "cans of beans", 1, 3),
        ("melon", "melons", 2, 5),
        ("box of cereal", "boxes of cereal", 3, 6), ("jar of honey", "jars of honey", 4, 9),
        ("bunch of bananas", "bunches of bananas", 1, 3), ("loaf of bread", "loaves of bread", 2, 5),
        ("bottle of juice", "bottles of juice", 2, 4),
    ],
    "bakery": [
        ("muffin", "muffins", 2, 4), ("croissant", "croissants", 2, 4), ("bagel", "bagels", 1, 3),
        ("cupcake", "cupcakes", 2, 5), ("pie", "pies", 8, 15), ("cookie", "cookies", 1, 2),
        ("donut", "donuts", 1, 3), ("cinnamon roll", "cinnamon rolls", 2, 5), ("baguette", "baguettes", 2, 4),
    ],
    "toy store": [
        ("toy car", "toy cars", 3, 8), ("puzzle", "puzzles", 6, 14), ("yo-yo", "yo-yos", 2, 5),
        ("kite", "kites", 7, 12), ("board game", "board games", 10, 25), ("ball", "balls", 2, 6),
        ("doll", "dolls", 8, 16), ("action figure", "action figures", 5, 12),
        ("box of crayons", "boxes of crayons", 2, 6),
    ],
    "garden center": [
        ("flower pot", "flower pots", 3, 9), ("packet of seeds", "packets of seeds", 1, 4),
        ("rose bush", "rose bushes", 6, 15), ("bag of soil", "bags of soil", 4, 8),
        ("watering can", "watering cans", 5, 12), ("pair of gloves", "pairs of gloves", 3, 7),
        ("tomato plant", "tomato plants", 2, 6), ("bird feeder", "bird feeders", 8, 20),
    ],
    "sports shop": [
        ("tennis ball", "tennis balls", 1, 3), ("water bottle", "water bottles", 4, 10),
        ("jump rope", "jump ropes", 3, 8), ("pair of socks", "pairs of socks", 2, 6),
        ("headband", "headbands", 2, 5),
        ("soccer ball", "soccer balls", 10, 25), ("yoga mat", "yoga mats", 12, 30),
        ("swim cap", "swim caps", 3, 9),
    ],
    "bookshop": [
        ("paperback", "paperbacks", 5, 12), ("comic book", "comic books", 3, 8),
        ("bookmark", "bookmarks", 1, 3),
        ("atlas", "atlases", 15, 30), ("cookbook", "cookbooks", 12, 28), ("magazine", "magazines", 3, 7),
        ("poster", "posters", 4, 10), ("journal", "journals", 6, 14),
    ],
    "hardware store": [
        ("box of nails", "boxes of nails", 2, 6), ("hammer", "hammers", 8, 18),
        ("can of paint", "cans of paint", 12, 30), ("paintbrush", "paintbrushes", 2, 7),
        ("roll of tape", "rolls of tape", 1, 4), ("light bulb", "light bulbs", 2, 5),
        ("screwdriver", "screwdrivers", 4, 11), ("extension cord", "extension cords", 7, 16),
    ],
}
# fmt: on
_CENTS = (0, 0, 0, 25, 50, 75)


def price(d: Draft, lo: int, hi: int) -> Fraction:
    """A price of ``lo`` to ``hi`` dollars, now and then with 25, 50 or 75 cents."""
    dollars = d.rng.randint(lo, hi)
    cents = d.pick(_CENTS) if dollars < hi else 0
    return Fraction(dollars * 100 + cents, 100)


def shopping(d: Draft) -> None:
    p = person(d)
    store = d.pick(list(STORES))
    k = d.pick((1, 2, 2, 3, 3, 4))
    verb = d.pick(("buys", "picks up", "gets", "orders", "purchases"))
    each = d.pick(("for {} each", "at {} each", "at {} apiece", "that cost {} each", "priced at {} each"))
    bought = []
    for one, many, lo, hi in d.rng.sample(STORES[store], k):
        q = d.given(d.rng.randint(2, 12), f"the number of {many} {p.name} buys")
        cost = d.money(price(d, lo, hi), f"the price of one {one}")
        bought.append((q, cost, many))
    listed = join([f"{q} {many} {each.format(cost)}" for q, cost, many in bought])
    d.tell(
        *d.pick(
            (
                (f"{p.name} goes to the {store}.", f"{p.He} {verb} {listed}."),
                (f"At the {store}, {p.name} {verb} {listed}.",),
                (f"{p.name} {verb} {listed} at the {store}.",),
                (f"{p.name} needs a few things from the {store}, so {p.he} {verb} {listed}.",),
            )
        )
    )
    costs = []
    for q, cost, many in bought:
        c = d.calc(q, "*", cost)
        d.say(
            (
                "{p.He} spends {c} on {pl}.",
                "The {pl} cost {c}.",
                "For the {pl}, {p.he} pays {c}.",
                "{q} {pl} at {cost} each cost {c}.",
                "{p.name} pays {c} for the {pl}.",
                "The cost of the {pl} is {c}.",
                "{p.name} buys {q} {pl} for {cost} each, so {p.he} spends {c}.",
            ),
            p=p,
            pl=many,
            q=q,
            cost=cost,
            c=c.work,
        )
        costs.append(c)
    total_word = d.word(TOTAL_WORDS)
    total = d.add_up(
        costs,
        (
            f"{total_word.capitalize()}, {{p.he}} spends {{c}}.",
            f"{{p.He}} spends {{c}} {total_word}.",
            "The total cost is {c}.",
            f"{d.word(SO)} the bill comes to {{c}}.",
        ),
        p=p,
    )
    ending = d.pick(("total", "total", "change", "budget"))
    if ending == "total":
        d.ask(
            total,
            *d.pick(
                (
                    (
                        f"How much does {p.he} spend in total?",
                        f"{p.He} spends # in total.",
                        f"the total amount {p.name} spends",
                    ),
                    (
                        f"How much money does {p.name} spend altogether?",
                        f"{p.name} spends # altogether.",
                        f"the amount of money {p.name} spends",
                    ),
                    (
                        f"What is the total cost of {p.his} purchase?",
                        f"The total cost of {p.his} purchase is #.",
                        f"the total cost of {p.s} purchase",
                    ),
                    (f"How many dollars does {p.he} pay?", f"{p.He} pays #.", f"the amount {p.name} pays"),
                )
            ),
        )
    elif ending == "change":
        bill = d.money(
            (int(total.value) // 20 + 1) * 20 + d.pick((0, 0, 10, 30)), f"the amount {p.name} pays with"
        )
        d.tell(d.pick((f"{p.He} pays with {bill}.", f"{p.He} hands the cashier {bill}.")))
        c = d.calc(bill, "-", total)
        d.say(
            ("{p.He} gets {c} in change.", "The change is {c}.", "{p.name} receives {c} back."), p=p, c=c.work
        )
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How much change does {p.he} get?",
                        f"{p.He} gets # in change.",
                        f"the change {p.name} gets",
                    ),
                    (
                        f"How much money does {p.he} get back?",
                        f"{p.He} gets # back.",
                        f"the amount of money {p.name} gets back",
                    ),
                )
            ),
        )
    else:
        budget = d.money(
            (int(total.value) // 10 + 1) * 10 + d.pick((0, 5, 10, 20, 40)), f"the money {p.name} has"
        )
        d.sentences.insert(
            0,
            d.pick(
                (
                    f"{p.name} has {budget} to spend.",
                    f"{p.name} brings {budget} to the {store}.",
                    f"{p.name} has a budget of {budget}.",
                )
            ),
        )
        c = d.calc(budget, "-", total)
        d.say(("{p.He} has {c} left.", "{p.name} is left with {c}.", "That leaves {c}."), p=p, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How much money does {p.he} have left?",
                        f"{p.He} has # left.",
                        f"the amount of money {p.name} has left",
                    ),
                    (
                        f"How much of {p.his} money is left after shopping?",
                        f"After shopping, {p.he} has # left.",
                        f"the money {p.name} has left after shopping",
                    ),
                )
            ),
        )


# fmt: off
_JOBS = (  # what is done ({q} a count), how it is paid ({r} a rate), what the count counts, the unit paid for
    ("mows {q} lawns", "for {r} each", "lawns {name} mows", "lawn"),
    ("washes {q} cars", "for {r} per car", "cars {name} washes", "car"),
    ("babysits for {q} hours", "at {r} an hour", "hours {name} babysits", "hour"),
    ("walks dogs for {q} hours", "at {r} per hour", "hours {name} walks dogs", "hour"),
    ("sells {q} bracelets", "for {r} each", "bracelets {name} sells", "bracelet"),
    ("rakes {q} yards", "for {r} per yard", "yards {name} rakes", "yard"),
    ("tutors for {q} hours", "at {r} an hour", "hours {name} tutors", "hour"),
    ("bakes {q} cakes for neighbors", "for {r} a cake", "cakes {name} bakes", "cake"),
)
_TREATS = (
    "book", "video game", "pair of shoes", "jacket", "bike helmet", "concert ticket", "backpack", "watch",
    "skateboard", "phone case", "sweater", "board game", "lamp", "new bike light",
)
# fmt: on
_RELATIVES = ("grandmother", "grandfather", "aunt", "uncle", "mother", "father", "older sister", "cousin")
_THEN = ("Then", "After that", "Next", "Later", "Afterwards", "The next week")


def savings(d: Draft) -> None:
    p = person(d)
    money = d.money(d.rng.randint(2, 40) * 5, f"the amount of money {p.name} starts with")
    d.tell(
        d.pick(
            (
                f"{p.name} has {money} in {p.his} piggy bank.",
                f"{p.name} has saved {money}.",
                f"{p.name} starts the month with {money}.",
                f"{p.name} has {money} in {p.his} wallet.",
            )
        )
    )
    for i in range(d.rng.randint(2, 5)):
        kinds = ["gift", "job", "weekly"]
        kinds += ["spend"] if money.value >= 4 else []
        kinds += ["half"] if money.value % 2 == 0 and money.value >= 10 else []
        kinds += ["double"] if money.value <= 1000 else []
        kind = d.pick(kinds)
        then = d.pick(_THEN) if i else "First"
        if kind == "job":
            job, pay, counted, unit = d.pick(_JOBS)
            q = d.given(d.rng.randint(2, 9), f"the number of {counted.format(name=p.name)}")
            rate = d.money(d.rng.randint(3, 15), f"the pay per {unit}")
            d.tell(f"{then}, {p.he} {job.format(q=q)} {pay.format(r=rate)}.")
            earned = d.calc(q, "*", rate)
            d.say(
                ("{p.He} earns {c}.", "That job pays {c}.", "{p.name} makes {c} from it."), p=p, c=earned.work
            )
        elif kind == "weekly":
            r = d.money(d.rng.randint(2, 25), f"the amount {p.name} saves each week")
            weeks = d.given(d.rng.randint(2, 9), f"the number of weeks {p.name} saves")
            d.tell(f"{then}, {p.he} saves {r} every week for {weeks} weeks.")
            earned = d.calc(r, "*", weeks)
            d.say(
                (
                    "Over {w} weeks {p.he} saves {c}.",
                    "{p.He} saves {c} in those weeks.",
                    "The savings add up to {c}.",
                ),
                w=weeks,
                p=p,
                c=earned.work,
            )
        elif kind == "gift":
            who = d.pick(_RELATIVES)
            earned = d.money(d.rng.randint(1, 20) * 5, f"the amount {p.his} {who} gives {p.him}")
            d.tell(f"{then}, {p.his} {who} gives {p.him} {earned}.")
        if kind in ("job", "weekly", "gift"):
            money = d.calc(money, "+", earned)
            d.say(
                (
                    "{p.He} now has {c}.",
                    "Now {p.he} has {c}.",
                    "That brings {p.his} money to {c}.",
                    "{p.His} total is {c}.",
                ),
                p=p,
                c=money.work,
            )
        elif kind == "spend":
            treat = d.pick(_TREATS)
            s = d.money(d.rng.randint(1, int(money.value) - 1), f"the price of the {treat}")
            d.tell(f"{then}, {p.he} spends {s} on a {treat}.")
            money = d.calc(money, "-", s)
            d.say(
                ("After buying the {t}, {p.he} has {c}.", "{p.He} has {c} left.", "That leaves {p.him} {c}."),
                p=p,
                t=treat,
                c=money.work,
            )
        elif kind == "double":
            d.tell(f"{then}, {p.his} {d.pick(_RELATIVES)} doubles whatever {p.he} has.")
            money = d.calc(money, "*", 2)
            d.say(
                (
                    "Doubled, {p.his} money becomes {c}.",
                    "After doubling, {p.he} has {c}.",
                    "Now {p.he} has {c}.",
                ),
                p=p,
                c=money.work,
            )
        else:
            d.tell(f"{then}, {p.he} spends half of {p.his} money on a {d.pick(_TREATS)}.")
            money = d.calc(money, "/", 2)
            d.say(
                ("Half of {p.his} money is left: {c}.", "{p.He} keeps half, {c}.", "{p.He} has {c} left."),
                p=p,
                c=money.work,
            )
    d.ask(
        money,
        *d.pick(
            (
                (
                    f"How much money does {p.name} have now?",
                    f"{p.name} now has #.",
                    f"the money {p.name} has now",
                ),
                (
                    f"How many dollars does {p.name} have at the end?",
                    f"At the end {p.name} has #.",
                    f"the number of dollars {p.name} has at the end",
                ),
                (
                    f"How much does {p.he} have left in the end?",
                    f"In the end {p.he} has #.",
                    f"{p.s} final balance",
                ),
            )
        ),
    )


# fmt: off
_TRAVEL = (  # verb, speed unit, distance unit, speeds, vehicle
    ("drives", "miles per hour", "miles", range(30, 80, 5)),
    ("cycles", "kilometers per hour", "kilometers", range(8, 25)),
    ("walks", "miles per hour", "miles", range(2, 6)),
    ("rides a train", "kilometers per hour", "kilometers", range(60, 130, 10)),
    ("sails", "knots", "nautical miles", range(5, 20)),
    ("jogs", "kilometers per hour", "kilometers", range(6, 13)),
    ("rides a scooter", "miles per hour", "miles", range(10, 25)),
    ("rows a boat", "kilometers per hour", "kilometers", range(3, 8)),
)
# fmt: on


def travel(d: Draft) -> None:
    p = person(d)
    verb, speed_unit, unit, speeds = d.pick(_TRAVEL)
    k = d.pick((1, 2, 2, 3))
    legs = []
    for i in range(k):
        part = f"the {ordinal(i + 1)} part of the trip" if k > 1 else "the trip"
        s = d.given(d.pick(speeds), f"{p.s} speed in {part}")
        h = d.given(d.rng.randint(2, 6), f"the number of hours {p.name} travels in {part}")
        legs.append((s, h))
    parts = [f"at {s} {speed_unit} for {h} hour{'s' * (h.value != 1)}" for s, h in legs]
    text = f"{p.name} {verb} {parts[0]}"
    text += "".join(d.pick((", then ", ", and after a break ", ", and then ")) + part for part in parts[1:])
    d.tell(text + ".")
    distances = []
    for i, (s, h) in enumerate(legs):
        c = d.calc(s, "*", h)
        lead = (
            d.word(("In the first part", "At first", "To begin with")) if i == 0 else d.word(("Next", "Then"))
        )
        d.say(
            (
                "{lead}, {p.he} covers {c} {u}.",
                "{lead}, {p.he} goes {c} {u}.",
                "{lead}, the distance is {c} {u}.",
            )
            if k > 1
            else (
                "{p.He} covers {c} {u}.",
                "Distance is speed times time: {c} {u}.",
                "{p.He} travels {c} {u}.",
            ),
            lead=lead,
            p=p,
            c=c.work,
            u=unit,
        )
        distances.append(c)
    done = d.add_up(
        distances,
        (f"Altogether {{p.he}} travels {{c}} {unit}.", f"The total distance is {{c}} {unit}."),
        partial=(f"That is {{c}} {unit} so far.",),
        p=p,
    )
    ending = d.pick(("total", "left", "time"))
    if ending == "total":
        d.ask(
            done,
            *d.pick(
                (
                    (
                        f"How many {unit} does {p.he} travel in total?",
                        f"{p.He} travels # {unit} in total.",
                        f"the total distance {p.name} travels",
                    ),
                    (
                        f"How far does {p.name} go?",
                        f"{p.name} goes # {unit}.",
                        f"the distance {p.name} covers",
                    ),
                )
            ),
        )
        return
    last = d.pick(speeds)
    rest = last * d.rng.randint(1, 4) if ending == "time" else d.rng.randint(1, 60) * 5
    trip = d.given(done.value + rest, "the length of the whole trip")
    d.tell(d.pick((f"The whole trip is {trip} {unit} long.", f"{p.His} destination is {trip} {unit} away.")))
    left = d.calc(trip, "-", done)
    d.say(
        ("{p.He} still has {c} {u} to go.", "The distance left is {c} {u}.", "That leaves {c} {u}."),
        p=p,
        c=left.work,
        u=unit,
    )
    if ending == "left":
        d.ask(
            left,
            f"How many more {unit} does {p.he} have to go?",
            f"{p.He} has # more {unit} to go.",
            f"the distance {p.name} still has to go",
        )
        return
    v = d.given(last, f"{p.s} speed for the rest of the way")
    d.tell(f"{p.He} goes the rest of the way at {v} {speed_unit}.")
    c = d.calc(left, "/", v)
    d.say(
        ("At {v} {su} that takes {c} hours.", "Time is distance over speed: {c} hours."),
        v=v,
        su=speed_unit,
        c=c.work,
    )
    d.ask(
        c,
        "How many more hours will it take?",
        "It takes # more hours.",
        f"the number of hours {p.name} still needs",
    )


# fmt: off
_INGREDIENTS = (  # name, unit, lowest and highest amount per batch (halves allowed for cups)
    ("flour", "cups", 1, 4), ("sugar", "cups", 1, 3), ("butter", "tablespoons", 2, 8), ("oats", "cups", 1, 3),
    ("chocolate chips", "cups", 1, 2), ("milk", "cups", 1, 3), ("raisins", "ounces", 2, 8),
    ("honey", "tablespoons", 1, 6), ("chopped nuts", "ounces", 2, 6), ("vanilla", "teaspoons", 1, 3),
    ("cocoa", "tablespoons", 2, 6), ("yogurt", "cups", 1, 2),
)
_DISHES = ("cookies", "muffins", "pancakes", "bread rolls", "brownies", "scones", "waffles", "biscuits")
# fmt: on


def recipe(d: Draft) -> None:
    p = person(d)
    dish = d.pick(_DISHES)
    name, unit, lo, hi = d.pick(_INGREDIENTS)
    halves = unit == "cups" and d.chance(0.4)
    amount = d.given(
        Fraction(d.rng.randint(2 * lo + 1, 2 * hi), 2) if halves else d.rng.randint(max(lo, 2), hi + 1),
        f"the {unit} of {name} in one batch",
    )
    servings = d.pick((6, 8, 10, 12, 16, 20, 24))
    made = d.given(servings, f"the number of {dish} one batch makes")
    d.tell(
        d.pick(
            (
                f"A recipe for {made} {dish} uses {amount} {unit} of {name}.",
                f"{p.s} recipe makes {made} {dish} with {amount} {unit} of {name}.",
            )
        )
    )
    if d.chance(0.5):
        batches = d.given(d.rng.randint(2, 6), f"the number of batches {p.name} makes")
        d.tell(f"{p.name} makes {batches} batches.")
        if d.chance(0.5):
            c = d.calc(amount, "*", batches)
            d.say(
                (
                    "{p.He} needs {c} {u} of {x}.",
                    "{b} batches use {c} {u} of {x}.",
                    "That takes {c} {u} of {x}.",
                ),
                p=p,
                b=batches,
                c=c.work,
                u=unit,
                x=name,
            )
            d.ask(
                c,
                f"How many {unit} of {name} does {p.he} use?",
                f"{p.He} uses # {unit} of {name}.",
                f"the number of {unit} of {name} {p.name} uses",
            )
            return
        total = d.calc(made, "*", batches)
        d.say(("The batches make {c} {dish}.", "{p.He} bakes {c} {dish}."), p=p, c=total.work, dish=dish)
        d.ask(
            total,
            f"How many {dish} does {p.he} make?",
            f"{p.He} makes # {dish}.",
            f"the number of {dish} made",
        )
        return
    want = d.given(
        servings * d.pick((Fraction(1, 2), Fraction(3, 2), 2, 3, Fraction(5, 2), 4)),
        f"the number of {dish} {p.name} wants",
    )
    d.tell(f"{p.name} wants to make {want} {dish}.")
    if d.chance(0.5):
        c = d.calc(want, "/", made)
        d.say(
            ("{p.He} needs {c} batches.", "That is {c} times the recipe.", "{w} {dish} is {c} batches."),
            p=p,
            w=want,
            dish=dish,
            c=c.work,
        )
        c = d.calc(amount, "*", c)
    else:
        c = d.calc(amount, "*", want, "/", made)
    d.say(
        ("{p.He} needs {c} {u} of {x}.", "That takes {c} {u} of {x}.", "So {c} {u} of {x} are needed."),
        p=p,
        c=c.work,
        u=unit,
        x=name,
    )
    d.ask(
        c,
        f"How many {unit} of {name} does {p.he} need?",
        f"{p.He} needs # {unit} of {name}.",
        f"the number of {unit} of {name} {p.name} needs",
    )


_OLDER = ("{x} years older than {p}", "{x} years older than {p} is", "older than {p} by {x} years")
_YOUNGER = ("{x} years younger than {p}", "{x} years younger than {p} is", "younger than {p} by {x} years")


def ages(d: Draft) -> None:
    chain = d.rng.randint(1, 3)
    folks = people(d, chain + 1)
    first = folks[0]
    age = d.given(d.rng.randint(4, 40), f"{first.s} age")
    d.tell(
        d.pick(
            (
                f"{first.name} is {age} years old.",
                f"{first.name} is {age}.",
                f"{first.name} just turned {age}.",
                f"{first.s} age is {age}.",
            )
        )
    )
    ages_ = [age]
    for prev, who in pairwise(folks):
        a = age.value
        options = []
        if a <= 80:
            options.append("+")
        if a > 8:
            options.append("-")
        if a * 2 <= 90:
            options.append("*2")
        if a * 3 <= 90:
            options.append("*3")
        if a % 2 == 0 and a >= 8:
            options.append("/2")
        op = d.pick(options)
        if op in "+-":
            x = d.given(
                d.rng.randint(2, 15) if op == "+" else d.rng.randint(1, int(a) - 4),
                f"the difference between {who.s} and {prev.s} ages",
            )
            age = d.calc(age, op, x)
            words = d.pick(_OLDER if op == "+" else _YOUNGER).format(x=x, p=prev.name).removesuffix(" is")
            reverse = d.pick(_YOUNGER if op == "+" else _OLDER).format(x=x, p=who.name).removesuffix(" is")
            d.tell(d.pick((f"{who.name} is {words}.", f"{prev.name} is {reverse}.")))
        else:
            age = d.calc(age, op[0], int(op[1]))
            times = {"*2": "twice as old as", "*3": "three times as old as", "/2": "half as old as"}[op]
            other = {"*2": "half {who}'s age", "*3": "a third of {who}'s age", "/2": "twice {who}'s age"}[op]
            d.tell(
                d.pick(
                    (
                        f"{who.name} is {times} {prev.name}.",
                        f"{prev.s} age is {other.format(who=who.name)}.",
                        f"{who.s} age is {times.replace(' as old as', '')} {prev.s} age.".replace(
                            "half", "half of"
                        ),
                    )
                )
            )
        d.say(
            (
                "{w.name} is {c} years old.",
                "So {w.name} is {c}.",
                "{w.name}'s age is {c}.",
                "That makes {w.name} {c}.",
            ),
            w=who,
            c=age.work,
        )
        ages_.append(age)
    last = folks[-1]
    ending = d.pick(("last", "future", "past", "sum"))
    if ending == "last" and chain > 1:
        d.ask(
            age,
            *d.pick(
                (
                    (f"How old is {last.name}?", f"{last.name} is # years old.", f"{last.s} age"),
                    (f"What is {last.s} age?", f"{last.s} age is #.", f"{last.s} age in years"),
                )
            ),
        )
    elif ending in ("future", "last"):
        y = d.given(d.rng.randint(2, 15), "the number of years from now")
        c = d.calc(age, "+", y)
        d.say(
            ("In {y} years, {w.name} will be {c} years old.", "{y} years from now, {w.he} will be {c}."),
            y=y,
            w=last,
            c=c.work,
        )
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How old will {last.name} be in {y} years?",
                        f"In {y} years, {last.name} will be #.",
                        f"{last.s} age in {y} years",
                    ),
                    (
                        f"What will {last.s} age be {y} years from now?",
                        f"{y} years from now {last.name} will be #.",
                        f"{last.s} age {y} years from now",
                    ),
                )
            ),
        )
    elif ending == "past" and age.value > 6:
        y = d.given(d.rng.randint(1, int(age.value) - 2), "the number of years ago")
        c = d.calc(age, "-", y)
        d.say(
            ("{y} years ago, {w.name} was {c} years old.", "{w.name} was {c} back then."),
            y=y,
            w=last,
            c=c.work,
        )
        d.ask(
            c,
            f"How old was {last.name} {y} years ago?",
            f"{y} years ago, {last.name} was # years old.",
            f"{last.s} age {y} years ago",
        )
    else:
        total = d.add_up(
            ages_,
            (
                "Together they are {c} years old.",
                "The sum of their ages is {c}.",
                "Their ages add up to {c}.",
            ),
            partial=("Adding the next age gives {c}.", "So far the ages add up to {c}."),
        )
        d.ask(
            total,
            *d.pick(
                (
                    (
                        "What is the sum of their ages?",
                        "The sum of their ages is #.",
                        "the sum of their ages",
                    ),
                    ("How old are they together?", "Together they are # years old.", "their combined age"),
                    (
                        f"What is the total age of the {len(folks)} of them?",
                        "Their total age is #.",
                        "their total age",
                    ),
                )
            ),
        )


# fmt: off
_PRODUCTS = (  # made item, unit of packing, packing sizes, price range per pack, place
    ("cookies", "boxes", (6, 8, 10, 12), (4, 12), "bakery"),
    ("cupcakes", "trays", (4, 6, 12), (8, 20), "cafe"),
    ("toy cars", "crates", (5, 10, 20), (20, 60), "workshop"),
    ("candles", "packs", (4, 5, 6, 8), (6, 15), "studio"),
    ("scarves", "bundles", (2, 4, 5), (20, 45), "workshop"),
    ("bars of soap", "gift sets", (3, 4, 6), (8, 18), "shop"),
    ("jars of jam", "cases", (6, 12), (15, 40), "kitchen"),
    ("bird houses", "crates", (2, 4), (30, 70), "workshop"),
    ("pretzels", "bags", (5, 10), (3, 9), "bakery"), ("mugs", "boxes", (2, 4, 6), (12, 30), "pottery studio"),
    ("paper cranes", "strings", (10, 20), (5, 15), "classroom"),
    ("sandwiches", "platters", (4, 8), (20, 45), "deli"),
)
_RATE_WORDS = (
    "{w} makes {r} {i} per hour for {h} hours", "{w} makes {r} {i} an hour and works {h} hours",
    "{w} can make {r} {i} in an hour and works for {h} hours",
)
# fmt: on


def production(d: Draft) -> None:
    item, pack, sizes, (lo, hi), place = d.pick(_PRODUCTS)
    k = d.pick((1, 1, 2, 2, 3))
    folks = people(d, k)
    size = d.pick(sizes)
    made, parts = [], []
    style = d.pick(_RATE_WORDS)
    for w in folks:
        r = d.given(size * d.rng.randint(1, 6), f"the number of {item} {w.name} makes per hour")
        h = d.given(d.rng.randint(2, 8), f"the number of hours {w.name} works")
        parts.append(style.format(w=w.name, r=r, i=item, h=h))
        c = d.calc(r, "*", h)
        d.say(
            (
                "{w.name} makes {c} {i}.",
                "{w.name} produces {c} {i}.",
                "In {h} hours {w.name} makes {c} {i}.",
                "{w.name} makes {r} {i} an hour for {h} hours, which is {c} {i}.",
            ),
            w=w,
            h=h,
            r=r,
            c=c.work,
            i=item,
        )
        made.append(c)
    listed = join(parts)
    d.tell(
        d.pick(
            (
                f"At the {place}, {listed} each day.",
                f"Every day at the {place}, {listed}.",
                f"{listed[:1].upper() + listed[1:]} at the {place} each day.",
            )
        )
    )
    total = d.add_up(
        made,
        (
            f"In one day they make {{c}} {item}.",
            f"Together that is {{c}} {item} a day.",
            "The day's total is {c}.",
        ),
    )
    who, does, make, work = (
        ("they", "do", "make", "work") if k > 1 else (folks[0].he, "does", "makes", "works")
    )
    goal = (
        f"How many {item} {does} {who} make in a day?",
        f"{who.capitalize()} {make} # {item} a day.",
        f"the number of {item} made in a day",
    )
    steps = d.rng.randint(0, 3)
    if steps >= 1:
        days = d.given(d.rng.randint(2, 7), "the number of days")
        d.tell(
            d.pick(
                (f"{who.capitalize()} {work} like this for {days} days.", f"This goes on for {days} days.")
            )
        )
        total = d.calc(total, "*", days)
        d.say(
            ("In {n} days that is {c} {i}.", "Over {n} days, {c} {i} are made."), n=days, c=total.work, i=item
        )
        goal = (
            f"How many {item} {does} {who} make in {days} days?",
            f"In {days} days {who} {make} # {item}.",
            f"the number of {item} made in {days} days",
        )
    if steps >= 2:
        per = d.given(size, f"the number of {item} in each of the {pack}")
        d.tell(
            d.pick(
                (f"The {item} are packed into {pack} of {per}.", f"Each of the {pack} holds {per} {item}.")
            )
        )
        total = d.calc(total, "/", per)
        d.say(
            ("That fills {c} {pk}.", "They fill {c} {pk}.", "So {c} {pk} are filled."), c=total.work, pk=pack
        )
        goal = (f"How many {pack} are filled?", f"They fill # {pack}.", f"the number of {pack} filled")
    if steps >= 3:
        cost = d.money(d.rng.randint(lo, hi), f"the price of one of the {pack}")
        d.tell(d.pick((f"Each of the {pack} sells for {cost}.", f"They sell the {pack} for {cost} each.")))
        total = d.calc(total, "*", cost)
        d.say(
            ("Selling them brings in {c}.", "The {pk} sell for {c}.", "They earn {c}."), c=total.work, pk=pack
        )
        goal = (
            f"How much money do the {pack} bring in?",
            f"The {pack} bring in #.",
            f"the money the {pack} bring in",
        )
    d.ask(total, *goal)


_SHARE_ITEMS = (
    "candies",
    "stickers",
    "marbles",
    "cookies",
    "trading cards",
    "crayons",
    "seashells",
    "grapes",
    "beads",
    "balloons",
    "pencils",
    "strawberries",
    "cherries",
    "erasers",
    "gummy bears",
)
_CONTAINERS = ("bags", "boxes", "jars", "tins", "packs", "buckets", "baskets", "bowls", "cartons", "pouches")


def sharing(d: Draft) -> None:
    p = person(d)
    item = d.pick(_SHARE_ITEMS)
    friends = d.rng.randint(2, 7)
    with_self = d.chance(0.5)
    n = friends + with_self
    lots = []
    for box in d.rng.sample(_CONTAINERS, d.pick((1, 2, 2, 3))):
        q = d.given(d.rng.randint(2, 6), f"the number of {box}")
        s = d.given(n * d.rng.randint(1, 5), f"the number of {item} in each of the {box}")
        lots.append((q, box, s))
    each = d.pick(("{q} {b} with {s} {i} in each", "{q} {b} of {s} {i}", "{q} {b} that each hold {s} {i}"))
    listed = join([each.format(q=q, b=box, s=s, i=item) for q, box, s in lots])
    d.tell(d.pick((f"{p.name} has {listed}.", f"{p.name} buys {listed}.", f"{p.name} is given {listed}.")))
    sizes = []
    for q, box, s in lots:
        c = d.calc(q, "*", s)
        d.say(
            ("The {b} hold {c} {i}.", "There are {c} {i} in the {b}.", "{q} {b} of {s} make {c} {i}."),
            b=box,
            c=c.work,
            i=item,
            q=q,
            s=s,
        )
        sizes.append(c)
    total = d.add_up(
        sizes, (f"{{p.He}} has {{c}} {item} in total.", f"That is {{c}} {item} altogether."), p=p
    )
    f = d.given(friends, "the number of friends")
    how = d.pick(("equally", "evenly", "fairly"))
    if with_self:
        d.tell(
            d.pick(
                (
                    f"{p.He} shares them {how} between {p.self} and {f} friends.",
                    f"{p.He} splits them {how} among {p.self} and {f} of {p.his} friends.",
                )
            )
        )
        n_q = d.calc(f, "+", 1)
        d.say(("There are {c} people sharing.", "Counting {p.him}, {c} people share."), p=p, c=n_q.work)
        share = d.calc(total, "/", n_q)
    else:
        d.tell(
            d.pick(
                (f"{p.He} shares them {how} among {f} friends.", f"{p.He} gives them {how} to {f} friends.")
            )
        )
        share = d.calc(total, "/", f)
    d.say(
        ("Each person gets {c} {i}.", "Each share is {c} {i}.", "That is {c} {i} each."), c=share.work, i=item
    )
    who = "each of them" if with_self else "each friend"
    if share.value >= 2 and d.chance(0.5):
        verb = d.pick(
            ("gives away", "loses", "uses", "eats" if item in ("candies", "cookies", "grapes") else "trades")
        )
        gone = d.given(
            d.rng.randint(1, int(share.value) - 1), f"the number of {item} {who} {verb.split()[0]}"
        )
        d.tell(f"Then {who} {verb} {gone} of them.")
        share = d.calc(share, "-", gone)
        d.say(("After that, each has {c} {i} left.", "Each is left with {c} {i}."), c=share.work, i=item)
        d.ask(
            share,
            f"How many {item} does {who} have left?",
            f"{who.capitalize()} has # {item} left.",
            f"the number of {item} {who} has left",
        )
        return
    d.ask(
        share,
        f"How many {item} does {who} get?",
        f"{who.capitalize()} gets # {item}.",
        f"the number of {item} {who} gets",
    )


# fmt: off
_ACTIVITIES = (
    ("practices piano", "piano"), ("reads", "reading"), ("walks {his} dog", "dog walks"), ("jogs", "jogging"),
    ("does homework", "homework"), ("stretches", "stretching"), ("plays chess", "chess"),
    ("practices drawing", "drawing"), ("studies French", "French"), ("meditates", "meditation"),
    ("swims", "swimming"), ("practices guitar", "guitar"), ("does yoga", "yoga"), ("bakes", "baking"),
    ("gardens", "gardening"), ("practices coding", "coding"),
)
_SPANS = ((5, "5 days"), (6, "6 days"), (7, "a week"), (10, "10 days"), (14, "two weeks"), (30, "30 days"),
          (21, "three weeks"), (4, "4 days"))
# fmt: on


def activities(d: Draft) -> None:
    p = person(d)
    d.names.add("French")
    k = d.pick((1, 2, 2, 3))
    chosen = [(does.format(his=p.his), what) for does, what in d.rng.sample(_ACTIVITIES, k)]
    hours = d.chance(0.4)
    days, span = d.pick(_SPANS)
    while True:  # redraw until the total converts to whole hours
        minutes = [d.rng.randint(1, 12) * 5 for _ in chosen]
        times = [d.pick((1, 1, 2, 3)) for _ in chosen]
        if not hours or sum(t * m for t, m in zip(times, minutes, strict=True)) * days % 60 == 0:
            break
    daily, parts = [], []
    once = d.pick(("a day", "every day", "each day"))
    for (does, what), m, t in zip(chosen, minutes, times, strict=True):
        mq = d.given(m, f"the minutes of each {what} session")
        if t > 1:
            tq = d.given(t, f"the number of {what} sessions a day")
            parts.append(
                d.pick(
                    (
                        f"{does} for {mq} minutes {tq} times {once}",
                        f"{does} {tq} times {once}, {mq} minutes each time",
                    )
                )
            )
            c = d.calc(mq, "*", tq)
            d.say(
                ("{p.He} spends {c} minutes a day on {w}.", "Time for {w}: {c} minutes a day."),
                p=p,
                c=c.work,
                w=what,
            )
            daily.append(c)
        else:
            parts.append(f"{does} for {mq} minutes {once}")
            daily.append(mq)
    d.tell(
        d.pick((f"{p.name} {join(parts)}.", f"Every day, {p.name} {join(parts).replace(' ' + once, '')}."))
    )
    total = d.add_up(daily, ("Each day {p.he} spends {c} minutes.", "That is {c} minutes a day."), p=p)
    c = d.calc(total, "*", days)
    d.say(
        ("In {s} that is {c} minutes.", "Over {n} days {p.he} spends {c} minutes."),
        s=span,
        n=days,
        p=p,
        c=c.work,
    )
    on = "these activities" if k > 1 else chosen[0][1]
    if not hours:
        d.ask(
            c,
            f"How many minutes does {p.he} spend on {on} in {span}?",
            f"{p.He} spends # minutes on {on} in {span}.",
            f"the number of minutes {p.name} spends on {on} in {span}",
        )
        return
    c = d.calc(c, "/", 60)
    d.say(("That is {c} hours.", "Dividing by 60 minutes an hour gives {c} hours."), c=c.work)
    d.ask(
        c,
        f"How many hours does {p.he} spend on {on} in {span}?",
        f"{p.He} spends # hours on {on} in {span}.",
        f"the number of hours {p.name} spends on {on} in {span}",
    )


# fmt: off
_COUNTABLES = (  # place, how some leave, what is counted, [(kind, count per kind)]
    ("farm", "{name} sells {what}.", "legs", [
        ("chickens", 2), ("ducks", 2), ("geese", 2), ("cows", 4), ("goats", 4), ("sheep", 4), ("pigs", 4),
        ("horses", 4), ("turkeys", 2), ("donkeys", 4),
    ]),
    ("parking lot", "Then {what} drive away.", "wheels", [
        ("bicycles", 2), ("tricycles", 3), ("cars", 4), ("motorcycles", 2), ("trucks", 6), ("vans", 4),
    ]),
    ("pet shop", "{name} sells {what}.", "legs", [
        ("parrots", 2), ("spiders", 8), ("hamsters", 4), ("rabbits", 4), ("lizards", 4), ("canaries", 2),
        ("kittens", 4), ("puppies", 4),
    ]),
    ("zoo", "Then {what} are moved to another zoo.", "legs", [
        ("flamingos", 2), ("zebras", 4), ("ostriches", 2), ("camels", 4), ("penguins", 2), ("lions", 4),
    ]),
    ("bike shop", "{name} sells {what}.", "wheels", [
        ("bicycles", 2), ("tricycles", 3), ("wagons", 4), ("scooters", 2),
    ]),
)
# fmt: on


def legs(d: Draft) -> None:
    p = person(d)
    place, leave, counted, kinds = d.pick(_COUNTABLES)
    chosen = d.rng.sample(kinds, d.pick((1, 2, 2, 3)))
    counts = [d.given(d.rng.randint(3, 25), f"the number of {kind} at first") for kind, _ in chosen]
    listed = join([f"{c} {kind}" for c, (kind, _) in zip(counts, chosen, strict=True)])
    d.tell(
        d.pick(
            (
                f"At {p.s} {place} there are {listed}.",
                f"{p.name} counts {listed} at the {place}.",
                f"{p.s} {place} has {listed}.",
                f"There are {listed} at {p.s} {place}.",
            )
        )
    )
    removed = d.chance(0.4)
    if removed:
        i = d.rng.randrange(len(chosen))
        gone = d.given(d.rng.randint(1, int(counts[i].value) - 1), f"the number of {chosen[i][0]} that leave")
        d.tell(leave.format(name=p.name, what=f"{gone} of the {chosen[i][0]}"))
        counts[i] = d.calc(counts[i], "-", gone)
        d.say(
            ("There are {c} {k} left.", "{c} {k} remain.", "That leaves {c} {k}."),
            c=counts[i].work,
            k=chosen[i][0],
        )
    totals = []
    for count_, (kind, per) in zip(counts, chosen, strict=True):
        c = d.calc(count_, "*", per)
        d.say(
            (
                "The {k} have {c} {x}.",
                "{k} have {per} {x} each, so {c} {x}.",
                "That gives {c} {x} for the {k}.",
                "Each of the {k} has {per} {x}, which makes {c}.",
            ),
            k=kind,
            c=c.work,
            x=counted,
            per=per,
        )
        totals.append(c)
    total = d.add_up(totals, (f"Altogether there are {{c}} {counted}.", f"The total is {{c}} {counted}."))
    now = " now" if removed else ""
    d.ask(
        total,
        *d.pick(
            (
                (
                    f"How many {counted} are there at the {place}{now}?",
                    f"There are # {counted} at the {place}{now}.",
                    f"the number of {counted} at the {place}{now}",
                ),
                (
                    f"How many {counted} does {p.name} count{now}?",
                    f"{p.name} counts # {counted}{now}.",
                    f"the total number of {counted}{now}",
                ),
            )
        ),
    )


_BOOKS = (
    "book",
    "novel",
    "comic series",
    "biography",
    "fantasy book",
    "history book",
    "mystery novel",
    "science book",
    "cookbook",
    "travel guide",
)


def reading(d: Draft) -> None:
    p = person(d)
    book = d.pick(_BOOKS)
    read = []
    day = 1
    for _ in range(d.rng.randint(1, 3)):
        if d.chance(0.5):
            pages = d.given(d.rng.randint(5, 60), f"the pages {p.name} reads on day {day}")
            d.tell(
                d.pick(
                    (f"On day {day} {p.he} reads {pages} pages.", f"{p.He} reads {pages} pages on day {day}.")
                )
            )
            read.append(pages)
            day += 1
        else:
            per = d.given(d.rng.randint(5, 30), f"the pages {p.name} reads each day from day {day}")
            span = d.rng.randint(2, 4)
            d.tell(
                d.pick(
                    (
                        f"From day {day} to day {day + span - 1} {p.he} reads {per} pages a day.",
                        f"For the next {span} days {p.he} reads {per} pages each day.",
                    )
                )
            )
            c = d.calc(per, "*", span)
            d.say(
                ("In those {n} days {p.he} reads {c} pages.", "Those {n} days give {c} pages."),
                n=span,
                p=p,
                c=c.work,
            )
            read.append(c)
            day += span
    done = d.add_up(read, ("{p.He} has read {c} pages.", "So far {p.he} has read {c} pages."), p=p)
    finish = d.chance(0.4)
    rate = d.rng.randint(10, 40)
    left = rate * d.rng.randint(2, 9) if finish else d.rng.randint(20, 300)
    length = d.given(done.value + left, f"the number of pages in the {book}")
    d.sentences.insert(
        0,
        d.pick(
            (
                f"{p.name} is reading a {book} with {length} pages.",
                f"{p.name} starts a {length}-page {book}.",
                f"{p.s} new {book} has {length} pages.",
            )
        ),
    )
    c = d.calc(length, "-", done)
    d.say(
        ("{p.He} has {c} pages left.", "That leaves {c} pages.", "There are {c} pages still to read."),
        p=p,
        c=c.work,
    )
    if not finish:
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many pages does {p.he} still have to read?",
                        f"{p.He} still has # pages to read.",
                        f"the number of pages {p.name} still has to read",
                    ),
                    (
                        f"How many pages of the {book} are left?",
                        f"# pages of the {book} are left.",
                        f"the number of pages left in the {book}",
                    ),
                )
            ),
        )
        return
    r = d.given(rate, f"the pages {p.name} reads a day from now on")
    d.tell(
        d.pick(
            (f"From now on {p.he} reads {r} pages a day.", f"{p.He} plans to read {r} pages a day from now.")
        )
    )
    c = d.calc(c, "/", r)
    d.say(("At {r} pages a day, {p.he} needs {c} more days.", "That takes {c} days."), r=r, p=p, c=c.work)
    d.ask(
        c,
        f"How many more days will {p.he} need to finish the {book}?",
        f"{p.He} needs # more days.",
        f"the number of days {p.name} still needs",
    )


_THINGS = (
    "seashells",
    "stamps",
    "baseball cards",
    "marbles",
    "stickers",
    "pine cones",
    "rocks",
    "coins",
    "postcards",
    "buttons",
    "keychains",
    "comic books",
    "toy cars",
    "bottle caps",
)
_GATHER = ("collects", "finds", "has", "picks up", "gathers")


def comparison(d: Draft) -> None:
    folks = people(d, 3)
    thing = d.pick(_THINGS)
    verb = d.pick(_GATHER)
    na = d.given(d.rng.randint(5, 60), f"the number of {thing} {folks[0].name} {verb}")
    d.tell(f"{folks[0].name} {verb} {na} {thing}.")
    counts = [na]
    for prev, who in pairwise(folks):
        n = counts[-1].value
        options = ["+", "*"] + (["-"] if n > 5 else []) + (["/2"] if n % 2 == 0 else [])
        op = d.pick(options)
        if op == "/2":
            c = d.calc(counts[-1], "/", 2)
            d.tell(
                d.pick(
                    (
                        f"{who.name} {verb} half as many {thing} as {prev.name}.",
                        f"{who.name} {verb} half as many.",
                    )
                )
            )
        else:
            how = {"+": "more", "-": "fewer", "*": "times as many"}[op]
            x = d.given(
                d.rng.randint(*{"+": (2, 20), "-": (1, int(n) - 1), "*": (2, 4)}[op]),
                f"how many {how} {thing} {who.name} {verb} than {prev.name}".replace(
                    "times as many", "times more"
                ),
            )
            c = d.calc(counts[-1], op, x)
            words = (
                f"{x} times as many {thing} as {prev.name}"
                if op == "*"
                else f"{x} {how} {thing} than {prev.name}"
            )
            d.tell(
                d.pick(
                    (f"{who.name} {verb} {words}.", f"{who.name} {verb} {words.replace(' ' + thing, '')}.")
                )
            )
        d.say(
            ("{w.name} {v} {c} {t}.", "{w.name} has {c} {t}.", "So {w.name} ends up with {c} {t}."),
            w=who,
            v=verb,
            c=c.work,
            t=thing,
        )
        counts.append(c)
    a, c_ = folks[0], folks[2]
    if d.chance(0.5):
        total = d.add_up(counts, (f"Together they have {{c}} {thing}.", f"In all they have {{c}} {thing}."))
        d.ask(
            total,
            *d.pick(
                (
                    (
                        f"How many {thing} do they have in total?",
                        f"They have # {thing} in total.",
                        f"the total number of {thing} they have",
                    ),
                    (
                        f"How many {thing} do the three of them have altogether?",
                        f"The three of them have # {thing} altogether.",
                        f"the number of {thing} the three have",
                    ),
                )
            ),
        )
    else:
        hi, lo, hn, ln = (
            (counts[2], counts[0], c_, a)
            if counts[2].value >= counts[0].value
            else (counts[0], counts[2], a, c_)
        )
        if hi.value == lo.value:
            raise Redraw('equal counts: the difference would be 0 ("0 more buttons")')
        diff = d.calc(hi, "-", lo)
        d.say(
            ("{h.name} has {c} more {t} than {l.name}.", "The difference is {c} {t}."),
            h=hn,
            l=ln,
            c=diff.work,
            t=thing,
        )
        d.ask(
            diff,
            f"How many more {thing} does {hn.name} have than {ln.name}?",
            f"{hn.name} has # more {thing} than {ln.name}.",
            f"how many more {thing} {hn.name} has than {ln.name}",
        )


_CROPS = (
    ("tomato plants", "tomatoes"),
    ("pepper plants", "peppers"),
    ("apple trees", "apples"),
    ("bean plants", "beans"),
    ("strawberry plants", "strawberries"),
    ("lemon trees", "lemons"),
    ("cucumber plants", "cucumbers"),
    ("orange trees", "oranges"),
    ("peach trees", "peaches"),
    ("zucchini plants", "zucchinis"),
    ("plum trees", "plums"),
    ("pumpkin vines", "pumpkins"),
)


def garden(d: Draft) -> None:
    p = person(d)
    plants, fruit = d.pick(_CROPS)
    rows = d.given(d.rng.randint(2, 12), "the number of rows")
    per = d.given(d.rng.randint(3, 15), f"the number of {plants} in each row")
    d.tell(
        d.pick(
            (
                f"{p.name} plants {rows} rows of {plants} with {per} plants in each row.",
                f"{p.s} garden has {rows} rows of {plants}, {per} in each row.",
                f"{p.name} has {rows} rows of {plants} and each row has {per} of them.",
                f"In {p.s} orchard there are {rows} rows with {per} {plants} in every row.",
            )
        )
    )
    c = d.calc(rows, "*", per)
    d.say(
        ("There are {c} {pl}.", "{p.He} has {c} {pl}.", "{r} rows of {n} make {c} {pl}."),
        c=c.work,
        pl=plants,
        p=p,
        r=rows,
        n=per,
    )
    y = d.given(d.rng.randint(2, 20), f"the number of {fruit} each plant gives")
    d.tell(
        d.pick(
            (
                f"Each plant gives {y} {fruit}.",
                f"Every plant produces {y} {fruit}.",
                f"Each one yields {y} {fruit} this season.",
            )
        )
    )
    total = d.calc(c, "*", y)
    d.say(
        ("That makes {c} {f}.", "The plants give {c} {f}.", "{p.He} harvests {c} {f}."),
        c=total.work,
        f=fruit,
        p=p,
    )
    ending = d.pick(("harvest", "sell", "baskets"))  # "sell": sold for money
    if ending == "harvest":
        d.ask(
            total,
            f"How many {fruit} does {p.he} harvest?",
            f"{p.He} harvests # {fruit}.",
            f"the number of {fruit} {p.name} harvests",
        )
        return
    size = d.rng.randint(2, 12)
    kept_value = d.rng.randint(1, max(1, int(total.value) // 4))
    if ending == "baskets":  # keep a few more, so that the rest fills whole baskets
        kept_value += (total.value - kept_value) % size
    kept = d.given(kept_value, f"the number of {fruit} {p.name} keeps")
    keeps = d.pick((f"{p.He} keeps {kept} {fruit}", f"{p.He} gives away {kept} {fruit}"))
    d.tell(f"{keeps} and sells the rest." if ending == "sell" else f"{keeps}.")
    sold = d.calc(total, "-", kept)
    d.say(("{p.He} has {c} {f} left.", "That leaves {c} {f}."), p=p, c=sold.work, f=fruit)
    if ending == "baskets":
        b = d.given(size, f"the number of {fruit} in a basket")
        d.tell(f"{p.He} puts the rest into baskets of {b}.")
        c = d.calc(sold, "/", b)
        d.say(("{p.He} fills {c} baskets.", "That is {c} baskets."), p=p, c=c.work)
        d.ask(
            c,
            f"How many baskets does {p.he} fill?",
            f"{p.He} fills # baskets.",
            "the number of baskets filled",
        )
        return
    cost = d.money(
        d.pick((Fraction(1, 4), Fraction(1, 2), Fraction(3, 4), 1, 2)), f"the price of one of the {fruit}"
    )
    d.tell(
        d.pick(
            (
                f"{p.He} sells them for {cost} each.",
                f"Each one sells for {cost}.",
                f"They sell for {cost} each.",
            )
        )
    )
    money = d.calc(sold, "*", cost)
    d.say(
        ("{p.He} earns {c}.", "The sales bring in {c}.", "That is {c} from selling them."), p=p, c=money.work
    )
    d.ask(money, f"How much money does {p.he} make?", f"{p.He} makes #.", f"the money {p.name} makes")


def collection(d: Draft) -> None:
    p, friend = people(d, 2)
    thing = d.pick(_THINGS)
    have = d.given(d.rng.randint(10, 90), f"the number of {thing} {p.name} has at first")
    d.tell(
        d.pick(
            (
                f"{p.name} has {have} {thing}.",
                f"{p.name} has a collection of {have} {thing}.",
                f"{p.name} owns {have} {thing}.",
            )
        )
    )
    for i in range(d.rng.randint(2, 4)):
        then = d.pick(_THEN) if i else d.pick(("On Monday", "First", "This week", "Last week"))
        kind = d.pick(
            ["packs", "gift", "give", "lose", "double"] if have.value >= 4 else ["packs", "gift", "double"]
        )
        if kind == "packs":
            packs = d.given(d.rng.randint(2, 8), "the number of packs")
            size = d.given(d.rng.randint(3, 12), f"the number of {thing} in a pack")
            d.tell(
                d.pick(
                    (
                        f"{then}, {p.he} buys {packs} packs with {size} {thing} in each.",
                        f"{then}, {p.his} {d.pick(_RELATIVES)} gives {p.him} {packs} packs of {size} "
                        f"{thing}.",
                    )
                )
            )
            got = d.calc(packs, "*", size)
            d.say(
                ("The packs hold {c} {t}.", "{p.He} gets {c} new {t}.", "That is {c} more {t}."),
                c=got.work,
                t=thing,
                p=p,
            )
            have = d.calc(have, "+", got)
        elif kind == "gift":
            got = d.given(d.rng.randint(2, 30), f"the number of {thing} {friend.name} gives {p.name}")
            d.tell(f"{then}, {friend.name} gives {p.him} {got} {thing}.")
            have = d.calc(have, "+", got)
        elif kind == "double":
            d.tell(f"{then}, {p.he} doubles {p.his} collection.")
            have = d.calc(have, "*", 2)
        else:
            gone = d.given(d.rng.randint(1, int(have.value) // 2), f"the number of {thing} {p.name} {kind}s")
            d.tell(
                f"{then}, {p.he} gives {gone} {thing} to {friend.name}."
                if kind == "give"
                else f"{then}, {p.he} loses {gone} of them."
            )
            have = d.calc(have, "-", gone)
        d.say(
            (
                "{p.He} now has {c} {t}.",
                "Now {p.he} has {c} {t}.",
                "That leaves {p.him} with {c} {t}.",
                "{p.His} collection is now {c} {t}.",
            ),
            p=p,
            c=have.work,
            t=thing,
        )
    d.ask(
        have,
        *d.pick(
            (
                (
                    f"How many {thing} does {p.name} have now?",
                    f"{p.name} now has # {thing}.",
                    f"the number of {thing} {p.name} has now",
                ),
                (
                    f"How many {thing} are in {p.s} collection at the end?",
                    f"{p.s} collection ends with # {thing}.",
                    f"the size of {p.s} collection at the end",
                ),
            )
        ),
    )


FAMILIES = {
    "shopping": Family(shopping, opening=True),
    "savings": Family(savings),
    "travel": Family(travel, opening=True),
    "recipe": Family(recipe, observer=True),
    "ages": Family(ages),
    "production": Family(production),
    "sharing": Family(sharing, opening=True),
    "activities": Family(activities),
    "legs": Family(legs, opening=True, observer=True),
    "reading": Family(reading),
    "comparison": Family(comparison, opening=True),
    "garden": Family(garden, opening=True),
    "collection": Family(collection),
}
