"""Recommendations follow the blog's slots on a crafted shop, worked out by hand (see campaign_data.py)."""

from __future__ import annotations

from datetime import date

import pytest

from campaign_data import AS_OF, CANDIDATES, plant_shop, seeded_order
from pleasepoint_cli.content.recommend import (
    CandidateSpec,
    RecommendationRules,
    candidate_products,
    recommend,
)
from pleasepoint_cli.errors import ConfigError
from pleasepoint_cli.store import Store

SEED = "newsletter"
ALL = ["C1", "C2", "C3", "C4", "C5"]


def _picks(store: Store, customers: list[str] = ALL, *, run_id: int | None = 1, **rules: object):
    result = recommend(
        store,
        customers,
        as_of=AS_OF,
        candidates=CandidateSpec(),
        rules=RecommendationRules(seed=SEED, **rules),  # type: ignore[arg-type]
        run_id=run_id,
    )
    return {c: [(r.product_id, r.reason) for r in recs] for c, recs in result.items()}


def _fill(order: list[str], picks: list[tuple[str, str]], slots: int = 3) -> list[tuple[str, str]]:
    chosen = {p for p, _ in picks}
    for product in order:
        if len(picks) == slots:
            break
        if product not in chosen:
            picks.append((product, "fill"))
            chosen.add(product)
    return picks


@pytest.fixture
def shop(store: Store) -> Store:
    plant_shop(store.con)
    return store


def test_candidates_are_offers_on_the_day_with_a_url(shop: Store) -> None:
    assert candidate_products(shop, CandidateSpec(), AS_OF) == len(CANDIDATES)
    window = CandidateSpec(window_from=date(2026, 9, 10), window_to=date(2026, 9, 20))
    assert candidate_products(shop, window, AS_OF) == 6  # B2's offer ended on 1 September
    listed = CandidateSpec(on_offer=False, product_ids=("A3", "D1", "U1"))
    assert candidate_products(shop, listed, AS_OF) == 2  # U1 has no URL


def test_slot_one_regular_product_then_cluster_categories_by_propensity(shop: Store) -> None:
    # C1 buys A1 and A2 regularly, but bought A2 (and B1) in the last 30 days; its cluster buys
    # Bebé y niño (1.5) and Huerto ECO (1.2) habitually, which C1 does not buy regularly.
    assert _picks(shop)["C1"] == [("A1", "regular"), ("C1", "cluster"), ("B2", "cluster")]


def test_slot_one_is_seeded_random_without_a_regular_product(shop: Store) -> None:
    picks = _picks(shop)
    order_c2 = seeded_order(SEED, "C2", CANDIDATES)
    expected = [(order_c2[0], "random")]
    if order_c2[0] != "D1":
        expected.append(("D1", "cluster"))  # cluster 2 buys Plantas habitually
    assert picks["C2"] == _fill(order_c2, expected)
    order_c3 = seeded_order(SEED, "C3", CANDIDATES)  # no orders, no cluster: the seeded order itself
    assert picks["C3"] == [(order_c3[0], "random"), (order_c3[1], "fill"), (order_c3[2], "fill")]


def test_cluster_slots_take_one_product_per_category_in_turn(shop: Store) -> None:
    # C5 buys nothing regularly; cluster 1's categories by propensity: Supermercado ECO (A2 40%, A1 20%),
    # Bebé y niño (C1 25%, C2 10%), Huerto ECO (B2 25%, B1 10%): one of each first, the deepest offer first.
    first = seeded_order(SEED, "C5", CANDIDATES)[0]
    by_category = [["A2", "A1"], ["C1", "C2"], ["B2", "B1"]]
    rounds = [[p for p in cat if p != first] for cat in by_category]
    turn = [cat[i] for i in range(2) for cat in rounds if len(cat) > i]
    assert _picks(shop)["C5"] == [(first, "random"), (turn[0], "cluster"), (turn[1], "cluster")]


def test_regular_by_product_or_by_category(shop: Store) -> None:
    order = seeded_order(SEED, "C4", CANDIDATES)
    by_product = _picks(shop)["C4"]
    assert by_product == _fill(order, [("B1", "regular"), ("D1", "cluster")])
    # By category: C4 buys Huerto ECO regularly, whose deepest offer is B2 (25%) rather than B1 (10%).
    by_category = _picks(shop, regular_by="category")["C4"]
    assert by_category == _fill(order, [("B2", "regular"), ("D1", "cluster")])


def test_recent_purchases_no_fill_and_no_run(shop: Store) -> None:
    assert _picks(shop, exclude_bought_within_days=0)["C1"][0] == ("A2", "regular")  # 40% beats 20%
    no_fill = _picks(shop, fill=False)
    assert all(reason != "fill" for recs in no_fill.values() for _, reason in recs)
    assert no_fill["C3"] == [(seeded_order(SEED, "C3", CANDIDATES)[0], "random")]
    without_run = _picks(shop, run_id=None)["C1"]
    assert without_run[0] == ("A1", "regular") and [r for _, r in without_run[1:]] == ["fill", "fill"]


def test_same_on_every_run_no_duplicates_nothing_bought_recently(shop: Store) -> None:
    first = _picks(shop)
    assert _picks(shop) == first
    assert _picks(shop, ["C2", "C1"]) == {"C2": first["C2"], "C1": first["C1"]}
    for customer, recs in first.items():
        products = [p for p, _ in recs]
        assert len(products) == len(set(products)) == 3, customer
        assert set(products) <= set(CANDIDATES)
    assert not {"A2", "B1"} & {p for p, _ in first["C1"]}


def test_a_several_attribute_run_names_categories_with_a_prefix(store: Store) -> None:
    plant_shop(store.con, variable_prefix="category: ", attributes="category,brand")
    assert _picks(store)["C1"] == [("A1", "regular"), ("C1", "cluster"), ("B2", "cluster")]


def test_a_run_without_categories_gives_no_cluster_picks(store: Store) -> None:
    plant_shop(store.con, attributes="brand")
    assert [reason for _, reason in _picks(store)["C1"]] == ["regular", "fill", "fill"]


def test_bad_rules_are_config_errors(shop: Store) -> None:
    with pytest.raises(ConfigError, match="slots"):
        _picks(shop, slots=0)
