"""Customer attributes with history: every write is a change batch that can be listed and undone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass


@dataclass(frozen=True)
class AttributeChange:
    """What one batch of attribute writes did."""

    change_id: int
    changed: int
    customers: int
    keys: tuple[str, ...]


def write_attributes(
    store: Store,
    values_sql: str,
    params: list[Any] | None,
    *,
    source: str,
    kind: str,
    description: str,
    spec: dict[str, Any] | None = None,
    now: datetime | None = None,
    row_source: bool = False,
) -> AttributeChange:
    """Set (or, where value is NULL, remove) attributes from a query of (customer_id, key, value) rows.

    Only values that actually change are written and recorded in `attribute_history`, under one new
    `attribute_changes` row; call inside the caller's transaction so the batch is all or nothing.
    With `row_source`, the query yields a fourth column, each row's own source (e.g. the cluster that set
    it, or the source an undo restores); `source` then names the batch.
    """
    when = now or datetime.now()
    change_id = int(store.first("SELECT nextval('change_id_seq')")[0])  # type: ignore[index]
    columns, row_sources = ("value, source", "last(source)") if row_source else ("value", "NULL")
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _attr_new AS
        SELECT customer_id, key, CAST(last(value) AS VARCHAR) AS value, CAST({row_sources} AS VARCHAR) AS source
        FROM ({values_sql}) AS v(customer_id, key, {columns})
        WHERE customer_id IS NOT NULL AND key IS NOT NULL
        GROUP BY customer_id, key
        """,
        params or [],
    )
    store.execute(
        """
        INSERT INTO attribute_history
        SELECT ?, n.customer_id, n.key, c.value, c.source, n.value, ?
        FROM _attr_new n LEFT JOIN customer_attributes c USING (customer_id, key)
        WHERE (c.customer_id IS NULL AND n.value IS NOT NULL)
           OR (c.customer_id IS NOT NULL AND c.value IS DISTINCT FROM n.value)
        """,
        [change_id, when],
    )
    store.execute(
        """
        DELETE FROM customer_attributes
        WHERE (customer_id, key) IN (
            SELECT (customer_id, key) FROM attribute_history WHERE change_id = ? AND new_value IS NULL)
        """,
        [change_id],
    )
    store.execute(
        """
        INSERT INTO customer_attributes (customer_id, key, value, source, set_at, change_id)
        SELECT h.customer_id, h.key, h.new_value, COALESCE(n.source, ?), ?, h.change_id
        FROM attribute_history h JOIN _attr_new n USING (customer_id, key)
        WHERE h.change_id = ? AND h.new_value IS NOT NULL
        ON CONFLICT (customer_id, key) DO UPDATE SET
            value = excluded.value, source = excluded.source, set_at = excluded.set_at,
            change_id = excluded.change_id
        """,
        [source, when, change_id],
    )
    changed, customers = store.first(
        "SELECT count(*), count(DISTINCT customer_id) FROM attribute_history WHERE change_id = ?", [change_id]
    )  # type: ignore[misc]
    keys = tuple(row[0] for row in store.tuples("SELECT DISTINCT key FROM _attr_new ORDER BY key"))
    store.execute(
        "INSERT INTO attribute_changes (change_id, kind, source, description, spec, made_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [change_id, kind, source, description, json.dumps(spec or {}, ensure_ascii=False), when],
    )
    store.execute("DROP TABLE _attr_new")
    return AttributeChange(change_id, int(changed), int(customers), keys)
