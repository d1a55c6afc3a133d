"""`persona verify`: recompute a stored run from its manifest and compare, customer by customer (for CI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.persona.runs import Progress
    from pleasepoint_cli.store.connection import Store
    from pleasepoint_cli.store.progress import Percent


@dataclass(frozen=True)
class VerifyResult:
    """Whether a recomputation gives the stored run back, and if not, how far it is."""

    run_id: int
    name: str
    identical: bool
    customers_stored: int
    customers_now: int
    changed_cluster: int
    only_stored: int
    only_now: int
    fingerprint_stored: str
    fingerprint_now: str
    labels_changed: list[int] = field(default_factory=list)
    versions_changed: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def fingerprint_matches(self) -> bool:
        return self.fingerprint_stored == self.fingerprint_now


def verify_run(
    store: Store, ref: str | int, progress: Progress | None = None, percent: Percent | None = None
) -> VerifyResult:
    """Recompute the run `ref` with the options, as-of date, k and levels of its manifest; compare assignments.

    `progress` is told each stage's name; `percent` the running query's progress (0 to 100)."""
    from pleasepoint_cli.store.progress import reporting_progress

    with reporting_progress(store, percent):
        return _verify(store, ref, progress)


def _verify(store: Store, ref: str | int, progress: Progress | None) -> VerifyResult:
    import numpy as np
    import pyarrow as pa

    from pleasepoint_cli.config import LevelThresholds
    from pleasepoint_cli.persona.runs import compute_run, library_versions, load_run, options_from_manifest

    stored = load_run(store, ref)
    manifest = stored.record.manifest
    levels = LevelThresholds.model_validate(manifest["levels"])
    now = compute_run(store, options_from_manifest(manifest), levels, progress or (lambda _s: None))
    if progress:
        progress("verify: comparing assignments")
    fresh = pa.table(
        {"customer_id": now.features.customer_ids, "cluster": pa.array((now.labels + 1).astype(np.int32))}
    )
    from pleasepoint_cli.store.connection import registered

    with registered(store.con, "_pp_verify", fresh):
        rows = store.tuples(
            """
            SELECT count(*) FILTER (WHERE s.customer_id IS NOT NULL AND n.customer_id IS NOT NULL
                                    AND s.cluster <> n.cluster),
                   count(*) FILTER (WHERE n.customer_id IS NULL),
                   count(*) FILTER (WHERE s.customer_id IS NULL)
            FROM (SELECT customer_id, cluster FROM persona_assignments WHERE run_id = ?) s
            FULL OUTER JOIN _pp_verify n ON n.customer_id = s.customer_id
            """,
            [stored.record.run_id],
        )
    row = rows[0]
    changed, only_stored, only_now = (int(x) for x in row)
    labels_changed = [
        old.cluster
        for old, new in zip(stored.clusters, now.profile.clusters, strict=False)
        if old.label != new.label
    ]
    versions_now = library_versions()
    versions_changed = {
        name: (str(version), versions_now.get(name, "?"))
        for name, version in manifest["versions"].items()
        if versions_now.get(name) != version
    }
    identical = (
        changed == 0
        and only_stored == 0
        and only_now == 0
        and now.k == stored.record.k
        and manifest["fingerprint"] == now.features.fingerprint
        and not labels_changed
    )
    return VerifyResult(
        run_id=stored.record.run_id,
        name=stored.record.name,
        identical=identical,
        customers_stored=stored.record.customers,
        customers_now=now.features.n_customers,
        changed_cluster=changed,
        only_stored=only_stored,
        only_now=only_now,
        fingerprint_stored=str(manifest["fingerprint"]),
        fingerprint_now=now.features.fingerprint,
        labels_changed=labels_changed,
        versions_changed=versions_changed,
    )
