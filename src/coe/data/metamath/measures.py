"""Measures: unit conversion, perimeter, area, volume, flooring, fuel and map scales."""

from __future__ import annotations

from fractions import Fraction

from coe.data.metamath.engine import Draft, Family
from coe.data.metamath.words import SO, join, person

# fmt: off
_UNITS = {  # dimension: [(big unit, small unit, small units per big unit)]
    "length": [("feet", "inches", 12), ("yards", "feet", 3), ("meters", "centimeters", 100),
               ("kilometers", "meters", 1000)],
    "mass": [("kilograms", "grams", 1000), ("pounds", "ounces", 16)],
    "volume": [("liters", "milliliters", 1000), ("gallons", "quarts", 4), ("quarts", "cups", 4)],
    "time": [("hours", "minutes", 60), ("days", "hours", 24), ("weeks", "days", 7),
             ("minutes", "seconds", 60)],
}
_STUFF = {  # dimension: [(what is measured, what a piece of it is)]
    "length": [("ribbon", "piece"), ("rope", "piece"), ("wire", "piece"), ("fabric", "strip"),
               ("string", "piece"), ("garden hose", "section"), ("wood", "plank")],
    "mass": [("flour", "batch of bread"), ("clay", "pot"), ("dog food", "meal"), ("sugar", "cake"),
             ("coffee beans", "bag"), ("chocolate", "bar")],
    "volume": [("juice", "glass"), ("soup", "bowl"), ("paint", "can"), ("lemonade", "cup"),
    ("milk", "bottle"),
               ("water", "bottle")],
    "time": [("movie marathon", "movie"), ("piano practice", "session"), ("bus trip", "stop"),
             ("study time", "session"), ("volunteering", "shift"), ("training", "drill")],
}
# fmt: on


_ONE = {
    "feet": "foot",
    "inches": "inch",
    "meters": "meter",
    "yards": "yard",
    "centimeters": "centimeter",
    "kilometers": "kilometer",
    "kilograms": "kilogram",
    "grams": "gram",
    "pounds": "pound",
    "ounces": "ounce",
    "liters": "liter",
    "milliliters": "milliliter",
    "gallons": "gallon",
    "quarts": "quart",
    "cups": "cup",
    "hours": "hour",
    "minutes": "minute",
    "days": "day",
    "weeks": "week",
    "seconds": "second",
}


def _odd_part(n: int) -> int:
    """``n`` without its factors 2 and 5: what a division by ``n`` needs for a terminating decimal."""
    for p in (2, 5):
        while n % p == 0:
            n //= p
    return n


def unit_conversion(d: Draft) -> None:
    p = person(d)
    dim = d.pick(list(_UNITS))
    big, small, factor = d.pick(_UNITS[dim])
    stuff, piece = d.pick(_STUFF[dim])
    step = {1000: 50, 100: 5, 60: 5}.get(factor, 1)
    if d.chance(0.5):  # an amount in big units cut into pieces given in small units
        size = d.pick([s for s in range(step, 4 * factor + 1, step) if s % factor])
        count = d.rng.randint(2, 30)
        whole = Fraction(size * count, factor)
        count *= whole.denominator
        amount = d.given(Fraction(size * count, factor), f"the amount of {stuff} in {big}")
        s = d.given(size, f"the size of each {piece} in {small}")
        d.tell(
            d.pick(
                (
                    f"{p.name} has {amount} {big} of {stuff}.",
                    f"{p.name} buys {amount} {big} of {stuff}.",
                    f"There are {amount} {big} of {stuff}.",
                )
            ),
            d.pick(
                (
                    f"Each {piece} uses {s} {small}.",
                    f"{p.He} splits it into portions of {s} {small}, one per {piece}.",
                    f"Every {piece} takes {s} {small}.",
                )
            ),
        )
        total = d.calc(amount, "*", factor)
        d.say(
            (
                "There are {f} {sm} in a {b1}, so that is {c} {sm}.",
                "{a} {b} is {c} {sm}.",
                "In {sm} that is {c}.",
            ),
            f=factor,
            sm=small,
            b1=_ONE[big],
            a=amount,
            b=big,
            c=total.work,
        )
        n = d.calc(total, "/", s)
        d.say(
            ("That is enough for {c} {pc}s.", "{p.He} gets {c} {pc}s.", "{so}, {c} {pc}s."),
            pc=piece,
            p=p,
            so=d.word(SO),
            c=n.work,
        )
        d.ask(
            n,
            f"How many {piece}s can {p.he} make?",
            f"{p.He} can make # {piece}s.",
            f"the number of {piece}s",
        )
        return
    values = [d.rng.randint(2, 4 * factor // step) * step for _ in range(d.pick((1, 2, 3)))]
    days = d.rng.randint(2, 12) if dim != "time" and d.chance(0.5) else 1
    while sum(values) * days % _odd_part(factor):
        values[-1] += 1
    amounts = [d.given(v, f"an amount of {stuff} in {small}") for v in values]
    n = d.given(days, f"the number of days {p.name} does this") if days > 1 else None
    listed = join([f"{a} {small}" for a in amounts])
    every = " every day" if n else ""
    d.tell(
        d.pick((f"{p.name} uses {listed} of {stuff}{every}.", f"{p.name} needs {listed} of {stuff}{every}."))
    )
    total = d.add_up(amounts, (f"That is {{c}} {small}.", f"Together that is {{c}} {small}."))
    if n is not None:
        d.tell(f"{p.He} does this for {n} days.")
        total = d.calc(total, "*", n)
        d.say(
            ("In {n} days that is {c} {sm}.", "Over {n} days {p.he} uses {c} {sm}."),
            n=n,
            p=p,
            sm=small,
            c=total.work,
        )
    c = d.calc(total, "/", factor)
    d.say(
        ("There are {f} {sm} in one {b1}, so that is {c} {b}.", "Dividing by {f} gives {c} {b}."),
        f=factor,
        sm=small,
        b1=_ONE[big],
        b=big,
        c=c.work,
    )
    d.ask(c, f"How many {big} of {stuff} is that?", f"That is # {big} of {stuff}.", f"the amount in {big}")


_FIELDS = (
    "garden",
    "yard",
    "pasture",
    "playground",
    "pool deck",
    "tennis court",
    "vegetable patch",
    "dog run",
)


def perimeter(d: Draft) -> None:
    p = person(d)
    place = d.pick(_FIELDS)
    unit = d.pick(("feet", "meters", "yards"))
    shape = d.pick(("rectangle", "rectangle", "square", "triangle"))
    if shape == "rectangle":
        length = d.given(d.rng.randint(5, 60), f"the length of the {place}")
        width = d.given(d.rng.randint(3, int(length.value)), f"the width of the {place}")
        d.tell(
            d.pick(
                (
                    f"{p.s} {place} is a rectangle {length} {unit} long and {width} {unit} wide.",
                    f"{p.name} has a rectangular {place} that measures {length} by {width} {unit}.",
                )
            )
        )
        if d.word((True, False)):
            half = d.calc(length, "+", width)
            d.say(
                ("Length plus width is {c} {u}.", "One length and one width make {c} {u}."),
                u=unit,
                c=half.work,
            )
            edge = d.calc(half, "*", 2)
        else:
            edge = d.calc(length, "+", width, "+", length, "+", width)
    elif shape == "square":
        side = d.given(d.rng.randint(4, 50), f"the side of the {place}")
        d.tell(
            d.pick(
                (
                    f"{p.s} {place} is a square with sides of {side} {unit}.",
                    f"{p.name} has a square {place}, {side} {unit} on each side.",
                )
            )
        )
        edge = d.calc(4, "*", side)
    else:
        sides = [d.given(d.rng.randint(5, 40), f"a side of the {place}") for _ in range(3)]
        a, b = sorted(s.value for s in sides[:2])
        if sides[2].value >= a + b:
            sides[2] = d.given(a + b - 1, f"the third side of the {place}")
        d.tell(f"{p.s} {place} is a triangle with sides of {join([str(s) for s in sides])} {unit}.")
        edge = d.calc(sides[0], "+", sides[1], "+", sides[2])
    d.say(
        ("The perimeter is {c} {u}.", "The fence must be {c} {u} long.", "Around the {pl} is {c} {u}."),
        pl=place,
        u=unit,
        c=edge.work,
    )
    ending = d.pick(("perimeter", "cost", "posts"))
    if ending == "perimeter":
        d.ask(
            edge,
            f"How many {unit} of fence does {p.he} need to go around it?",
            f"{p.He} needs # {unit} of fence.",
            f"the length of fence {p.name} needs",
        )
    elif ending == "cost":
        rate = d.money(
            d.pick((2, 3, 4, 5, 6, 8, 10, Fraction(5, 2), Fraction(15, 2))), "the price of fence per unit"
        )
        d.tell(
            d.pick(
                (
                    f"Fencing costs {rate} per {_ONE[unit]}.",
                    f"The fence {p.he} wants sells for {rate} a {_ONE[unit]}.",
                )
            )
        )
        c = d.calc(edge, "*", rate)
        d.say(("The fence costs {c}.", "{p.He} pays {c} for the fence."), p=p, c=c.work)
        d.ask(c, "How much does the fence cost?", "The fence costs #.", "the cost of the fence")
    else:
        gaps = [g for g in range(2, 11) if edge.value % g == 0] or [int(edge.value)]
        g = d.given(d.pick(gaps), f"the distance between posts in {unit}")
        d.tell(f"{p.He} puts a post every {g} {unit} along the fence, all the way around.")
        c = d.calc(edge, "/", g)
        d.say(("Going all the way around, {p.he} needs {c} posts.", "That takes {c} posts."), p=p, c=c.work)
        d.ask(c, f"How many posts does {p.he} need?", f"{p.He} needs # posts.", "the number of posts")


def area(d: Draft) -> None:
    p = person(d)
    unit = d.pick(("feet", "meters", "inches", "yards"))
    shape = d.pick(("rectangle", "triangle", "l-shape", "square-from-perimeter", "paint"))
    thing = d.pick(_SHAPE_THINGS)
    verb = d.pick(("makes", "builds", "designs", "measures", "buys", "paints", "cleans", "covers"))
    if shape == "rectangle":
        a = d.given(d.rng.randint(3, 40), f"the length of the {thing}")
        b = d.given(d.rng.randint(2, 30), f"the width of the {thing}")
        d.tell(
            d.pick(
                (
                    f"A rectangular {thing} is {a} {unit} long and {b} {unit} wide.",
                    f"{p.name} {verb} a {thing} that measures {a} {unit} by {b} {unit}.",
                    f"{p.s} rectangular {thing} is {a} {unit} long and {b} {unit} wide.",
                    f"{p.name} {verb} a rectangular {thing}, {a} {unit} by {b} {unit}.",
                )
            )
        )
        c = d.calc(a, "*", b)
        d.say(
            ("The area is length times width: {c} square {u}.", "Its area is {c} square {u}."),
            u=unit,
            c=c.work,
        )
    elif shape == "triangle":
        base = d.given(2 * d.rng.randint(2, 20), f"the base of the {thing}")
        h = d.given(d.rng.randint(2, 30), f"the height of the {thing}")
        d.tell(
            d.pick(
                (
                    f"A triangular {thing} has a base of {base} {unit} and a height of {h} {unit}.",
                    f"{p.name} {verb} a triangular {thing} with a base of {base} {unit} and a height of {h} "
                    f"{unit}.",
                    f"{p.s} {thing} is a triangle, {base} {unit} across the base and {h} {unit} tall.",
                )
            )
        )
        c = d.calc(base, "*", h, "/", 2)
        d.say(
            (
                "The area of a triangle is half of base times height: {c} square {u}.",
                "Its area is {c} square {u}.",
            ),
            u=unit,
            c=c.work,
        )
    elif shape == "l-shape":
        a = d.given(d.rng.randint(4, 20), "the length of the first part")
        b = d.given(d.rng.randint(2, 15), "the width of the first part")
        e = d.given(d.rng.randint(2, 15), "the length of the second part")
        f = d.given(d.rng.randint(2, 12), "the width of the second part")
        d.tell(
            d.pick(
                (
                    f"An L-shaped {thing} is made of two rectangles, one {a} by {b} {unit} and one {e} by "
                    f"{f} {unit}.",
                    f"{p.name} {verb} an L-shaped {thing}: a {a} by {b} {unit} rectangle joined to a {e} by "
                    f"{f} {unit} rectangle.",
                    f"{p.s} {thing} has two rectangular parts, {a} by {b} {unit} and {e} by {f} {unit}.",
                )
            )
        )
        c1 = d.calc(a, "*", b)
        d.say(
            ("The first rectangle is {c} square {u}.", "One part has an area of {c} square {u}."),
            u=unit,
            c=c1.work,
        )
        c2 = d.calc(e, "*", f)
        d.say(("The second is {c} square {u}.", "The other part is {c} square {u}."), u=unit, c=c2.work)
        c = d.calc(c1, "+", c2)
        d.say(
            ("The whole {t} is {c} square {u}.", "Together that is {c} square {u}."),
            t=thing,
            u=unit,
            c=c.work,
        )
    elif shape == "square-from-perimeter":
        side = d.rng.randint(3, 30)
        per = d.given(4 * side, f"the perimeter of the {thing}")
        d.tell(
            d.pick(
                (
                    f"A square {thing} has a perimeter of {per} {unit}.",
                    f"{p.name} {verb} a square {thing} whose perimeter is {per} {unit}.",
                    f"The edge of {p.s} square {thing} is {per} {unit} all the way around.",
                )
            )
        )
        s = d.calc(per, "/", 4)
        d.say(("Each side is {c} {u}.", "A square has 4 equal sides, so each is {c} {u}."), u=unit, c=s.work)
        c = d.calc(s, "*", s)
        d.say(("The area is {c} square {u}.", "Side times side is {c} square {u}."), u=unit, c=c.work)
    else:
        room = d.pick(("bedroom", "kitchen", "shed", "garage", "classroom", "studio", "attic", "bathroom"))
        walls = d.given(d.rng.randint(2, 4), "the number of walls")
        w = d.given(d.rng.randint(8, 20), "the width of each wall")
        h = d.given(d.pick((8, 9, 10, 12)), "the height of each wall")
        d.tell(
            d.pick(
                (
                    f"{p.name} paints {walls} walls of {p.his} {room}.",
                    f"{p.name} wallpapers {walls} walls in the {room}.",
                    f"{p.name} needs to repaint {walls} walls of a {room}.",
                )
            ),
            d.pick(
                (
                    f"Each wall is {w} feet wide and {h} feet high.",
                    f"Every wall measures {w} feet by {h} feet.",
                )
            ),
        )
        one = d.calc(w, "*", h)
        d.say(("One wall is {c} square feet.", "Each wall has an area of {c} square feet."), c=one.work)
        c = d.calc(one, "*", walls)
        d.say(("The walls are {c} square feet in all.", "{n} walls make {c} square feet."), n=walls, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many square feet does {p.he} cover?",
                        f"{p.He} covers # square feet.",
                        "the area covered, in square feet",
                    ),
                    (
                        "What is the total wall area in square feet?",
                        "The total wall area is # square feet.",
                        "the total wall area",
                    ),
                )
            ),
        )
        return
    if d.chance(0.4):
        cost = d.money(d.pick((2, 3, 4, 5, Fraction(1, 2), Fraction(3, 2))), "the price per square unit")
        d.tell(
            d.pick(
                (
                    f"Covering it costs {cost} per square {_ONE[unit]}.",
                    f"The material {p.he} needs is {cost} a square {_ONE[unit]}.",
                )
            )
        )
        c = d.calc(c, "*", cost)
        d.say(("Covering it costs {c}.", "The cost is {c}."), c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        "How much does it cost to cover it?",
                        "It costs # to cover it.",
                        "the cost of covering it",
                    ),
                    (
                        f"How much does {p.he} spend on material?",
                        f"{p.He} spends #.",
                        f"the money {p.name} spends on material",
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
                    f"What is the area of the {thing} in square {unit}?",
                    f"The area of the {thing} is # square {unit}.",
                    f"the area of the {thing}",
                ),
                (
                    f"How many square {unit} does the {thing} cover?",
                    f"It covers # square {unit}.",
                    f"the number of square {unit} the {thing} covers",
                ),
            )
        ),
    )


def volume(d: Draft) -> None:
    p = person(d)
    thing = d.pick(
        (
            "fish tank",
            "sandbox",
            "planter box",
            "storage bin",
            "pool",
            "water trough",
            "toy chest",
            "compost bin",
            "ice chest",
            "raised garden bed",
            "bathtub",
            "shipping crate",
        )
    )
    unit = d.pick(("feet", "inches", "centimeters", "meters"))
    a = d.given(d.rng.randint(2, 12), f"the length of the {thing}")
    b = d.given(d.rng.randint(2, 10), f"the width of the {thing}")
    c_ = d.given(d.rng.randint(1, 8), f"the height of the {thing}")
    d.tell(
        d.pick(
            (
                f"A {thing} is {a} {unit} long, {b} {unit} wide and {c_} {unit} deep.",
                f"{p.s} {thing} measures {a} by {b} by {c_} {unit}.",
                f"{p.name} builds a {thing} that is {a} {unit} long, {b} {unit} wide and {c_} {unit} tall.",
                f"{p.name} buys a box-shaped {thing} of {a} by {b} by {c_} {unit}.",
            )
        )
    )
    base = d.calc(a, "*", b)
    d.say(("The base is {c} square {u}.", "Length times width is {c} square {u}."), u=unit, c=base.work)
    v = d.calc(base, "*", c_)
    d.say(("The volume is {c} cubic {u}.", "It holds {c} cubic {u}."), u=unit, c=v.work)
    if d.chance(0.5):
        d.ask(
            v,
            *d.pick(
                (
                    (
                        f"What is the volume of the {thing} in cubic {unit}?",
                        f"The volume is # cubic {unit}.",
                        f"the volume of the {thing}",
                    ),
                    (
                        f"How many cubic {unit} does it hold?",
                        f"It holds # cubic {unit}.",
                        f"the number of cubic {unit} it holds",
                    ),
                )
            ),
        )
        return
    rates = [r for r in range(2, 30) if v.value % r == 0] or [1]
    r = d.given(d.pick(rates), f"the cubic {unit} filled per minute")
    d.tell(
        d.pick(
            (
                f"{p.name} fills it at {r} cubic {unit} per minute.",
                f"It is filled at a rate of {r} cubic {unit} each minute.",
            )
        )
    )
    t = d.calc(v, "/", r)
    d.say(("Filling it takes {c} minutes.", "At {r} a minute, that takes {c} minutes."), r=r, c=t.work)
    d.ask(
        t,
        *d.pick(
            (
                (
                    "How many minutes does it take to fill it?",
                    "It takes # minutes to fill it.",
                    "the number of minutes it takes to fill it",
                ),
                (
                    "How long does filling it take, in minutes?",
                    "Filling it takes # minutes.",
                    "the filling time in minutes",
                ),
            )
        ),
    )


_ROOMS = (
    "living room",
    "kitchen",
    "bedroom",
    "hallway",
    "office",
    "dining room",
    "playroom",
    "guest room",
    "den",
)
_FLOORS = (
    ("carpet", "costs"),
    ("tiles", "cost"),
    ("wood flooring", "costs"),
    ("vinyl", "costs"),
    ("cork", "costs"),
)


def flooring(d: Draft) -> None:
    p = person(d)
    cover, verb = d.pick(_FLOORS)
    rooms = d.rng.sample(_ROOMS, d.pick((1, 2, 2, 3)))
    shapes = []
    for room in rooms:
        a = d.given(d.rng.randint(6, 20), f"the length of the {room}")
        b = d.given(d.rng.randint(5, 18), f"the width of the {room}")
        shapes.append((room, a, b))
    listed = join([f"the {room}, which is {a} by {b} feet" for room, a, b in shapes])
    d.tell(
        d.pick(
            (
                f"{p.name} wants to put {cover} in {listed}.",
                f"{p.name} is covering the floors with {cover}: {listed}.",
            )
        )
    )
    areas = []
    for room, a, b in shapes:
        c = d.calc(a, "*", b)
        d.say(
            ("The {r} is {c} square feet.", "The {r} floor has an area of {c} square feet."), r=room, c=c.work
        )
        areas.append(c)
    total = d.add_up(areas, ("The total area is {c} square feet.", "That is {c} square feet to cover."))
    rate = d.money(d.rng.randint(2, 9), "the price per square foot")
    d.tell(f"The {cover} {verb} {rate} per square foot.")
    c = d.calc(total, "*", rate)
    d.say(("The {x} {v} {c}.", "Materials cost {c}."), x=cover, v=verb, c=c.work)
    if d.chance(0.5):
        fee = d.money(d.rng.randint(2, 30) * 10, "the installation fee")
        d.tell(f"Installing it costs a fixed fee of {fee} more.")
        c = d.calc(c, "+", fee)
        d.say(("With the fee, {p.he} pays {c}.", "Adding the fee gives {c}."), p=p, c=c.work)
    d.ask(c, f"How much does {p.he} pay?", f"{p.He} pays #.", f"the amount {p.name} pays")


def fuel(d: Draft) -> None:
    p = person(d)
    vehicle = d.pick(("car", "van", "truck", "pickup", "camper", "hatchback", "minivan", "station wagon"))
    purpose = d.pick(
        (
            "to visit family",
            "to the beach",
            "for work",
            "to a concert",
            "to see a friend",
            "to a hiking trail",
            "to the lake",
            "to a soccer tournament",
            "to the national park",
        )
    )
    mpg = d.pick((20, 24, 25, 30, 32, 35, 40))
    distance = d.given(mpg * d.rng.randint(2, 15), "the length of the trip in miles")
    m = d.given(mpg, "the miles per gallon")
    gas = d.money(Fraction(d.rng.randint(10, 20), 4), "the price of a gallon of gas")
    d.tell(
        d.pick(
            (
                f"{p.name} drives {distance} miles {purpose}.",
                f"{p.s} trip {purpose} is {distance} miles long.",
                f"{p.name} plans a {distance}-mile drive {purpose}.",
            )
        ),
        d.pick(
            (
                f"{p.His} {vehicle} goes {m} miles per gallon.",
                f"The {vehicle} gets {m} miles to the gallon.",
                f"{p.His} {vehicle} uses one gallon of gas every {m} miles.",
            )
        ),
        d.pick(
            (f"Gas costs {gas} a gallon.", f"A gallon of gas is {gas}.", f"Gas sells for {gas} per gallon.")
        ),
    )
    g = d.calc(distance, "/", m)
    d.say(
        ("The trip takes {c} gallons.", "{p.He} uses {c} gallons of gas.", "That needs {c} gallons."),
        p=p,
        c=g.work,
    )
    c = d.calc(g, "*", gas)
    d.say(("The gas costs {c}.", "{p.He} spends {c} on gas."), p=p, c=c.work)
    if d.chance(0.3):
        c = d.calc(c, "*", 2)
        d.say(("There and back, that is {c}.", "The round trip costs {c}."), c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        "How much does gas cost for the round trip?",
                        "Gas for the round trip costs #.",
                        "the cost of gas for the round trip",
                    ),
                    (
                        f"If {p.he} drives back the same way, how much does {p.he} spend on gas in all?",
                        f"{p.He} spends # on gas in all.",
                        "the total cost of gas there and back",
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
                    f"How much does {p.he} spend on gas?",
                    f"{p.He} spends # on gas.",
                    f"the money {p.name} spends on gas",
                ),
                ("What does the gas for the trip cost?", "The gas costs #.", "the cost of the gas"),
            )
        ),
    )


def map_scale(d: Draft) -> None:
    p = person(d)
    unit, units, real = d.pick((("centimeter", "centimeters", "kilometers"), ("inch", "inches", "miles")))
    k = d.given(d.pick((2, 5, 10, 15, 20, 25, 50)), f"the {real} one {unit} stands for")
    n = d.given(Fraction(d.rng.randint(2, 30), d.pick((1, 2))), f"the distance on the map in {units}")
    places = d.pick(
        (
            "two towns",
            "two lakes",
            "two campsites",
            "two cities",
            "two mountain huts",
            "two lighthouses",
            "the school and the stadium",
            "two train stations",
        )
    )
    d.tell(
        d.pick(
            (
                f"On a map, 1 {unit} stands for {k} {real}.",
                f"The scale of {p.s} map is 1 {unit} to {k} {real}.",
                f"{p.s} hiking map uses a scale where 1 {unit} is {k} {real}.",
                f"Every {unit} on {p.s} road map equals {k} {real}.",
            )
        ),
        d.pick(
            (
                f"{places.capitalize()} are {n} {units} apart on the map.",
                f"{p.name} measures {n} {units} between {places}.",
                f"On the map, {places} are {n} {units} from each other.",
            )
        ),
    )
    c = d.calc(n, "*", k)
    d.say(
        ("The real distance is {c} {r}.", "That stands for {c} {r}.", "In real life that is {c} {r}."),
        r=real,
        c=c.work,
    )
    if d.chance(0.4):
        speed = d.pick([s for s in (5, 10, 20, 25, 40, 50, 60) if (c.value / s * 4).denominator == 1] or [1])
        v = d.given(speed, "the speed")
        d.tell(
            d.pick(
                (
                    f"{p.name} travels between them at {v} {real} per hour.",
                    f"{p.He} goes from one to the other at {v} {real} per hour.",
                )
            )
        )
        c = d.calc(c, "/", v)
        d.say(("The trip takes {c} hours.", "That is {c} hours of travel."), c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        "How many hours does the trip take?",
                        "The trip takes # hours.",
                        "the number of hours the trip takes",
                    ),
                    (
                        "How long is the trip in hours?",
                        "The trip is # hours long.",
                        "the travel time in hours",
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
                    f"How many {real} apart are {places}?",
                    f"They are # {real} apart.",
                    f"the real distance between {places}",
                ),
                (
                    f"What is the real distance in {real}?",
                    f"The real distance is # {real}.",
                    "the real distance",
                ),
            )
        ),
    )


_SHAPE_THINGS = (
    "poster",
    "garden bed",
    "patio",
    "quilt",
    "rug",
    "banner",
    "mural",
    "sandbox",
    "tablecloth",
    "lawn",
    "deck",
    "bulletin board",
    "picture frame",
    "parking space",
    "flower bed",
    "stage",
)


FAMILIES = {
    "unit_conversion": Family(unit_conversion, opening=True),
    "perimeter": Family(perimeter),
    "area": Family(area, opening=True, observer=True),
    "volume": Family(volume, opening=True, observer=True),
    "flooring": Family(flooring, opening=True),
    "fuel": Family(fuel, opening=True),
    "map_scale": Family(map_scale),
}
