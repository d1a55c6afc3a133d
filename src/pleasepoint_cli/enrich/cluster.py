"""`enrich cluster` and `enrich clear`: key=value pairs on every member of one cluster, and off again."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleasepoint_cli.attributes import AttributeChange, write_attributes
from pleasepoint_cli.enrich.runs import cluster_source, require_cluster, resolve_run
from pleasepoint_cli.errors import ConfigError
from pleasepoint_cli.store.connection import writer
from pleasepoint_cli.textutil import slugify

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass


@dataclass(frozen=True)
class EnrichResult:
    """What an enrichment wrote: the change batch, the run, and how many customers it concerned."""

    change: AttributeChange
    run_id: int
    clusters: tuple[int, ...]
    members: int


def attribute_key(label: str, *, where: str = "") -> str:
    """The attribute key of a label: a slug (`Bebé y niño` -> `bebe_y_nino`); a label with no letter or
    digit is an error rather than a made-up key."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    if not re.search(r"[A-Za-z0-9]", ascii_text):
        raise ConfigError(
            f"{where}{label!r} is not usable as an attribute key: it needs a letter or a digit."
        )
    return slugify(label)


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """`key=value` arguments as {slug key: value}; values keep their accents and inner spaces."""
    if not pairs:
        raise ConfigError("give at least one key=value pair, e.g. segmento='Sólo huerto'.")
    parsed: dict[str, str] = {}
    for text in pairs:
        label, sep, value = text.partition("=")
        if not sep:
            raise ConfigError(f"{text!r}: expected key=value, e.g. segmento='Sólo huerto'.")
        key = attribute_key(label.strip(), where=f"{text!r}: the key ")
        value = value.strip()
        if not value:
            raise ConfigError(
                f"{text!r}: the value is empty. To remove a cluster's values use `enrich clear`."
            )
        if key in parsed:
            raise ConfigError(f"{text!r}: the key {key!r} is given twice; give each key once.")
        parsed[key] = value
    return parsed


def _members(store: Store, run_id: int, cluster: int) -> int:
    row = store.first(
        "SELECT count(*) FROM persona_assignments WHERE run_id = ? AND cluster = ?", [run_id, cluster]
    )
    return int(row[0]) if row else 0


@writer
def enrich_cluster(store: Store, run: str | int, cluster: int, values: dict[str, str]) -> EnrichResult:
    """Set `values` on every member of the cluster and nobody else, as one change batch."""
    run_id = resolve_run(store, run)
    require_cluster(store, run_id, cluster)
    if not values:
        raise ConfigError("no key=value pairs to write.")
    source = cluster_source(run_id, cluster)
    rows = ", ".join("(?, ?)" for _ in values)
    params: list[object] = [item for pair in values.items() for item in pair]
    change = write_attributes(
        store,
        f"""
        SELECT a.customer_id, kv.key, kv.value
        FROM persona_assignments a CROSS JOIN (VALUES {rows}) AS kv(key, value)
        WHERE a.run_id = ? AND a.cluster = ?
        """,
        [*params, run_id, cluster],
        source=source,
        kind="enrich_cluster",
        description=f"{source}: " + ", ".join(f"{k}={v}" for k, v in values.items()),
        spec={"run": run_id, "cluster": cluster, "values": values},
    )
    return EnrichResult(change, run_id, (cluster,), _members(store, run_id, cluster))


@writer
def clear_cluster(store: Store, run: str | int, cluster: int) -> EnrichResult:
    """Remove every attribute whose current value the cluster's enrichment set (the guide's "delete all")."""
    run_id = resolve_run(store, run)
    require_cluster(store, run_id, cluster)
    source = cluster_source(run_id, cluster)
    change = write_attributes(
        store,
        "SELECT customer_id, key, NULL FROM customer_attributes WHERE source = ?",
        [source],
        source=source,
        kind="enrich_clear",
        description=f"clear {source}",
        spec={"run": run_id, "cluster": cluster},
    )
    return EnrichResult(change, run_id, (cluster,), _members(store, run_id, cluster))
