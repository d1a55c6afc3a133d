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

from pleasepoint_cli.content.batch import customer_batch
from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass


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
WITH batch AS (SELECT DISTINCT customer_id FROM {{batch}}),
cand AS (
    SELECT *, row_number() OVER (PARTITION BY category ORDER BY discount DESC, product_id) AS in_category
    FROM ({_CANDIDATES_SQL})
),
hist AS (
    SELECT l.customer_id, l.order_id, l.product_id, p.category, l.ordered_at
    FROM purchase_lines l
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
    -- Candidates bought in the last N days: never recommended to that customer.
    SELECT DISTINCT h.customer_id, h.product_id, c.category FROM hist h JOIN cand c USING (product_id)
    WHERE $recent_days > 0 AND h.ordered_at >= $as_of::DATE - $recent_days * INTERVAL 1 DAY
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
rotation AS (
    -- Each customer's seeded order of the candidates, from its start, as far as the picks can need:
    -- past its recent purchases and the products already chosen (computed per customer, not per pair).
    SELECT s.customer_id, c.product_id, s.offset AS random_rank
    FROM (
        SELECT b.customer_id, k,
               (md5_number($seed || '|' || b.customer_id) % k::UHUGEINT)::BIGINT AS position,
               unnest(range(0, least(k, coalesce(e.n, 0) + 2 * $slots))) AS offset
        FROM batch b
        CROSS JOIN (SELECT max(k) AS k FROM cand) AS total
        LEFT JOIN (SELECT customer_id, count(*) AS n FROM recent GROUP BY customer_id) e USING (customer_id)
        WHERE total.k > 0
    ) s
    JOIN cand c ON c.pos = (s.position + s.offset) % s.k
    LEFT JOIN recent r ON r.customer_id = s.customer_id AND r.product_id = c.product_id
    WHERE r.product_id IS NULL
),
regular_pick AS (
    SELECT customer_id, product_id FROM (
        SELECT rp.customer_id, c.product_id, c.discount FROM regular_product rp JOIN cand c USING (product_id)
        WHERE $regular_by = 'product'
        UNION ALL
        SELECT rc.customer_id, c.product_id, c.discount FROM regular_category rc JOIN cand c USING (category)
        WHERE $regular_by = 'category'
    ) x
    WHERE NOT EXISTS (SELECT 1 FROM recent r WHERE r.customer_id = x.customer_id AND r.product_id = x.product_id)
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY discount DESC, product_id) = 1
),
random_pick AS (
    SELECT customer_id, product_id FROM rotation
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY random_rank) = 1
),
first_pick AS (
    SELECT b.customer_id, coalesce(g.product_id, r.product_id) AS product_id,
           CASE WHEN g.product_id IS NOT NULL THEN 'regular' ELSE 'random' END AS reason
    FROM batch b
    LEFT JOIN regular_pick g USING (customer_id)
    LEFT JOIN random_pick r USING (customer_id)
    WHERE coalesce(g.product_id, r.product_id) IS NOT NULL
),
cluster_categories AS (
    -- The cluster's habitual categories the customer does not buy regularly, and how many of their
    -- candidates the customer may not get (recent purchases, the slot-1 product).
    SELECT m.customer_id, h.category, h.propensity,
           (SELECT count(*) FROM recent r WHERE r.customer_id = m.customer_id AND r.category = h.category)
           + (SELECT count(*) FROM first_pick f JOIN cand c USING (product_id)
              WHERE f.customer_id = m.customer_id AND c.category = h.category) AS taken
    FROM member m
    JOIN habit h USING (cluster)
    LEFT JOIN regular_category rc ON rc.customer_id = m.customer_id AND rc.category = h.category
    WHERE rc.category IS NULL
),
cluster_pick AS (
    SELECT customer_id, product_id,
           row_number() OVER (
               PARTITION BY customer_id
               ORDER BY in_category, propensity DESC, category, discount DESC, product_id) AS rank
    FROM (
        SELECT k.customer_id, c.product_id, c.category, c.discount, k.propensity,
               row_number() OVER (
                   PARTITION BY k.customer_id, c.category ORDER BY c.discount DESC, c.product_id) AS in_category
        FROM cluster_categories k
        JOIN cand c ON c.category = k.category AND c.in_category <= $slots + k.taken
        LEFT JOIN recent r ON r.customer_id = k.customer_id AND r.product_id = c.product_id
        LEFT JOIN first_pick f ON f.customer_id = k.customer_id AND f.product_id = c.product_id
        WHERE r.product_id IS NULL AND f.product_id IS NULL
    )
    QUALIFY rank <= $slots - 1
),
picks AS (
    SELECT customer_id, product_id, 0 AS tier, 0 AS rank, reason FROM first_pick
    UNION ALL
    SELECT customer_id, product_id, 1, rank, 'cluster' FROM cluster_pick
    UNION ALL
    SELECT r.customer_id, r.product_id, 2, r.random_rank, 'fill' FROM rotation r
    WHERE $fill
      AND NOT EXISTS (SELECT 1 FROM first_pick f WHERE f.customer_id = r.customer_id AND f.product_id = r.product_id)
      AND NOT EXISTS (SELECT 1 FROM cluster_pick p WHERE p.customer_id = r.customer_id AND p.product_id = r.product_id)
)
SELECT p.customer_id,
       row_number() OVER (PARTITION BY p.customer_id ORDER BY p.tier, p.rank) AS slot,
       c.product_id, c.name, c.category, c.price, c.offer_price, c.discount, c.url, c.image_url, p.reason
FROM picks p JOIN cand c USING (product_id)
QUALIFY slot <= $slots
ORDER BY p.customer_id, slot
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


def candidate_products(store: Store, spec: CandidateSpec, as_of: date, seed: str = "") -> int:
    """How many products are candidates (for validation: zero means every email shows no products)."""
    start, end = _window(spec, as_of)
    row = store.first(
        f"SELECT count(*) FROM ({_CANDIDATES_SQL})",
        {
            "seed": seed,
            "window_from": start,
            "window_to": end,
            "use_offers": spec.on_offer,
            "product_ids": list(spec.product_ids),
        },
    )
    return int(row[0]) if row else 0


def category_variable_prefix(store: Store, run_id: int | None) -> str | None:
    """How a run names its category variables: `Hogar` (category alone), `category: Hogar` (with other
    attributes), or None when the run did not analyse categories (no cluster picks then)."""
    if run_id is None:
        return None
    row = store.first("SELECT manifest FROM persona_runs WHERE run_id = ?", [run_id])
    if row is None:
        return None
    manifest = json.loads(row[0]) if isinstance(row[0], str) else (row[0] or {})
    attributes = (manifest.get("options") or {}).get("attributes") or ["category"]
    if "category" not in attributes:
        return None
    return "" if len(attributes) == 1 else "category: "


def recommend(
    store: Store,
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
    prefix = category_variable_prefix(store, run_id)
    params: dict[str, Any] = {
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
    with customer_batch(store, customer_ids) as batch:
        rows = store.tuples(_RECOMMEND_SQL.format(batch=batch), params)
    for row in rows:
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
