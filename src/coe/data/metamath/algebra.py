"""Algebra: linear equations, number puzzles, systems of two equations, quadratics, arithmetic and geometric
sequences, consecutive integers, evaluating expressions."""

from __future__ import annotations

from fractions import Fraction

from coe.data.metamath.engine import Draft, Family, Redraw
from coe.data.metamath.words import SO, number_word, people, person, presented

_SOLVE = (
    "Solve for x: {eq}.",
    "What value of x satisfies {eq}?",
    "If {eq}, what is x?",
    "Find x if {eq}.",
    "What is the value of x in the equation {eq}?",
    "Determine x such that {eq}.",
    "Solve the equation {eq}.",
    "For which x is {eq} true?",
    "What number x makes {eq} true?",
    "Given {eq}, find the value of x.",
)


def linear_equation(d: Draft) -> None:
    x = d.rng.randint(-9, 20) if d.chance(0.2) else d.rng.randint(1, 20)
    shape = d.pick(("ax+b", "ax-b", "a(x-b)", "x/a+b", "ax+b=cx+e"))
    a_val = d.rng.randint(3, 12) if shape == "ax+b=cx+e" else d.rng.randint(2, 12)
    a = d.given(a_val)  # a coefficient: x depends on it as 1 / a, never linearly
    if shape in ("ax+b", "ax-b"):
        b = d.given(d.rng.randint(1, 40), "the constant term")
        op = shape[2]
        c = d.given(a_val * x + (b.value if op == "+" else -b.value), "the right-hand side")
        eq = f"{a}x {op} {b} = {c}"
        moved = d.calc(c, "-" if op == "+" else "+", b)
        how = f"{'Subtracting' if op == '+' else 'Adding'} {b} {'from' if op == '+' else 'to'} both sides"
        d.say(("{how} gives {a}x = {c}.", "{how}: {a}x = {c}."), how=how, a=a, c=moved.work)
        sol = d.calc(moved, "/", a)
        d.say(("Dividing both sides by {a} gives x = {c}.", "So x = {c}."), a=a, c=sol.work)
    elif shape == "a(x-b)":
        b = d.given(d.rng.randint(1, 15), "the number subtracted inside the brackets")
        c = d.given(a_val * (x - b.value), "the right-hand side")
        eq = f"{a}(x - {b}) = {c}"
        inner = d.calc(c, "/", a)
        d.say(
            ("Dividing both sides by {a} gives x - {b} = {c}.", "First divide by {a}: x - {b} = {c}."),
            a=a,
            b=b,
            c=inner.work,
        )
        sol = d.calc(inner, "+", b)
        d.say(("Adding {b} gives x = {c}.", "Then x = {c}."), b=b, c=sol.work)
    elif shape == "x/a+b":
        x = a_val * d.rng.randint(1, 10)
        b = d.given(d.rng.randint(1, 30), "the number added")
        c = d.given(x // a_val + b.value, "the right-hand side")
        eq = f"x/{a} + {b} = {c}"
        moved = d.calc(c, "-", b)
        d.say(("Subtracting {b} gives x/{a} = {c}.", "First, x/{a} = {c}."), a=a, b=b, c=moved.work)
        sol = d.calc(moved, "*", a)
        d.say(("Multiplying by {a} gives x = {c}.", "So x = {c}."), a=a, c=sol.work)
    else:
        c_val = d.rng.randint(1, a_val - 2) if a_val > 2 else 1
        cq = d.given(c_val)
        b = d.given(d.rng.randint(1, 30), "the constant on the left")
        e = d.given((a_val - c_val) * x + b.value, "the constant on the right")
        eq = f"{a}x + {b} = {'' if c_val == 1 else cq}x + {e}"
        diff = d.calc(a, "-", cq)
        d.say(
            (
                "Subtracting {c}x from both sides gives {d}x + {b} = {e}.",
                "Collecting the x terms: {d}x + {b} = {e}.",
            ),
            c="" if c_val == 1 else cq,
            d=diff.value,
            b=b,
            e=e,
        )
        d.say("The coefficient of x is {c}.", c=diff.work)
        moved = d.calc(e, "-", b)
        d.say(("Subtracting {b} gives {d}x = {c}.", "Then {d}x = {c}."), b=b, d=diff.value, c=moved.work)
        sol = d.calc(moved, "/", diff)
        d.say(("Dividing by {d} gives x = {c}.", "So x = {c}."), d=diff.value, c=sol.work)
    if d.chance(0.85):
        sentence, p = presented(d, f"the equation {eq}")
        d.tell(sentence)
        question = d.pick(
            (
                "What is x?",
                "What value of x solves it?",
                f"What value of x should {p.he} find?",
                "Solve it for x.",
                f"Help {p.him} find x.",
                "What is the solution?",
            )
        )
    else:
        question = d.pick(_SOLVE).format(eq=eq)
    d.ask(sol, question, f"The solution of {eq} is x = #.", f"the value of x that satisfies {eq}")


# fmt: off
_PUZZLE_STEPS = (
    ("*", ("multiplies it by {k}", "times it by {k}", "multiplies the result by {k}"),
     "Undo the multiplication: {c}."),
    ("+", ("adds {k}", "adds {k} to it", "increases it by {k}"), "Undo adding {k}: {c}."),
    ("-", ("subtracts {k}", "takes away {k}", "subtracts {k} from it"), "Undo subtracting {k}: {c}."),
    ("/", ("divides it by {k}", "splits it into {k} equal parts and keeps one", "divides the result by {k}"),
     "Undo the division: {c}."),
)
# fmt: on


_UNDO = {"*": "/", "/": "*", "+": "-", "-": "+"}


def number_puzzle(d: Draft) -> None:
    p = person(d)
    start = d.rng.randint(2, 30)
    value = Fraction(start)
    ops = []
    for _ in range(d.rng.randint(2, 3)):
        op, words, undo = d.pick(_PUZZLE_STEPS)
        if op == "*":
            k = d.rng.randint(2, 6)
        elif op == "/":
            divisors = [k for k in range(2, 7) if value % k == 0]
            if not divisors:
                op, words, undo = _PUZZLE_STEPS[1]
                k = d.rng.randint(1, 20)
            else:
                k = d.pick(divisors)
        elif op == "-":
            k = d.rng.randint(1, max(1, int(value) - 1)) if value > 1 else 1
        else:
            k = d.rng.randint(1, 20)
        value = {"*": value * k, "/": value / k, "+": value + k, "-": value - k}[op]
        ops.append((op, d.pick(words), undo, k))
    verbs = {"*": "multiplies by", "/": "divides by", "+": "adds", "-": "subtracts"}
    qs = [
        d.given(k, f"the number {p.name} {verbs[op]} in step {i + 1}") for i, (op, _, _, k) in enumerate(ops)
    ]
    result = d.given(value, "the final result")
    parts = [words.format(k=q) for (_, words, _, _), q in zip(ops, qs, strict=True)]
    listed = ", ".join(parts[:-1]) + d.pick((" and then ", " and finally ", ", then ")) + parts[-1]
    d.tell(
        d.pick(
            (
                f"{p.name} thinks of a number, {listed}, and gets {result}.",
                f"{p.name} picks a number. {p.He} {listed} and ends up with {result}.",
                f"In a number game, {p.name} chooses a secret number, {listed}. The result is {result}.",
                f"{p.name}'s {d.pick(('teacher', 'friend', 'brother', 'aunt'))} thinks of a number, "
                f"{listed}, and says the answer is {result}.",
            )
        )
        .replace(". The result is", ", and the result is")
        .replace(f". {p.He} ", f", and {p.he} ")
    )
    current = result
    for (op, _, undo, _), q in reversed(list(zip(ops, qs, strict=True))):
        current = d.calc(current, _UNDO[op], q)
        d.say(undo, k=q, c=current.work)
    d.say(("{so}, the number is {n}.", "The starting number was {n}."), so=d.word(SO), n=current.n)
    d.ask(
        current,
        *d.pick(
            (
                ("What was the number at the start?", "The starting number was #.", "the starting number"),
                ("What number was chosen?", "The number chosen was #.", "the chosen number"),
                ("What was the secret number?", "The secret number was #.", "the secret number"),
            )
        ),
    )


def linear_system(d: Draft) -> None:
    kind = d.pick(("animals", "tickets", "coins", "sum-difference"))
    if kind == "sum-difference":
        x, y = d.rng.randint(5, 60), d.rng.randint(1, 40)
        if y > x:
            x, y = y, x
        if x == y:
            raise Redraw('equal numbers: the difference would be 0 ("0 fewer stamps")')
        s = d.given(x + y, "the sum of the two numbers")
        t = d.given(x - y, "the difference of the two numbers")
        things = d.pick(
            (None, ("books", "shelves"), ("points", "rounds"), ("stamps", "albums"), ("apples", "baskets"))
        )
        if things is None:
            d.tell(
                d.pick(
                    (
                        f"The sum of two numbers is {s} and their difference is {t}.",
                        f"Two numbers add up to {s}, and one is {t} more than the other.",
                        f"Two numbers have a sum of {s} and a difference of {t}.",
                        f"When two numbers are added the result is {s}; when the smaller is taken from the "
                        f"larger the result is {t}.",
                    )
                )
            )
            big_name, small_name = "the larger number", "the smaller number"
        else:
            a_, b_ = people(d, 2)
            item, _ = things
            d.tell(
                d.pick(
                    (
                        f"{a_.name} and {b_.name} have {s} {item} between them.",
                        f"Together, {a_.name} and {b_.name} own {s} {item}.",
                    )
                ),
                d.pick(
                    (
                        f"{a_.name} has {t} more {item} than {b_.name}.",
                        f"{b_.name} has {t} fewer {item} than {a_.name}.",
                    )
                ),
            )
            big_name, small_name = (
                f"the number of {item} {a_.name} has",
                f"the number of {item} {b_.name} has",
            )
        both = d.calc(s, "+", t)
        d.say(
            (
                "Adding the two facts, twice the larger amount is {c}.",
                "Larger + smaller + larger - smaller = {c}.",
            ),
            c=both.work,
        )
        big = d.calc(both, "/", 2)
        d.say(("The larger amount is {c}.", "So the larger one is {c}."), c=big.work)
        if d.chance(0.5):
            d.ask(big, f"What is {big_name}?", f"{big_name[:1].upper() + big_name[1:]} is #.", big_name)
            return
        small = d.calc(s, "-", big)
        d.say(("The smaller amount is {c}.", "Then the smaller is {c}."), c=small.work)
        d.ask(small, f"What is {small_name}?", f"{small_name[:1].upper() + small_name[1:]} is #.", small_name)
        return
    if kind == "animals":
        p = person(d)
        (a, la), (b, lb) = d.pick(_PAIRS_OF_KINDS)
        if la > lb:
            (a, la), (b, lb) = (b, lb), (a, la)
        na, nb = d.rng.randint(2, 40), d.rng.randint(2, 40)
        part = "wheels" if {a, b} & {"cars", "bicycles", "tricycles", "wagons", "motorcycles"} else "legs"
        heads_word = "vehicles" if part == "wheels" else "animals"
        place = (
            d.pick(("farm", "yard", "zoo", "parking lot", "barn", "park", "fair"))
            if part == "legs"
            else d.pick(("parking lot", "bike rack", "garage", "street", "toy box"))
        )
        heads = d.given(na + nb, f"the number of {heads_word}")
        legs = d.given(na * la + nb * lb, f"the number of {part}")
        d.tell(
            d.pick(
                (
                    f"{p.name} counts {a} and {b}: {heads} {heads_word} with {legs} {part} in all.",
                    f"In a {place} there are only {a} and {b}. {p.name} counts {heads} {heads_word} and "
                    f"{legs} {part}.",
                    f"There are {heads} {heads_word} in the {place}, all {a} or {b}, with {legs} {part} "
                    "altogether.",
                )
            )
            .replace(f". {p.name}", f", and {p.name}")
            .replace("only", "only")
        )
        base = d.calc(heads, "*", la)
        d.say(
            ("If all were {a}, there would be {c} {pt}.", "{h} {a} would have {c} {pt}."),
            a=a,
            h=heads,
            pt=part,
            c=base.work,
        )
        extra = d.calc(legs, "-", base)
        d.say(("That leaves {c} extra {pt}.", "There are {c} {pt} more than that."), pt=part, c=extra.work)
        each = d.calc(lb, "-", la)
        d.say(("Each of the {b} has {c} more {pt} than one of the {a}.",), a=a, b=b, pt=part, c=each.work)
        c = d.calc(extra, "/", each)
        d.say(("So there are {c} {b}.", "{so}, {c} {b}."), b=b, so=d.word(SO), c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (f"How many {b} are there?", f"There are # {b}.", f"the number of {b}"),
                    (
                        f"How many of them are {b}?",
                        f"# of them are {b}.",
                        f"the number of {b} in the {place}",
                    ),
                )
            ),
        )
        return
    if kind == "coins":
        p = person(d)
        (a, va), (b, vb) = d.pick(
            (
                (("nickels", 5), ("dimes", 10)),
                (("dimes", 10), ("quarters", 25)),
                (("nickels", 5), ("quarters", 25)),
                (("pennies", 1), ("dimes", 10)),
            )
        )
        na, nb = d.rng.randint(2, 30), d.rng.randint(2, 30)
        n = d.given(na + nb, "the number of coins")
        cents = d.given(na * va + nb * vb, "the value of the coins in cents")
        holder = d.pick(("piggy bank", "jar", "pocket", "wallet", "coin purse", "drawer"))
        d.tell(
            d.pick(
                (
                    f"{p.name} has {n} coins, all {a} and {b}, worth {cents} cents in all.",
                    f"{p.s} {holder} holds {n} coins, only {a} and {b}, worth {cents} cents.",
                    f"In {p.s} {holder} there are {n} {a} and {b} worth {cents} cents together.",
                )
            )
        )
        base = d.calc(n, "*", va)
        d.say(
            ("If all were {a}, they would be worth {c} cents.", "{n} {a} would make {c} cents."),
            a=a,
            n=n,
            c=base.work,
        )
        extra = d.calc(cents, "-", base)
        d.say(("The other {c} cents come from the {b}.", "That leaves {c} cents."), b=b, c=extra.work)
        each = d.calc(vb, "-", va)
        d.say(
            (
                "Each of the {b} is worth {c} cents more.",
                "Swapping one of the {a} for one of the {b} adds {c} cents.",
            ),
            a=a,
            b=b,
            c=each.work,
        )
        c = d.calc(extra, "/", each)
        d.say(("So {p.he} has {c} {b}.", "There are {c} {b}."), p=p, b=b, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many {b} does {p.he} have?",
                        f"{p.He} has # {b}.",
                        f"the number of {b} {p.name} has",
                    ),
                    (f"How many of the coins are {b}?", f"# of the coins are {b}.", f"the number of {b}"),
                )
            ),
        )
        return
    event = d.pick(
        (
            "concert",
            "museum",
            "school play",
            "zoo",
            "carnival",
            "aquarium",
            "circus",
            "planetarium",
            "puppet show",
            "water park",
        )
    )
    pc = d.rng.randint(2, 10)
    pa = pc + d.rng.randint(1, 12)
    na, nc = d.rng.randint(5, 80), d.rng.randint(5, 80)
    a = d.money(pa)
    c_ = d.money(pc)
    n = d.given(na + nc, "the number of tickets sold")
    money = d.money(na * pa + nc * pc, "the money taken in")
    d.tell(
        d.pick(
            (
                f"Adult tickets to the {event} cost {a} and child tickets cost {c_}.",
                f"At the {event}, an adult ticket is {a} and a child ticket is {c_}.",
                f"The {event} charges {a} per adult and {c_} per child.",
            )
        ),
        d.pick(
            (
                f"{n} tickets were sold for {money} in all.",
                f"They sold {n} tickets and took in {money}.",
                f"On Sunday, {n} people bought tickets, paying {money} in total.",
            )
        ),
    )
    base = d.calc(n, "*", c_)
    d.say(
        ("If every ticket were a child ticket, that would be {c}.", "{n} child tickets would bring {c}."),
        n=n,
        c=base.work,
    )
    extra = d.calc(money, "-", base)
    d.say(("The extra {c} comes from adult tickets.", "The other {c} is the adults' extra."), c=extra.work)
    each = d.calc(a, "-", c_)
    d.say(("Each adult ticket costs {c} more.", "An adult pays {c} more than a child."), c=each.work)
    c = d.calc(extra, "/", each)
    d.say(("So {c} adult tickets were sold.", "{so}, {c} adults came."), so=d.word(SO), c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (
                    "How many adult tickets were sold?",
                    "# adult tickets were sold.",
                    "the number of adult tickets sold",
                ),
                ("How many adults bought tickets?", "# adults bought tickets.", "the number of adults"),
            )
        ),
    )


def quadratic(d: Draft) -> None:
    r1, r2 = d.rng.randint(-9, 12), d.rng.randint(-9, 12)
    if r1 == 0 or r2 == 0:
        r1, r2 = r1 or 3, r2 or -2
    if d.chance(0.3):  # a rectangle's width from its area and how much longer it is
        w = d.rng.randint(2, 20)
        k = d.rng.randint(1, 12)
        p = person(d)
        thing = d.pick(("garden", "rug", "poster", "room", "table top", "photo", "field", "patio", "banner"))
        unit = d.pick(("feet", "meters", "inches", "yards"))
        area = d.given(w * (w + k))
        longer = d.given(k)
        d.tell(
            d.pick(
                (
                    f"{p.s} rectangular {thing} is {longer} {unit} longer than it is wide.",
                    f"The length of a rectangular {thing} is {longer} {unit} more than its width.",
                    f"{p.name} has a rectangular {thing} whose length exceeds its width by {longer} {unit}.",
                )
            ),
            d.pick((f"Its area is {area} square {unit}.", f"The {thing} covers {area} square {unit}.")),
        )
        d.say(
            (
                "If the width is w, then w(w + {k}) = {a}, so w^2 + {k}w - {a} = 0.",
                "Call the width w: w * (w + {k}) = {a}, that is w^2 + {k}w - {a} = 0.",
            ),
            k=k,
            a=area,
        )
        d.say(
            ("The factors are (w - {w})(w + {m}) = 0.", "This factors as (w - {w})(w + {m}) = 0."),
            w=w,
            m=w + k,
        )
        wq = d.derived(w, area, longer)
        check = d.calc(wq, "*", w + k)
        d.say(
            ("A width can't be negative, so w = {w}. Check: {c}.", "The width is {w}, since {c}."),
            w=w,
            c=check.work,
        )
        if d.chance(0.5):
            d.ask(
                wq,
                f"How wide is the {thing} in {unit}?",
                f"The {thing} is # {unit} wide.",
                f"the width of the {thing}",
            )
            return
        per = d.calc(2, "*", wq, "+", 2 * (w + k))
        d.say(("The perimeter is {c} {u}.", "Going around: {c} {u}."), u=unit, c=per.work)
        d.ask(
            per,
            f"What is the perimeter of the {thing} in {unit}?",
            f"The perimeter is # {unit}.",
            f"the perimeter of the {thing}",
        )
        return
    s, prod = r1 + r2, r1 * r2
    b_text = "" if s == 0 else (f" - {s}x" if s > 0 else f" + {-s}x").replace(" 1x", " x")
    c_text = "" if prod == 0 else (f" + {prod}" if prod > 0 else f" - {-prod}")
    eq = f"x^2{b_text}{c_text} = 0"
    p_, q_ = -r1, -r2
    d.say(
        (
            "We need two numbers whose product is {pr} and whose sum is {sm}.",
            "Look for two numbers that multiply to {pr} and add to {sm}.",
        ),
        pr=prod,
        sm=-s,
    )
    k1, k2 = d.derived(p_), d.derived(q_)
    m = d.calc(k1, "*", k2)
    a = d.calc(k1, "+", k2)
    d.say(
        ("{p} and {q} work: {m}, and {a}.", "They are {p} and {q}, since {m} and {a}."),
        p=p_,
        q=q_,
        m=m.work,
        a=a.work,
    )
    f1 = f"(x {'+' if p_ > 0 else '-'} {abs(p_)})"
    f2 = f"(x {'+' if q_ > 0 else '-'} {abs(q_)})"
    d.say(
        (
            "So the equation is {f1}{f2} = 0, and x = {r1} or x = {r2}.",
            "Factoring: {f1}{f2} = 0, so x = {r1} or x = {r2}.",
        ),
        f1=f1,
        f2=f2,
        r1=r1,
        r2=r2,
    )
    ask = d.pick(("larger", "smaller", "sum", "product", "squares"))
    root1, root2 = d.derived(r1), d.derived(r2)
    framed = d.chance(0.85)
    if framed:
        sentence, p = presented(d, f"the equation {eq}")
        d.tell(sentence)
    where = "it" if framed else eq
    if ask in ("larger", "smaller"):
        c = d.derived(max(r1, r2) if ask == "larger" else min(r1, r2))
        d.say(("The {k} root is {c}.", "The {k} solution is {c}."), k=ask, c=c.n)
        d.ask(
            c,
            d.pick(
                (
                    f"What is the {ask} root of {where}?",
                    f"Find the {ask} solution of {where}.",
                    f"Which is the {ask} of the two solutions of {where}?",
                )
            ),
            f"The {ask} root of {eq} is #.",
            f"the {ask} root of {eq}",
        )
    elif ask == "sum":
        c = d.calc(root1, "+", root2)
        d.say(("The sum of the roots is {c}.", "Adding the roots: {c}."), c=c.work)
        d.ask(
            c,
            d.pick(
                (
                    f"What is the sum of the solutions of {where}?",
                    f"Find the sum of the roots of {where}.",
                    f"What do the solutions of {where} add up to?",
                )
            ),
            f"The solutions of {eq} add up to #.",
            f"the sum of the solutions of {eq}",
        )
    elif ask == "product":
        c = d.calc(root1, "*", root2)
        d.say(("The product of the roots is {c}.", "Multiplying the roots: {c}."), c=c.work)
        d.ask(
            c,
            d.pick(
                (
                    f"What is the product of the roots of {where}?",
                    f"Multiply the solutions of {where}. What do you get?",
                    f"What is the product of the two solutions of {where}?",
                )
            ),
            f"The roots of {eq} multiply to #.",
            f"the product of the roots of {eq}",
        )
    else:
        sq1 = d.calc(root1, "*", root1)
        sq2 = d.calc(root2, "*", root2)
        c = d.calc(sq1, "+", sq2)
        d.say(("The squares are {a} and {b}, and their sum is {c}.",), a=sq1.work, b=sq2.work, c=c.work)
        d.ask(
            c,
            d.pick(
                (
                    f"What is the sum of the squares of the roots of {where}?",
                    f"Add the squares of the solutions of {where}. What is the result?",
                )
            ),
            f"The squares of the roots of {eq} add up to #.",
            f"the sum of the squares of the roots of {eq}",
        )


# fmt: off
_GROWTH = (  # the sentence, the unit counted, question, statement, noun, what the first value is, the step
    ("{name} saves ${a} in the first week and ${d} more each week than the week before.", "week",
     "How much does {he} save in week {n}?", "In week {n} {he} saves $#.", "{name}'s savings in week {n}",
     "the amount {name} saves in the first week", "the weekly increase"),
    ("The first row of a theater has {a} seats, and each row has {d} more seats than the row in front of "
     "it.", "row", "How many seats are in row {n}?", "Row {n} has # seats.",
     "the number of seats in row {n}", "the seats in the first row", "the seats added per row"),
    ("{name} runs {a} laps on the first day of training and {d} more laps each day after.", "day",
     "How many laps does {he} run on day {n}?", "On day {n} {he} runs # laps.",
     "the laps {name} runs on day {n}", "the laps on the first day", "the laps added each day"),
    ("An arithmetic sequence starts with {a}, and its common difference is {d}.", "term",
     "What is term number {n} of the sequence?", "Term number {n} of the sequence is #.", "term number {n}",
     "the first term", "the common difference"),
    ("{name} does {a} push-ups on day 1 and adds {d} push-ups every day.", "day",
     "How many push-ups does {he} do on day {n}?", "On day {n} {he} does # push-ups.",
     "the push-ups {name} does on day {n}", "the push-ups on day 1", "the push-ups added each day"),
    ("A stack of cans has {a} cans in the top layer, and each layer below has {d} more than the one above "
     "it.", "layer", "How many cans are in layer {n}, counting from the top?", "Layer {n} has # cans.",
     "the number of cans in layer {n}", "the cans in the top layer", "the cans added per layer"),
    ("{name} reads {a} pages on the first day of a reading challenge and {d} more pages each day after "
     "that.", "day", "How many pages does {he} read on day {n}?", "On day {n} {he} reads # pages.",
     "the pages {name} reads on day {n}", "the pages on the first day", "the pages added each day"),
    ("A tree is {a} inches tall when {name} plants it and grows {d} inches every month.", "month",
     "How tall is it, in inches, in month {n}?", "In month {n} it is # inches tall.",
     "the height of the tree in month {n}", "the height when planted", "the growth per month"),
    ("{name} practices violin for {a} minutes on day 1 and adds {d} minutes each day.", "day",
     "How many minutes does {he} practice on day {n}?", "On day {n} {he} practices # minutes.",
     "the minutes {name} practices on day {n}", "the minutes on day 1", "the minutes added each day"),
    ("A bakery sells {a} loaves in its first week and {d} more loaves each week after that.", "week",
     "How many loaves does it sell in week {n}?", "In week {n} it sells # loaves.",
     "the loaves sold in week {n}", "the loaves sold in the first week", "the weekly increase in loaves"),
    ("{name} puts {a} marbles in a jar on the first day and each day puts in {d} more than the day before.",
     "day", "How many marbles does {he} put in on day {n}?", "On day {n} {he} puts in # marbles.",
     "the marbles {name} adds on day {n}", "the marbles added on the first day", "the daily increase"),
    ("A staircase's first step is {a} centimeters high, and each step is {d} centimeters higher than the "
     "last.", "step", "How high is step {n} in centimeters?", "Step {n} is # centimeters high.",
     "the height of step {n}", "the height of the first step", "the rise per step"),
    ("{name} earns ${a} in the first month of a job and gets a raise of ${d} every month.", "month",
     "How much does {he} earn in month {n}?", "In month {n} {he} earns $#.", "{name}'s pay in month {n}",
     "the pay in the first month", "the monthly raise"),
    ("On the first day of a plant-a-thon, {name}'s club plants {a} trees, and each day they plant {d} more "
     "than the day before.", "day", "How many trees do they plant on day {n}?",
     "On day {n} they plant # trees.", "the trees planted on day {n}", "the trees planted on the first day",
     "the daily increase"),
    ("{name} swims {a} lengths in the first lesson and {d} more lengths in each lesson after that.",
     "lesson", "How many lengths does {he} swim in lesson {n}?", "In lesson {n} {he} swims # lengths.",
     "the lengths {name} swims in lesson {n}", "the lengths in the first lesson",
     "the lengths added per lesson"),
    ("A garden path has {a} stones in the first row, and every row after has {d} more stones.", "row",
     "How many stones are in row {n}?", "Row {n} has # stones.", "the number of stones in row {n}",
     "the stones in the first row", "the stones added per row"),
    ("{name}'s savings jar gets {a} coins on day 1, and every day {he} adds {d} more coins than the day "
     "before.", "day", "How many coins does {he} add on day {n}?", "On day {n} {he} adds # coins.",
     "the coins {name} adds on day {n}", "the coins on day 1", "the daily increase in coins"),
    ("{name} stacks {a} chairs in the first pile and {d} more chairs in each pile after that.", "pile",
     "How many chairs are in pile {n}?", "Pile {n} has # chairs.", "the number of chairs in pile {n}",
     "the chairs in the first pile", "the chairs added per pile"),
    ("A clock tower rings {a} times at the first hour of a festival and {d} more times each hour after.",
     "hour", "How many times does it ring in hour {n}?", "In hour {n} it rings # times.",
     "the rings in hour {n}", "the rings in the first hour", "the extra rings per hour"),
    ("{name} writes {a} lines of a poem on the first evening and {d} more lines each evening after.",
     "evening", "How many lines does {he} write on evening {n}?", "On evening {n} {he} writes # lines.",
     "the lines {name} writes on evening {n}", "the lines on the first evening",
     "the lines added each evening"),
    ("A new shop has {a} customers on its first day, and every day it has {d} more customers than the day "
     "before.", "day", "How many customers come on day {n}?", "On day {n}, # customers come.",
     "the customers on day {n}", "the customers on the first day", "the daily increase in customers"),
    ("{name} bikes {a} kilometers in the first week of training and {d} kilometers more each week.", "week",
     "How far does {he} bike in week {n}, in kilometers?", "In week {n} {he} bikes # kilometers.",
     "the kilometers {name} bikes in week {n}", "the kilometers in the first week", "the weekly increase"),
    ("The first page of {name}'s sticker book holds {a} stickers, and each page after holds {d} more.",
     "page", "How many stickers does page {n} hold?", "Page {n} holds # stickers.",
     "the stickers on page {n}", "the stickers on the first page", "the stickers added per page"),
    ("A ladder's lowest rung is {a} centimeters off the ground, and each rung is {d} centimeters above the "
     "one below.", "rung", "How high is rung {n}, in centimeters?", "Rung {n} is # centimeters high.",
     "the height of rung {n}", "the height of the lowest rung", "the gap between rungs"),
    ("In a game, level 1 is worth {a} points and each level is worth {d} more points than the one before.",
     "level", "How many points is level {n} worth?", "Level {n} is worth # points.",
     "the points for level {n}", "the points for level 1", "the extra points per level"),
    ("A store displays {a} boxes on the top shelf and {d} more boxes on each lower shelf.", "shelf",
     "How many boxes are on shelf {n}, counting from the top?", "Shelf {n} has # boxes.",
     "the number of boxes on shelf {n}", "the boxes on the top shelf", "the boxes added per shelf"),
)
# fmt: on


def arithmetic_sequence(d: Draft) -> None:
    p = person(d)
    text, unit, question, statement, noun, what_a, what_d = d.pick(_GROWTH)
    a = d.given(d.rng.randint(1, 30), what_a.format(name=p.name))
    step = d.given(d.rng.randint(1, 12), what_d)
    n = d.given(d.rng.randint(4, 30), f"the number of the {unit}")
    fields = {"name": p.name, "he": p.he, "n": n}
    d.tell(text.format(name=p.name, a=a.n, d=step.n, he=p.he))
    gaps = d.calc(n, "-", 1)
    d.say(
        ("From the first {u} to {u} {n} there are {c} steps.", "{u} {n} is {c} steps after the first."),
        u=unit,
        n=n,
        c=gaps.work,
    )
    grow = d.calc(gaps, "*", step)
    d.say(("Those steps add {c}.", "The increase is {c}."), c=grow.work)
    c = d.calc(a, "+", grow)
    d.say(("{so}, {u} {n} has {c}.", "The value for {u} {n} is {c}."), so=d.word(SO), u=unit, n=n, c=c.work)
    if d.chance(0.35):
        both = d.calc(a, "+", c)
        d.say(("The first and last add up to {c}.",), c=both.work)
        total = d.calc(both, "*", n, "/", 2)
        d.say(
            ("The total over {n} {u}s is {c}.", "Summing all {n} terms gives {c}."), n=n, u=unit, c=total.work
        )
        d.ask(
            total,
            *d.pick(
                (
                    (
                        f"What is the total over the first {n} {unit}s?",
                        f"The total over the first {n} {unit}s is #.",
                        f"the total over the first {n} {unit}s",
                    ),
                    (
                        f"What do the first {n} {unit}s add up to?",
                        f"The first {n} {unit}s add up to #.",
                        f"the sum over the first {n} {unit}s",
                    ),
                )
            ),
        )
        return
    d.ask(c, question.format(**fields), statement.format(**fields), noun.format(**fields))


def geometric_sequence(d: Draft) -> None:
    kind = d.pick(("grow", "grow", "halve", "ball", "spread"))
    if kind == "grow":
        what, _, unit = d.pick(_GROWERS)
        factor_word, r = d.pick((("doubles", 2), ("doubles", 2), ("triples", 3)))
        start = d.given(d.rng.randint(2, 60) * 5, f"the number of {what} at the start")
        every = d.rng.randint(1, 6)
        k = d.rng.randint(2, 5)
        h = d.given(every, f"the {unit} it takes to grow")
        total = d.given(every * k, f"the {unit} that pass")
        d.tell(
            d.pick(
                (
                    f"There are {start} {what} at first, and the number {factor_word} every {h} {unit}.",
                    f"A scientist counts {start} {what}; the count {factor_word} every {h} {unit}.",
                    f"The number of {what} starts at {start} and {factor_word} every {h} {unit}.",
                    f"{person(d).name} records {start} {what}, a number that {factor_word} every {h} {unit}.",
                    f"Every {h} {unit}, the number of {what} {factor_word}. It starts at {start}.",
                )
            ).replace(". It starts", ", starting from")
        )
        times = d.calc(total, "/", h)
        d.say(
            (
                "In {t} {u} it grows {c} times.",
                "That is {c} periods of growth.",
                "There are {c} steps of {h} {u}.",
            ),
            t=total,
            u=unit,
            h=h,
            c=times.work,
        )
        factor = d.calc(r, "**", times)
        d.say(("It grows by a factor of {c}.", "The number is multiplied by {c}."), c=factor.work)
        c = d.calc(start, "*", factor)
        d.say(("There are {c} {w}.", "{so}, there are {c} {w}."), so=d.word(SO), w=what, c=c.work)
        d.ask(
            c,
            *d.pick(
                (
                    (
                        f"How many {what} are there after {total} {unit}?",
                        f"After {total} {unit} there are # {what}.",
                        f"the number of {what} after {total} {unit}",
                    ),
                    (
                        f"What is the count {total} {unit} later?",
                        f"{total} {unit} later the count is #.",
                        f"the count after {total} {unit}",
                    ),
                    (
                        f"How many will there be {total} {unit} from the start?",
                        f"There will be # {what}.",
                        f"the number of {what} {total} {unit} from the start",
                    ),
                )
            ),
        )
        return
    steps = d.rng.randint(2, 4)
    if kind in ("ball", "halve"):
        if kind == "ball":
            thing = d.pick(("ball", "rubber ball", "tennis ball", "bouncy ball", "basketball"))
            height = d.given(2**steps * d.rng.randint(1, 10) * 5, f"the height the {thing} is dropped from")
            d.tell(
                d.pick(
                    (
                        f"A {thing} is dropped from {height} feet.",
                        f"{person(d).name} drops a {thing} from {height} feet.",
                        f"From the top of a {height}-foot wall, a {thing} is let go.",
                    )
                ),
                d.pick(
                    (
                        "Each bounce reaches half the height of the one before.",
                        "Every bounce goes up half as high as the previous fall or bounce.",
                        "After each fall it rises to half its previous height.",
                    )
                ),
            )
            label, unit = "bounce", "feet"
        else:
            thing, unit, time = d.pick(_HALVERS)
            label = time.rstrip("s")
            height = d.given(2**steps * d.rng.randint(1, 10) * 5, f"the starting amount of the {thing}")
            d.tell(
                d.pick(
                    (
                        f"The {thing} starts at {height} {unit} and halves every {label}.",
                        f"Each {label}, the {thing} drops to half of what it was. It starts at {height} "
                        f"{unit}.",
                        f"At first the {thing} is {height} {unit}; every {label} it is cut in half.",
                    )
                ).replace(". It starts at", ", starting at")
            )
        h = height
        for i in range(1, steps + 1):
            h = d.calc(h, "/", 2)
            d.say(
                ("After {l} {i} it is {c} {u}.", "{L} {i}: {c} {u}."),
                l=label,
                L=label.capitalize(),
                i=i,
                u=unit,
                c=h.work,
            )
        d.ask(
            h,
            *d.pick(
                (
                    (
                        f"What is it after {label} {steps}?",
                        f"After {label} {steps} it is # {unit}.",
                        f"the value after {label} {steps}",
                    ),
                    (
                        f"How much is left after {steps} {label}s?",
                        f"After {steps} {label}s it is # {unit}.",
                        f"the amount after {steps} {label}s",
                    ),
                )
            ),
        )
        return
    p = person(d)
    first = d.given(d.rng.randint(2, 5), "the number of people reached on the first day")
    r = d.pick((2, 3))
    days = d.rng.randint(3, 6)
    what = d.pick(_SPREADS)
    d.tell(
        d.pick(
            (
                f"On day 1, {p.name} {what} {first} people.",
                f"{p.name} {what} {first} people on the first day.",
            )
        ),
        d.pick(
            (
                f"Each day after, {number_word(r)} times as many new people are reached as the day before.",
                f"Every day the number of new people reached is {number_word(r)} times the day before.",
                f"Each new day reaches {number_word(r)} times as many new people as the previous one.",
            )
        ),
    )
    c = first
    for day in range(2, days + 1):
        c = d.calc(c, "*", r)
        d.say(("On day {n}, {c} new people are reached.", "Day {n}: {c} people."), n=day, c=c.work)
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"How many new people are reached on day {days}?",
                    f"On day {days}, # new people are reached.",
                    f"the number of new people reached on day {days}",
                ),
                (
                    f"How many people hear about it for the first time on day {days}?",
                    f"# people first hear about it on day {days}.",
                    f"the new people on day {days}",
                ),
            )
        ),
    )


def consecutive(d: Draft) -> None:
    k = d.rng.randint(2, 5)
    step = d.pick((1, 1, 2))
    kind = {1: "consecutive integers", 2: d.pick(("consecutive even integers", "consecutive odd integers"))}[
        step
    ]
    n = d.rng.randint(1, 60)
    if step == 2 and (n % 2 == 0) != ("even" in kind):
        n += 1
    total = d.given(sum(n + step * i for i in range(k)), f"the sum of the {kind}")
    kw = number_word(k)
    context = d.pick(("plain", "plain", "pages", "lockers", "ages", "houses", "seats", "presented"))
    if context == "pages" and step == 1 and k == 2:
        p = person(d)
        d.tell(
            d.pick(
                (
                    f"{p.name} opens a book, and the two page numbers {p.he} sees add up to {total}.",
                    f"The numbers of two facing pages in {p.s} notebook add up to {total}.",
                )
            )
        )
        things = "page numbers"
    elif context == "lockers" and step == 1:
        d.tell(
            d.pick(
                (
                    f"{kw.capitalize()} lockers in a row have consecutive numbers that add up to {total}.",
                    f"The numbers on {kw} lockers next to each other are consecutive and sum to {total}.",
                )
            )
        )
        things = "locker numbers"
    elif context == "ages" and step == 1:
        d.tell(
            d.pick(
                (
                    f"{kw.capitalize()} cousins were born one year apart, and their ages add up to {total}.",
                    f"The ages of {kw} siblings are consecutive whole numbers with a sum of {total}.",
                )
            )
        )
        things = "ages"
    elif context == "houses":
        side = "even" if step == 2 else "whole"
        d.tell(
            f"On one side of a street, {kw} neighboring houses have consecutive {side} numbers adding up to "
            f"{total}.".replace("consecutive whole", "consecutive")
        )
        things = "house numbers"
    elif context == "seats" and step == 1:
        p = person(d)
        d.tell(
            f"{p.name} and friends sit in {kw} seats with consecutive numbers, and the seat numbers add up "
            f"to {total}."
        )
        things = "seat numbers"
    elif context == "presented":
        sentence, _ = presented(d, f"a puzzle about {kw} {kind} whose sum is {total}")
        d.tell(sentence)
        things = kind
    else:
        d.tell(
            d.pick(
                (
                    f"The sum of {kw} {kind} is {total}.",
                    f"{kw.capitalize()} {kind} add up to {total}.",
                    f"When {kw} {kind} are added, the total is {total}.",
                    f"Adding {kw} {kind} gives {total}.",
                )
            )
        )
        things = kind
    terms = " + ".join(["n"] + [f"(n + {step * i})" for i in range(1, k)])
    extras = [step * i for i in range(1, k)]
    offset = (
        d.calc(*[x for i, e in enumerate(extras) for x in ([e] if i == 0 else ["+", e])]) if k > 2 else None
    )
    o = sum(extras)
    d.say(
        ("Call the smallest n. Then {t} = {k}n + {o}.", "Let the first be n: {t} = {k}n + {o}."),
        t=terms,
        k=k,
        o=o,
    )
    if offset is not None:
        d.say(("The extra terms add up to {c}.", "The constants add to {c}."), c=offset.work)
    rest = d.calc(total, "-", o)
    d.say(("So {k}n = {c}.", "Then {k}n = {c}."), k=k, c=rest.work)
    small = d.calc(rest, "/", k)
    d.say(("The smallest is n = {c}.", "n = {c}."), c=small.work)
    which = d.pick(
        (("smallest", small), ("largest", None), ("first", small), ("last", None), ("middle", None))
    )
    if which[0] == "middle" and k % 2 == 0:
        which = ("largest", None)
    if which[1] is None:
        offset_to = step * (k - 1) if which[0] in ("largest", "last") else step * (k // 2)
        c = d.calc(small, "+", offset_to)
        d.say(("The {w} one is {c}.", "So the {w} is {c}."), w=which[0], c=c.work)
    else:
        c = small
    d.ask(
        c,
        *d.pick(
            (
                (
                    f"What is the {which[0]} of the {things}?",
                    f"The {which[0]} of them is #.",
                    f"the {which[0]} of the {things}",
                ),
                (f"Which number is the {which[0]}?", f"The {which[0]} is #.", f"the {which[0]} number"),
                (f"Find the {which[0]} one.", f"The {which[0]} one is #.", f"the {which[0]} of them"),
            )
        ),
    )


def evaluate(d: Draft) -> None:
    letters = d.pick(
        (("a", "b"), ("m", "n"), ("p", "q"), ("s", "t"), ("u", "v"), ("c", "d"), ("h", "k"), ("r", "w"))
    )
    u, v = letters
    cu, cv = d.rng.randint(2, 9), d.rng.randint(2, 9)
    k = d.rng.randint(0, 20)
    vu = d.given(d.rng.randint(1, 12), f"the value of {u}")
    vv = d.given(d.rng.randint(1, 12), f"the value of {v}")
    sign = d.pick(("+", "-"))
    expr = f"{'' if cu == 1 else cu}{u} {sign} {'' if cv == 1 else cv}{v}" + (f" + {k}" if k else "")
    d.tell(
        d.pick(
            (
                f"Let {u} = {vu} and {v} = {vv}.",
                f"Suppose {u} is {vu} and {v} is {vv}.",
                f"Take {u} = {vu} and {v} = {vv}.",
                f"The variables are {u} = {vu} and {v} = {vv}.",
            )
        )
    )
    t1 = d.calc(cu, "*", vu)
    d.say(("{cu}{u} = {c}.", "First, {cu} times {u} is {c}."), cu=cu, u=u, c=t1.work)
    t2 = d.calc(cv, "*", vv)
    d.say(("{cv}{v} = {c}.", "Next, {cv} times {v} is {c}."), cv=cv, v=v, c=t2.work)
    c = d.calc(t1, sign, t2, "+", k) if k else d.calc(t1, sign, t2)
    d.say(("So {e} = {c}.", "The expression equals {c}."), e=expr, c=c.work)
    if d.chance(0.75):
        sentence, _ = presented(d, f"the expression {expr}")
        d.tell(sentence)
    d.ask(
        c,
        d.pick(
            (
                f"What is the value of {expr}?",
                f"Evaluate {expr}.",
                f"Find {expr}.",
                f"What is {expr}?",
                f"What number does {expr} stand for?",
            )
        ),
        f"{expr} = #.",
        f"the value of {expr}",
    )


_PAIRS_OF_KINDS = (
    (("chickens", 2), ("cows", 4)),
    (("ducks", 2), ("goats", 4)),
    (("spiders", 8), ("beetles", 6)),
    (("bicycles", 2), ("cars", 4)),
    (("tricycles", 3), ("bicycles", 2)),
    (("geese", 2), ("sheep", 4)),
    (("turkeys", 2), ("pigs", 4)),
    (("motorcycles", 2), ("cars", 4)),
    (("wagons", 4), ("bicycles", 2)),
    (("ostriches", 2), ("zebras", 4)),
)


# fmt: off
_GROWERS = (  # (what, unit, time unit)
    ("bacteria", "", "hours"), ("yeast cells", "", "hours"), ("algae cells", "", "days"),
    ("fruit flies", "", "weeks"),
    ("duckweed plants", "", "days"), ("followers of a new channel", "", "months"),
    ("rabbits on an island", "", "years"),
    ("sunflowers in a field", "", "years"), ("copies of a viral photo", "", "hours"),
    ("mold spots", "", "days"),
)


_HALVERS = (
    ("medicine in the body", "milligrams", "hours"), ("water in a leaking tank", "liters", "hours"),
    ("ice in a cooler", "pounds", "hours"), ("price of an old phone", "dollars", "years"),
    ("battery charge", "units", "hours"), ("snow on the roof", "inches", "days"),
    ("number of visitors to an old website", "visitors", "months"),
    ("glow of a light stick", "units", "hours"),
)


_SPREADS = (
    "tells a secret to", "shares a video with", "sends a chain letter to", "invites to a club",
    "teaches a new game to",
    "gives a flyer to", "recommends a book to", "shows a magic trick to",
)
# fmt: on


FAMILIES = {
    "linear_equation": Family(linear_equation, var="X", spell=False, opening=True),
    "number_puzzle": Family(number_puzzle, opening=True),
    "linear_system": Family(linear_system, opening=True, observer=True),
    "quadratic": Family(quadratic, var="X", spell=False, opening=True),
    "arithmetic_sequence": Family(arithmetic_sequence, observer=True),
    "geometric_sequence": Family(geometric_sequence, observer=True),
    "consecutive": Family(consecutive, spell=False, opening=True, observer=True),
    "evaluate": Family(evaluate, spell=False, opening=True),
}
