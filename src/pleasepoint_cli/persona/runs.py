"""A persona run from options to stored rows: compute (features, clustering, profile), then store it all in one
transaction; and the way back: resolve `RUN`, list runs, load one, export its assignments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import ConfigError, NotFoundError
from pleasepoint_cli.persona.profile import ClusterSummary, Profile, ProfileCell
from pleasepoint_cli.store.connection import registered

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pleasepoint_cli.config import LevelThresholds
    from pleasepoint_cli.persona.clustering import KScore
    from pleasepoint_cli.persona.features import FeatureMatrix
    from pleasepoint_cli.persona.options import PersonaOptions
    from pleasepoint_cli.store import Store
    from pleasepoint_cli.store.progress import Percent

    IntArray = npt.NDArray[np.int64]

Progress = Callable[[str], None]
MANIFEST_VERSION = 1
PAGE_SIZE = 10


def _quiet(_stage: str) -> None:
    return None


@dataclass
class RunComputation:
    """Everything a run produces before it is stored (verify compares one of these with the stored run)."""

    name: str
    k: int
    features: FeatureMatrix
    labels: IntArray
    profile: Profile
    manifest: dict[str, Any]
    auto_k: list[KScore] | None


@dataclass(frozen=True)
class RunRecord:
    """A stored run: its row in persona_runs with the manifest parsed."""

    run_id: int
    name: str
    created_at: datetime
    k: int
    customers: int
    manifest: dict[str, Any]


@dataclass(frozen=True)
class StoredRun:
    """A stored run with its clusters and profile, for show, diff and the HTML report."""

    record: RunRecord
    clusters: list[ClusterSummary]
    cells: list[ProfileCell]

    @property
    def variables(self) -> list[str]:
        """The profile's variables in position order."""
        seen: dict[int, str] = {}
        for cell in self.cells:
            seen.setdefault(cell.position, cell.variable)
        return [seen[p] for p in sorted(seen)]


@dataclass(frozen=True)
class RunPage:
    """One page of `persona list`: newest first."""

    page: int
    pages: int
    total: int
    runs: list[RunRecord]


def library_versions() -> dict[str, str]:
    """The versions a run's result depends on, recorded in its manifest."""
    import duckdb
    import numpy
    import scipy
    import sklearn

    from pleasepoint_cli import __version__

    return {
        "pleasepoint": __version__,
        "duckdb": duckdb.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__,
    }


def compute_run(
    store: Store,
    options: PersonaOptions,
    levels: LevelThresholds,
    progress: Progress = _quiet,
) -> RunComputation:
    """Build the features, cluster (choosing k first with --auto-k) and profile; store nothing."""
    from pleasepoint_cli.persona.clustering import (
        PersonaKMeans,
        best_k,
        kmeans_parameters,
        score_k_range,
        threads_for,
        warm_imports,
    )
    from pleasepoint_cli.persona.features import (
        RFM_VARIABLES,
        Window,
        audience_from_rule,
        audience_from_where,
        build_features,
        check_attributes,
        clustering_matrix,
        combine_audiences,
        latest_order_date,
    )
    from pleasepoint_cli.persona.profile import build_profile

    check_attributes(store, options.attributes)
    as_of = options.as_of or latest_order_date(store, options.since, options.until)
    audience = combine_audiences(
        audience_from_where(store, options.where), audience_from_rule(store, options.audience, as_of)
    )
    warm_imports()
    progress("features: aggregating the order lines")
    features = build_features(
        store, options.attributes, options.unit, Window(options.since, options.until, as_of), audience
    )
    progress("clustering: k-means")
    matrix = clustering_matrix(features, options.effective_transform, options.rfm)
    scores: list[KScore] | None = None
    if options.k_range:
        low, high = options.k_range
        scores, models = score_k_range(matrix, low, high, options.seed)
        k = best_k(scores)
        model = models[k]
    else:
        k = options.clusters
        model = PersonaKMeans(k, options.seed).fit(matrix)
    progress("profile: propensity and levels")
    profile = build_profile(features, model.labels_, model.centers_, levels, options.rfm)
    variables = [v.name for v in features.variables]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "name": options.effective_name,
        "options": options.model_dump(mode="json"),
        "resolved": {
            "k": k,
            "transform": options.effective_transform,
            "as_of": as_of.isoformat(),
            "as_of_source": "option" if options.as_of else "latest order",
        },
        "audience": audience.description if audience else None,
        "variables": variables,
        "clustering_variables": [*variables, *RFM_VARIABLES] if options.rfm else variables,
        "counts": features.counts,
        "fingerprint": features.fingerprint,
        "kmeans": {
            **kmeans_parameters(),
            "k": k,
            "seed": options.seed,
            "threads": threads_for(features.n_customers),
            "inertia": model.inertia_,
            "n_iter": model.n_iter_,
        },
        "auto_k": [{"k": s.k, "silhouette": _finite(s.silhouette), "inertia": s.inertia} for s in scores]
        if scores is not None
        else None,
        "levels": {
            "high": levels.high,
            "medium": levels.medium,
            "min_support": levels.min_support,
            "tiny_cluster": levels.tiny_cluster,
        },
        "versions": library_versions(),
    }
    return RunComputation(options.effective_name, k, features, model.labels_, profile, manifest, scores)


def _finite(value: float) -> float | None:
    return value if value == value else None


def options_from_manifest(manifest: dict[str, Any]) -> PersonaOptions:
    """The options that recompute a stored run exactly: its resolved k and as-of date, no k search."""
    from pleasepoint_cli.persona.options import PersonaOptions

    options = dict(manifest["options"])
    resolved = manifest["resolved"]
    options.update(
        clusters=resolved["k"], as_of=resolved["as_of"], transform=resolved["transform"], auto_k=None
    )
    return PersonaOptions.model_validate(options)


def save_run(store: Store, run: RunComputation) -> int:
    """Store the manifest, clusters, profile and every assignment in one transaction; return the run id."""
    import numpy as np
    import pyarrow as pa

    cells = run.profile.cells
    profile_table = pa.table(
        {
            "cluster": pa.array([c.cluster for c in cells], pa.int32()),
            "variable": pa.array([c.variable for c in cells], pa.string()),
            "position": pa.array([c.position for c in cells], pa.int32()),
            "cluster_value": pa.array([c.cluster_value for c in cells], pa.float64()),
            "population_value": pa.array([c.population_value for c in cells], pa.float64()),
            "propensity": pa.array([c.propensity for c in cells], pa.float64()),
            "level": pa.array([c.level for c in cells], pa.string()),
        }
    )
    assignments = pa.table(
        {
            "customer_id": run.features.customer_ids,
            "cluster": pa.array((run.labels + 1).astype(np.int32)),
        }
    )
    with store.transaction():
        run_id = int(store.scalar("SELECT nextval('run_id_seq')"))
        store.execute(
            "INSERT INTO persona_runs (run_id, name, created_at, k, customers, manifest) VALUES (?, ?, ?, ?, ?, ?)",
            [
                run_id,
                run.name,
                datetime.now().replace(microsecond=0),
                run.k,
                run.features.n_customers,
                json.dumps(run.manifest, ensure_ascii=False),
            ],
        )
        for c in run.profile.clusters:
            store.execute(
                "INSERT INTO persona_clusters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    c.cluster,
                    c.label,
                    c.customers,
                    c.share_customers,
                    c.share_revenue,
                    c.orders_per_customer,
                    c.avg_ticket,
                    c.mean_recency_days,
                    list(c.centroid),
                ],
            )
        with (
            registered(store.con, "_pp_new_profile", profile_table),
            registered(store.con, "_pp_new_assignments", assignments),
        ):
            store.execute(
                "INSERT INTO persona_profile SELECT ?, cluster, variable, position, cluster_value, population_value, "
                "propensity, level FROM _pp_new_profile",
                [run_id],
            )
            store.execute(
                "INSERT INTO persona_assignments SELECT ?, customer_id, cluster FROM _pp_new_assignments",
                [run_id],
            )
    return run_id


def run_persona(
    store: Store,
    options: PersonaOptions,
    levels: LevelThresholds,
    progress: Progress = _quiet,
    percent: Percent | None = None,
) -> tuple[int, RunComputation]:
    """Compute a run and store it; return its id and what was computed.

    `progress` is told each stage's name; `percent` the running query's progress (0 to 100)."""
    from pleasepoint_cli.store.progress import reporting_progress

    with reporting_progress(store, percent):
        run = compute_run(store, options, levels, progress)
        progress("storing: manifest, clusters, profile and assignments")
        return save_run(store, run), run


def _known_runs(store: Store) -> str:
    rows = store.tuples("SELECT run_id, name FROM persona_runs ORDER BY run_id DESC LIMIT 5")
    return ", ".join(f"{run_id} ({name})" for run_id, name in rows)


def resolve_run(store: Store, ref: str | int) -> int:
    """The id of the run `ref` names: a run id, a run name (its newest run) or `latest`."""
    text = str(ref).strip()
    row = store.first("SELECT count(*) FROM persona_runs")
    if row is None or not row[0]:
        raise NotFoundError("there are no persona runs yet: make one with `pleasepoint persona run` first.")
    if text.lower() == "latest":
        found = store.first("SELECT max(run_id) FROM persona_runs")
    elif text.isdigit():
        found = store.first("SELECT run_id FROM persona_runs WHERE run_id = ?", [int(text)])
    else:
        found = store.first(
            "SELECT run_id FROM persona_runs WHERE name = ? ORDER BY run_id DESC LIMIT 1", [text]
        )
    if found is None or found[0] is None:
        raise NotFoundError(
            f"no persona run {text!r}. Recent runs: {_known_runs(store)}. "
            "Give a run id, a run name or `latest` (see `pleasepoint persona list`)."
        )
    return int(found[0])


def _record(row: tuple[Any, ...]) -> RunRecord:
    run_id, name, created_at, k, customers, manifest = row
    return RunRecord(int(run_id), str(name), created_at, int(k), int(customers), json.loads(manifest))


def load_record(store: Store, ref: str | int) -> RunRecord:
    """The persona_runs row of `ref` (id, name or latest)."""
    run_id = resolve_run(store, ref)
    row = store.first(
        "SELECT run_id, name, created_at, k, customers, manifest FROM persona_runs WHERE run_id = ?", [run_id]
    )
    assert row is not None
    return _record(row)


def load_run(store: Store, ref: str | int) -> StoredRun:
    """A stored run with its clusters and profile cells."""
    record = load_record(store, ref)
    clusters = [
        ClusterSummary(
            int(r[0]),
            str(r[1]),
            int(r[2]),
            float(r[3]),
            float(r[4]),
            float(r[5]),
            float(r[6]),
            float(r[7]),
            tuple(float(x) for x in r[8]),
        )
        for r in store.tuples(
            "SELECT cluster, label, customers, share_customers, share_revenue, orders_per_customer, avg_ticket, "
            "mean_recency_days, centroid FROM persona_clusters WHERE run_id = ? ORDER BY cluster",
            [record.run_id],
        )
    ]
    cells = [
        ProfileCell(
            int(r[0]),
            str(r[1]),
            int(r[2]),
            float(r[3]),
            float(r[4]),
            None if r[5] is None else float(r[5]),
            str(r[6]),
        )
        for r in store.tuples(
            "SELECT cluster, variable, position, cluster_value, population_value, propensity, level "
            "FROM persona_profile WHERE run_id = ? ORDER BY cluster, position",
            [record.run_id],
        )
    ]
    return StoredRun(record, clusters, cells)


def list_runs(store: Store, page: int = 1, per_page: int = PAGE_SIZE) -> RunPage:
    """Runs newest first, `per_page` to a page; page 1 is the newest."""
    row = store.first("SELECT count(*) FROM persona_runs")
    total = int(row[0]) if row else 0
    pages = max(1, -(-total // per_page))
    if page < 1 or page > pages:
        raise NotFoundError(
            f"--page {page}: there {'is' if pages == 1 else 'are'} {pages} page(s) of runs "
            f"({total} runs, {per_page} a page). Ask for a page from 1 to {pages}."
        )
    rows = store.tuples(
        "SELECT run_id, name, created_at, k, customers, manifest FROM persona_runs "
        "ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
        [per_page, (page - 1) * per_page],
    )
    return RunPage(page, pages, total, [_record(r) for r in rows])


def export_assignments(store: Store, ref: str | int, out: Path) -> tuple[RunRecord, int]:
    """Write every assignment of the run (customer_id, cluster, label) to a .csv or .parquet file."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {out}: write a .csv or a .parquet file.")
    if not out.parent.exists():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist. Create it first.")
    from pleasepoint_cli.outfiles import output_path

    record = load_record(store, ref)
    options = "FORMAT csv, HEADER true" if suffix == ".csv" else "FORMAT parquet"
    with output_path(out) as temp:  # whole or not at all (a full disk leaves no partial file)
        target = str(temp).replace("'", "''")
        store.tuples(
            f"""
            COPY (
                SELECT a.customer_id, a.cluster, c.label
                FROM persona_assignments a JOIN persona_clusters c USING (run_id, cluster)
                WHERE a.run_id = {record.run_id}
                ORDER BY a.customer_id
            ) TO '{target}' ({options})
            """
        )
    return record, record.customers
