"""Per-customer facts derived from the order history, as SQL SELECTs that aggregate all customers at once.

A purchase is an order line with a positive quantity; returns (negative quantities) only lower the spend.
With `until_param=True` each SELECT holds exactly one `?`: the as-of timestamp, and ignores later lines.
"""

from __future__ import annotations

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), for great-circle distances."""


def _until(until_param: bool) -> str:
    return "AND ordered_at <= ?" if until_param else ""


def order_facts_sql(*, until_param: bool = False) -> str:
    """customer_id, orders (distinct orders with a purchase), spend (net), last_purchase_day (DATE)."""
    return f"""
        SELECT customer_id,
               count(DISTINCT order_id) FILTER (WHERE quantity > 0) AS orders,
               sum(amount) AS spend,
               max(ordered_at) FILTER (WHERE quantity > 0)::DATE AS last_purchase_day
        FROM order_lines
        WHERE TRUE {_until(until_param)}
        GROUP BY customer_id"""


def pattern_facts_sql(*, until_param: bool = False) -> str:
    """customer_id, purchase_days (distinct days with a purchase), median_gap_days between those days."""
    return f"""
        SELECT customer_id, count(*) AS purchase_days, median(gap) AS median_gap_days
        FROM (
            SELECT customer_id, day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap
            FROM (
                SELECT DISTINCT customer_id, ordered_at::DATE AS day
                FROM order_lines
                WHERE quantity > 0 {_until(until_param)}
            )
        )
        GROUP BY customer_id"""


def preferred_store_sql(*, until_param: bool = False) -> str:
    """customer_id, store_id: the store of most distinct purchase orders (ties: latest, then smallest id).

    Customers without an order in a store have no row.
    """
    return f"""
        SELECT customer_id, store_id
        FROM (
            SELECT customer_id, store_id,
                   count(DISTINCT order_id) AS store_orders,
                   max(ordered_at) AS last_order_at
            FROM order_lines
            WHERE quantity > 0 AND store_id IS NOT NULL {_until(until_param)}
            GROUP BY customer_id, store_id
        )
        QUALIFY row_number() OVER (
            PARTITION BY customer_id ORDER BY store_orders DESC, last_order_at DESC, store_id
        ) = 1"""


def haversine_km_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """Great-circle distance in km between two points given as SQL expressions (trusted, never user text)."""
    return (
        f"(2 * {EARTH_RADIUS_KM} * asin(sqrt(least(1.0, "
        f"pow(sin(radians({lat2} - {lat1}) / 2), 2) + "
        f"cos(radians({lat1})) * cos(radians({lat2})) * pow(sin(radians({lon2} - {lon1}) / 2), 2)))))"
    )
