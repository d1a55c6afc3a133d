"""`enrich levels` and `enrich top`: the guide's hand-made table, automated from a run's stored profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleasepoint_cli.attributes import write_attributes
from pleasepoint_cli.enrich.cluster import EnrichResult, attribute_key
from pleasepoint_cli.enrich.runs import CLUSTER_SOURCE_SQL, resolve_run, run_clusters
from pleasepoint_cli.errors import AnalysisError, ConfigError
from pleasepoint_cli.store.connection import writer

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass


@dataclass(frozen=True)
class TopVariable:
    """One of a cluster's variables of highest propensity."""

    cluster: int
    label: str
    rank: int
    variable: str
    propensity: float
    level: str


def _variable_keys(store: Store, run_id: int, prefix: str) -> list[tuple[str, str]]:
    """(variable, key) for every profile variable of the run; two variables with one slug is an error."""
    variables = [
        str(row[0])
        for row in store.tuples(
            "SELECT variable, min(position) AS p FROM persona_profile WHERE run_id = ? "
            "GROUP BY variable ORDER BY p, variable",
            [run_id],
        )
    ]
    if not variables:
        raise AnalysisError(f"run {run_id} has no stored profile: nothing to write levels from.")
    keys: dict[str, str] = {}
    for variable in variables:
        key = attribute_key(prefix + variable)
        if key in keys:
            raise ConfigError(
                f"run {run_id}: variables {keys[key]!r} and {variable!r} both make the key {key!r}."
            )
        keys[key] = variable
    return [(variable, key) for key, variable in keys.items()]


@writer
def enrich_levels(
    store: Store,
    run: str | int,
    *,
    segment_key: str = "segment",
    prefix: str = "propensity_",
) -> EnrichResult:
    """Write, on every customer of the run, its cluster's label as `segment_key` and the level
    (high/medium/low/zero) of each profile variable as `<prefix><slug>`, as one change batch."""
    run_id = resolve_run(store, run)
    key_of = _variable_keys(store, run_id, prefix)
    segment = attribute_key(segment_key, where="--key: ")
    if segment in {key for _, key in key_of}:
        raise ConfigError(f"--key {segment_key!r} clashes with a propensity key; pick another.")
    placeholders = ", ".join("(?, ?)" for _ in key_of)
    params: list[object] = [item for pair in key_of for item in pair]
    change = write_attributes(
        store,
        f"""
        SELECT a.customer_id, k.key, p.level, {CLUSTER_SOURCE_SQL}
        FROM persona_assignments a
        JOIN persona_profile p ON p.run_id = a.run_id AND p.cluster = a.cluster
        JOIN (VALUES {placeholders}) AS k(variable, key) ON k.variable = p.variable
        WHERE a.run_id = ?
        UNION ALL
        SELECT a.customer_id, ?, c.label, {CLUSTER_SOURCE_SQL}
        FROM persona_assignments a
        JOIN persona_clusters c ON c.run_id = a.run_id AND c.cluster = a.cluster
        WHERE a.run_id = ?
        """,
        [*params, run_id, segment, run_id],
        source=f"enrich levels run {run_id}",
        kind="enrich_levels",
        description=f"enrich levels run {run_id}: {segment} and {len(key_of)} propensity levels",
        spec={"run": run_id, "segment_key": segment, "keys": dict(key_of)},
        row_source=True,
    )
    clusters = tuple(run_clusters(store, run_id))
    members = store.first("SELECT count(*) FROM persona_assignments WHERE run_id = ?", [run_id])
    return EnrichResult(change, run_id, clusters, int(members[0]) if members else 0)


_TOP_SQL = """
    SELECT cluster, label, rank, variable, propensity, level
    FROM (
        SELECT p.cluster, c.label, p.variable, p.propensity, p.level,
               row_number() OVER (PARTITION BY p.cluster ORDER BY p.propensity DESC, p.position, p.variable)
                   AS rank
        FROM persona_profile p JOIN persona_clusters c ON c.run_id = p.run_id AND c.cluster = p.cluster
        WHERE p.run_id = ? AND p.propensity IS NOT NULL AND p.cluster_value > 0
    )
    WHERE rank <= ?
    ORDER BY cluster, rank
"""


def top_variables(store: Store, run: str | int, n: int = 3) -> tuple[int, list[TopVariable]]:
    """Per cluster, its n variables of highest propensity (variables the cluster never buys left out)."""
    if n < 1:
        raise ConfigError(f"--n {n}: give 1 or more.")
    run_id = resolve_run(store, run)
    rows = store.tuples(_TOP_SQL, [run_id, n])
    return run_id, [
        TopVariable(int(c), str(lbl), int(r), str(v), float(p), str(lv)) for c, lbl, r, v, p, lv in rows
    ]


@writer
def write_top(store: Store, run: str | int, n: int = 3, *, prefix: str = "top_") -> EnrichResult:
    """Store each cluster's top n variables on its members as `top_1`..`top_n` (a rank the cluster
    lacks is removed, so no stale value from an earlier write stays behind)."""
    if n < 1:
        raise ConfigError(f"--n {n}: give 1 or more.")
    run_id = resolve_run(store, run)
    stem = attribute_key(prefix, where="--prefix: ").rstrip("_") + "_"
    change = write_attributes(
        store,
        f"""
        WITH top AS ({_TOP_SQL})
        SELECT a.customer_id, ? || r.rank, t.variable, {CLUSTER_SOURCE_SQL}
        FROM persona_assignments a
        CROSS JOIN range(1, ? + 1) AS r(rank)
        LEFT JOIN top t ON t.cluster = a.cluster AND t.rank = r.rank
        WHERE a.run_id = ?
        """,
        [run_id, n, stem, n, run_id],
        source=f"enrich top run {run_id}",
        kind="enrich_top",
        description=f"enrich top run {run_id}: {stem}1..{stem}{n}",
        spec={"run": run_id, "n": n, "prefix": stem},
        row_source=True,
    )
    clusters = tuple(run_clusters(store, run_id))
    members = store.first("SELECT count(*) FROM persona_assignments WHERE run_id = ?", [run_id])
    return EnrichResult(change, run_id, clusters, int(members[0]) if members else 0)
