"""Which persona run and cluster a command means: `RUN` is a run id, a run name or `latest` (resolved by
`persona.runs.resolve_run`), and the source string that marks what a cluster's enrichment wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleasepoint_cli.errors import NotFoundError
from pleasepoint_cli.persona.runs import resolve_run

__all__ = ["CLUSTER_SOURCE_SQL", "cluster_source", "require_cluster", "resolve_run", "run_clusters"]

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass


def cluster_source(run_id: int, cluster: int) -> str:
    """The source recorded on every attribute a cluster's enrichment sets (what `enrich clear` removes)."""
    return f"enrich run {run_id} cluster {cluster}"


CLUSTER_SOURCE_SQL = "'enrich run ' || a.run_id || ' cluster ' || a.cluster"
"""`cluster_source` in SQL, for a query over `persona_assignments a`."""


def run_clusters(store: Store, run_id: int) -> dict[int, str]:
    """The clusters of a run and their labels, in cluster order."""
    rows = store.tuples(
        "SELECT cluster, label FROM persona_clusters WHERE run_id = ? ORDER BY cluster", [run_id]
    )
    return {int(cluster): str(label) for cluster, label in rows}


def require_cluster(store: Store, run_id: int, cluster: int) -> str:
    """The label of a cluster of the run; NotFoundError naming the run's clusters when it has no such one."""
    clusters = run_clusters(store, run_id)
    if cluster not in clusters:
        known = f"{min(clusters)}..{max(clusters)}" if clusters else "none"
        raise NotFoundError(f"run {run_id} has no cluster {cluster} (its clusters: {known}).")
    return clusters[cluster]
