"""Which products each email shows: the blog's rules, in one set-based query per batch of customers.

- Candidates: the products on offer during the campaign window (an offer price below the price, and an offer
  period that overlaps the window), and/or a listed set of product ids. A product without a URL or price is
  never a candidate (it could not be linked or priced).
- "Buys regularly": the customer bought it (the product, or a product of the category) in at least
  `min_orders` of their orders AND in at least `min_share` of their orders (defaults 2 and 25%), counting
  orders up to the as-of date.
- Slot 1: among the candidates the customer buys regularly (by product, or by category with
  `regular_by="category"`), the deepest discount `(price - offer_price) / price` (ties: lowest product id);
  if there is none, a pseudo-random candidate: the candidates are put in an order seeded by the campaign
  (md5 of seed and product id), and the customer starts at a position seeded by the customer (md5 of seed
  and customer id), taking the first candidate they may get from there. Reproducible on every run and machine.
- Slots 2..n: candidates from categories the customer does not buy regularly but the customer's cluster buys
  habitually (profile level `high`, or propensity index >= 1), highest propensity first, one product per
  category in turn (deepest discount first within a category).
- Slots the rules leave empty are filled, when `fill` is on, from the customer's seeded order.
- Never twice the same product, never a product the customer bought in the last N days (0: no exclusion).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class CandidateSpec:
    """Which products may be recommended: on offer in a window (`offer_from..offer_to`), listed ids, or both."""

    on_offer: bool = True
    window_from: date | None = None
    window_to: date | None = None
    product_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecommendationRules:
    """The knobs of the blog's rules (defaults documented in docs/campaigns.md)."""

    slots: int = 3
    exclude_bought_within_days: int = 30
    regular_by: Literal["product", "category"] = "product"
    regular_min_orders: int = 2
    regular_min_share: float = 0.25
    habitual_level: str = "high"
    habitual_min_propensity: float = 1.0
    fill: bool = True
    seed: str = ""


@dataclass(frozen=True)
class Recommendation:
    """One product of one customer's email, and why it is there (regular, random, cluster, fill)."""

    customer_id: str
    slot: int
    product_id: str
    name: str
    category: str | None
    price: float
    offer_price: float | None
    discount: float
    url: str
    image_url: str | None
    reason: str

    def as_context(self) -> dict[str, Any]:
        """The product as a template sees it."""
        return {
            "product_id": self.product_id,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "offer_price": self.offer_price,
            "discount_pct": round(self.discount * 100),
            "url": self.url,
            "image_url": self.image_url,
            "slot": self.slot,
            "reason": self.reason,
        }


_CANDIDATES_SQL = """
    SELECT product_id, name, category, price,
           CASE WHEN on_offer THEN offer_price END AS offer_price,
           CASE WHEN on_offer THEN (price - offer_price) / price ELSE 0.0 END AS discount,
           url, image_url,
           row_number() OVER (ORDER BY md5($seed || '|' || product_id)) - 1 AS pos,
           count(*) OVER () AS k
    FROM (
        SELECT *,
               coalesce(offer_price < price AND price > 0
                        AND coalesce(offer_from, DATE '0001-01-01') <= $window_to
                        AND coalesce(offer_to, DATE '9999-12-31') >= $window_from, FALSE) AS on_offer
        FROM products
        WHERE url IS NOT NULL AND name IS NOT NULL AND price IS NOT NULL
    )
    WHERE ($use_offers AND on_offer) OR list_contains($product_ids, product_id)
"""

_RECOMMEND_SQL = f"""
WITH batch AS (SELECT DISTINCT unnest($customer_ids::VARCHAR[]) AS customer_id),
cand AS ({_CANDIDATES_SQL}),
hist AS (
    SELECT l.customer_id, l.order_id, l.product_id, p.category, l.ordered_at
    FROM order_lines l
    JOIN batch USING (customer_id)
    LEFT JOIN products p USING (product_id)
    WHERE l.quantity > 0 AND l.ordered_at < $as_of::DATE + INTERVAL 1 DAY
),
n_orders AS (SELECT customer_id, count(DISTINCT order_id) AS n FROM hist GROUP BY customer_id),
regular_product AS (
    SELECT h.customer_id, h.product_id
    FROM hist h JOIN n_orders o USING (customer_id)
    GROUP BY h.customer_id, h.product_id, o.n
    HAVING count(DISTINCT h.order_id) >= $min_orders AND count(DISTINCT h.order_id) >= $min_share * o.n
),
regular_category AS (
    SELECT h.customer_id, h.category
    FROM hist h JOIN n_orders o USING (customer_id)
    WHERE h.category IS NOT NULL
    GROUP BY h.customer_id, h.category, o.n
    HAVING count(DISTINCT h.order_id) >= $min_orders AND count(DISTINCT h.order_id) >= $min_share * o.n
),
recent AS (
    SELECT DISTINCT customer_id, product_id FROM hist
    WHERE $recent_days > 0 AND ordered_at >= $as_of::DATE - $recent_days * INTERVAL 1 DAY
),
member AS (
    SELECT a.customer_id, a.cluster FROM persona_assignments a JOIN batch USING (customer_id)
    WHERE a.run_id = $run_id
),
habit AS (
    SELECT cluster, variable[length($category_prefix) + 1:] AS category, max(propensity) AS propensity
    FROM persona_profile
    WHERE run_id = $run_id AND $run_has_category AND starts_with(variable, $category_prefix)
      AND (level = $habit_level OR propensity >= $habit_min)
    GROUP BY ALL
),
pairs AS (
    SELECT b.customer_id, c.*,
           CASE WHEN $regular_by = 'product' THEN rp.product_id IS NOT NULL
                ELSE rc.category IS NOT NULL END AS regular,
           rc.category IS NOT NULL AS regular_category,
           h.propensity AS habit,
           (c.pos - (md5_number($seed || '|' || b.customer_id) % c.k::UHUGEINT)::BIGINT + c.k) % c.k AS random_rank
    FROM batch b
    CROSS JOIN cand c
    LEFT JOIN recent r ON r.customer_id = b.customer_id AND r.product_id = c.product_id
    LEFT JOIN regular_product rp ON rp.customer_id = b.customer_id AND rp.product_id = c.product_id
    LEFT JOIN regular_category rc ON rc.customer_id = b.customer_id AND rc.category = c.category
    LEFT JOIN member m ON m.customer_id = b.customer_id
    LEFT JOIN habit h ON h.cluster = m.cluster AND h.category = c.category
    WHERE r.product_id IS NULL
),
first_pick AS (
    SELECT customer_id, product_id, CASE WHEN regular THEN 'regular' ELSE 'random' END AS reason
    FROM pairs
    QUALIFY row_number() OVER (
        PARTITION BY customer_id
        ORDER BY regular DESC, CASE WHEN regular THEN discount END DESC,
                 CASE WHEN regular THEN product_id END, random_rank) = 1
),
cluster_pick AS (
    SELECT customer_id, product_id,
           row_number() OVER (
               PARTITION BY customer_id
               ORDER BY in_category, habit DESC, category, discount DESC, product_id) AS rank
    FROM (
        SELECT p.*, row_number() OVER (
                   PARTITION BY p.customer_id, p.category ORDER BY p.discount DESC, p.product_id) AS in_category
        FROM pairs p
        LEFT JOIN first_pick f USING (customer_id, product_id)
        WHERE f.product_id IS NULL AND p.habit IS NOT NULL AND NOT p.regular_category
    )
),
ranked AS (
    SELECT p.*,
           CASE WHEN f.product_id IS NOT NULL THEN 0 WHEN cp.rank <= $slots - 1 THEN 1 ELSE 2 END AS tier,
           CASE WHEN f.product_id IS NOT NULL THEN f.reason
                WHEN cp.rank <= $slots - 1 THEN 'cluster' ELSE 'fill' END AS reason,
           CASE WHEN cp.rank <= $slots - 1 THEN cp.rank ELSE p.random_rank END AS order_in_tier
    FROM pairs p
    LEFT JOIN first_pick f USING (customer_id, product_id)
    LEFT JOIN cluster_pick cp USING (customer_id, product_id)
)
SELECT customer_id,
       row_number() OVER (PARTITION BY customer_id ORDER BY tier, order_in_tier) AS slot,
       product_id, name, category, price, offer_price, discount, url, image_url, reason
FROM ranked
WHERE tier < 2 OR $fill
QUALIFY slot <= $slots
ORDER BY customer_id, slot
"""


def _check(rules: RecommendationRules) -> None:
    if rules.slots < 1:
        raise ConfigError(f"products.slots must be at least 1 (got {rules.slots}).")
    if rules.regular_by not in ("product", "category"):
        raise ConfigError(f"products.regular.by must be product or category (got {rules.regular_by!r}).")


def _window(spec: CandidateSpec, as_of: date) -> tuple[date, date]:
    start = spec.window_from or as_of
    end = spec.window_to or (as_of if spec.window_from is None else start)
    return start, end


def candidate_products(
    con: duckdb.DuckDBPyConnection, spec: CandidateSpec, as_of: date, seed: str = ""
) -> int:
    """How many products are candidates (for validation: zero means every email shows no products)."""
    start, end = _window(spec, as_of)
    row = con.execute(
        f"SELECT count(*) FROM ({_CANDIDATES_SQL})",
        {
            "seed": seed,
            "window_from": start,
            "window_to": end,
            "use_offers": spec.on_offer,
            "product_ids": list(spec.product_ids),
        },
    ).fetchone()
    return int(row[0]) if row else 0


def category_variable_prefix(con: duckdb.DuckDBPyConnection, run_id: int | None) -> str | None:
    """How a run names its category variables: `Hogar` (category alone), `category: Hogar` (with other
    attributes), or None when the run did not analyse categories (no cluster picks then)."""
    if run_id is None:
        return None
    row = con.execute("SELECT manifest FROM persona_runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        return None
    manifest = json.loads(row[0]) if isinstance(row[0], str) else (row[0] or {})
    attributes = (manifest.get("options") or {}).get("attributes") or ["category"]
    if "category" not in attributes:
        return None
    return "" if len(attributes) == 1 else "category: "


def recommend(
    con: duckdb.DuckDBPyConnection,
    customer_ids: Sequence[str],
    *,
    as_of: date,
    candidates: CandidateSpec,
    rules: RecommendationRules,
    run_id: int | None,
) -> dict[str, list[Recommendation]]:
    """Each customer's products in slot order, for a whole batch of customers in one query."""
    _check(rules)
    start, end = _window(candidates, as_of)
    prefix = category_variable_prefix(con, run_id)
    params: dict[str, Any] = {
        "customer_ids": list(customer_ids),
        "seed": rules.seed,
        "window_from": start,
        "window_to": end,
        "use_offers": candidates.on_offer,
        "product_ids": list(candidates.product_ids),
        "as_of": as_of,
        "min_orders": rules.regular_min_orders,
        "min_share": rules.regular_min_share,
        "recent_days": rules.exclude_bought_within_days,
        "run_id": run_id if run_id is not None else -1,
        "run_has_category": prefix is not None,
        "category_prefix": prefix or "",
        "habit_level": rules.habitual_level,
        "habit_min": rules.habitual_min_propensity,
        "regular_by": rules.regular_by,
        "slots": rules.slots,
        "fill": rules.fill,
    }
    out: dict[str, list[Recommendation]] = {customer: [] for customer in customer_ids}
    for row in con.execute(_RECOMMEND_SQL, params).fetchall():
        customer_id, slot, product_id, name, category, price, offer_price, discount, url, image, reason = row
        out[customer_id].append(
            Recommendation(
                customer_id=customer_id,
                slot=int(slot),
                product_id=product_id,
                name=name,
                category=category,
                price=float(price),
                offer_price=None if offer_price is None else float(offer_price),
                discount=float(discount),
                url=url,
                image_url=image,
                reason=reason,
            )
        )
    return out
