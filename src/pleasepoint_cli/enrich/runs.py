"""Which persona run and cluster a command means: `RUN` is a run id, a run name or `latest`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleasepoint_cli.errors import NotFoundError

if TYPE_CHECKING:
    import duckdb


def cluster_source(run_id: int, cluster: int) -> str:
    """The source recorded on every attribute a cluster's enrichment sets (what `enrich clear` removes)."""
    return f"enrich run {run_id} cluster {cluster}"


CLUSTER_SOURCE_SQL = "'enrich run ' || a.run_id || ' cluster ' || a.cluster"
"""`cluster_source` in SQL, for a query over `persona_assignments a`."""


def _known_runs(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute("SELECT run_id, name FROM persona_runs ORDER BY run_id DESC LIMIT 5").fetchall()
    return ", ".join(f"{run_id} ({name})" for run_id, name in rows)


def resolve_run(con: duckdb.DuckDBPyConnection, ref: str | int) -> int:
    """The id of the persona run `ref` names: its id, its name (the newest run of that name) or `latest`."""
    text = str(ref).strip()
    if not con.execute("SELECT count(*) FROM persona_runs").fetchone()[0]:  # type: ignore[index]
        raise NotFoundError("there are no persona runs yet: make one with `pleasepoint persona run` first.")
    if text.lower() == "latest":
        row = con.execute("SELECT max(run_id) FROM persona_runs").fetchone()
    elif text.isdigit():
        row = con.execute("SELECT run_id FROM persona_runs WHERE run_id = ?", [int(text)]).fetchone()
    else:
        row = con.execute(
            "SELECT run_id FROM persona_runs WHERE name = ? ORDER BY run_id DESC LIMIT 1", [text]
        ).fetchone()
    if row is None or row[0] is None:
        raise NotFoundError(
            f"no persona run {text!r}. Recent runs: {_known_runs(con)}. "
            "Give a run id, a run name or `latest` (see `pleasepoint persona list`)."
        )
    return int(row[0])


def run_clusters(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[int, str]:
    """The clusters of a run and their labels, in cluster order."""
    rows = con.execute(
        "SELECT cluster, label FROM persona_clusters WHERE run_id = ? ORDER BY cluster", [run_id]
    ).fetchall()
    return {int(cluster): str(label) for cluster, label in rows}


def require_cluster(con: duckdb.DuckDBPyConnection, run_id: int, cluster: int) -> str:
    """The label of a cluster of the run; NotFoundError naming the run's clusters when it has no such one."""
    clusters = run_clusters(con, run_id)
    if cluster not in clusters:
        known = f"{min(clusters)}..{max(clusters)}" if clusters else "none"
        raise NotFoundError(f"run {run_id} has no cluster {cluster} (its clusters: {known}).")
    return clusters[cluster]
