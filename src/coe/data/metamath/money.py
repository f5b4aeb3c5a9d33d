"""Money: discounts, fundraisers, wages, restaurant bills, budgets, unit prices, interest, profit and
installments."""

from __future__ import annotations

from fractions import Fraction

from coe.data.metamath.engine import Draft, Family
from coe.data.metamath.everyday import STORES, price
from coe.data.metamath.words import SO, TOTAL_WORDS, a_an, join, person

_PERCENTS_OFF = (10, 15, 20, 25, 30, 40, 50)


def _basket(d: Draft, who: str, k: int | None = None) -> list[tuple]:
    """``k`` (drawn when None) items of one store: (quantity, unit price, plural)."""
    store = d.pick(list(STORES))
    out = []
    for one, many, lo, hi in d.rng.sample(STORES[store], k or d.pick((1, 2, 2, 3))):
        q = d.given(d.rng.randint(2, 8), f"the number of {many} {who} buys")
        cost = d.money(price(d, lo, hi) * 2, f"the price of one {one}")
        out.append((q, cost, many))
    return out


def _cost_lines(d: Draft, p, basket) -> list:
    costs = []
    for q, cost, many in basket:
        c = d.calc(q, "*", cost)
        d.say(
            ("The {pl} cost {c}.", "{q} {pl} at {cost} each come to {c}.", "{p.He} pays {c} for the {pl}."),
            p=p,
            pl=many,
            q=q,
            cost=cost,
            c=c.work,
        )
        costs.append(c)
    return costs


def discount(d: Draft) -> None:
    p = person(d)
    basket = _basket(d, p.name)
    listed = join([f"{q} {many} at {cost} each" for q, cost, many in basket])
    pct = d.percent(d.pick(_PERCENTS_OFF), "the discount in percent")
    d.tell(
        d.pick(
            (
                f"{p.name} buys {listed}.",
                f"{p.name} puts {listed} in {p.his} cart.",
                f"{p.name} orders {listed}.",
            )
        ),
        d.pick(
            (
                f"The store takes {pct} off the whole purchase.",
                f"{p.He} has a coupon for {pct} off the total.",
                f"Everything is on sale for {pct} off.",
                f"At the register, {p.he} gets {a_an(str(pct))} discount.",
            )
        ),
    )
    total = d.add_up(
        _cost_lines(d, p, basket), ("Before the discount the total is {c}.", "The full price is {c}.")
    )
    if d.word((True, False)):
        off = d.calc(total, "*", pct, "/", 100)
        d.say(
            ("The discount is {c}.", "{pct} of the total is {c}.", "{p.He} saves {c}."),
            pct=pct,
            p=p,
            c=off.work,
        )
        paid = d.calc(total, "-", off)
    else:
        rest = d.calc(100, "-", pct, kind="num")
        d.say(
            ("{p.He} pays {c}% of the price.", "After {pct} off, {c}% of the price is left."),
            p=p,
            pct=pct,
            c=rest.work,
        )
        paid = d.calc(total, "*", rest, "/", 100)
    d.say(
        ("{p.He} pays {c}.", "After the discount {p.he} pays {c}.", "The final price is {c}."),
        p=p,
        c=paid.work,
    )
    d.ask(
        paid,
        *d.pick(
            (
                (
                    f"How much does {p.he} pay after the discount?",
                    f"{p.He} pays # after the discount.",
                    f"the amount {p.name} pays after the discount",
                ),
                (
                    "What is the price after the discount?",
                    "The price after the discount is #.",
                    f"the discounted total of {p.s} purchase",
                ),
            )
        ),
    )


_TICKETS = ("adult", "child", "student", "senior", "family", "VIP", "member", "early-bird")
_EVENTS = (
    "school play",
    "charity concert",
    "talent show",
    "science fair",
    "dance recital",
    "bake-off",
    "book fair",
    "spring festival",
    "magic show",
    "art auction",
)


def tickets(d: Draft) -> None:
    d.names.add("VIP")
    event = d.pick(_EVENTS)
    sold = []
    for kind in d.rng.sample(_TICKETS, d.pick((1, 2, 2, 3))):
        q = d.given(d.rng.randint(10, 150), f"the number of {kind} tickets sold")
        cost = d.money(d.rng.randint(2, 15), f"the price of {a_an(kind)} ticket")
        sold.append((kind, q, cost))
    listed = join([f"{q} {kind} tickets at {cost} each" for kind, q, cost in sold])
    d.tell(
        d.pick(
            (
                f"For the {event}, the organizers sell {listed}.",
                f"The {event} sells {listed}.",
                f"At the {event}, {listed} are sold.",
            )
        )
    )
    earned = []
    for kind, q, cost in sold:
        c = d.calc(q, "*", cost)
        d.say(
            ("The {k} tickets bring in {c}.", "{k} tickets earn {c}.", "From {k} tickets they get {c}."),
            k=kind,
            c=c.work,
        )
        earned.append(c)
    revenue = d.add_up(earned, ("The tickets bring in {c} in total.", "Ticket sales come to {c}."))
    ending = d.pick(("revenue", "profit", "split"))
    if ending == "revenue":
        d.ask(
            revenue,
            "How much money do the tickets bring in?",
            "The tickets bring in #.",
            "the ticket revenue",
        )
        return
    groups = d.rng.randint(2, 6)
    low = max(1, int(revenue.value) // (10 * groups))
    profit = groups * d.rng.randint(low, max(low, 9 * int(revenue.value) // (10 * groups)))
    cost = d.money(revenue.value - profit, f"the cost of putting on the {event}")
    d.tell(d.pick((f"Putting on the {event} costs {cost}.", f"The costs of the {event} are {cost}.")))
    c = d.calc(revenue, "-", cost)
    d.say(("The profit is {c}.", "After costs, {c} is left.", "They keep {c}."), c=c.work)
    if ending == "profit":
        d.ask(c, "How much profit do they make?", "They make # in profit.", f"the profit of the {event}")
        return
    g = d.given(groups, "the number of classes")
    d.tell(
        d.pick((f"The profit is shared equally among {g} classes.", f"{g} classes split the profit equally."))
    )
    c = d.calc(c, "/", g)
    d.say(("Each class gets {c}.", "That is {c} per class."), c=c.work)
    d.ask(c, "How much does each class get?", "Each class gets #.", "the amount each class gets")


_WORK = (
    "works at a bookstore",
    "works at a cafe",
    "drives a delivery van",
    "works at a warehouse",
    "works as a cashier",
    "works at the library",
    "cleans offices",
    "works at a bike shop",
    "works at a hotel desk",
    "answers phones at a call center",
    "works in a bakery",
    "stocks shelves at a market",
    "works at the animal shelter",
    "guards a museum",
    "works at a car wash",
    "works in a garden center",
)


def wages(d: Draft) -> None:
    p = person(d)
    rate = d.money(d.rng.randint(10, 30), f"{p.s} hourly wage")
    regular = d.given(d.pick((35, 36, 38, 40, 40)), "the number of regular hours")
    extra = d.given(d.rng.randint(2, 12), "the number of overtime hours")
    job = d.pick(_WORK)
    when = d.pick(
        ("This week", "Last week", "During a busy week", "In the week before the holidays", "In a usual week")
    )
    d.tell(
        d.pick(
            (
                f"{p.name} {job} and earns {rate} an hour.",
                f"{p.name} is paid {rate} per hour.",
                f"{p.s} job pays {rate} an hour.",
                f"{p.name} {job}, where the pay is {rate} an hour.",
                f"At {p.his} job, {p.name} makes {rate} for every hour of work.",
            )
        ),
        d.pick(
            (
                f"{when} {p.he} works {regular} regular hours and {extra} hours of overtime.",
                f"{p.He} works {regular} hours plus {extra} overtime hours {when.lower()}.",
                f"{when}, {p.name} puts in {regular} normal hours and {extra} extra hours.",
                f"{p.His} schedule {when.lower()} has {regular} regular hours and {extra} hours of overtime.",
            )
        ),
        d.pick(
            (
                "Overtime is paid at one and a half times the regular rate.",
                "Overtime pays 1.5 times the usual rate.",
                "Every overtime hour earns time and a half.",
                f"{p.His} employer pays 50% more per hour for overtime.",
                "Hours beyond the regular ones pay one and a half times as much.",
            )
        ),
    )
    base = d.calc(regular, "*", rate)
    d.say(
        ("Regular pay is {c}.", "For the regular hours {p.he} earns {c}.", "{r} hours at {w} make {c}."),
        p=p,
        r=regular,
        w=rate,
        c=base.work,
    )
    over_rate = d.calc(rate, "*", Fraction(3, 2))
    d.say(("The overtime rate is {c} an hour.", "Overtime pays {c} per hour."), c=over_rate.work)
    over = d.calc(extra, "*", over_rate)
    d.say(("Overtime pay is {c}.", "For overtime {p.he} earns {c}."), p=p, c=over.work)
    total = d.calc(base, "+", over)
    d.say(
        ("{p.He} earns {c} in all.", "{w}, {p.he} makes {c}.", "Total pay: {c}."),
        p=p,
        w=d.word(TOTAL_WORDS).capitalize(),
        c=total.work,
    )
    if d.chance(0.4):
        weeks = d.given(d.rng.randint(2, 4), "the number of weeks")
        d.tell(
            d.pick(
                (
                    f"{p.He} works the same hours for {weeks} weeks.",
                    f"The same schedule repeats for {weeks} weeks in a row.",
                )
            )
        )
        total = d.calc(total, "*", weeks)
        d.say(("In {n} weeks {p.he} earns {c}.", "Over {n} weeks that is {c}."), n=weeks, p=p, c=total.work)
        d.ask(
            total,
            *d.pick(
                (
                    (
                        f"How much does {p.he} earn in {weeks} weeks?",
                        f"{p.He} earns # in {weeks} weeks.",
                        f"{p.s} pay for {weeks} weeks",
                    ),
                    (
                        f"What does {p.he} make over those {weeks} weeks?",
                        f"{p.He} makes # over {weeks} weeks.",
                        f"{p.s} earnings over {weeks} weeks",
                    ),
                )
            ),
        )
        return
    d.ask(
        total,
        *d.pick(
            (
                (f"How much does {p.he} earn in all?", f"{p.He} earns # in all.", f"{p.s} total pay"),
                (f"What is {p.s} pay for that period?", f"{p.s} pay is #.", f"{p.s} pay"),
                (
                    f"How much money does {p.name} make, overtime included?",
                    f"{p.name} makes #, overtime included.",
                    f"{p.s} pay with overtime",
                ),
            )
        ),
    )


_DISHES = (
    ("pasta dish", "pasta dishes", 9, 18),
    ("salad", "salads", 6, 12),
    ("burger", "burgers", 8, 15),
    ("soup", "soups", 4, 9),
    ("pizza", "pizzas", 10, 20),
    ("dessert", "desserts", 4, 8),
    ("steak", "steaks", 18, 32),
    ("sandwich", "sandwiches", 6, 11),
    ("curry", "curries", 9, 16),
    ("taco plate", "taco plates", 7, 13),
)


def restaurant(d: Draft) -> None:
    p = person(d)
    ordered = []
    for dish, dishes, lo, hi in d.rng.sample(_DISHES, d.pick((1, 2, 3))):
        q = d.given(d.rng.randint(2, 4), f"the number of {dishes} ordered")
        cost = d.money(d.rng.randint(lo, hi), f"the price of one {dish}")
        ordered.append((q, cost, dishes))
    listed = join([f"{q} {dishes} at {cost} each" for q, cost, dishes in ordered])
    d.tell(
        d.pick(
            (f"{p.name} and {p.his} friends order {listed}.", f"At a restaurant, {p.name} orders {listed}.")
        )
    )
    costs = []
    for q, cost, dish in ordered:
        c = d.calc(q, "*", cost)
        d.say(("The {x} cost {c}.", "{x}: {c}.", "For the {x} they pay {c}."), x=dish, c=c.work)
        costs.append(c)
    bill = d.add_up(costs, ("The food costs {c}.", "The bill before extras is {c}."))
    tip = d.percent(d.pick((10, 15, 20, 25)), "the tip in percent")
    if d.chance(0.5):
        tax = d.percent(d.pick((5, 8, 10)), "the sales tax in percent")
        d.tell(
            f"There is {a_an(str(tax))} sales tax on the food, and {p.he} leaves {a_an(str(tip))} tip on "
            "the food price."
        )
        t = d.calc(bill, "*", tax, "/", 100)
        d.say(("The tax is {c}.", "Sales tax adds {c}."), c=t.work)
        g = d.calc(bill, "*", tip, "/", 100)
        d.say(("The tip is {c}.", "{p.He} tips {c}."), p=p, c=g.work)
        total = d.calc(bill, "+", t, "+", g)
    else:
        d.tell(d.pick((f"{p.He} adds {a_an(str(tip))} tip.", f"{p.He} leaves {a_an(str(tip))} tip on top.")))
        g = d.calc(bill, "*", tip, "/", 100)
        d.say(("The tip is {c}.", "{p.He} tips {c}."), p=p, c=g.work)
        total = d.calc(bill, "+", g)
    d.say(("{p.He} pays {c} in total.", "{so} the total is {c}."), p=p, so=d.word(SO), c=total.work)
    d.ask(
        total, f"How much does {p.he} pay in total?", f"{p.He} pays # in total.", f"the total {p.name} pays"
    )


_EXPENSES = ("rent", "food", "transport", "bills", "clothes", "savings", "entertainment", "books")


def budget(d: Draft) -> None:
    p = person(d)
    income = d.money(d.rng.randint(8, 60) * 100, f"{p.s} monthly income")
    d.tell(
        d.pick(
            (
                f"{p.name} earns {income} a month.",
                f"{p.s} monthly salary is {income}.",
                f"Each month {p.name} takes home {income}.",
            )
        )
    )
    spent = []
    for item in d.rng.sample(_EXPENSES[:-1], d.pick((1, 2, 3))):
        pct = d.percent(d.pick((5, 10, 15, 20, 25, 30)), f"the percent of income spent on {item}")
        d.tell(d.pick((f"{p.He} spends {pct} of it on {item}.", f"{pct} of it goes to {item}.")))
        c = d.calc(income, "*", pct, "/", 100)
        d.say(
            ("{p.He} spends {c} on {x}.", "{x} takes {c}.", "{pct} of {inc} is {c} for {x}."),
            p=p,
            x=item,
            pct=pct,
            inc=income,
            c=c.work,
        )
        spent.append(c)
    total = d.add_up(spent, ("{p.He} spends {c} in all.", "The expenses add up to {c}."), p=p)
    left = d.calc(income, "-", total)
    d.say(("{p.He} has {c} left.", "That leaves {c}.", "What is left is {c}."), p=p, c=left.work)
    d.ask(
        left,
        f"How much money does {p.he} have left each month?",
        f"{p.He} has # left each month.",
        f"the money {p.name} has left each month",
    )


_GOODS = (
    ("notebooks", "notebook"),
    ("pens", "pen"),
    ("apples", "apple"),
    ("candles", "candle"),
    ("tiles", "tile"),
    ("bottles of water", "bottle of water"),
    ("cans of soup", "can of soup"),
    ("tennis balls", "tennis ball"),
    ("batteries", "battery"),
    ("postcards", "postcard"),
    ("light bulbs", "light bulb"),
    ("bagels", "bagel"),
    ("flower bulbs", "flower bulb"),
    ("markers", "marker"),
    ("yards of fabric", "yard of fabric"),
    ("pounds of grapes", "pound of grapes"),
    ("rolls of tape", "roll of tape"),
    ("packs of gum", "pack of gum"),
)


def unit_price(d: Draft) -> None:
    p = person(d)
    many, one = d.pick(_GOODS)
    n = d.given(d.rng.randint(2, 12), f"the number of {many} in the first deal")
    each = Fraction(d.rng.randint(2, 40), 4)
    cost = d.money(n.value * each, f"the price of {n.n} {many}")
    m = d.given(d.rng.randint(2, 30), f"the number of {many} {p.name} wants")
    d.tell(
        d.pick(
            (
                f"{n} {many} cost {cost}.",
                f"A pack of {n} {many} sells for {cost}.",
                f"The store sells {n} {many} for {cost}.",
                f"At the market, {n} {many} go for {cost}.",
                f"{p.name} sees {n} {many} on sale for {cost}.",
            )
        ),
        d.pick(
            (
                f"{p.name} wants {m} {many}.",
                f"{p.name} needs {m} {many}.",
                f"{p.name} has to buy {m} {many} for a project.",
            )
        ),
    )
    if d.word((True, False)):
        u = d.calc(cost, "/", n)
        d.say(("One {o} costs {c}.", "The price of one {o} is {c}.", "Each {o} costs {c}."), o=one, c=u.work)
        total = d.calc(m, "*", u)
    else:
        total = d.calc(cost, "*", m, "/", n)
    d.say(
        ("{m} {x} cost {c}.", "{p.He} pays {c}.", "{so} {p.he} needs {c}."),
        m=m,
        x=many,
        p=p,
        so=d.word(SO),
        c=total.work,
    )
    d.ask(
        total,
        *d.pick(
            (
                (f"How much will {m} {many} cost?", f"{m} {many} cost #.", f"the price of {m} {many}"),
                (f"How much does {p.he} pay for them?", f"{p.He} pays #.", f"the amount {p.name} pays"),
                (f"What is the cost of {p.s} {many}?", "The cost is #.", f"the cost of {p.s} {many}"),
            )
        ),
    )


def simple_interest(d: Draft) -> None:
    p = person(d)
    principal = d.money(d.rng.randint(2, 50) * 100, "the amount deposited")
    rate = d.percent(d.pick((2, 3, 4, 5, 6, 8, 10, 12)), "the yearly interest rate")
    years = d.given(d.rng.randint(2, 8), "the number of years")
    where = d.pick(_ACCOUNTS)
    d.tell(
        d.pick(
            (
                f"{p.name} puts {principal} in {where}.",
                f"{p.name} invests {principal} in {where}.",
                f"{p.name} lends {principal} to a friend.",
                f"{p.name} deposits {principal} into {where}.",
                f"{p.s} grandparents put {principal} into {where} for {p.him}.",
            )
        ),
        d.pick(
            (
                f"It earns {rate} simple interest per year.",
                f"The simple interest rate is {rate} a year.",
                f"It pays simple interest of {rate} each year.",
                f"The yearly simple interest is {rate}.",
            )
        ),
        d.pick(
            (
                f"The money stays there for {years} years.",
                f"{p.He} leaves it for {years} years.",
                f"Nothing is taken out for {years} years.",
                f"{p.He} waits {years} years.",
            )
        ),
    )
    yearly = d.calc(principal, "*", rate, "/", 100)
    d.say(
        ("Each year the interest is {c}.", "One year of interest is {c}.", "{r} of {pr} is {c} a year."),
        r=rate,
        pr=principal,
        c=yearly.work,
    )
    interest = d.calc(yearly, "*", years)
    d.say(("In {y} years that is {c}.", "Over {y} years the interest is {c}."), y=years, c=interest.work)
    if d.chance(0.5):
        d.ask(
            interest,
            *d.pick(
                (
                    ("How much interest is earned?", "The interest earned is #.", "the interest earned"),
                    (
                        f"How much interest does {p.he} get in all?",
                        f"{p.He} gets # in interest.",
                        f"the total interest {p.name} gets",
                    ),
                )
            ),
        )
        return
    total = d.calc(principal, "+", interest)
    d.say(("{p.He} then has {c}.", "The total is {c}.", "The account holds {c}."), p=p, c=total.work)
    d.ask(
        total,
        *d.pick(
            (
                (
                    f"How much money does {p.he} have after {years} years?",
                    f"After {years} years {p.he} has #.",
                    f"the total after {years} years",
                ),
                (
                    f"What is the balance at the end of the {years} years?",
                    "The final balance is #.",
                    "the final balance",
                ),
            )
        ),
    )


def compound_interest(d: Draft) -> None:
    p = person(d)
    principal = d.money(d.rng.randint(1, 20) * 1000, "the amount invested")
    rate = d.percent(d.pick((5, 10, 20)), "the yearly interest rate")
    years = d.rng.randint(2, 3)
    where = d.pick(_ACCOUNTS)
    d.tell(
        *d.pick(
            (
                (f"{p.name} invests {principal} in {where} at {rate} interest compounded yearly.",),
                (
                    f"{where.capitalize()} pays {rate} interest a year, added to the balance at the end of "
                    "each year.",
                    f"{p.name} {d.pick(('deposits', 'puts in', 'saves'))} {principal}.",
                ),
                (
                    f"{p.name} puts {principal} in {where}.",
                    f"Each year the balance grows by {rate}, and the interest stays in the account.",
                ),
                (
                    f"{p.s} {d.pick(('aunt', 'uncle', 'grandmother'))} gives {p.him} {principal}, which "
                    f"{p.he} puts in {where} earning {rate} a year, compounded annually.",
                ),
            )
        ),
        d.pick(
            (
                f"{p.He} makes no other deposits or withdrawals for {years} years.",
                f"{p.He} leaves it alone for {years} years.",
                f"The money stays untouched for {years} years.",
            )
        ),
    )
    balance = principal
    for year in range(1, years + 1):
        gain = d.calc(balance, "*", rate, "/", 100)
        d.say(("Interest in year {y}: {c}.", "In year {y} the interest is {c}."), y=year, c=gain.work)
        balance = d.calc(balance, "+", gain)
        d.say(("After year {y} the balance is {c}.", "Now the balance is {c}."), y=year, c=balance.work)
    d.ask(
        balance,
        *d.pick(
            (
                (
                    f"How much is in the account after {years} years?",
                    f"After {years} years there is #.",
                    f"the balance after {years} years",
                ),
                (
                    f"How much money does {p.he} have after {years} years?",
                    f"{p.He} has # after {years} years.",
                    f"{p.s} money after {years} years",
                ),
                ("What is the final balance?", "The final balance is #.", "the final balance"),
            )
        ),
    )


_WARES = (
    ("lemonade cups", "cup"),
    ("bracelets", "bracelet"),
    ("used books", "book"),
    ("plants", "plant"),
    ("phone cases", "case"),
    ("candles", "candle"),
    ("t-shirts", "shirt"),
    ("handmade cards", "card"),
)


def profit(d: Draft) -> None:
    p = person(d)
    wares, one = d.pick(_WARES)
    n = d.given(d.rng.randint(10, 80), f"the number of {wares}")
    buy = d.money(Fraction(d.rng.randint(2, 40), 4), f"the cost of one {one}")
    sell = d.money(buy.value + Fraction(d.rng.randint(1, 20), 4), f"the selling price of one {one}")
    place = d.pick(
        (
            "at the school fair",
            "at a flea market",
            "online",
            "at the farmers market",
            "at a craft show",
            "to neighbors",
            "at a yard sale",
            "at the beach",
        )
    )
    d.tell(
        d.pick(
            (
                f"{p.name} buys {n} {wares} for {buy} each.",
                f"{p.name} makes {n} {wares} at a cost of {buy} each.",
                f"It costs {p.name} {buy} to make each of {n} {wares}.",
                f"{p.name} orders {n} {wares} at {buy} each.",
            )
        ),
        d.pick(
            (
                f"{p.He} sells all of them {place} for {sell} each.",
                f"{p.He} sells every one {place} for {sell}.",
                f"{place.capitalize()}, {p.he} sells each one for {sell}, and all of them sell.",
            )
        ),
    )
    if d.word((True, False)):
        margin = d.calc(sell, "-", buy)
        d.say(("{p.He} makes {c} on each one.", "The profit per {o} is {c}."), p=p, o=one, c=margin.work)
        total = d.calc(margin, "*", n)
    else:
        spent = d.calc(n, "*", buy)
        d.say(("The {w} cost {c}.", "{p.He} spends {c}."), w=wares, p=p, c=spent.work)
        got = d.calc(n, "*", sell)
        d.say(("{p.He} takes in {c}.", "Sales bring in {c}."), p=p, c=got.work)
        total = d.calc(got, "-", spent)
    d.say(("{p.His} profit is {c}.", "{p.He} makes {c} in profit."), p=p, c=total.work)
    d.ask(
        total,
        *d.pick(
            (
                (f"How much profit does {p.he} make?", f"{p.He} makes # in profit.", f"{p.s} profit"),
                (
                    f"How much money does {p.he} make after paying for the {wares}?",
                    f"{p.He} makes #.",
                    f"the money {p.name} makes after costs",
                ),
                ("What is the total profit?", "The total profit is #.", "the total profit"),
            )
        ),
    )


_BIG_BUYS = (
    "laptop",
    "sofa",
    "bicycle",
    "television",
    "washing machine",
    "piano",
    "camera",
    "refrigerator",
    "used car",
    "drum set",
    "dining table",
    "treadmill",
    "sewing machine",
    "canoe",
)


def installments(d: Draft) -> None:
    p = person(d)
    thing = d.pick(_BIG_BUYS)
    months = d.pick((3, 4, 5, 6, 8, 10, 12))
    monthly = d.rng.randint(2, 30) * 10
    down = d.money(d.rng.randint(1, 20) * 25, "the down payment")
    cost = d.money(down.value + months * monthly, f"the price of the {thing}")
    m = d.given(months, "the number of monthly payments")
    d.tell(
        d.pick(
            (
                f"{p.name} buys a {thing} for {cost}.",
                f"A {thing} costs {cost}.",
                f"{p.name} wants a {thing} that sells for {cost}.",
                f"The {thing} {p.name} picks out is {cost}.",
            )
        ),
        d.pick(
            (
                f"{p.He} pays {down} up front and the rest in {m} equal monthly payments.",
                f"{p.He} makes a down payment of {down} and pays off the rest over {m} months in equal "
                "parts.",
                f"The store lets {p.him} pay {down} now and split the rest evenly over {m} months.",
                f"After a {down} deposit, the balance is paid in {m} equal monthly installments.",
            )
        ),
    )
    rest = d.calc(cost, "-", down)
    d.say(
        ("After the down payment, {c} is left.", "{p.He} still owes {c}.", "The rest is {c}."),
        p=p,
        c=rest.work,
    )
    each = d.calc(rest, "/", m)
    d.say(("Each payment is {c}.", "Every month {p.he} pays {c}.", "That is {c} a month."), p=p, c=each.work)
    d.ask(
        each,
        *d.pick(
            (
                ("How much is each monthly payment?", "Each monthly payment is #.", "the monthly payment"),
                (
                    f"How much does {p.he} pay each month?",
                    f"{p.He} pays # each month.",
                    f"the amount {p.name} pays each month",
                ),
            )
        ),
    )


_ACCOUNTS = (
    "a savings account",
    "a bank account",
    "a credit union account",
    "a bond",
    "a certificate of deposit",
    "a college fund",
    "a money market account",
    "a retirement account",
)


FAMILIES = {
    "discount": Family(discount, opening=True),
    "tickets": Family(tickets, opening=True, observer=True),
    "wages": Family(wages),
    "restaurant": Family(restaurant, opening=True),
    "budget": Family(budget),
    "unit_price": Family(unit_price, opening=True, observer=True),
    "simple_interest": Family(simple_interest, opening=True),
    "compound_interest": Family(compound_interest, opening=True, observer=True),
    "profit": Family(profit, opening=True),
    "installments": Family(installments, opening=True),
}
