"""The operational store's sends and events, registered into a DuckDB connection through Arrow so audience rules
(`engagement`, `last_conversion_days`) join them in SQL.

Two relations, times as naive shop-local timestamps (what the rule compiler's as-of is):
- `ops_sends(send_id, kind, source, customer_id, status, sent_at)`: the ledger;
- `ops_events(send_id, customer_id, send_kind, source, kind, subkind, occurred_at)`: events matched to a send
  (unmatched events have no customer and are left out).

Registration works on read-only connections and shadows nothing of the database. Call `register_ops_views`
before running a rule (audience planning does it through `ensure_ops_views`, which finds the operational
store beside the connection's database file).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.ops.store import OpsStore
    from pleasepoint_cli.store.connection import Store

SENDS_VIEW = "ops_sends"
EVENTS_VIEW = "ops_events"

SendRow = tuple[str, str, str, str, str, datetime | None]
EventRow = tuple[str, str, str, str, str, str, datetime]


def _local(value: Any, zone: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).replace(tzinfo=None)


def ops_rows(ops: OpsStore, timezone: str) -> tuple[list[SendRow], list[EventRow]]:
    """The ledger and the matched events, times in the shop's zone."""
    from pleasepoint_cli.clock import shop_zone

    zone = shop_zone(timezone)
    sends = [
        (str(a), str(b), str(c), str(d), str(e), _local(f, zone))
        for a, b, c, d, e, f in ops.execute(
            "SELECT send_id, kind, source, customer_id, status, sent_at FROM ledger"
        ).fetchall()
    ]
    events: list[EventRow] = []
    for a, b, c, d, e, f, g in ops.execute(
        "SELECT e.send_id, l.customer_id, l.kind, l.source, e.kind, e.subkind, e.occurred_at "
        "FROM events e JOIN ledger l ON l.send_id = e.send_id"
    ).fetchall():
        when = _local(g, zone)
        assert when is not None
        events.append((str(a), str(b), str(c), str(d), str(e), str(f or ""), when))
    return sends, events


def register_rows(store: Store, sends: list[SendRow], events: list[EventRow]) -> None:
    """Register (or replace) the two relations from rows."""
    import pyarrow as pa

    text, stamp = pa.string(), pa.timestamp("us")

    def column(rows: list[Any], i: int, kind: Any) -> Any:
        return pa.array([r[i] for r in rows], kind)

    store.con.register(
        SENDS_VIEW,
        pa.table(
            {
                name: column(sends, i, stamp if name == "sent_at" else text)
                for i, name in enumerate(("send_id", "kind", "source", "customer_id", "status", "sent_at"))
            }
        ),
    )
    names = ("send_id", "customer_id", "send_kind", "source", "kind", "subkind", "occurred_at")
    store.con.register(
        EVENTS_VIEW,
        pa.table(
            {
                name: column(events, i, stamp if name == "occurred_at" else text)
                for i, name in enumerate(names)
            }
        ),
    )


def register_ops_views(store: Store, ops: OpsStore, timezone: str) -> tuple[int, int]:
    """Copy the ledger and the events into `con` (as `ops_sends`, `ops_events`); returns their row counts."""
    sends, events = ops_rows(ops, timezone)
    register_rows(store, sends, events)
    return len(sends), len(events)


def views_registered(store: Store) -> bool:
    rows = store.tuples(
        "SELECT count(*) FROM duckdb_views() WHERE view_name IN (?, ?)", [SENDS_VIEW, EVENTS_VIEW]
    )
    return int(rows[0][0]) == 2


def database_path(store: Store) -> Path | None:
    rows = store.tuples("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    return Path(str(rows[0][0])) if rows and rows[0][0] else None


def ensure_ops_views(store: Store, settings: Settings | None = None, *, refresh: bool = False) -> None:
    """Register the views unless already there: from the operational store beside the database file (none
    yet: empty, so a rule on engagement selects as if nothing was ever sent); an in-memory database gets
    empty views unless the caller registered its own."""
    from pleasepoint_cli.config import Settings

    if not refresh and views_registered(store):
        return
    path = database_path(store)
    if path is None:
        register_rows(store, [], [])
        return
    from pleasepoint_cli.ops.store import open_ops, ops_path

    if not ops_path(path).exists():
        register_rows(store, [], [])
        return
    with open_ops(path) as ops:
        register_ops_views(store, ops, (settings or Settings()).shop.timezone)
