"""`clv score`: the guide's CLV table, nine figures per segment, segments being recency states, RFM segments
or the clusters of a persona run. Everything is DuckDB SQL over `purchase_lines` (order lines that count: docs/ingest.md, statuses).

A customer's figures at an as-of date count the order lines ordered on or before that date: tickets are the
distinct orders with at least one purchased line (quantity > 0), spend is the sum of every line's amount
(returns, negative, are netted), and recency is the days from the last purchase day to the as-of date.
Customers without a purchase by then are left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pleasepoint_cli.errors import AnalysisError, ConfigError
from pleasepoint_cli.recency import STATES, state_params, state_sql
from pleasepoint_cli.store.connection import writer

if TYPE_CHECKING:
    from pleasepoint_cli.attributes import AttributeChange
    from pleasepoint_cli.config import StateThresholds
    from pleasepoint_cli.store.connection import Store

ScoreBy = Literal["state", "rfm", "cluster"]
FIGURES_TABLE = "clv_figures"

_FIGURES_SQL = f"""
CREATE OR REPLACE TEMP TABLE {FIGURES_TABLE} AS
SELECT customer_id, tickets, spend, first_order, last_order,
       date_diff('day', last_order, CAST($as_of AS DATE)) AS recency_days
FROM (
    -- Orders first, then customers: cheaper than count(DISTINCT order_id) per customer.
    SELECT customer_id,
           count(*) FILTER (WHERE bought) AS tickets,
           sum(spend) AS spend,
           CAST(min(first_purchase) AS DATE) AS first_order,
           CAST(max(last_purchase) AS DATE) AS last_order
    FROM (
        SELECT customer_id, order_id,
               bool_or(quantity > 0) AS bought,
               sum(amount) AS spend,
               min(ordered_at) FILTER (WHERE quantity > 0) AS first_purchase,
               max(ordered_at) FILTER (WHERE quantity > 0) AS last_purchase
        FROM purchase_lines
        WHERE ordered_at < CAST($as_of AS DATE) + INTERVAL 1 DAY
        GROUP BY customer_id, order_id
    )
    GROUP BY customer_id
)
WHERE tickets > 0
"""

STATE_SQL = state_sql("recency_days")
"""The recency state of a row of `clv_figures`; the thresholds are the first day of the next state."""


@dataclass(frozen=True)
class SegmentFigures:
    """The guide's nine figures for one segment (money rounded to the cent, ratios to two decimals)."""

    segment: str
    label: str | None
    customers: int
    tickets: int
    avg_ticket: float | None
    mean_recency_days: float | None
    total_spend: float
    tickets_per_customer: float | None
    spend_per_customer: float | None
    pct_customers: float | None
    pct_revenue: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoreTable:
    """One row per segment, in the scheme's order, and the total over every scored customer."""

    by: ScoreBy
    as_of: date
    run_id: int | None
    rows: list[SegmentFigures]
    total: SegmentFigures


def latest_order_day(store: Store) -> date:
    """The default as-of date: the day of the latest order line, so results depend on the data, not the clock."""
    row = store.first("SELECT CAST(max(ordered_at) AS DATE) FROM purchase_lines")
    if row is None or row[0] is None:
        raise AnalysisError(
            "there are no orders in the store: load some with `pleasepoint ingest orders` first."
        )
    day: date = row[0]
    return day


def materialize_figures(store: Store, as_of: date) -> int:
    """Compute every customer's figures at `as_of` into the temp table `clv_figures`; return how many."""
    store.execute(_FIGURES_SQL, {"as_of": as_of})
    row = store.first(f"SELECT count(*) FROM {FIGURES_TABLE}")
    return int(row[0]) if row else 0


def segments_sql(by: ScoreBy) -> str:
    """A query of (customer_id, tickets, spend, recency_days, segment) over `clv_figures`."""
    from pleasepoint_cli.clv.rfm import RFM_SQL

    if by == "state":
        return (
            f"SELECT customer_id, tickets, spend, recency_days, {STATE_SQL} AS segment FROM {FIGURES_TABLE}"
        )
    if by == "rfm":
        return f"{RFM_SQL} SELECT customer_id, tickets, spend, recency_days, segment FROM rfm"
    return f"""
        SELECT f.customer_id, f.tickets, f.spend, f.recency_days,
               coalesce(CAST(a.cluster AS VARCHAR), 'unassigned') AS segment
        FROM {FIGURES_TABLE} f
        LEFT JOIN persona_assignments a ON a.customer_id = f.customer_id AND a.run_id = $run_id"""


def _segment_order(store: Store, by: ScoreBy, run_id: int | None) -> list[tuple[str, str | None]]:
    from pleasepoint_cli.clv.rfm import RFM_SEGMENTS

    if by == "state":
        return [(s, None) for s in STATES]
    if by == "rfm":
        return [(s, None) for s in RFM_SEGMENTS]
    from pleasepoint_cli.enrich.runs import run_clusters

    return [(str(c), label) for c, label in run_clusters(store, int(run_id or 0)).items()]


def _params(by: ScoreBy, thresholds: StateThresholds, run_id: int | None) -> dict[str, Any]:
    if by == "state":
        return state_params(thresholds)
    if by == "cluster":
        return {"run_id": run_id}
    return {}


_SCORE_SQL = """
WITH segmented AS MATERIALIZED ({segments}),
order_of AS (SELECT segment, label, position FROM clv_segment_order),
per_segment AS (
    SELECT segment, count(*) AS customers, sum(tickets) AS tickets, sum(spend) AS spend,
           avg(recency_days) AS recency
    FROM segmented GROUP BY segment
),
rows AS (
    SELECT o.position, o.segment, o.label, coalesce(p.customers, 0) AS customers,
           coalesce(p.tickets, 0) AS tickets, coalesce(p.spend, 0) AS spend, p.recency
    FROM order_of o LEFT JOIN per_segment p USING (segment)
    WHERE o.segment <> 'unassigned' OR p.customers > 0
    UNION ALL
    SELECT 1e9, 'Total', NULL, count(*), coalesce(sum(tickets), 0), coalesce(sum(spend), 0), avg(recency_days)
    FROM segmented
),
totals AS (SELECT count(*) AS all_customers, sum(spend) AS all_spend FROM segmented)
SELECT segment, label, customers, tickets,
       round(spend / nullif(tickets, 0), 2) AS avg_ticket,
       round(recency, 2) AS mean_recency_days,
       round(spend, 2) AS total_spend,
       round(tickets / nullif(customers, 0), 2) AS tickets_per_customer,
       round(spend / nullif(customers, 0), 2) AS spend_per_customer,
       round(100.0 * customers / nullif(all_customers, 0), 2) AS pct_customers,
       round(100.0 * spend / nullif(all_spend, 0), 2) AS pct_revenue
FROM rows, totals
ORDER BY position
"""


def clv_score(
    store: Store,
    by: ScoreBy,
    as_of: date,
    thresholds: StateThresholds,
    run: str | int | None = None,
) -> ScoreTable:
    """The CLV score table at `as_of`, by recency state, RFM segment or persona cluster (`run` needed)."""
    from pleasepoint_cli.clv.rfm import require_rfm_population

    run_id: int | None = None
    if by == "cluster":
        from pleasepoint_cli.enrich.runs import resolve_run

        run_id = resolve_run(store, run if run is not None else "latest")
    elif run is not None:
        raise ConfigError(f"a run ({run}) only goes with --by cluster.")
    customers = materialize_figures(store, as_of)
    if customers == 0:
        raise AnalysisError(f"no customer has a purchase on or before {as_of}: load orders or move --as-of.")
    if by == "rfm":
        require_rfm_population(customers)
    order = _segment_order(store, by, run_id)
    if by == "cluster":
        order.append(("unassigned", None))
    # The segment order (and cluster labels, user text) go in through a small temp table.
    store.execute(
        "CREATE OR REPLACE TEMP TABLE clv_segment_order (segment VARCHAR, label VARCHAR, position INTEGER)"
    )
    store.con.executemany(
        "INSERT INTO clv_segment_order VALUES (?, ?, ?)",
        [[segment, label, i] for i, (segment, label) in enumerate(order)],
    )
    sql = _SCORE_SQL.format(segments=segments_sql(by))
    rows = [SegmentFigures(*row) for row in store.tuples(sql, _params(by, thresholds, run_id))]
    return ScoreTable(by, as_of, run_id, rows[:-1], rows[-1])


DEFAULT_KEYS: dict[str, str] = {"state": "clv_state", "rfm": "rfm_segment"}

_ENRICH_SQL = """
    SELECT customer_id, ?, segment FROM clv_segments
    UNION ALL
    SELECT customer_id, key, NULL FROM customer_attributes
    WHERE key = ? AND source LIKE 'clv %' AND customer_id NOT IN (SELECT customer_id FROM clv_segments)
"""


@writer
def clv_enrich(
    store: Store,
    by: Literal["state", "rfm"],
    as_of: date,
    thresholds: StateThresholds,
    key: str | None = None,
) -> tuple[AttributeChange, list[tuple[str, int]]]:
    """Write every scored customer's state or RFM segment as attribute `key` (one change batch), and take
    the key off customers an earlier CLV write set it on who have no purchase by `as_of`.

    Returns the change and the customers per segment, written in one transaction of its own.
    """
    from pleasepoint_cli.attributes import write_attributes
    from pleasepoint_cli.clv.rfm import RFM_SEGMENTS, require_rfm_population
    from pleasepoint_cli.enrich.cluster import attribute_key

    slug = attribute_key(key or DEFAULT_KEYS[by], where="--key ")
    customers = materialize_figures(store, as_of)
    if customers == 0:
        raise AnalysisError(f"no customer has a purchase on or before {as_of}: load orders or move --as-of.")
    if by == "rfm":
        require_rfm_population(customers)
    store.execute(
        f"CREATE OR REPLACE TEMP TABLE clv_segments AS {segments_sql(by)}", _params(by, thresholds, None)
    )
    source = f"clv {by} as-of {as_of}"
    change = write_attributes(
        store,
        _ENRICH_SQL,
        [slug, slug],
        source=source,
        kind="clv",
        description=f"{source} -> {slug}",
        spec={"by": by, "key": slug, "as_of": as_of.isoformat(), **_params(by, thresholds, None)},
    )
    order = list(STATES if by == "state" else RFM_SEGMENTS)
    counts = dict(store.tuples("SELECT segment, count(*) FROM clv_segments GROUP BY segment"))
    return change, [(segment, int(counts.get(segment, 0))) for segment in order]
