"""What the tracking server writes: pixel loads and clicks, as events of the operational store (provider
`track`), each in one short SQLite transaction. No DuckDB, no Starlette here. One-click unsubscribes go
through `delivery.unsubscribe.unsubscribe_customer`, the one function every unsubscribe is recorded by."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from pleasepoint_cli.events.providers import Event
from pleasepoint_cli.events.store import LedgerRow, store_events, track_event_id
from pleasepoint_cli.tracking.links import LinkRef

if TYPE_CHECKING:
    import sqlite3

    from pleasepoint_cli.ops.store import OpsStore


def find_ref(con: sqlite3.Connection, ref: LinkRef) -> LedgerRow | None:
    """The ledger row a tracking link names: by send id, else the latest send of that campaign (or
    automation) to that customer (test sends last: they went to a tester's address)."""
    columns = "SELECT send_id, email, customer_id, kind, source FROM ledger WHERE "
    if ref.send_id:
        row = con.execute(columns + "send_id = ?", [ref.send_id]).fetchone()
    else:
        row = con.execute(
            columns + "source = ? AND customer_id = ? ORDER BY kind = 'test', sent_at IS NULL, sent_at DESC, "
            "created_at DESC LIMIT 1",
            [ref.source, ref.customer_id],
        ).fetchone()
    if row is None:
        return None
    send_id, email, customer_id, kind, source = row
    return LedgerRow(
        str(send_id), None if email is None else str(email), str(customer_id), str(kind), str(source)
    )


def record_hit(
    ops: OpsStore,
    ref: LinkRef,
    kind: str,
    *,
    now: datetime,
    subkind: str = "",
    url: str | None = None,
    details: dict[str, str] | None = None,
) -> bool:
    """Store an open or click of a verified link; False when the link names no send of the ledger."""
    with ops.transaction() as con:
        send = find_ref(con, ref)
        if send is None:
            return False
        event = Event(
            event_id=track_event_id(),
            provider="track",
            kind=kind,
            subkind=subkind,
            occurred_at=now,
            send_id=send.send_id,
            email=send.email,
            url=url,
            raw=json.dumps({**ref.params(), **(details or {})}, ensure_ascii=False),
        )
        store_events(ops, [event], now=now, con=con)
    return True
