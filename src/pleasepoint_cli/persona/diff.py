"""`persona diff A B`: how customers moved between two runs' clusters, with the clusters matched by centroid.

Centroids are comparable only when both runs clustered the same variables in the same unit and
transformation; then the Hungarian algorithm pairs clusters at the least total centroid distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.persona.runs import RunRecord, StoredRun
    from pleasepoint_cli.store.connection import Store


@dataclass(frozen=True)
class ClusterMatch:
    """Cluster `a` of run A is the same persona as cluster `b` of run B (centroids `distance` apart)."""

    a: int
    b: int
    distance: float


@dataclass(frozen=True)
class Migration:
    """How many customers were in cluster `a` of A and cluster `b` of B (None: not in that run)."""

    a: int | None
    b: int | None
    customers: int


@dataclass(frozen=True)
class RunDiff:
    """The comparison of two runs: the matching (when possible), the migration matrix and its totals."""

    a: RunRecord
    b: RunRecord
    matched: bool
    reason: str | None
    matches: list[ClusterMatch]
    migrations: list[Migration]
    common: int
    stayed: int | None
    only_a: int
    only_b: int

    @property
    def moved(self) -> int | None:
        """Customers in both runs whose B cluster is not the match of their A cluster."""
        return None if self.stayed is None else self.common - self.stayed


def why_not_comparable(a: StoredRun, b: StoredRun) -> str | None:
    """None when the runs' centroids live in the same space; else what differs."""
    ma, mb = a.record.manifest, b.record.manifest
    va, vb = ma["clustering_variables"], mb["clustering_variables"]
    problems = []
    if va != vb:
        only_a = [v for v in va if v not in vb]
        only_b = [v for v in vb if v not in va]
        parts = []
        if only_a:
            parts.append(f"only in A: {', '.join(only_a[:5])}{' ...' if len(only_a) > 5 else ''}")
        if only_b:
            parts.append(f"only in B: {', '.join(only_b[:5])}{' ...' if len(only_b) > 5 else ''}")
        problems.append(
            "the variables differ (" + ("; ".join(parts) or "same variables, another order") + ")"
        )
    if ma["options"]["unit"] != mb["options"]["unit"]:
        problems.append(f"the unit differs ({ma['options']['unit']} vs {mb['options']['unit']})")
    if ma["resolved"]["transform"] != mb["resolved"]["transform"]:
        problems.append(
            f"the transformation differs ({ma['resolved']['transform']} vs {mb['resolved']['transform']})"
        )
    if not problems:
        return None
    return "clusters not matched: " + "; ".join(problems) + ". The migration matrix is by cluster id."


def match_clusters(a: StoredRun, b: StoredRun) -> list[ClusterMatch]:
    """Pair A's clusters with B's at the least total centroid distance (Hungarian algorithm)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    ca = np.array([c.centroid for c in a.clusters], dtype=np.float64)
    cb = np.array([c.centroid for c in b.clusters], dtype=np.float64)
    cost = np.sqrt(((ca[:, None, :] - cb[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    return [
        ClusterMatch(a.clusters[i].cluster, b.clusters[j].cluster, float(cost[i, j]))
        for i, j in zip(rows, cols, strict=True)
    ]


def diff_runs(store: Store, ref_a: str | int, ref_b: str | int) -> RunDiff:
    """Compare run A with run B: the customers in each pair of clusters, and how many moved."""
    from pleasepoint_cli.persona.runs import load_run

    a = load_run(store, ref_a)
    b = load_run(store, ref_b)
    reason = why_not_comparable(a, b)
    matches = match_clusters(a, b) if reason is None else []
    rows = store.tuples(
        """
        SELECT x.cluster AS a, y.cluster AS b, count(*) AS customers
        FROM (SELECT customer_id, cluster FROM persona_assignments WHERE run_id = ?) x
        FULL OUTER JOIN (SELECT customer_id, cluster FROM persona_assignments WHERE run_id = ?) y
          ON x.customer_id = y.customer_id
        GROUP BY ALL
        ORDER BY a NULLS LAST, b NULLS LAST
        """,
        [a.record.run_id, b.record.run_id],
    )
    migrations = [
        Migration(None if r[0] is None else int(r[0]), None if r[1] is None else int(r[1]), int(r[2]))
        for r in rows
    ]
    common = sum(m.customers for m in migrations if m.a is not None and m.b is not None)
    pairs = {(m.a, m.b) for m in matches}
    stayed = sum(m.customers for m in migrations if (m.a, m.b) in pairs) if reason is None else None
    return RunDiff(
        a=a.record,
        b=b.record,
        matched=reason is None,
        reason=reason,
        matches=matches,
        migrations=migrations,
        common=common,
        stayed=stayed,
        only_a=sum(m.customers for m in migrations if m.b is None),
        only_b=sum(m.customers for m in migrations if m.a is None),
    )
