"""RFM: quintile scores for recency, frequency and monetary value, and the common 11-segment map.

Scores are `ntile(5)` in SQL over the customers of `clv_figures` (5 = best: most recent, most tickets,
most spend). Customers tied on a value get the lowest score their tie spans, so equal behaviour always gets
an equal score and the result does not depend on row order. FM is the mean of F and M rounded half up.
The rules below are read top to bottom and the first match wins; together they cover the 5 x 5 grid of
R and FM exactly once, so every segment is reachable (see docs/clv.md).
"""

from __future__ import annotations

from pleasepoint_cli.errors import AnalysisError

RFM_MIN_CUSTOMERS = 5

RFM_SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)
"""The segments in the order the score table shows them (best first)."""

RFM_RULES: tuple[tuple[str, str], ...] = (
    ("Champions", "r_score = 5 AND fm_score >= 4"),
    ("Loyal", "r_score >= 3 AND fm_score >= 4"),
    ("Can't Lose Them", "r_score <= 2 AND fm_score = 5"),
    ("At Risk", "r_score <= 2 AND fm_score >= 3"),
    ("Lost", "r_score = 1 AND fm_score = 1"),
    ("Hibernating", "r_score <= 2"),
    ("Need Attention", "r_score = 3 AND fm_score = 3"),
    ("About to Sleep", "r_score = 3"),
    ("Potential Loyalist", "fm_score >= 2"),
    ("New", "r_score = 5"),
    ("Promising", "TRUE"),
)
"""(segment, condition) in evaluation order: the first condition that holds names the segment."""

RFM_SEGMENT_CASE = (
    "CASE "
    + " ".join(
        f"WHEN {condition} THEN '{segment.replace(chr(39), chr(39) * 2)}'" for segment, condition in RFM_RULES
    )
    + " END"
)

RFM_SQL = f"""
WITH rfm_tiles AS (
    SELECT customer_id, recency_days, tickets, spend,
           ntile(5) OVER (ORDER BY recency_days DESC) AS r_tile,
           ntile(5) OVER (ORDER BY tickets) AS f_tile,
           ntile(5) OVER (ORDER BY spend) AS m_tile
    FROM clv_figures
),
rfm_scores AS (
    SELECT customer_id, recency_days, tickets, spend,
           min(r_tile) OVER (PARTITION BY recency_days) AS r_score,
           min(f_tile) OVER (PARTITION BY tickets) AS f_score,
           min(m_tile) OVER (PARTITION BY spend) AS m_score
    FROM rfm_tiles
),
rfm AS (
    SELECT *, {RFM_SEGMENT_CASE} AS segment
    FROM (SELECT *, (f_score + m_score + 1) // 2 AS fm_score FROM rfm_scores)
)
"""
"""CTEs ending in `rfm` (customer_id, recency_days, tickets, spend, r/f/m/fm scores, segment) over
`clv_figures`; follow it with a SELECT."""


def require_rfm_population(customers: int) -> None:
    """Quintiles need at least five customers; fewer is an error rather than a skewed score."""
    if customers < RFM_MIN_CUSTOMERS:
        raise AnalysisError(
            f"RFM quintile scores need at least {RFM_MIN_CUSTOMERS} customers with purchases, "
            f"found {customers}: use --by state, or an --as-of with more history."
        )
