"""The CLV score table, recency states at their boundary days, and the RFM map, on hand-computed data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pleasepoint_cli.clv.rfm import RFM_SEGMENT_CASE, RFM_SEGMENTS
from pleasepoint_cli.clv.score import clv_enrich, clv_score
from pleasepoint_cli.config import StateThresholds
from pleasepoint_cli.errors import AnalysisError, ConfigError
from pleasepoint_cli.store import Store

AS_OF = date(2026, 6, 30)
DEFAULT = StateThresholds()


def add_order(store: Store, order_id: str, customer: str, day: date, *lines: tuple[float, float]) -> None:
    """One order of (quantity, unit price) lines; a negative quantity is a return."""
    store.con.executemany(
        "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
        "VALUES (?, ?, ?, 'P1', ?, ?, ?)",
        [[order_id, customer, day, q, p, q * p] for q, p in lines],
    )


@pytest.fixture
def shop(store: Store) -> Store:
    """Seven scored customers, one per boundary of the default states, plus three that must not count."""
    add_order(store, "O1", "A", date(2026, 6, 1), (2, 10.00), (1, 5.50))
    add_order(store, "O2", "A", date(2026, 6, 30), (1, 12.25))
    add_order(store, "O2b", "A", date(2026, 7, 2), (1, 999.0))  # after the as-of date
    add_order(store, "O3", "B", date(2026, 1, 1), (1, 100.00))  # 180 days before
    add_order(store, "O4", "B", date(2026, 1, 1), (-1, 20.00))  # a return: netted, not a ticket
    add_order(store, "O5", "C", date(2025, 12, 30), (3, 8.00))  # 182
    add_order(store, "O6", "D", date(2025, 7, 1), (1, 50.00))  # 364
    add_order(store, "O7", "E", date(2025, 6, 30), (1, 30.00))  # 365
    add_order(store, "O8", "F", date(2024, 7, 1), (2, 15.00))  # 729
    add_order(store, "O9", "G", date(2024, 6, 30), (1, 9.99))  # 730
    add_order(store, "O10", "H", date(2026, 7, 1), (1, 40.00))  # only after the as-of date
    add_order(store, "O11", "I", date(2026, 3, 1), (-1, 40.00))  # only a return
    return store


def test_state_table_matches_hand_computed_figures_to_the_cent(shop: Store) -> None:
    table = clv_score(shop, "state", AS_OF, DEFAULT)
    got = {r.segment: r.as_dict() for r in [*table.rows, table.total]}
    assert [r.segment for r in table.rows] == ["active", "inactive", "hibernating", "lost"]
    figures = (
        "customers",
        "tickets",
        "avg_ticket",
        "mean_recency_days",
        "total_spend",
        "tickets_per_customer",
        "spend_per_customer",
        "pct_customers",
        "pct_revenue",
    )
    expected = {
        "active": (2, 3, 39.25, 90.0, 117.75, 1.5, 58.88, 28.57, 44.99),
        "inactive": (2, 2, 37.00, 273.0, 74.00, 1.0, 37.00, 28.57, 28.27),
        "hibernating": (2, 2, 30.00, 547.0, 60.00, 1.0, 30.00, 28.57, 22.92),
        "lost": (1, 1, 9.99, 730.0, 9.99, 1.0, 9.99, 14.29, 3.82),
        "Total": (7, 8, 32.72, 364.29, 261.74, 1.14, 37.39, 100.0, 100.0),
    }
    for segment, values in expected.items():
        assert tuple(got[segment][f] for f in figures) == values, segment


def test_an_empty_state_keeps_its_row(shop: Store) -> None:
    table = clv_score(
        shop,
        "state",
        date(2026, 7, 1),
        StateThresholds(active_below=800, inactive_below=900, hibernating_below=1000),
    )
    rows = {r.segment: r for r in table.rows}
    assert rows["active"].customers == 8 and rows["lost"].customers == 0
    assert (
        rows["lost"].avg_ticket is None and rows["lost"].total_spend == 0 and rows["lost"].pct_customers == 0
    )


@pytest.mark.parametrize(
    ("days", "state"),
    [
        (0, "active"),
        (181, "active"),
        (182, "inactive"),
        (364, "inactive"),
        (365, "hibernating"),
        (729, "hibernating"),
        (730, "lost"),
        (2000, "lost"),
    ],
)
def test_states_change_at_exactly_the_configured_days(store: Store, days: int, state: str) -> None:
    add_order(store, "O1", "A", date(2024, 1, 1), (1, 10.0))
    table = clv_score(store, "state", date(2024, 1, 1) + timedelta(days=days), DEFAULT)
    assert {r.segment for r in table.rows if r.customers} == {state}


def test_changed_thresholds_move_the_boundaries(shop: Store) -> None:
    thresholds = StateThresholds(active_below=30, inactive_below=181, hibernating_below=365)
    table = clv_score(shop, "state", AS_OF, thresholds)
    assert {r.segment: r.customers for r in table.rows} == {
        "active": 1,
        "inactive": 1,
        "hibernating": 2,
        "lost": 3,
    }


def test_no_purchase_by_the_as_of_date_is_an_error(shop: Store) -> None:
    with pytest.raises(AnalysisError, match="no customer has a purchase on or before 2020-01-01"):
        clv_score(shop, "state", date(2020, 1, 1), DEFAULT)
    with pytest.raises(ConfigError, match="only goes with --by cluster"):
        clv_score(shop, "state", AS_OF, DEFAULT, run="3")


# Expected segment per (R score, FM score): the grid of docs/clv.md.
GRID = {
    5: ["New", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Loyal"],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
}


@pytest.fixture
def grid_shop(store: Store) -> Store:
    """25 customers, one per (R, F=M) cell: distinct recency, order counts and spend put each in its quintile."""
    rows = []
    for r in range(1, 6):
        for s in range(1, 6):
            orders = (s - 1) * 5 + r  # 1..25, so F (and M) quintile = s
            last = AS_OF - timedelta(days=(5 - r) * 5 + (s - 1))  # 0..24 days, so R quintile = r
            rows += [[f"R{r}S{s}-{j}", f"R{r}S{s}", last - timedelta(days=j)] for j in range(orders)]
    with store.transaction() as con:
        con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
            "VALUES (?, ?, ?, 'P1', 1, 10, 10)",
            rows,
        )
    return store


def test_every_rfm_segment_is_reached_on_crafted_data(grid_shop: Store) -> None:
    table = clv_score(grid_shop, "rfm", AS_OF, DEFAULT)
    assert [r.segment for r in table.rows] == list(RFM_SEGMENTS)
    assert all(r.customers > 0 for r in table.rows), [r.segment for r in table.rows if not r.customers]
    change, counts = clv_enrich(grid_shop, "rfm", AS_OF, DEFAULT)
    assert change.changed == 25 and change.keys == ("rfm_segment",)
    assert sum(n for _, n in counts) == 25
    segment = dict(grid_shop.con.execute("SELECT customer_id, value FROM customer_attributes").fetchall())
    for r, row in GRID.items():
        for s, expected in enumerate(row, start=1):
            assert segment[f"R{r}S{s}"] == expected, (r, s)


def test_every_score_combination_gets_exactly_one_segment(store: Store) -> None:
    rows = store.con.execute(
        f"""
        SELECT DISTINCT {RFM_SEGMENT_CASE}
        FROM (SELECT r AS r_score, (f + m + 1) // 2 AS fm_score
              FROM range(1, 6) a(r), range(1, 6) b(f), range(1, 6) c(m))
        """
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(RFM_SEGMENTS)


def test_ties_get_one_score_and_small_data_is_refused(store: Store) -> None:
    for i in range(10):  # ten customers with one order each of the same value: all tie on F and M
        add_order(store, f"O{i}", f"C{i}", AS_OF - timedelta(days=i), (1, 20.0))
    clv_enrich(store, "rfm", AS_OF, DEFAULT, key="RFM")
    scores = store.con.execute("SELECT DISTINCT f_score, m_score FROM (" + _rfm_scores() + ")").fetchall()
    assert scores == [(1, 1)], "equal behaviour, equal (lowest) score"
    store.con.execute("DELETE FROM order_lines WHERE customer_id NOT IN ('C1', 'C2', 'C3', 'C4')")
    with pytest.raises(AnalysisError, match="at least 5 customers with purchases, found 4"):
        clv_score(store, "rfm", AS_OF, DEFAULT)


def _rfm_scores() -> str:
    from pleasepoint_cli.clv.rfm import RFM_SQL

    return f"{RFM_SQL} SELECT f_score, m_score FROM rfm"


def test_clv_enrich_writes_states_and_drops_stale_ones(shop: Store) -> None:
    change, counts = clv_enrich(shop, "state", AS_OF, DEFAULT, key="Hibernación")
    assert change.keys == ("hibernacion",) and dict(counts) == {
        "active": 2,
        "inactive": 2,
        "hibernating": 2,
        "lost": 1,
    }
    values = dict(shop.con.execute("SELECT customer_id, value FROM customer_attributes").fetchall())
    assert values == {
        "A": "active",
        "B": "active",
        "C": "inactive",
        "D": "inactive",
        "E": "hibernating",
        "F": "hibernating",
        "G": "lost",
    }
    source = shop.scalar("SELECT DISTINCT source FROM customer_attributes")
    assert source == "clv state as-of 2026-06-30"
    clv_enrich(shop, "state", date(2025, 1, 1), DEFAULT, key="hibernacion")  # before A..E bought
    values = dict(shop.con.execute("SELECT customer_id, value FROM customer_attributes").fetchall())
    assert values == {"F": "inactive", "G": "inactive"}
