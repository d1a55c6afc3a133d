"""Property: on random shops and random rules, the compiled SQL selects exactly what the Python oracle selects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audience_oracle import Customer, Ev, Line, Oracle, Run, Send, Shop, load, register_engagement
from pleasepoint_cli.audience import funnel, parse_rule, rule_to_data, select_customers
from pleasepoint_cli.audience.validate import walk
from pleasepoint_cli.store.connection import Store
from pleasepoint_cli.store.connection import memory_store as new_memory_store
from pleasepoint_cli.store.migrations import apply_migrations

AS_OF = [
    datetime(2024, 3, 1, 12, 0),
    datetime(2024, 2, 29, 18, 30),
    datetime(2023, 12, 31, 9, 0),
    datetime(2023, 2, 28, 8, 0),
]
EMAILS = [
    "ana@example.com",
    " Luis.Perez@Example.ORG ",
    "pepe@sub.example.es",
    "o'neil+news@example.com",
    "bad-email",
    "",
    "   ",
    "x@y",
    "a..b@example.com",
    ".a@example.com",
    "a@-example.com",
    "a@example.c0m",
    "maría@example.com",
    "two@@example.com",
    None,
    "eva@example.net",
    "ines@example.es",
    "EVA@example.net",
]
STORES = {"S1": (40.0, -3.0), "S2": (40.05, -3.05), "S3": (None, None)}
PRODUCTS = {"P1": "A", "P2": "A", "P3": "B", "P4": None}
ATTRIBUTE_KEYS = ["tier", "score", "level"]
ATTRIBUTE_VALUES = ["high", "low", "3", "10", "7.5", "abc"]
FIELD_VALUES = {
    "city": ["Madrid", "Sevilla", "", " "],
    "gender": ["F", "M"],
    "country": ["ES", "PT"],
    "postal_code": ["28001", "41001"],
    "language": ["es", "ca"],
}
CLICK_BEFORE_ORDER = [
    timedelta(days=-1),
    timedelta(0),
    timedelta(hours=2),
    timedelta(days=6, hours=23),
    timedelta(days=7),
    timedelta(days=7, seconds=1),
    timedelta(days=9),
]
"""How long before an order a click happened (the attribution window is 7 days, ends included)."""
SOURCES = ["primavera", "verano", "bienvenida"]
ENGAGEMENT_DAYS_AGO = [-1, 0, 1, 6, 7, 8, 29, 30, 31, 89, 90, 91, 200]
"""Days before the as-of date of the sends: around the within_days of the engagement leaves drawn."""
DAYS_AGO = [-1, 0, 1, 7, 15, 16, 30, 90, 91, 181, 182, 183, 364, 365, 400, 729, 730]
"""Days before the as-of date around the thresholds rules use (recency, states, within_days)."""


def _birth_dates(as_of: datetime) -> st.SearchStrategy[date | None]:
    near = st.builds(
        lambda year, shift: _with_year(as_of.date() + timedelta(days=shift), year),
        st.integers(1950, 2012),
        st.integers(-3, 40),
    )
    fixed = st.sampled_from([date(2000, 2, 29), date(1996, 2, 29), date(1990, 3, 1), date(1985, 12, 31)])
    # Exactly 18, 30 or 65 years before the as-of date, give or take a day: the age boundaries.
    aged = st.builds(
        lambda years, shift: _with_year(as_of.date(), as_of.year - years) + timedelta(days=shift),
        st.sampled_from([18, 30, 65]),
        st.integers(-1, 1),
    )
    return st.one_of(st.none(), near, fixed, aged, st.dates(date(1940, 1, 1), date(2012, 12, 31)))


def _with_year(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


@st.composite
def shops(draw: st.DrawFn) -> tuple[Shop, datetime]:
    as_of = draw(st.sampled_from(AS_OF))
    shop = Shop(products=dict(PRODUCTS), stores=dict(STORES))
    n = draw(st.integers(2, 14))
    order_number = 0
    for i in range(n):
        cid = f"C{i:02d}"
        located = draw(st.booleans())
        customer = Customer(
            customer_id=cid,
            email=draw(st.sampled_from(EMAILS)),
            email_consent=draw(st.sampled_from([True, True, False, None])),
            lat=40.0 + draw(st.integers(-8, 12)) * 0.01 if located else None,
            lon=-3.0 + draw(st.integers(-12, 8)) * 0.01 if located else None,
            birth_date=draw(_birth_dates(as_of)),
            city=draw(st.sampled_from([None, *FIELD_VALUES["city"]])),
            gender=draw(st.sampled_from([None, *FIELD_VALUES["gender"]])),
            country=draw(st.sampled_from([None, *FIELD_VALUES["country"]])),
            postal_code=draw(st.sampled_from([None, *FIELD_VALUES["postal_code"]])),
            language=draw(st.sampled_from([None, *FIELD_VALUES["language"]])),
            erased_at=draw(st.sampled_from([None, None, None, datetime(2023, 6, 1)])),
        )
        shop.customers.append(customer)
        if draw(st.booleans()):  # a regular buyer: a few orders at a fixed gap, often right on a boundary
            start = draw(st.sampled_from(DAYS_AGO))
            gap = draw(st.sampled_from([3, 4, 9, 10, 19, 20, 30, 40, 41, 120, 121]))
            jitter = draw(st.sampled_from([0, 0, 1]))
            days_ago = [
                start + k * gap + draw(st.integers(0, jitter)) for k in range(draw(st.integers(2, 5)))
            ]
        else:
            days_ago = draw(st.lists(st.one_of(st.sampled_from(DAYS_AGO), st.integers(-3, 900)), max_size=5))
        for ago in days_ago:
            order_number += 1
            # Few distinct times of day, so that two orders in different stores can tie on time.
            minute = draw(st.sampled_from([0, 600, 600, 1439]))
            when = datetime.combine(as_of.date() - timedelta(days=ago), datetime.min.time()) + timedelta(
                minutes=minute
            )
            store = draw(st.sampled_from([None, "S1", "S2", "S3", "S9"]))
            for _ in range(draw(st.integers(1, 2))):
                shop.lines.append(
                    Line(
                        order_id=f"O{order_number}",
                        customer_id=cid,
                        ordered_at=when,
                        product_id=draw(st.sampled_from(list(PRODUCTS))),
                        quantity=draw(st.sampled_from([1, 2, 3, -1])),
                        unit_price=draw(st.integers(1, 30)),
                        store_id=store,
                    )
                )
        for key in draw(st.lists(st.sampled_from(ATTRIBUTE_KEYS), unique=True)):
            shop.attributes[(cid, key)] = draw(st.sampled_from(ATTRIBUTE_VALUES))
    send_number = 0
    for c in shop.customers:  # marketing emails and what the customer did with them
        for _ in range(draw(st.integers(0, 3))):
            send_number += 1
            sent = datetime.combine(
                as_of.date() - timedelta(days=draw(st.sampled_from(ENGAGEMENT_DAYS_AGO))), datetime.min.time()
            ) + timedelta(minutes=draw(st.sampled_from([0, 600, 1439])))
            send = Send(
                f"S{send_number}",
                c.customer_id,
                draw(st.sampled_from(SOURCES)),
                kind=draw(st.sampled_from(["campaign", "campaign", "automation", "test"])),
                status=draw(st.sampled_from(["sent", "sent", "sent", "bounced", "queued"])),
                sent_at=sent,
            )
            shop.sends.append(send)
            orders = [line.ordered_at for line in shop.lines if line.customer_id == c.customer_id]
            if orders and draw(st.booleans()):  # a click just before (or after) an order: conversions
                before = draw(st.sampled_from(CLICK_BEFORE_ORDER))
                shop.events.append(Ev(send.send_id, "click", draw(st.sampled_from(orders)) - before))
            for _ in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(["open", "open", "click", "delivered", "bounce"]))
                subkind = draw(st.sampled_from(["", "machine"])) if kind == "open" else ""
                later = timedelta(hours=draw(st.sampled_from([0, 1, 30, 24 * 5, 24 * 8, 24 * 40])))
                shop.events.append(Ev(send.send_id, kind, sent + later, subkind))
    emails = [c.email for c in shop.customers if c.email]
    if emails:
        shop.suppressed_emails = draw(st.lists(st.sampled_from(emails), max_size=3))
    runs = draw(st.sampled_from([0, 1, 2, 2]))
    for run_id in range(1, runs + 1):
        shop.runs.append(
            Run(run_id, draw(st.sampled_from(["r-a", "r-b"])), datetime(2024, 1, draw(st.integers(1, 2))))
        )
        for c in shop.customers:
            if draw(st.booleans()):
                shop.assignments[(run_id, c.customer_id)] = draw(st.integers(1, 3))
    return shop, as_of


def _bounds(values: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(["gte", "lte", "gt", "lt"]), st.sampled_from(values), min_size=1)


def _text_ops(values: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """One text operator, sometimes two (more would select nobody most of the time)."""
    some = st.lists(st.sampled_from(values), min_size=1, max_size=3)
    one = st.one_of(
        st.sampled_from(values).map(lambda v: {"equals": v}),
        st.sampled_from(values).map(lambda v: {"not_equals": v}),
        some.map(lambda v: {"in": v}),
        some.map(lambda v: {"not_in": v}),
        st.booleans().map(lambda v: {"exists": v}),
    )
    return st.one_of(one, st.builds(lambda a, b: {**a, **b}, one, one))


def _cluster() -> st.SearchStrategy[dict[str, Any]]:
    ref = st.fixed_dictionaries(
        {"cluster": st.integers(1, 3)},
        optional={
            "run": st.sampled_from(["latest", 1, 2, 3, "r-a", "r-b"]),
            "name": st.sampled_from(["r-a", "r-b"]),
        },
    ).filter(lambda d: not (isinstance(d.get("run"), str) and d["run"] != "latest" and "name" in d))
    return ref.map(lambda d: {"cluster": d})


def _attribute() -> st.SearchStrategy[dict[str, Any]]:
    numeric = _bounds([0, 3, 5, 7.5, 10])
    return st.builds(
        lambda key, ops: {"attribute": key, **ops},
        st.sampled_from(ATTRIBUTE_KEYS),
        st.one_of(_text_ops(ATTRIBUTE_VALUES), numeric),
    )


def _engagement() -> st.SearchStrategy[dict[str, Any]]:
    measure = st.one_of(
        st.booleans().map(lambda b: {"opened": b}),
        st.builds(lambda b, m: {"opened": b, "machine_opens": m}, st.booleans(), st.booleans()),
        st.booleans().map(lambda b: {"clicked": b}),
        _bounds([0, 1, 2, 3]).map(lambda b: {"received": b}),
    )
    window = st.sampled_from(
        [{}, {"within_days": 0}, {"within_days": 7}, {"within_days": 30}, {"within_days": 90}]
    )
    source = st.sampled_from(
        [{}, {}, {"campaign": "primavera"}, {"campaign": "otra"}, {"automation": "bienvenida"}]
    )
    return st.builds(lambda m, w, s: {"engagement": {**m, **w, **s}}, measure, window, source)


LEAF_KINDS: list[st.SearchStrategy[dict[str, Any]]] = [
    _cluster(),
    _attribute(),
    _bounds([0, 10, 30, 182, 365, 400, 730]).map(lambda b: {"recency_days": b}),
    _bounds([0, 1, 2, 3, 5]).map(lambda b: {"orders": b}),
    _bounds([0, 10, 25.5, 50, 100]).map(lambda b: {"spend": b}),
    _bounds([0, 18, 30, 65]).map(lambda b: {"age": b}),
    st.builds(
        lambda what, within: {"bought": {**what, **within}},
        st.one_of(
            st.sampled_from(["A", "B", ["A", "B"]]).map(lambda v: {"category": v}),
            st.sampled_from(["P1", "P4", ["P2", "P3"]]).map(lambda v: {"product": v}),
        ),
        st.sampled_from(
            [{}, {"within_days": 0}, {"within_days": 7}, {"within_days": 30}, {"within_days": 365}]
        ),
    ),
    st.builds(
        lambda name, within: {"pattern": name, **within},
        st.sampled_from(["frequent", "weekly", "fortnightly", "monthly", "quarterly", "occasional"]),
        st.sampled_from(
            [{}, {"bought_within_days": 0}, {"bought_within_days": 15}, {"bought_within_days": 40}]
        ),
    ),
    st.sampled_from(
        ["today", {"within_days": 1}, {"within_days": 7}, {"within_days": 40}, {"within_days": 366}]
    ).map(lambda b: {"birthday": b}),
    st.builds(
        lambda store, km: {"near_store": {"store": store, "km": km}},
        st.sampled_from(["preferred", "any", "S1", "S2", "S3"]),
        st.sampled_from([0.5, 2, 5, 20]),
    ),
    st.booleans().map(lambda b: {"consent": b}),
    st.booleans().map(lambda b: {"contactable": b}),
    st.one_of(
        st.sampled_from(["active", "inactive", "hibernating", "lost"]),
        st.lists(st.sampled_from(["active", "inactive", "hibernating", "lost"]), min_size=1, max_size=3),
    ).map(lambda s: {"state": s}),
    st.one_of(
        *(
            _text_ops(values).map(lambda ops, name=name: {"field": {"name": name, **ops}})
            for name, values in FIELD_VALUES.items()
        )
    ),
    _engagement(),
    _bounds([0, 1, 7, 30, 90]).map(lambda b: {"last_conversion_days": b}),
]
LEAVES = st.one_of(*LEAF_KINDS)
EVERY_LEAF = st.tuples(*LEAF_KINDS)
"""One leaf of every kind, so each example checks every kind, whatever the random nesting drew."""

RULES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        children.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)


TABLES = (
    "customers",
    "products",
    "stores",
    "order_lines",
    "customer_attributes",
    "suppressions",
    "persona_runs",
    "persona_assignments",
)


@pytest.fixture(scope="module")
def memory_store() -> Iterator[Store]:
    """One migrated in-memory store for every example (emptied before each): migrating takes longer than a test."""
    store = new_memory_store()
    apply_migrations(store)
    yield store
    store.close()


@settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(shop_and_as_of=shops(), leaves=EVERY_LEAF, rules=st.lists(RULES, min_size=2, max_size=4))
def test_compiled_sql_selects_what_the_oracle_selects(
    memory_store: Store, shop_and_as_of: tuple[Shop, datetime], leaves: tuple[Any, ...], rules: list[Any]
) -> None:
    store = memory_store
    shop, as_of = shop_and_as_of
    oracle = Oracle(shop, as_of)
    for table in TABLES:
        store.con.execute(f"DELETE FROM {table}")
    load(store.con, shop)
    register_engagement(store, shop)
    for data in leaves:
        leaf = parse_rule(data)
        assert select_customers(store, leaf, as_of=as_of, marketing=False) == oracle.select(leaf, False), data
    for data in rules:
        rule = parse_rule(data)
        # Every node of the rule, not only the root: each one is a rule of its own.
        for node, _ in walk(rule, ()):
            selected = select_customers(store, node, as_of=as_of, marketing=False)
            assert selected == oracle.select(node, marketing=False), rule_to_data(node)
        selected = select_customers(store, rule, as_of=as_of, marketing=True)
        assert selected == oracle.select(rule, marketing=True), rule_to_data(rule)
        counts = [step.customers for step in funnel(store, rule, as_of=as_of, marketing=True)]
        assert counts[0] == len(shop.customers)
        assert counts == sorted(counts, reverse=True)
        assert counts[-1] == len(selected)


@settings(max_examples=60, deadline=None)
@given(data=RULES)
def test_a_rule_survives_the_round_trip_through_yaml_data(data: Any) -> None:
    rule = parse_rule(data)
    assert parse_rule(rule_to_data(rule)) == rule
