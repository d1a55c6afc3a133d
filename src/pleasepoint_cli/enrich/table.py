"""`enrich apply FILE.yaml`: the guide's whole enrichment table (a segment and a level per category, per
cluster) written in one change batch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator, model_validator

from pleasepoint_cli.attributes import write_attributes
from pleasepoint_cli.config import Strict
from pleasepoint_cli.enrich.cluster import EnrichResult, attribute_key
from pleasepoint_cli.enrich.runs import CLUSTER_SOURCE_SQL, resolve_run, run_clusters
from pleasepoint_cli.errors import ConfigError, NotFoundError
from pleasepoint_cli.store.connection import writer

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass

Level = Literal["high", "medium", "low", "zero"]


class ClusterEnrichment(Strict):
    """One row of the guide's table: a cluster, its segment name and its level per category."""

    id: Annotated[int, Field(ge=1)]
    segment: str | None = None
    levels: dict[str, Level] = Field(default_factory=dict)
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("segment")
    @classmethod
    def _segment_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the segment name is empty")
        return value


class EnrichmentFile(Strict):
    """An enrichment YAML: which run, how keys are named, and one entry per cluster."""

    run: str | int = "latest"
    segment_key: str = "segment"
    level_prefix: str = "propensity_"
    clusters: Annotated[list[ClusterEnrichment], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct_ids(self) -> EnrichmentFile:
        seen: set[int] = set()
        for entry in self.clusters:
            if entry.id in seen:
                raise ValueError(f"cluster {entry.id} appears twice; give each cluster once")
            seen.add(entry.id)
        return self


def _keyed_values(
    doc: EnrichmentFile, path: Path, lines: dict[tuple[object, ...], int]
) -> list[tuple[int, str, str]]:
    """(cluster, key, value) rows of the file, keys slugged; a key made twice in one cluster is an error."""
    from pleasepoint_cli.yamlio import line_of

    segment_key = attribute_key(doc.segment_key, where=f"{path}: segment_key: ")
    rows: list[tuple[int, str, str]] = []
    for i, entry in enumerate(doc.clusters):
        where = f"{path}:{line_of(lines, ('clusters', i)) or 1}: clusters.{i}: "
        keyed: dict[str, str] = {}
        if entry.segment is not None:
            keyed[segment_key] = entry.segment
        named = [(doc.level_prefix + label, level) for label, level in entry.levels.items()]
        for label, value in [*named, *entry.attributes.items()]:
            key = attribute_key(label, where=where)
            if key in keyed:
                raise ConfigError(f"{where}{label!r} makes the key {key!r}, which this cluster already sets.")
            keyed[key] = value
        if not keyed:
            raise ConfigError(
                f"{where}cluster {entry.id} sets nothing: give a segment, levels or attributes."
            )
        rows.extend((entry.id, key, value) for key, value in keyed.items())
    return rows


def load_enrichment(path: Path) -> tuple[EnrichmentFile, dict[tuple[object, ...], int]]:
    """Read and validate an enrichment YAML; errors name `file:line: field`."""
    from pleasepoint_cli.yamlio import load_model, read_yaml

    doc = load_model(path, EnrichmentFile)
    _, lines = read_yaml(path)
    return doc, lines


@writer
def apply_enrichment(store: Store, path: Path, run: str | int | None = None) -> EnrichResult:
    """Write a whole enrichment table: each cluster's values on its members, as one change batch.

    Each value's source is its cluster's (`enrich run R cluster C`), so `enrich clear` works per cluster.
    """
    from pleasepoint_cli.yamlio import line_of

    doc, lines = load_enrichment(path)
    run_id = resolve_run(store, run if run is not None else doc.run)
    known = run_clusters(store, run_id)
    for i, entry in enumerate(doc.clusters):
        if entry.id not in known:
            line = line_of(lines, ("clusters", i, "id")) or 1
            span = f"{min(known)}..{max(known)}" if known else "none"
            raise NotFoundError(
                f"{path}:{line}: clusters.{i}.id: run {run_id} has no cluster {entry.id} "
                f"(its clusters: {span})."
            )
    rows = _keyed_values(doc, path, lines)
    placeholders = ", ".join("(?, ?, ?)" for _ in rows)
    params: list[object] = [item for row in rows for item in row]
    change = write_attributes(
        store,
        f"""
        SELECT a.customer_id, v.key, v.value, {CLUSTER_SOURCE_SQL}
        FROM persona_assignments a JOIN (VALUES {placeholders}) AS v(cluster, key, value)
            ON a.cluster = v.cluster
        WHERE a.run_id = ?
        """,
        [*params, run_id],
        source=f"enrich apply {path.name} run {run_id}",
        kind="enrich_apply",
        description=f"enrich apply {path} to run {run_id} ({len(doc.clusters)} clusters)",
        spec={"run": run_id, "file": str(path), "rows": [list(r) for r in rows]},
        row_source=True,
    )
    clusters = tuple(entry.id for entry in doc.clusters)
    members = store.first(
        "SELECT count(*) FROM persona_assignments WHERE run_id = ? AND list_contains(?, cluster)",
        [run_id, list(clusters)],
    )
    return EnrichResult(change, run_id, clusters, int(members[0]) if members else 0)
