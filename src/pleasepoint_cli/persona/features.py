"""The customer x variable matrix of a persona run, built by DuckDB SQL and handed to NumPy as integer codes.

Customers and variables get integer codes in SQL (`row_number` over customer ids, `dense_rank` over the
attribute values); Python receives (row, column, value) arrays and scatters them into a dense matrix, so no
string ever reaches NumPy and no loop runs per customer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import AnalysisError, ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from pleasepoint_cli.store.connection import Store

    FloatMatrix = npt.NDArray[np.float64]
    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

CATEGORY = "category"
RFM_VARIABLES = ("recency_days", "frequency_orders", "monetary_spend")
"""The extra dimensions of `--rfm`: days since the last order, orders, spend (standardised for clustering)."""

MONEY_SCALE = 10_000
"""Amounts are summed as integers in units of 1/10,000, so sums do not depend on DuckDB's thread order."""


@dataclass(frozen=True)
class Audience:
    """Which customers an analysis may include: a SQL subquery returning `customer_id`, and its parameters.

    `--where` builds one today; the rule language (`--audience FILE.yaml`) compiles to the same shape.
    """

    sql: str
    params: tuple[Any, ...]
    description: str


@dataclass(frozen=True)
class Window:
    """The order lines an analysis reads: purchases from `since` to `until`, never after `as_of`."""

    since: date | None
    until: date | None
    as_of: date

    def sql(self, alias: str = "ol") -> tuple[str, list[Any]]:
        """A WHERE fragment on `alias.ordered_at` (half-open: up to the day after the last day) and its params."""
        last = min(self.until, self.as_of) if self.until else self.as_of
        clauses = [f"{alias}.ordered_at < ?"]
        params: list[Any] = [last + timedelta(days=1)]
        if self.since:
            clauses.append(f"{alias}.ordered_at >= ?")
            params.append(self.since)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Variable:
    """One column of the matrix: a value of a product attribute, named for display."""

    attribute: str
    value: str
    name: str


@dataclass
class FeatureMatrix:
    """The analysis input: one row per customer (ordered by customer id), one column per variable.

    `values` holds the chosen unit, untransformed (the profile reads it); the per-customer arrays feed the
    cluster figures and the RFM dimensions.
    """

    customer_ids: pa.Array
    variables: list[Variable]
    unit: str
    values: FloatMatrix
    orders: IntArray
    spend: FloatArray
    net_spend: FloatArray
    recency_days: IntArray
    counts: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def n_customers(self) -> int:
        return int(self.orders.shape[0])

    def rfm(self) -> FloatMatrix:
        """Recency in days, orders and spend, one column each (untransformed)."""
        import numpy as np

        return np.column_stack(
            [self.recency_days.astype(np.float64), self.orders.astype(np.float64), self.spend]
        )


def product_attribute_keys(store: Store) -> list[str]:
    """The attributes an analysis can use: `category` and every key in product_attributes."""
    keys = [str(row[0]) for row in store.tuples("SELECT DISTINCT key FROM product_attributes ORDER BY key")]
    return [CATEGORY, *(k for k in keys if k != CATEGORY)]


def check_attributes(store: Store, attributes: list[str]) -> None:
    """Refuse an attribute no product has, naming the ones that exist."""
    known = product_attribute_keys(store)
    for attribute in attributes:
        if attribute not in known:
            raise ConfigError(
                f"--attribute {attribute!r}: no product has this attribute. Known: {', '.join(known)}. "
                "Load products with that column (`pleasepoint ingest products`) or pick a known one."
            )


def audience_from_where(store: Store, where: dict[str, str]) -> Audience | None:
    """`--where KEY=VALUE` filters as an audience: equality on a customers column or a customer attribute.

    Every key must exist (a column of `customers`, or a key in `customer_attributes`); values compare as text.
    """
    from pleasepoint_cli.textutil import quote_ident

    if not where:
        return None
    columns = {
        str(row[0])
        for row in store.tuples(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'"
        )
    }
    parts: list[str] = []
    params: list[Any] = []
    for key, value in where.items():
        if key in columns:
            parts.append(f"SELECT customer_id FROM customers WHERE CAST({quote_ident(key)} AS VARCHAR) = ?")
            params.append(value)
            continue
        exists = store.first("SELECT count(*) FROM customer_attributes WHERE key = ?", [key])
        if exists is None or not exists[0]:
            attribute_keys = [
                str(r[0]) for r in store.tuples("SELECT DISTINCT key FROM customer_attributes ORDER BY 1")
            ]
            known = sorted(columns - {"updated_at", "erased_at"}) + attribute_keys
            raise ConfigError(
                f"--where {key}={value}: {key!r} is neither a customers column nor a customer attribute. "
                f"Use one of: {', '.join(known)}."
            )
        parts.append("SELECT customer_id FROM customer_attributes WHERE key = ? AND value = ?")
        params.extend([key, value])
    description = " and ".join(f"{key}={value}" for key, value in where.items())
    return Audience(" INTERSECT ".join(parts), tuple(params), description)


def audience_from_rule(store: Store, data: Any, as_of: date) -> Audience | None:
    """`--audience FILE.yaml` (or `audience:` in persona.yaml) as an audience: the rule language compiled to
    SQL at the run's as-of date, without the marketing guards (an analysis is not a send)."""
    if data is None:
        return None
    from pleasepoint_cli.audience import compile_rule, describe, parse_rule, validate_rule

    rule = parse_rule(data)
    validate_rule(store, rule)
    compiled = compile_rule(rule, as_of=as_of, marketing=False)
    if compiled.needs_ops:
        from pleasepoint_cli.events.views import ensure_ops_views

        ensure_ops_views(store)
    return Audience(compiled.sql, tuple(compiled.params), describe(rule))


def combine_audiences(*audiences: Audience | None) -> Audience | None:
    """The customers in every given audience."""
    given = [a for a in audiences if a is not None]
    if len(given) <= 1:
        return given[0] if given else None
    return Audience(
        " INTERSECT ".join(f"SELECT customer_id FROM ({a.sql})" for a in given),
        tuple(p for a in given for p in a.params),
        " and ".join(f"({a.description})" for a in given),
    )


def latest_order_date(store: Store, since: date | None, until: date | None) -> date:
    """The day of the newest purchase in the store (up to `until`): the default as-of date of a run."""
    clauses = ["quantity > 0"]
    params: list[Any] = []
    if since:
        clauses.append("ordered_at >= ?")
        params.append(since)
    if until:
        clauses.append("ordered_at < ?")
        params.append(until + timedelta(days=1))
    row = store.first(
        f"SELECT max(ordered_at)::DATE FROM purchase_lines WHERE {' AND '.join(clauses)}", params
    )
    if row is None or row[0] is None:
        window = f" between {since or 'the start'} and {until or 'the end'}" if since or until else ""
        raise AnalysisError(
            f"there are no orders{window} to analyse. Load some with `pleasepoint ingest orders FILE`"
            + (" or widen --since/--until." if window else ".")
        )
    latest: date = row[0]
    return latest


def _attribute_values_sql(attributes: list[str]) -> tuple[str, list[Any]]:
    """(product_id, attr position, value) for every product and analysed attribute with a value."""
    parts: list[str] = []
    params: list[Any] = []
    for position, attribute in enumerate(attributes):
        if attribute == CATEGORY:
            parts.append(
                f"SELECT product_id, {position} AS attr, category AS value FROM products "
                "WHERE category IS NOT NULL AND trim(category) <> ''"
            )
        else:
            parts.append(
                f"SELECT product_id, {position} AS attr, value FROM product_attributes "
                "WHERE key = ? AND value IS NOT NULL AND trim(value) <> ''"
            )
            params.append(attribute)
    return " UNION ALL ".join(parts), params


_TEMP_TABLES = ("_pp_customers", "_pp_products", "_pp_cells", "_pp_variables")


def build_features(
    store: Store,
    attributes: list[str],
    unit: str,
    window: Window,
    audience: Audience | None = None,
) -> FeatureMatrix:
    """Aggregate the order lines in the window into the customer x variable matrix of `unit`.

    Only customers with at least one purchase (a line of positive quantity) in the window, and in the audience
    when one is given, are rows. freq = orders containing the value / the customer's orders; count = those
    orders; spend = spend on the value / the customer's spend; binary = 1 when ever bought.
    """
    import numpy as np

    check_attributes(store, attributes)
    window_sql, window_params = window.sql("ol")
    audience_sql = f" AND ol.customer_id IN ({audience.sql})" if audience else ""
    audience_params = list(audience.params) if audience else []
    values_sql, values_params = _attribute_values_sql(attributes)
    try:
        # Customers: totals over every line in the window (returns net out of spend), coded by id order.
        # Grouping by (customer, order) first is exact and much faster than count(DISTINCT order_id).
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _pp_customers AS
            SELECT customer_id,
                   (row_number() OVER (ORDER BY customer_id) - 1)::INTEGER AS row,
                   orders, spend, net_spend,
                   date_diff('day', last_at::DATE, ?::DATE) AS recency_days
            FROM (
                SELECT customer_id,
                       count(*) FILTER (WHERE purchase)::INTEGER AS orders,
                       sum(spend)::BIGINT AS spend,
                       sum(net)::BIGINT AS net_spend,
                       max(last_at) AS last_at
                FROM (
                    SELECT ol.customer_id, ol.order_id,
                           bool_or(ol.quantity > 0) AS purchase,
                           sum(CASE WHEN ol.quantity > 0 THEN round(ol.amount * {MONEY_SCALE})::BIGINT ELSE 0 END)
                               AS spend,
                           sum(round(ol.amount * {MONEY_SCALE})::BIGINT) AS net,
                           max(CASE WHEN ol.quantity > 0 THEN ol.ordered_at END) AS last_at
                    FROM purchase_lines ol
                    WHERE {window_sql}{audience_sql}
                    GROUP BY ol.customer_id, ol.order_id
                )
                GROUP BY customer_id
            )
            WHERE orders > 0
            """,
            [window.as_of, *window_params, *audience_params],
        )
        # Products: each analysed (attribute, value) gets a code in (attribute, value) order.
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _pp_products AS
            SELECT product_id, attr, value, (dense_rank() OVER (ORDER BY attr, value) - 1)::INTEGER AS code
            FROM ({values_sql})
            """,
            values_params,
        )
        # Cells: per customer and value, the orders containing it and the spend on it; again grouped by
        # (customer, order, value) first, then coded by joining the small result to the customers.
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _pp_cells AS
            SELECT c.row, x.code, x.orders, x.spend
            FROM (
                SELECT customer_id, code, count(*)::INTEGER AS orders, sum(spend)::BIGINT AS spend
                FROM (
                    SELECT ol.customer_id, ol.order_id, p.code,
                           sum(round(ol.amount * {MONEY_SCALE})::BIGINT) AS spend
                    FROM purchase_lines ol
                    JOIN _pp_products p ON p.product_id = ol.product_id
                    WHERE ol.quantity > 0 AND {window_sql}{audience_sql}
                    GROUP BY ol.customer_id, ol.order_id, p.code
                )
                GROUP BY customer_id, code
            ) x
            JOIN _pp_customers c ON c.customer_id = x.customer_id
            """,
            [*window_params, *audience_params],
        )
        # Variables: only the values some analysed customer bought, numbered in code order.
        store.execute(
            """
            CREATE OR REPLACE TEMP TABLE _pp_variables AS
            SELECT u.code, (row_number() OVER (ORDER BY u.code) - 1)::INTEGER AS col, d.attr, d.value
            FROM (SELECT DISTINCT code FROM _pp_cells) u
            JOIN (SELECT DISTINCT code, attr, value FROM _pp_products) d USING (code)
            """
        )
        return _fetch(store, attributes, unit, np)
    finally:
        for table in _TEMP_TABLES:
            store.execute(f"DROP TABLE IF EXISTS {table}")


def _fetch(store: Store, attributes: list[str], unit: str, np: Any) -> FeatureMatrix:
    """Read the coded tables into arrays and the dense matrix; compute the input fingerprint."""
    customers = store.con.sql(
        "SELECT customer_id, orders, spend, net_spend, recency_days FROM _pp_customers ORDER BY row"
    ).to_arrow_table()
    n = customers.num_rows
    if n == 0:
        raise AnalysisError(
            "no customer has a purchase in the window and the audience: the audience is empty."
        )
    variable_rows = store.tuples("SELECT attr, value FROM _pp_variables ORDER BY col")
    several = len(attributes) > 1
    variables = [
        Variable(attributes[attr], str(value), f"{attributes[attr]}: {value}" if several else str(value))
        for attr, value in variable_rows
    ]
    if not variables:
        raise AnalysisError(
            f"none of the {n:,} customers bought a product with a value of {', '.join(attributes)}: "
            "nothing to analyse. Check the products' attributes (`pleasepoint ingest products`)."
        )
    cells = store.con.execute(
        "SELECT c.row, v.col, c.orders, c.spend FROM _pp_cells c JOIN _pp_variables v USING (code)"
    ).fetchnumpy()
    orders = customers.column("orders").to_numpy().astype(np.int64)
    spend_units = customers.column("spend").to_numpy().astype(np.int64)
    rows = np.asarray(cells["row"], dtype=np.int64)
    cols = np.asarray(cells["col"], dtype=np.int64)
    if unit == "freq":
        cell_values = np.asarray(cells["orders"], dtype=np.float64) / orders[rows]
    elif unit == "count":
        cell_values = np.asarray(cells["orders"], dtype=np.float64)
    elif unit == "spend":
        total = spend_units[rows].astype(np.float64)
        part = np.asarray(cells["spend"], dtype=np.float64)
        cell_values = np.divide(part, total, out=np.zeros_like(part), where=total > 0)
    elif unit == "binary":
        cell_values = np.ones(rows.shape[0], dtype=np.float64)
    else:
        raise ConfigError(f"--unit {unit!r}: use freq, count, spend or binary.")
    values = np.zeros((n, len(variables)), dtype=np.float64)
    values[rows, cols] = cell_values
    counts = _counts(store)
    counts["variables"] = len(variables)
    return FeatureMatrix(
        customer_ids=customers.column("customer_id").combine_chunks(),
        variables=variables,
        unit=unit,
        values=values,
        orders=orders,
        spend=spend_units / MONEY_SCALE,
        net_spend=customers.column("net_spend").to_numpy().astype(np.int64) / MONEY_SCALE,
        recency_days=customers.column("recency_days").to_numpy().astype(np.int64),
        counts=counts,
        fingerprint=_fingerprint(store),
    )


def _counts(store: Store) -> dict[str, int]:
    row = store.first("SELECT count(*), coalesce(sum(orders), 0) FROM _pp_customers")
    cells = store.first("SELECT count(*) FROM _pp_cells")
    assert row is not None and cells is not None
    return {"customers": int(row[0]), "orders": int(row[1]), "cells": int(cells[0])}


def _fingerprint(store: Store) -> str:
    """A hash of the aggregated input: the set of (customer, variable, orders, spend) cells and of the
    customers' totals. Sums of per-row hashes do not depend on row order, so no sort is needed."""
    cells = store.first(
        """
        SELECT count(*), coalesce(sum(hash(c.customer_id, v.attr, v.value, x.orders, x.spend)::HUGEINT), 0)
        FROM _pp_cells x
        JOIN _pp_customers c USING (row)
        JOIN _pp_variables v USING (code)
        """
    )
    customers = store.first(
        """
        SELECT count(*), coalesce(sum(hash(customer_id, orders, spend, net_spend, recency_days)::HUGEINT), 0)
        FROM _pp_customers
        """
    )
    text = f"cells {cells} customers {customers}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def clustering_matrix(features: FeatureMatrix, transform: str, rfm: bool) -> FloatMatrix:
    """The matrix k-means sees: the unit values transformed, then (with --rfm) standardised R, F and M."""
    import numpy as np

    matrix = transform_values(features.values, transform)
    if rfm:
        matrix = np.hstack([matrix, standardize(features.rfm())])
    return np.ascontiguousarray(matrix)


def transform_values(values: FloatMatrix, transform: str) -> FloatMatrix:
    """none, log (log1p), sqrt, standardize (z-score per column) or minmax (0..1 per column)."""
    import numpy as np

    if transform == "none":
        return values
    if transform == "log":
        result: FloatMatrix = np.log1p(values)
        return result
    if transform == "sqrt":
        result = np.sqrt(values)
        return result
    if transform == "standardize":
        return standardize(values)
    if transform == "minmax":
        low = values.min(axis=0)
        span = values.max(axis=0) - low
        span[span == 0] = 1.0
        result = (values - low) / span
        return result
    raise ConfigError(f"--transform {transform!r}: use none, log, standardize, minmax or sqrt.")


def standardize(values: FloatMatrix) -> FloatMatrix:
    """Z-scores per column; a constant column becomes zeros."""
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std == 0] = 1.0
    result: FloatMatrix = (values - mean) / std
    return result
