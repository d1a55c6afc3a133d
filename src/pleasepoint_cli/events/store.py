"""Writing events into the operational store: matched to the send ledger, once per event id, with their
consequences (suppression of hard bounces, complaints and unsubscribes; uncertain sends settled as sent).

Used by `events ingest` (a whole file in one transaction: a bad file loads nothing) and by the tracking server
(each request in its own short transaction). Nothing here opens DuckDB.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import InputDataError
from pleasepoint_cli.events.providers import Event
from pleasepoint_cli.ops.suppression import add_suppression, email_hash, iso

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore

SUPPRESSING = {
    ("bounce", "hard"): "bounced",
    ("complaint", ""): "complained",
    ("unsubscribe", ""): "unsubscribed",
}
"""(kind, subkind) of the events that put the address on the suppression list, and the reason recorded."""


def suppression_reason(event: Event) -> str | None:
    return SUPPRESSING.get((event.kind, "" if event.kind != "bounce" else event.subkind))


@dataclass
class StoreResult:
    """What storing a batch of events did."""

    inserted: int = 0
    duplicates: int = 0
    matched: int = 0
    unmatched: int = 0
    suppressed: int = 0
    settled: int = 0
    unmatched_lines: list[int] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerRow:
    send_id: str
    email: str | None
    customer_id: str
    kind: str
    source: str


def find_send(con: sqlite3.Connection, send_id: str | None, message_id: str | None) -> LedgerRow | None:
    """The ledger row an event belongs to: by send id, else by Message-ID (with or without angle brackets)."""
    query = "SELECT send_id, email, customer_id, kind, source FROM ledger WHERE "
    row = None
    if send_id:
        row = con.execute(query + "send_id = ?", [send_id]).fetchone()
    if row is None and message_id:
        row = con.execute(
            query + "message_id IN (?, ?) ORDER BY created_at DESC LIMIT 1", [message_id, f"<{message_id}>"]
        ).fetchone()
    return None if row is None else LedgerRow(*(str(v) if v is not None else None for v in row))  # type: ignore[arg-type]


def store_events(
    ops: OpsStore, events: Iterable[Event], *, now: datetime, con: sqlite3.Connection | None = None
) -> StoreResult:
    """Insert events (a repeated event id is ignored) and apply their consequences, in one transaction.

    Pass `con` to work inside a transaction the caller already holds.
    """
    if con is None:
        with ops.transaction() as own:
            return store_events(ops, events, now=now, con=own)
    result = StoreResult()
    received = iso(now)
    for event in events:
        send = find_send(con, event.send_id, event.message_id)
        email = event.email or (send.email if send else None)
        cursor = con.execute(
            "INSERT INTO events (event_id, provider, kind, subkind, send_id, message_id, email_sha256, url, "
            "occurred_at, received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id) DO NOTHING",
            [
                event.event_id,
                event.provider,
                event.kind,
                event.subkind,
                send.send_id if send else event.send_id,
                event.message_id,
                email_hash(email) if email else None,
                event.url,
                iso(event.occurred_at),
                received,
                event.raw,
            ],
        )
        if cursor.rowcount == 0:
            result.duplicates += 1
            continue
        result.inserted += 1
        result.by_kind[event.kind] = result.by_kind.get(event.kind, 0) + 1
        if send is None:
            result.unmatched += 1
            result.unmatched_lines.append(event.line)
        else:
            result.matched += 1
            # Any provider event about a message proves the provider had it: an uncertain send was sent.
            settled = con.execute(
                "UPDATE ledger SET status = 'sent', sent_at = COALESCE(sent_at, ?) "
                "WHERE send_id = ? AND status = 'uncertain'",
                [iso(event.occurred_at), send.send_id],
            )
            result.settled += settled.rowcount
        reason = suppression_reason(event)
        if reason and email:
            try:
                added = add_suppression(
                    ops, email, reason, source=f"{event.provider} {event.kind}", now=now, con=con
                )
            except InputDataError:  # an address the list cannot hold (malformed): the event is kept anyway
                added = False
            result.suppressed += int(added)
    return result


def track_event_id() -> str:
    """A fresh id for one of the tracking server's own hits."""
    return f"track:{uuid.uuid4().hex}"


def token_seen(con: sqlite3.Connection, token: str, provider: str, now: datetime) -> bool:
    """Record a webhook token; True when it was already recorded (a replay)."""
    cursor = con.execute(
        "INSERT INTO webhook_tokens (token, provider, seen_at) VALUES (?, ?, ?) ON CONFLICT (token) DO NOTHING",
        [token, provider, iso(now)],
    )
    return cursor.rowcount == 0
