"""Rates, time and work: working together, meeting and catching up, machines, schedules, elapsed time."""

from __future__ import annotations

from fractions import Fraction

from coe.data.metamath.engine import Draft, Family
from coe.data.metamath.words import SO, people, person

_JOBS = (
    "paint the fence",
    "mow the lawn",
    "clean the garage",
    "build the shed",
    "weed the garden",
    "wash all the windows",
    "sort the library books",
    "rake the leaves",
    "pack the boxes",
    "fold the laundry",
    "shovel the driveway",
    "stack the firewood",
    "grade the essays",
    "assemble the bookshelves",
    "clean the pool",
    "plant the bulbs",
)


_PAIRS = [
    (a, b)
    for a in range(2, 25)
    for b in range(a, 31)
    if Fraction(a * b, a + b).limit_denominator(100) and (Fraction(a * b, a + b) * 100).denominator == 1
]
_TANKS = (
    ("pool", "liters"),
    ("tank", "gallons"),
    ("pond", "liters"),
    ("water tower", "gallons"),
    ("aquarium", "liters"),
    ("rain barrel", "gallons"),
)


def work_together(d: Draft) -> None:
    if d.chance(0.5):
        a_, b_ = people(d, 2)
        job = d.pick(_JOBS)
        ha, hb = d.pick(_PAIRS)
        if d.chance(0.5):
            ha, hb = hb, ha
        a = d.given(ha, f"the hours {a_.name} needs alone")
        b = d.given(hb, f"the hours {b_.name} needs alone")
        d.tell(
            d.pick(
                (
                    f"{a_.name} can {job} in {a} hours.",
                    f"Working alone, {a_.name} takes {a} hours to {job}.",
                    f"It takes {a_.name} {a} hours to {job} alone.",
                    f"By {a_.him}self, {a_.name} needs {a} hours to {job}.",
                )
            )
            .replace("By himself", "By himself")
            .replace("By herself", "By herself"),
            d.pick(
                (
                    f"{b_.name} can do it in {b} hours.",
                    f"{b_.name} needs {b} hours to do the same job alone.",
                    f"{b_.name} takes {b} hours for the same job.",
                    f"Alone, {b_.name} would need {b} hours.",
                )
            ),
        )
        ra = d.calc(1, "/", a, fraction=True)
        d.say(
            ("{w.name} does {c} of the job each hour.", "In one hour {w.name} finishes {c} of it."),
            w=a_,
            c=ra.work,
        )
        rb = d.calc(1, "/", b, fraction=True)
        d.say(
            ("{w.name} does {c} of the job each hour.", "{w.name}'s rate is {c} of the job per hour."),
            w=b_,
            c=rb.work,
        )
        both = d.calc(ra, "+", rb, fraction=True)
        d.say(
            ("Together they do {c} of the job per hour.", "Their combined rate is {c} of the job an hour."),
            c=both.work,
        )
        t = d.calc(1, "/", both)
        d.say(("{so} the job takes {c} hours.", "They need {c} hours together."), so=d.word(SO), c=t.work)
        d.ask(
            t,
            *d.pick(
                (
                    (
                        f"How many hours does it take them to {job} together?",
                        f"Together they need # hours to {job}.",
                        f"the number of hours they need to {job} together",
                    ),
                    (
                        f"If they work together, how long does it take to {job}?",
                        "Working together they need # hours.",
                        "the time they need together, in hours",
                    ),
                    (
                        f"Working side by side, in how many hours do they {job}?",
                        f"They {job} in # hours.",
                        f"the hours it takes the two of them to {job}",
                    ),
                )
            ),
        )
        return
    p = person(d)
    tank, unit = d.pick(_TANKS)
    ra = d.rng.randint(3, 30)
    drain = d.chance(0.4)
    rb = d.rng.randint(1, ra - 1) if drain else d.rng.randint(2, 30)
    net = ra - rb if drain else ra + rb
    size = d.given(net * d.rng.randint(5, 40), f"the capacity of the {tank} in {unit}")
    a = d.given(ra, f"the {unit} the first hose adds per minute")
    b = d.given(rb, f"the {unit} {'the leak drains' if drain else 'the second hose adds'} per minute")
    hose = d.pick(("hose", "pipe", "pump", "faucet"))
    d.tell(
        d.pick(
            (
                f"{p.s} {tank} holds {size} {unit}.",
                f"An empty {tank} holds {size} {unit} when full.",
                f"{p.name} wants to fill an empty {tank} that holds {size} {unit}.",
                f"The {tank} at {p.s} house can hold {size} {unit}.",
            )
        ),
        d.pick(
            (f"A {hose} fills it at {a} {unit} per minute.", f"A {hose} pours in {a} {unit} every minute.")
        ),
        d.pick(
            (
                f"At the same time, a leak lets out {b} {unit} per minute.",
                f"But a crack drains {b} {unit} each minute.",
            )
        )
        if drain
        else d.pick(
            (
                f"A second {hose} adds {b} {unit} per minute at the same time.",
                f"Another {hose} adds {b} {unit} a minute.",
            )
        ),
    )
    r = d.calc(a, "-" if drain else "+", b)
    d.say(("The {t} gains {c} {u} each minute.", "Each minute, {c} {u} go in."), t=tank, u=unit, c=r.work)
    t = d.calc(size, "/", r)
    d.say(("Filling it takes {c} minutes.", "{so} it is full after {c} minutes."), so=d.word(SO), c=t.work)
    d.ask(
        t,
        *d.pick(
            (
                (
                    f"How many minutes does it take to fill the {tank}?",
                    f"It takes # minutes to fill the {tank}.",
                    f"the number of minutes it takes to fill the {tank}",
                ),
                (
                    f"How long, in minutes, until the {tank} is full?",
                    f"The {tank} is full after # minutes.",
                    f"the minutes until the {tank} is full",
                ),
            )
        ),
    )


def meeting(d: Draft) -> None:
    a_, b_ = people(d, 2)
    unit, speeds, how = d.pick(
        (
            ("miles", range(20, 70, 5), ("drives", "drive")),
            ("kilometers", range(30, 110, 10), ("drives", "drive")),
            ("miles", range(3, 15), ("cycles", "cycle")),
            ("kilometers", range(4, 16), ("runs", "run")),
            ("miles", range(2, 6), ("walks", "walk")),
        )
    )
    va, vb = d.pick(speeds), d.pick(speeds)
    if d.chance(0.6):
        hours = Fraction(d.rng.randint(2, 16), 2)
        gap = d.given((va + vb) * hours, f"the distance between {a_.name} and {b_.name} at the start")
        a = d.given(va, f"{a_.s} speed")
        b = d.given(vb, f"{b_.s} speed")
        place_a, place_b = d.pick(
            (
                ("home", "the lake"),
                ("the school", "the stadium"),
                ("the farm", "the town"),
                ("one town", "the next town"),
                ("the north gate", "the south gate"),
            )
        )
        d.tell(
            d.pick(
                (
                    f"{a_.name} and {b_.name} are {gap} {unit} apart.",
                    f"{place_a.capitalize()} and {place_b} are {gap} {unit} apart.",
                    f"The road from {place_a} to {place_b} is {gap} {unit} long.",
                )
            ),
            d.pick(
                (
                    f"{a_.name} {how[0]} toward {b_.name} at {a} {unit} per hour while {b_.name} {how[0]} "
                    f"toward {a_.name} at {b} {unit} per hour.",
                    f"At the same time, {a_.name} sets out from {place_a} at {a} {unit} per hour and "
                    f"{b_.name} from {place_b} at {b} {unit} per hour, heading toward each other.",
                    f"They start at the same moment and {how[1]} toward each other, {a_.name} at {a} and "
                    f"{b_.name} at {b} {unit} per hour.",
                )
            ),
        )
        closing = d.calc(a, "+", b)
        d.say(
            ("Together they close {c} {u} every hour.", "The gap shrinks by {c} {u} an hour."),
            u=unit,
            c=closing.work,
        )
        t = d.calc(gap, "/", closing)
        d.say(("They meet after {c} hours.", "It takes {c} hours to meet."), c=t.work)
        d.ask(
            t,
            *d.pick(
                (
                    (
                        "After how many hours do they meet?",
                        "They meet after # hours.",
                        "the number of hours until they meet",
                    ),
                    (
                        "How long, in hours, until they meet?",
                        "They meet # hours later.",
                        "the hours until they meet",
                    ),
                    (
                        "When do they meet, in hours from the start?",
                        "They meet # hours after the start.",
                        "the time until they meet, in hours",
                    ),
                )
            ),
        )
        return
    slow, hours = min(va, vb), d.rng.randint(2, 4)
    # The gain per hour divides four times the head start, so that catching up takes whole quarter hours.
    gains = [g for g in range(2, slow + 1) if (4 * slow * hours) % g == 0] or [slow]
    fast = slow + d.pick(gains)
    head = d.given(hours, f"the hours {a_.name} travels before {b_.name} starts")
    s = d.given(slow, f"{a_.s} speed")
    f = d.given(fast, f"{b_.s} speed")
    d.tell(
        d.pick(
            (
                f"{a_.name} leaves town at {s} {unit} per hour.",
                f"{a_.name} {how[0]} out of the city at {s} {unit} per hour.",
                f"{a_.name} sets off at a steady {s} {unit} per hour.",
            )
        ),
        d.pick(
            (
                f"{head} hours later, {b_.name} leaves from the same place on the same road at {f} {unit} "
                "per hour.",
                f"{b_.name} follows the same route {head} hours later, going {f} {unit} per hour.",
            )
        ),
    )
    lead = d.calc(s, "*", head)
    d.say(
        ("When {b.name} starts, {a.name} is {c} {u} ahead.", "{a.name}'s head start is {c} {u}."),
        a=a_,
        b=b_,
        u=unit,
        c=lead.work,
    )
    gain = d.calc(f, "-", s)
    d.say(
        ("{b.name} gains {c} {u} every hour.", "The gap closes by {c} {u} an hour."),
        b=b_,
        u=unit,
        c=gain.work,
    )
    t = d.calc(lead, "/", gain)
    d.say(("{b.name} catches up after {c} hours.", "It takes {c} hours to catch up."), b=b_, c=t.work)
    d.ask(
        t,
        *d.pick(
            (
                (
                    f"How many hours after {b_.name} leaves does {b_.he} catch up?",
                    f"{b_.He} catches up after # hours.",
                    f"the number of hours {b_.name} needs to catch up",
                ),
                (
                    f"How long does it take {b_.name} to catch up with {a_.name}?",
                    f"It takes {b_.name} # hours to catch up.",
                    f"the hours it takes {b_.name} to catch up",
                ),
            )
        ),
    )


_MACHINES = (
    ("printers", "pages"),
    ("machines", "bottles"),
    ("ovens", "loaves"),
    ("robots", "parts"),
    ("looms", "scarves"),
    ("presses", "posters"),
    ("bakers", "pies"),
    ("workers", "chairs"),
    ("painters", "fence panels"),
    ("pumps", "barrels of water"),
    ("sewing machines", "bags"),
    ("packers", "boxes"),
    ("3D printers", "toy figures"),
)


def machines(d: Draft) -> None:
    kind, made = d.pick(_MACHINES)
    m = d.given(d.rng.randint(2, 8), f"the number of {kind} at first")
    h = d.given(d.rng.randint(2, 6), "the hours they work at first")
    rate = d.rng.randint(2, 25)
    n = d.given(rate * m.value * h.value, f"the {made} made at first")
    m2 = d.given(d.rng.randint(2, 12), f"the number of {kind} later")
    h2 = d.given(d.rng.randint(2, 10), "the hours they work later")
    d.tell(
        d.pick(
            (
                f"{m} {kind} make {n} {made} in {h} hours.",
                f"Working together, {m} {kind} produce {n} {made} in {h} hours.",
                f"In {h} hours, {m} {kind} turn out {n} {made}.",
                f"A shop's {m} {kind} can make {n} {made} in {h} hours.",
            )
        ),
        d.pick(
            (
                f"All the {kind} work at the same rate.",
                f"Each of the {kind} works equally fast.",
                f"The {kind} all work at the same speed.",
            )
        ),
    )
    per = d.calc(n, "/", m)
    d.say(
        ("One of them makes {c} {x} in {h} hours.", "Each makes {c} {x} in that time."),
        h=h,
        x=made,
        c=per.work,
    )
    one = d.calc(per, "/", h)
    d.say(("So one makes {c} {x} an hour.", "That is {c} {x} per hour for each."), x=made, c=one.work)
    c = d.calc(one, "*", m2)
    d.say(
        ("{m} of them make {c} {x} an hour.", "Together {m} make {c} {x} per hour."), m=m2, x=made, c=c.work
    )
    c = d.calc(c, "*", h2)
    d.say(("In {h} hours they make {c} {x}.", "Over {h} hours that is {c} {x}."), h=h2, x=made, c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"How many {made} do {m2} {kind} make in {h2} hours?",
                    f"{m2} {kind} make # {made} in {h2} hours.",
                    f"the number of {made} {m2} {kind} make in {h2} hours",
                ),
                (
                    f"If {m2} {kind} run for {h2} hours, how many {made} do they make?",
                    f"{m2} {kind} make # {made} in {h2} hours.",
                    f"the output of {m2} {kind} in {h2} hours",
                ),
            )
        ),
    )


# fmt: off
_DAYS = (
    ("school day", "periods", "class"), ("conference", "talks", "talk"), ("workshop", "sessions", "session"),
    ("swim meet", "races", "race"), ("film festival", "films", "film"), ("training day", "drills", "drill"),
    ("chess tournament", "rounds", "round"), ("music recital", "performances", "performance"),
    ("science camp day", "activities", "activity"), ("cooking class", "lessons", "lesson"),
)
# fmt: on


def schedule(d: Draft) -> None:
    event, parts, one = d.pick(_DAYS)
    n = d.given(d.rng.randint(3, 8), f"the number of {parts}")
    length = d.given(d.rng.randint(4, 18) * 5, f"the minutes in each {one}")
    gap = d.given(d.pick((5, 10, 15, 20)), "the minutes of each break")
    start_h, start_m = d.rng.randint(7, 10), d.pick((0, 15, 30, 45))
    d.tell(
        d.pick(
            (
                f"A {event} starts at {start_h}:{start_m:02d} in the morning.",
                f"The {event} begins at {start_h}:{start_m:02d}.",
                f"{person(d).name} goes to a {event} that opens at {start_h}:{start_m:02d}.",
            )
        ),
        d.pick(
            (
                f"It has {n} {parts} of {length} minutes each, with a {gap}-minute break between one and the "
                "next.",
                f"There are {n} {parts}, each {length} minutes long, and {gap} minutes of break between "
                "them.",
                f"The program is {n} {parts} of {length} minutes, separated by breaks of {gap} minutes.",
            )
        ),
    )
    busy = d.calc(n, "*", length)
    d.say(
        ("The {pa} take {c} minutes.", "{n} {pa} of {l} minutes is {c} minutes."),
        pa=parts,
        n=n,
        l=length,
        c=busy.work,
    )
    breaks = d.calc(n, "-", 1)
    d.say(("There are {c} breaks.", "Between {n} {pa} there are {c} breaks."), n=n, pa=parts, c=breaks.work)
    rest = d.calc(breaks, "*", gap)
    d.say(("The breaks take {c} minutes.", "Breaks add {c} minutes."), c=rest.work)
    total = d.calc(busy, "+", rest)
    d.say(("The whole {e} lasts {c} minutes.", "From start to end is {c} minutes."), e=event, c=total.work)
    d.ask(
        total,
        *d.pick(
            (
                (
                    f"How many minutes long is the {event} from start to end?",
                    f"The {event} lasts # minutes.",
                    f"the length of the {event} in minutes",
                ),
                (
                    f"How long does the {event} last, in minutes?",
                    "It lasts # minutes.",
                    f"the number of minutes the {event} lasts",
                ),
            )
        ),
    )


def elapsed(d: Draft) -> None:
    p = person(d)
    trip = d.pick(
        (
            "bus ride",
            "train trip",
            "hike",
            "flight",
            "shift at work",
            "drive to the coast",
            "shopping trip",
            "boat tour",
            "museum visit",
            "road trip",
            "bike ride",
            "study session",
            "soccer tournament",
            "baking marathon",
            "fishing trip",
            "painting class",
            "zoo visit",
            "choir rehearsal",
            "volunteer shift",
            "pottery workshop",
            "science fair",
            "camping trip",
            "kayak tour",
            "family picnic",
        )
    )
    h1, m1 = d.rng.randint(6, 11), d.rng.randint(0, 11) * 5
    h2, m2 = h1 + d.rng.randint(1, 8), d.rng.randint(0, 11) * 5
    start, end = f"{h1}:{m1:02d}", f"{h2 % 12 or 12}:{m2:02d}"
    later = " in the evening" if h2 >= 18 else (" in the afternoon" if h2 >= 12 else "")
    d.tell(
        d.pick(
            (
                f"{p.s} {trip} starts at {start} and ends at {end} the same day.",
                f"{p.name} begins a {trip} at {start} in the morning and finishes at {end}{later}.",
                f"{p.name} leaves for a {trip} at {start} a.m. and is done at "
                f"{end}{' p.m.' if h2 >= 12 else ' a.m.'}",
                f"The {trip} {p.name} signed up for runs from {start} in the morning until {end}{later}.",
                f"{p.name} starts {p.his} {trip} at {start} and wraps it up at {end}{later}.",
                f"{p.name} spends part of the day on a {trip}, from {start} in the morning to {end}{later}.",
                f"A {trip} that {p.name} joins begins at {start} and ends at {end}{later}.",
                f"{p.s} {trip} leaves at {start} and gets back at {end}{later}.",
            )
        ),
    )
    s = d.calc(h1, "*", 60, "+", m1)
    d.say(("{t} is {c} minutes after midnight.", "The start is {c} minutes into the day."), t=start, c=s.work)
    e = d.calc(h2, "*", 60, "+", m2)
    d.say(("{t} is {c} minutes after midnight.", "The end is {c} minutes into the day."), t=end, c=e.work)
    c = d.calc(e, "-", s)
    d.say(("The {t} lasts {c} minutes.", "{so}, it takes {c} minutes."), t=trip, so=d.word(SO), c=c.work)
    if c.value % 15 == 0 and d.chance(0.5):
        c = d.calc(c, "/", 60)
        d.say(("That is {c} hours.", "In hours that is {c}."), c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many hours does the {trip} take?",
                        f"The {trip} takes # hours.",
                        f"the number of hours the {trip} takes",
                    ),
                    (
                        f"How long is the {trip} in hours?",
                        f"The {trip} is # hours long.",
                        f"the length of the {trip} in hours",
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
                    f"How many minutes does the {trip} take?",
                    f"The {trip} takes # minutes.",
                    f"the number of minutes the {trip} takes",
                ),
                (
                    f"How long is the {trip} in minutes?",
                    f"The {trip} is # minutes long.",
                    f"the length of the {trip} in minutes",
                ),
            )
        ),
    )


FAMILIES = {
    "work_together": Family(work_together, observer=True),
    "meeting": Family(meeting, opening=True, observer=True),
    "machines": Family(machines, opening=True, observer=True),
    "schedule": Family(schedule, observer=True),
    "elapsed": Family(elapsed),
}
