"""The compiler on hand-computed cases, each on a boundary of a definition in docs/audiences.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from audience_oracle import Customer, Line, Run, Shop, load
from pleasepoint_cli.audience import compile_rule, funnel, parse_rule, preferred_store_sql, select_customers
from pleasepoint_cli.config import Settings, StateThresholds
from pleasepoint_cli.store import Store

AS_OF = date(2024, 3, 1)


def _shop(*customers: Customer, lines: list[Line] | None = None, **kw: Any) -> Shop:
    return Shop(customers=list(customers), lines=lines or [], products={"P1": "Plantas", "P2": "Hogar"}, **kw)


def _at(days_ago: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(AS_OF - timedelta(days=days_ago), datetime.min.time()) + timedelta(
        hours=hour, minutes=minute
    )


def _buyer(cid: str, days_ago: list[int], store: str | None = None, product: str = "P1") -> list[Line]:
    return [Line(f"{cid}-{i}", cid, _at(ago), product, 1, 10.0, store) for i, ago in enumerate(days_ago)]


def _select(store: Store, data: Any, as_of: date | datetime = AS_OF, **kw: Any) -> list[str]:
    return select_customers(store, parse_rule(data), as_of=as_of, marketing=False, **kw)


def test_a_monthly_pattern_is_a_median_gap_from_20_to_40_days_over_3_purchase_days(store: Store) -> None:
    lines = [
        *_buyer("gap20", [0, 20, 40]),
        *_buyer("gap40", [0, 40, 80]),
        *_buyer("gap41", [0, 41, 82]),
        *_buyer("gap19", [0, 19, 38]),
        *_buyer("two_days", [0, 30]),  # one gap only: no pattern
        *_buyer("even", [0, 10, 40]),  # gaps 10 and 30: median 20
        *_buyer("same_day", [0, 0, 30]),  # two orders on one day are one purchase day: no pattern
        *_buyer("median", [0, 5, 35, 200]),  # gaps 5, 30, 165: median 30
    ]
    load(store.con, _shop(*(Customer(c) for c in sorted({line.customer_id for line in lines})), lines=lines))
    assert _select(store, {"pattern": "monthly"}) == ["even", "gap20", "gap40", "median"]
    assert _select(store, {"pattern": "quarterly"}) == ["gap41"]
    assert _select(store, {"pattern": "fortnightly"}) == ["gap19"]


def test_bought_within_days_counts_calendar_days_back_from_the_as_of_day(store: Store) -> None:
    lines = [
        Line("a", "edge", _at(15, 0, 0), "P1", 1, 1, None),  # 15 days ago at midnight: within 15
        Line("b", "out", _at(16, 23, 59), "P1", 1, 1, None),  # 16 days ago: not
        Line("c", "future", _at(-1), "P1", 1, 1, None),  # after the as-of day: ignored
        Line(
            "d", "today", datetime.combine(AS_OF, datetime.max.time()), "P1", 1, 1, None
        ),  # the as-of day counts
        Line("e", "returned", _at(3), "P1", -1, 1, None),  # a return is not a purchase
        Line("f", "other", _at(3), "P2", 1, 1, None),
    ]
    customers = [Customer(c) for c in ("edge", "future", "other", "out", "returned", "today")]
    load(store.con, _shop(*customers, lines=lines))
    assert _select(store, {"bought": {"category": "Plantas", "within_days": 15}}) == ["edge", "today"]
    assert _select(store, {"bought": {"product": ["P1", "P2"]}}) == ["edge", "other", "out", "today"]


def test_recency_states_use_the_thresholds_first_day_of_the_next_state(store: Store) -> None:
    lines = [*_buyer("d181", [181]), *_buyer("d182", [182]), *_buyer("d729", [729]), *_buyer("d730", [730])]
    load(store.con, _shop(*(Customer(c) for c in ("d181", "d182", "d729", "d730", "never")), lines=lines))
    assert _select(store, {"state": "active"}) == ["d181"]
    assert _select(store, {"state": ["inactive", "hibernating"]}) == ["d182", "d729"]
    assert _select(store, {"state": "lost"}) == ["d730"]
    # Someone who never bought has no recency: no state, and so is "not lost".
    assert _select(store, {"not": {"state": "lost"}}) == ["d181", "d182", "d729", "never"]
    assert _select(store, {"recency_days": {"gte": 182, "lt": 730}}) == ["d182", "d729"]
    settings = Settings(states=StateThresholds(active_below=100, inactive_below=200, hibernating_below=300))
    assert _select(store, {"state": "lost"}, settings=settings) == ["d729", "d730"]


def test_orders_are_distinct_purchase_orders_and_spend_is_net_of_returns(store: Store) -> None:
    lines = [
        Line("o1", "a", _at(10), "P1", 2, 10.0, None),
        Line("o1", "a", _at(10), "P2", 1, 5.0, None),  # same order: still one
        Line("o2", "a", _at(5), "P1", -1, 10.0, None),  # a return: an order of its own, not a purchase
    ]
    load(store.con, _shop(Customer("a"), Customer("b"), lines=lines))
    assert _select(store, {"orders": {"gte": 1, "lte": 1}}) == ["a"]
    assert _select(store, {"orders": {"lt": 1}}) == ["b"]  # no orders is 0 orders
    assert _select(store, {"spend": {"gte": 15, "lte": 15}}) == ["a"]  # 20 + 5 - 10
    assert _select(store, {"spend": {"lte": 0}}) == ["b"]


def test_the_preferred_store_has_most_orders_then_the_latest_then_the_smallest_id(store: Store) -> None:
    near_t2 = (40.1, -3.0)  # T2's position; T1 is 11 km south, T3 as well but 11 km north
    lines = [
        # most orders: T1 (2) over T2 (1), even though T2 is later
        Line("a1", "most", _at(30), "P1", 1, 1, "T1"),
        Line("a2", "most", _at(20), "P1", 1, 1, "T1"),
        Line("a3", "most", _at(10), "P1", 1, 1, "T2"),
        # a tie on orders: the latest order wins (T2)
        Line("b1", "latest", _at(30), "P1", 1, 1, "T1"),
        Line("b2", "latest", _at(10), "P1", 1, 1, "T2"),
        # a tie on orders and time: the smallest id wins (T2 < T3)
        Line("c1", "smallest", _at(10), "P1", 1, 1, "T3"),
        Line("c2", "smallest", _at(10), "P1", 1, 1, "T2"),
        # returns do not count
        Line("d1", "returns", _at(30), "P1", 1, 1, "T2"),
        Line("d2", "returns", _at(20), "P1", -1, 1, "T1"),
        Line("d3", "returns", _at(19), "P1", -1, 1, "T1"),
    ]
    customers = [
        Customer(c, lat=near_t2[0], lon=near_t2[1]) for c in ("latest", "most", "returns", "smallest")
    ]
    stores = {"T1": (40.0, -3.0), "T2": near_t2, "T3": (40.2, -3.0)}
    load(store.con, _shop(*customers, lines=lines, stores=stores))
    assert _select(store, {"near_store": {"store": "preferred", "km": 1}}) == [
        "latest",
        "returns",
        "smallest",
    ]
    # "most" prefers T1, 0.1 degree of latitude away: 11.12 km.
    assert "most" in _select(store, {"near_store": {"store": "preferred", "km": 11.13}})
    assert "most" not in _select(store, {"near_store": {"store": "preferred", "km": 11.11}})
    assert dict(store.con.execute(preferred_store_sql()).fetchall()) == {
        "most": "T1",
        "latest": "T2",
        "smallest": "T2",
        "returns": "T2",
    }


def test_near_store_is_the_great_circle_distance(store: Store) -> None:
    # Madrid (Puerta del Sol) to Barcelona (Plaça de Catalunya): about 505 km along the great circle.
    stores = {"MAD": (40.4169, -3.7035), "BCN": (41.3870, 2.1701)}
    customers = [Customer("bcn", lat=41.3870, lon=2.1701), Customer("nowhere")]
    load(store.con, _shop(*customers, stores=stores))
    assert _select(store, {"near_store": {"store": "MAD", "km": 506}}) == ["bcn"]
    assert _select(store, {"near_store": {"store": "MAD", "km": 504}}) == []
    assert _select(store, {"near_store": {"store": "any", "km": 1}}) == ["bcn"]


def test_age_and_birthdays_on_29_february(store: Store) -> None:
    customers = [
        Customer("leap", birth_date=date(2004, 2, 29)),
        Customer("eve", birth_date=date(1990, 12, 31)),
        Customer("jan2", birth_date=date(1990, 1, 2)),
        Customer("feb28", birth_date=date(2005, 2, 28)),
        Customer("mar1", birth_date=date(2005, 3, 1)),
        Customer("unknown"),
    ]
    load(store.con, _shop(*customers))
    # In a common year a 29 February birthday is kept on the 28th; the age turns on 1 March.
    assert _select(store, {"birthday": "today"}, as_of=date(2023, 2, 28)) == ["feb28", "leap"]
    assert _select(store, {"age": {"gte": 19}}, as_of=date(2023, 2, 28)) == ["eve", "jan2"]
    assert _select(store, {"age": {"gte": 19}}, as_of=date(2023, 3, 1)) == ["eve", "jan2", "leap"]
    assert _select(store, {"age": {"lte": 18}}, as_of=date(2023, 2, 28)) == ["feb28", "leap", "mar1"]
    assert _select(store, {"age": {"lt": 18}}, as_of=date(2023, 2, 28)) == ["mar1"]
    # On 29 February of a leap year, someone born on 28 February 2005 is 19, someone born on 1 March is not.
    assert _select(store, {"age": {"gte": 19, "lt": 20}}, as_of=date(2024, 2, 29)) == ["feb28"]
    # The birthday itself: 34 on the day.
    assert _select(store, {"age": {"gte": 34}}, as_of=date(2024, 1, 2)) == ["jan2"]
    assert _select(store, {"age": {"gte": 34}}, as_of=date(2024, 1, 1)) == []
    assert _select(store, {"age": {"gt": 33, "lt": 35}}, as_of=date(2024, 1, 2)) == ["jan2"]
    # A window that crosses the new year finds next year's birthdays.
    assert _select(store, {"birthday": {"within_days": 2}}, as_of=date(2023, 12, 31)) == ["eve", "jan2"]
    assert _select(store, {"birthday": {"within_days": 1}}, as_of=date(2023, 12, 31)) == ["eve"]


def test_text_operators_treat_a_missing_value_as_different(store: Store) -> None:
    customers = [Customer("madrid", city="Madrid"), Customer("blank", city=" "), Customer("none")]
    attributes = {("madrid", "score"): "7.5", ("blank", "score"): "alto"}
    load(store.con, _shop(*customers, attributes=attributes))
    assert _select(store, {"field": {"name": "city", "not_equals": "Madrid"}}) == ["blank", "none"]
    assert _select(store, {"field": {"name": "city", "exists": True}}) == ["madrid"]
    assert _select(store, {"attribute": "score", "not_in": ["7.5"]}) == ["blank", "none"]
    assert _select(store, {"attribute": "score", "exists": False}) == ["none"]
    assert _select(store, {"attribute": "score", "gt": 7}) == ["madrid"]  # 'alto' is not a number
    assert _select(store, {"attribute": "score", "equals": 7.5}) == ["madrid"]  # compared as text


def test_the_guards_and_contactable(store: Store) -> None:
    ok = {"email_consent": True}
    customers = [
        Customer("ok", email="Ana@Example.com", **ok),
        Customer("spaces", email="  eva@example.org ", **ok),
        Customer("suppressed", email="Luis@Example.com ", **ok),
        Customer("invalid", email="luis@example", **ok),
        Customer("empty", email="", **ok),
        Customer("no_consent", email="pepe@example.com", email_consent=False),
        Customer("erased", email="rosa@example.com", erased_at=datetime(2024, 1, 1), **ok),
    ]
    load(store.con, _shop(*customers, suppressed_emails=["luis@example.com"]))
    rule = parse_rule({"consent": True})
    assert select_customers(store, rule, as_of=AS_OF) == ["ok", "spaces"]
    assert [s.customers for s in funnel(store, rule, as_of=AS_OF)] == [7, 6, 4, 3, 2, 2]
    assert _select(store, {"contactable": True}) == ["erased", "no_consent", "ok", "spaces"]
    assert _select(store, {"contactable": False}) == ["empty", "invalid", "suppressed"]


def test_under_the_guards_a_leaf_that_repeats_one_is_a_constant(store: Store) -> None:
    """With the marketing guards, `consent` and `contactable` say what a guard already says: the address check
    and the suppression lookup run once per customer however often a rule repeats them (the funnel, which
    computes every step for every customer, took twice as long when each ran its own)."""
    rule = parse_rule({"all": [{"contactable": True}, {"not": {"contactable": False}}, {"consent": True}]})
    compiled = compile_rule(rule, as_of=AS_OF)
    assert compiled.sql.count("regexp_full_match") == 1 and compiled.sql.count("sha256(") == 1
    unguarded = compile_rule(rule, as_of=AS_OF, marketing=False).sql
    assert unguarded.count("regexp_full_match") == 2 and "email_consent" in unguarded
    ok = {"email_consent": True}
    customers = [
        Customer("ok", email="ana@example.com", **ok),
        Customer("invalid", email="luis@example", **ok),
        Customer("no_consent", email="pepe@example.com", email_consent=False),
    ]
    load(store.con, _shop(*customers))
    assert select_customers(store, rule, as_of=AS_OF) == ["ok"]
    assert select_customers(store, parse_rule({"not": {"contactable": True}}), as_of=AS_OF) == []
    assert select_customers(store, parse_rule({"consent": False}), as_of=AS_OF) == []
    assert [s.customers for s in funnel(store, rule, as_of=AS_OF)] == [3, 2, 1, 1, 1, 1, 1, 1]


def test_clusters_resolve_latest_ids_and_names(store: Store) -> None:
    runs = [
        Run(1, "a", datetime(2024, 1, 1)),
        Run(2, "b", datetime(2024, 1, 2)),
        Run(3, "a", datetime(2024, 1, 2)),
    ]
    assignments = {(1, "x"): 1, (2, "y"): 1, (3, "z"): 1, (3, "x"): 2}
    load(store.con, _shop(Customer("x"), Customer("y"), Customer("z"), runs=runs, assignments=assignments))
    assert _select(store, {"cluster": {"cluster": 1}}) == ["z"]  # latest: run 3 (ties on time: highest id)
    assert _select(store, {"cluster": {"run": "b", "cluster": 1}}) == ["y"]
    assert _select(store, {"cluster": {"run": 1, "cluster": 1}}) == ["x"]
    assert _select(store, {"cluster": {"name": "a", "cluster": 2}}) == ["x"]


def test_the_as_of_date_is_the_whole_day_and_an_aware_time_is_shop_time(store: Store) -> None:
    lines = [Line("late", "a", datetime(2024, 3, 1, 23, 30), "P1", 1, 1, None)]
    load(store.con, _shop(Customer("a"), lines=lines))
    assert _select(store, {"orders": {"gte": 1}}, as_of=date(2024, 3, 1)) == ["a"]
    assert _select(store, {"orders": {"gte": 1}}, as_of=datetime(2024, 3, 1, 23, 0)) == []
    # 22:45 UTC is 23:45 in Madrid (CET): the order of 23:30 has happened.
    assert _select(store, {"orders": {"gte": 1}}, as_of=datetime(2024, 3, 1, 22, 45, tzinfo=UTC)) == ["a"]


def test_values_travel_as_parameters_never_as_sql(store: Store) -> None:
    nasty = "x'); DROP TABLE customers; --"
    compiled = compile_rule(
        parse_rule(
            {"any": [{"attribute": nasty, "equals": nasty}, {"field": {"name": "city", "in": [nasty]}}]}
        ),
        as_of=AS_OF,
    )
    assert nasty not in compiled.sql
    assert compiled.params.count(nasty) == 3
    load(store.con, _shop(Customer("a", city=nasty, email="a@example.com", email_consent=True)))
    assert store.con.execute(compiled.sql, compiled.params).fetchall() == [("a",)]
    assert store.scalar("SELECT count(*) FROM customers") == 1


@pytest.mark.parametrize("marketing", [True, False])
def test_the_compiled_sql_nests_as_a_subquery(store: Store, marketing: bool) -> None:
    lines = _buyer("a", [1, 31, 61], store="T1")
    load(store.con, _shop(Customer("a", email="a@example.com", email_consent=True), lines=lines))
    compiled = compile_rule(
        parse_rule({"all": [{"pattern": "monthly"}, {"recency_days": {"lte": 5}}]}),
        as_of=AS_OF,
        marketing=marketing,
    )
    count = store.scalar(
        f"SELECT count(*) FROM customers WHERE customer_id IN ({compiled.sql}) AND customer_id = ?",
        [*compiled.params, "a"],
    )
    assert count == 1


def test_facts_limited_to_the_customers_a_rule_can_select_still_cover_every_leaf(store: Store) -> None:
    # The pattern is computed only for buyers within the widest `bought_within_days`, the preferred store only
    # for customers within the widest `km` of some store: two leaves with different bounds need the widest.
    lines = [*_buyer("monthly", [20, 50, 80], store="T1"), *_buyer("far", [20, 50, 80], store="T1")]
    customers = [Customer("monthly", lat=40.0, lon=-3.0), Customer("far", lat=40.09, lon=-3.0)]  # 10 km north
    load(store.con, _shop(*customers, lines=lines, stores={"T1": (40.0, -3.0)}))
    rule = {
        "all": [
            {"not": {"pattern": "monthly", "bought_within_days": 5}},
            {"pattern": "monthly", "bought_within_days": 40},
            {"near_store": {"store": "preferred", "km": 20}},
            {"not": {"near_store": {"store": "preferred", "km": 1}}},
        ]
    }
    assert _select(store, rule) == ["far"]
    steps = funnel(store, parse_rule(rule), as_of=AS_OF, marketing=False)
    assert [s.customers for s in steps] == [2, 2, 2, 2, 1]


def test_spend_at_exactly_a_threshold_is_in_whatever_the_order_of_the_sum(store: Store) -> None:
    """0.1 + 0.2 is 0.30000000000000004 in binary: a customer who spent 0.30 was left out of `spend <= 0.3`
    (and at a million customers, in or out from run to run as threads summed in another order)."""
    from datetime import date

    from pleasepoint_cli.audience import parse_rule, select_customers

    store.execute("INSERT INTO customers (customer_id, email) VALUES ('C1', 'c1@example.com')")
    for order, amount in (("O1", 0.1), ("O2", 0.2)):
        store.execute(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount, "
            "status) VALUES (?, 'C1', '2024-05-01', 'P1', 1, ?, ?, 'completed')",
            [order, amount, amount],
        )
    rule = parse_rule({"spend": {"lte": 0.3, "gte": 0.3}})
    assert select_customers(store, rule, as_of=date(2024, 6, 1), marketing=False) == ["C1"]
