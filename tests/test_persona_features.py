"""The persona feature matrix: each unit computed by hand on a tiny shop, the window, the audience, errors."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from pleasepoint_cli.errors import AnalysisError, ConfigError
from pleasepoint_cli.persona.features import (
    Window,
    audience_from_where,
    build_features,
    clustering_matrix,
    latest_order_date,
    transform_values,
)
from pleasepoint_cli.store import Store

# Two categories (Huerto, Plantas) and a brand on each product.
PRODUCTS = [
    ("P1", "Huerto", "Verde"),
    ("P2", "Plantas", "Verde"),
    ("P3", "Huerto", "Sol"),
    ("P4", None, None),
]
# order, customer, day, product, quantity, unit price
LINES = [
    ("O1", "A", "2026-01-10", "P1", 1, 10.0),
    ("O1", "A", "2026-01-10", "P2", 2, 5.0),
    ("O2", "A", "2026-02-10", "P1", 1, 10.0),
    ("O3", "A", "2026-03-10", "P4", 1, 4.0),  # a product without category: counts as an order, no variable
    ("O4", "B", "2026-01-05", "P3", 3, 2.0),
    ("O5", "B", "2026-01-20", "P3", -1, 2.0),  # a return: not a purchase, but it nets out of revenue
    ("O6", "C", "2025-06-01", "P2", 1, 8.0),  # before the window of the --since tests
    ("O7", "D", "2026-03-01", "P1", -1, 10.0),  # only a return: D is no customer of the analysis
]


@pytest.fixture
def tiny(store: Store) -> Store:
    con = store.con
    for product_id, category, brand in PRODUCTS:
        con.execute(
            "INSERT INTO products (product_id, name, category) VALUES (?, ?, ?)",
            [product_id, product_id, category],
        )
        if brand:
            con.execute("INSERT INTO product_attributes VALUES (?, 'brand', ?)", [product_id, brand])
    for customer_id, city in (("A", "Madrid"), ("B", "Sevilla"), ("C", "Madrid"), ("D", "Madrid")):
        con.execute("INSERT INTO customers (customer_id, city) VALUES (?, ?)", [customer_id, city])
    con.execute("INSERT INTO customer_attributes VALUES ('B', 'tier', 'Oro', 'ingest', now(), NULL)")
    for order_id, customer_id, day, product_id, quantity, price in LINES:
        con.execute(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [order_id, customer_id, day, product_id, quantity, price, quantity * price],
        )
    return store


def _window(since: date | None = None, until: date | None = None) -> Window:
    return Window(since, until, date(2026, 3, 10))


def test_freq_is_the_share_of_orders_with_the_value(tiny: Store) -> None:
    fm = build_features(tiny, ["category"], "freq", _window())
    assert fm.customer_ids.to_pylist() == ["A", "B", "C"]
    assert [v.name for v in fm.variables] == ["Huerto", "Plantas"]
    # A: 3 orders, Huerto in 2 of them, Plantas in 1; B: 1 purchase order (Huerto); C: 1 order (Plantas).
    np.testing.assert_allclose(fm.values, [[2 / 3, 1 / 3], [1.0, 0.0], [0.0, 1.0]])
    assert fm.orders.tolist() == [3, 1, 1]
    assert fm.counts == {"customers": 3, "orders": 5, "cells": 4, "variables": 2}


def test_count_spend_binary_units(tiny: Store) -> None:
    count = build_features(tiny, ["category"], "count", _window())
    np.testing.assert_allclose(count.values, [[2, 1], [1, 0], [0, 1]])
    spend = build_features(tiny, ["category"], "spend", _window())
    # A spent 10 + 10 + 10 (Huerto 20, Plantas 10) + 4 without category = 34.
    np.testing.assert_allclose(spend.values, [[20 / 34, 10 / 34], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(spend.spend, [34.0, 6.0, 8.0])
    np.testing.assert_allclose(spend.net_spend, [34.0, 4.0, 8.0])  # B's return nets out of revenue
    binary = build_features(tiny, ["category"], "binary", _window())
    np.testing.assert_allclose(binary.values, [[1, 1], [1, 0], [0, 1]])


def test_recency_is_days_from_the_last_purchase_to_as_of(tiny: Store) -> None:
    fm = build_features(tiny, ["category"], "freq", _window())
    assert fm.recency_days.tolist() == [0, 64, 282]


def test_several_attributes_name_their_variables(tiny: Store) -> None:
    fm = build_features(tiny, ["category", "brand"], "binary", _window())
    assert [v.name for v in fm.variables] == [
        "category: Huerto",
        "category: Plantas",
        "brand: Sol",
        "brand: Verde",
    ]
    np.testing.assert_allclose(fm.values, [[1, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]])


def test_window_and_as_of_bound_the_lines(tiny: Store) -> None:
    since = build_features(tiny, ["category"], "freq", _window(since=date(2026, 1, 1)))
    assert since.customer_ids.to_pylist() == ["A", "B"]
    until = build_features(tiny, ["category"], "freq", _window(until=date(2026, 1, 31)))
    assert until.orders.tolist() == [1, 1, 1]
    early = build_features(tiny, ["category"], "freq", Window(None, None, date(2026, 1, 10)))
    assert early.customer_ids.to_pylist() == ["A", "B", "C"] and early.orders.tolist() == [1, 1, 1]
    assert latest_order_date(tiny, None, None) == date(2026, 3, 10)
    assert latest_order_date(tiny, None, date(2026, 1, 31)) == date(2026, 1, 10)


def test_where_filters_on_a_column_or_an_attribute(tiny: Store) -> None:
    madrid = audience_from_where(tiny, {"city": "Madrid"})
    assert madrid is not None
    fm = build_features(tiny, ["category"], "freq", _window(), madrid)
    assert fm.customer_ids.to_pylist() == ["A", "C"]
    gold = audience_from_where(tiny, {"tier": "Oro"})
    fm = build_features(tiny, ["category"], "freq", _window(), gold)
    assert fm.customer_ids.to_pylist() == ["B"]
    both = audience_from_where(tiny, {"city": "Madrid", "tier": "Oro"})
    with pytest.raises(AnalysisError, match="audience is empty"):
        build_features(tiny, ["category"], "freq", _window(), both)


def test_unknown_where_key_and_attribute_are_named(tiny: Store) -> None:
    with pytest.raises(ConfigError, match="'colour' is neither a customers column nor a customer attribute"):
        audience_from_where(tiny, {"colour": "red"})
    with pytest.raises(ConfigError, match=r"--attribute 'flavour'.*Known: category, brand"):
        build_features(tiny, ["flavour"], "freq", _window())


def test_no_orders_in_the_window_is_an_error(tiny: Store) -> None:
    with pytest.raises(AnalysisError, match="no orders between 2030-01-01"):
        latest_order_date(tiny, date(2030, 1, 1), None)


def test_fingerprint_follows_the_input(tiny: Store) -> None:
    first = build_features(tiny, ["category"], "freq", _window())
    again = build_features(tiny, ["category"], "freq", _window())
    assert first.fingerprint == again.fingerprint
    tiny.con.execute("UPDATE order_lines SET amount = 11, unit_price = 11 WHERE order_id = 'O2'")
    changed = build_features(tiny, ["category"], "freq", _window())
    assert changed.fingerprint != first.fingerprint
    assert not tiny.con.execute("SELECT * FROM duckdb_tables() WHERE table_name LIKE '_pp_%'").fetchall()


def test_transforms() -> None:
    values = np.array([[0.0, 1.0], [3.0, 1.0], [8.0, 1.0]])
    np.testing.assert_allclose(transform_values(values, "log"), np.log1p(values))
    np.testing.assert_allclose(transform_values(values, "sqrt"), np.sqrt(values))
    np.testing.assert_allclose(transform_values(values, "minmax"), [[0, 0], [3 / 8, 0], [1, 0]])
    z = transform_values(values, "standardize")
    np.testing.assert_allclose(z.mean(axis=0), [0, 0], atol=1e-12)
    np.testing.assert_allclose(z[:, 0].std(), 1.0)
    assert transform_values(values, "none") is values


def test_rfm_columns_are_standardised(tiny: Store) -> None:
    fm = build_features(tiny, ["category"], "freq", _window())
    matrix = clustering_matrix(fm, "none", rfm=True)
    assert matrix.shape == (3, 5)
    np.testing.assert_allclose(matrix[:, 2:].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(matrix[:, :2], fm.values)
