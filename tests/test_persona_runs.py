"""Whole runs on the example shop: the planted personas found again, reproducibility, storing, diff, verify."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from pleasepoint_cli.config import LevelThresholds
from pleasepoint_cli.errors import NotFoundError
from pleasepoint_cli.persona.diff import diff_runs
from pleasepoint_cli.persona.options import PersonaOptions
from pleasepoint_cli.persona.profile import ProfileCell
from pleasepoint_cli.persona.runs import (
    compute_run,
    export_assignments,
    list_runs,
    load_run,
    resolve_run,
    run_persona,
    save_run,
)
from pleasepoint_cli.persona.verify import verify_run
from pleasepoint_cli.store import Store

LEVELS = LevelThresholds()
REGULARS = {"orders": {"gte": 3}}
"""Customers with 3+ orders: half the example shop buys once, and one order says little of a persona."""


def _truth(shop_files: Any) -> dict[str, int]:
    with Path(shop_files.truth).open(encoding="utf-8") as f:
        return {row["customer_id"]: int(row["persona"]) for row in csv.DictReader(f)}


def _regulars(shop_store: Store) -> set[str]:
    """Customers with at least 3 purchase orders: enough for their persona to show (about half buy once)."""
    rows = shop_store.con.execute(
        # purchase_lines leaves cancelled orders out; an audience selects customers with a record only.
        "SELECT customer_id FROM purchase_lines WHERE quantity > 0 "
        "AND customer_id IN (SELECT customer_id FROM customers) "
        "GROUP BY customer_id HAVING count(DISTINCT order_id) >= 3"
    ).fetchall()
    return {row[0] for row in rows}


def _ari(run: Any, truth: dict[str, int], among: set[str] | None = None) -> float:
    ids = run.features.customer_ids.to_pylist()
    keep = [among is None or c in among for c in ids]
    planted = [truth[c] for c, k in zip(ids, keep, strict=True) if k]
    return float(adjusted_rand_score(planted, np.asarray(run.labels)[np.array(keep)]))


def test_planted_personas_are_found_again(shop_store: Store, shop_files: Any) -> None:
    truth = _truth(shop_files)
    regulars = _regulars(shop_store)
    k = len(shop_files.personas)
    run = compute_run(shop_store, PersonaOptions(clusters=k), LEVELS)
    # About half the customers buy once: on everyone, the 3+ order customers are still mostly right...
    assert len(regulars) >= 300 and _ari(run, truth, regulars) >= 0.8
    # ...and an analysis of the regular customers, as an analyst would run it, finds the personas.
    run = compute_run(shop_store, PersonaOptions(clusters=k, audience=REGULARS), LEVELS)
    assert len(run.features.customer_ids) >= len(regulars) and _ari(run, truth) >= 0.9
    # Personas are planted largest first, so cluster i is mostly persona i.
    planted = np.array([truth[c] for c in run.features.customer_ids.to_pylist()])
    for cluster in range(k):
        assert np.bincount(planted[run.labels == cluster]).argmax() == cluster + 1


def test_auto_k_picks_the_planted_k(shop_store: Store, shop_files: Any) -> None:
    run = compute_run(shop_store, PersonaOptions(auto_k="3-9", audience=REGULARS), LEVELS)
    assert run.k == len(shop_files.personas)
    assert [s.k for s in run.auto_k or []] == list(range(3, 10))
    assert run.manifest["resolved"]["k"] == run.k
    assert run.manifest["auto_k"][0].keys() == {"k", "silhouette", "inertia"}


def test_same_data_same_assignments_and_verify(shop_store: Store) -> None:
    options = PersonaOptions(name="repro", clusters=5, seed=3)
    first_id, first = run_persona(shop_store, options, LEVELS)
    second_id, second = run_persona(shop_store, options, LEVELS)
    assert np.array_equal(first.labels, second.labels)
    assert first.manifest["fingerprint"] == second.manifest["fingerprint"]
    same = shop_store.con.execute(
        "SELECT count(*) FROM persona_assignments a JOIN persona_assignments b USING (customer_id) "
        "WHERE a.run_id = ? AND b.run_id = ? AND a.cluster = b.cluster",
        [first_id, second_id],
    ).fetchone()
    assert same == (first.features.n_customers,)
    result = verify_run(shop_store, first_id)
    assert result.identical and result.changed_cluster == 0 and result.fingerprint_matches


def test_verify_fails_when_the_orders_change(shop_store: Store) -> None:
    run_id, run = run_persona(shop_store, PersonaOptions(clusters=5), LEVELS)
    shop_store.con.execute(
        "DELETE FROM order_lines WHERE customer_id IN (SELECT customer_id FROM customers ORDER BY customer_id LIMIT 40)"
    )
    result = verify_run(shop_store, run_id)
    assert not result.identical
    assert result.only_stored == 40
    assert result.customers_now == run.features.n_customers - 40
    assert not result.fingerprint_matches


def test_manifest_records_everything_needed(shop_store: Store) -> None:
    run_id, _ = run_persona(
        shop_store, PersonaOptions(name="m", clusters=4, where={"city": "Madrid"}, rfm=True), LEVELS
    )
    manifest = load_run(shop_store, run_id).record.manifest
    assert manifest["options"]["where"] == {"city": "Madrid"}
    assert manifest["resolved"] == {
        "k": 4,
        "transform": "none",
        "as_of": "2026-06-29",
        "as_of_source": "latest order",
    }
    assert manifest["audience"] == "city=Madrid"
    assert manifest["clustering_variables"][-3:] == ["recency_days", "frequency_orders", "monetary_spend"]
    assert set(manifest["versions"]) == {"pleasepoint", "duckdb", "numpy", "scikit-learn", "scipy"}
    assert manifest["kmeans"]["seed"] == 42 and manifest["kmeans"]["n_init"] == "auto"
    assert manifest["counts"]["customers"] == shop_store.scalar(
        "SELECT count(*) FROM persona_assignments WHERE run_id = ?", [run_id]
    )
    assert 0 < manifest["counts"]["customers"] < 2000


def test_stored_rows_match_the_computation(shop_store: Store) -> None:
    run_id, run = run_persona(shop_store, PersonaOptions(clusters=5), LEVELS)
    stored = load_run(shop_store, run_id)
    assert [c.label for c in stored.clusters] == [c.label for c in run.profile.clusters]
    assert sum(c.customers for c in stored.clusters) == run.features.n_customers
    assert len(stored.cells) == 5 * len(run.features.variables)
    assert stored.variables == [v.name for v in run.features.variables]
    sizes = [c.customers for c in stored.clusters]
    assert sizes == sorted(sizes, reverse=True)


def test_nothing_is_stored_when_storing_fails(shop_store: Store) -> None:
    run = compute_run(shop_store, PersonaOptions(clusters=3), LEVELS)
    broken = ProfileCell(1, None, 0, 0.0, 0.0, None, "zero")  # type: ignore[arg-type]
    run.profile = dataclasses.replace(run.profile, cells=[*run.profile.cells, broken])
    with pytest.raises(Exception, match="NOT NULL"):
        save_run(shop_store, run)
    for table in ("persona_runs", "persona_clusters", "persona_profile", "persona_assignments"):
        assert shop_store.scalar(f"SELECT count(*) FROM {table}") == 0


def test_diff_matches_clusters_by_centroid(shop_store: Store) -> None:
    a, _ = run_persona(shop_store, PersonaOptions(name="a", clusters=5, seed=1), LEVELS)
    b, _ = run_persona(shop_store, PersonaOptions(name="b", clusters=4, seed=2, since="2024-06-30"), LEVELS)
    result = diff_runs(shop_store, a, b)
    assert result.matched and result.reason is None
    assert len(result.matches) == 4  # the smaller run's clusters each find a partner
    assert result.common + result.only_a == 2000
    assert result.moved is not None and result.moved < result.common / 2
    c, _ = run_persona(shop_store, PersonaOptions(name="c", clusters=5, transform="sqrt"), LEVELS)
    other = diff_runs(shop_store, a, c)
    assert not other.matched and other.moved is None
    assert other.reason is not None and "transformation differs (none vs sqrt)" in other.reason
    assert sum(m.customers for m in other.migrations) == 2000


def test_resolve_list_and_export(shop_store: Store, tmp_path: Path) -> None:
    run = compute_run(shop_store, PersonaOptions(name="page", clusters=3), LEVELS)
    ids = [save_run(shop_store, run) for _ in range(12)]
    assert resolve_run(shop_store, "latest") == ids[-1]
    assert resolve_run(shop_store, "page") == ids[-1]
    assert resolve_run(shop_store, str(ids[0])) == ids[0]
    with pytest.raises(NotFoundError, match="no persona run 'nope'"):
        resolve_run(shop_store, "nope")
    first, second = list_runs(shop_store, 1), list_runs(shop_store, 2)
    assert (first.pages, first.total, len(first.runs), len(second.runs)) == (2, 12, 10, 2)
    assert [r.run_id for r in first.runs + second.runs] == sorted(ids, reverse=True)
    with pytest.raises(NotFoundError, match="Ask for a page from 1 to 2"):
        list_runs(shop_store, 3)
    record, rows = export_assignments(shop_store, ids[0], tmp_path / "a.parquet")
    assert record.run_id == ids[0]
    table = pq.read_table(tmp_path / "a.parquet")
    assert rows == table.num_rows == run.features.n_customers
    assert table.column_names == ["customer_id", "cluster", "label"]
    _, csv_rows = export_assignments(shop_store, "latest", tmp_path / "a.csv")
    lines = (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "customer_id,cluster,label" and len(lines) == csv_rows + 1
