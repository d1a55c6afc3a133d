"""The blog's segmentation (examples/audiences/blog_segmentation.yaml) on a hand-made shop (audience_data.py):
every customer but three is left out for exactly one reason, and the funnel removes each at the step that names
that reason."""

from __future__ import annotations

from datetime import date

from audience_data import AS_OF, EXAMPLE, blog_shop
from audience_oracle import load
from pleasepoint_cli.audience import funnel, load_audience, select_customers
from pleasepoint_cli.store import Store


def test_the_blog_segmentation_selects_the_three_customers_it_should(store: Store) -> None:
    load(store.con, blog_shop())
    rule = load_audience(EXAMPLE)
    assert select_customers(store, rule, as_of=AS_OF) == ["C01", "C02", "C03"]


def test_the_funnel_removes_each_customer_at_the_step_of_its_reason(store: Store) -> None:
    load(store.con, blog_shop())
    steps = funnel(store, load_audience(EXAMPLE), as_of=AS_OF)
    assert [(s.label, s.customers) for s in steps] == [
        ("all customers", 15),
        ("email consent", 13),  # C04 refused, C05 never answered
        ("valid email", 11),  # C06 'pepe@', C07 none
        ("not suppressed", 10),  # C08, whatever the case and spaces of the address
        ("not erased", 9),  # C09
        ("email consent", 9),
        ("contactable", 9),
        ("not (state lost)", 8),  # C10
        ("not (monthly pattern, bought within 15 days)", 7),  # C11
        ("within 5 km of the preferred store", 3),  # C12 far, C13 near another store, C14 and C15 unknown
    ]


def test_without_the_guards_the_rule_itself_does_their_work(store: Store) -> None:
    load(store.con, blog_shop())
    rule = load_audience(EXAMPLE)
    steps = funnel(store, rule, as_of=AS_OF, marketing=False)
    assert [s.customers for s in steps] == [15, 13, 10, 9, 8, 4]
    # Erasure is a marketing guard, not part of the rule: C09 comes back.
    assert select_customers(store, rule, as_of=AS_OF, marketing=False) == ["C01", "C02", "C03", "C09"]


def test_the_date_matters_a_monthly_buyer_drops_out_the_day_after_buying(store: Store) -> None:
    load(store.con, blog_shop())
    rule = load_audience(EXAMPLE)
    # C02 last bought on 12 August; on 27 August that was 15 days before: excluded; on the 28th, back in.
    assert "C02" not in select_customers(store, rule, as_of=date(2024, 8, 27))
    assert "C02" in select_customers(store, rule, as_of=date(2024, 8, 28))
