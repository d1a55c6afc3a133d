"""Per-customer facts derived from the order history, as SQL SELECTs that aggregate all customers at once.

A purchase is an order line with a positive quantity; returns (negative quantities) only lower the spend.
With `until_param=True` a SELECT ignores later lines; its first `?` is the as-of timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), for great-circle distances."""


def _until(until_param: bool) -> str:
    return "AND ordered_at <= ?" if until_param else ""


def _lines_of(lines: str, customers_sql: str | None) -> str:
    """`lines`, cut to the customers of `customers_sql` when given. A join on their distinct ids rather than
    `customer_id IN (...)`: for the IN, DuckDB 2.0.1 built its hash table on the millions of order lines and
    probed it with the few customers (1.3-1.7 s of a 5 s audience at a million customers)."""
    if not customers_sql:
        return lines
    return f"{lines} JOIN (SELECT DISTINCT customer_id FROM ({customers_sql})) AS _among USING (customer_id)"


ORDER_FACTS = {
    "orders": "count(DISTINCT order_id) FILTER (WHERE quantity > 0) AS orders",
    "spend": "round(sum(amount), 2) AS spend",
    "last_purchase_day": "max(ordered_at) FILTER (WHERE quantity > 0)::DATE AS last_purchase_day",
}
"""The order facts, by column: `orders` (distinct orders with a purchase), `spend` (net, rounded to cents: a sum
of DOUBLEs depends on the order the threads add them in, so a customer at exactly a threshold was in or out
from run to run), `last_purchase_day` (DATE)."""


def order_facts_sql(*, until_param: bool = False, columns: Iterable[str] = tuple(ORDER_FACTS)) -> str:
    """customer_id and the `columns` of ORDER_FACTS (default: all). Ask only for those read: `orders` is a
    count of distinct orders, a hash aggregation of every order that costs more than the rest together."""
    wanted = [ORDER_FACTS[name] for name in ORDER_FACTS if name in set(columns)]
    return f"""
        SELECT customer_id, {", ".join(wanted)}
        FROM purchase_lines
        WHERE TRUE {_until(until_param)}
        GROUP BY customer_id"""


def pattern_facts_sql(*, until_param: bool = False, customers_sql: str | None = None) -> str:
    """customer_id, purchase_days (distinct days with a purchase), median_gap_days between those days.

    `customers_sql`, a subquery of customer_ids (its `?` before the as-of one), limits the work to them.
    """
    return f"""
        SELECT customer_id, count(*) AS purchase_days, median(gap) AS median_gap_days
        FROM (
            SELECT customer_id, day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap
            FROM (
                SELECT DISTINCT customer_id, ordered_at::DATE AS day
                FROM {_lines_of("purchase_lines", customers_sql)}
                WHERE quantity > 0 {_until(until_param)}
            )
        )
        GROUP BY customer_id"""


def preferred_store_sql(
    *, until_param: bool = False, customers_sql: str | None = None, lines: str = "purchase_lines"
) -> str:
    """customer_id, store_id: the store of most distinct purchase orders (ties: latest, then smallest id).

    The one definition of the preferred store, for audience rules and email contexts alike. Customers without
    an order in a store have no row. `customers_sql` as in `pattern_facts_sql`; `lines` names the order
    lines to read (a CTE already cut to a batch of customers, for the contexts).
    """
    return f"""
        SELECT customer_id,
               arg_min(store_id, (-store_orders, -epoch_us(last_order_at), store_id)) AS store_id
        FROM (
            SELECT customer_id, store_id, count(*) AS store_orders, max(order_at) AS last_order_at
            FROM (
                SELECT customer_id, store_id, order_id, max(ordered_at) AS order_at
                FROM {_lines_of(lines, customers_sql)}
                WHERE quantity > 0 AND store_id IS NOT NULL {_until(until_param)}
                GROUP BY customer_id, store_id, order_id
            )
            GROUP BY customer_id, store_id
        )
        GROUP BY customer_id"""


def latitude_span_degrees(km: float) -> float:
    """Degrees of latitude within which any point `km` away must lie (a great circle is never shorter)."""
    return km / (EARTH_RADIUS_KM * math.pi / 180) * 1.000001


def haversine_km_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """Great-circle distance in km between two points given as SQL expressions (trusted, never user text)."""
    return (
        f"(2 * {EARTH_RADIUS_KM} * asin(sqrt(least(1.0, "
        f"pow(sin(radians({lat2} - {lat1}) / 2), 2) + "
        f"cos(radians({lat1})) * cos(radians({lat2})) * pow(sin(radians({lon2} - {lon1}) / 2), 2)))))"
    )
