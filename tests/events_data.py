"""A small send ledger in a real operational store, matching the fixtures of tests/data/events/.

Six messages of campaign `primavera`, sent 2026-04-24T08:00Z: S1 ana (delivered, opened, clicked), S2 luis
(delivered, only a machine open), S3 eva (hard bounce, matched by Message-ID only), S4 ines (deferred, then a
soft bounce), S5 pepe (delivered, complaint), S6 rosa (delivered, unsubscribed at 00:30 Madrid time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pleasepoint_cli.ops.store import OpsStore, open_ops

EVENTS_DATA = Path(__file__).parent / "data" / "events"
FIXTURES = {
    "pleasepoint": EVENTS_DATA / "pleasepoint.jsonl",
    "sendgrid": EVENTS_DATA / "sendgrid.json",
    "mailgun": EVENTS_DATA / "mailgun.jsonl",
    "ses": EVENTS_DATA / "ses.json",
}
MAILGUN_KEY = "pleasepoint-test-mailgun-key"
RECIPIENTS = {
    "S1": ("C1", "ana@example.com"),
    "S2": ("C2", "luis@example.com"),
    "S3": ("C3", "eva@example.com"),
    "S4": ("C4", "ines@example.com"),
    "S5": ("C5", "pepe@example.com"),
    "S6": ("C6", "rosa@example.com"),
}
SENT_AT = "2026-04-24T08:00:00.000000Z"
NOW = datetime(2026, 4, 25, 12, 0, tzinfo=UTC)


def add_send(
    ops: OpsStore,
    send_id: str,
    customer_id: str,
    email: str,
    *,
    source: str = "primavera",
    kind: str = "campaign",
    period: str = "",
    status: str = "sent",
    sent_at: str | None = SENT_AT,
    message_id: str | None = None,
) -> None:
    ops.execute(
        "INSERT INTO ledger (send_id, kind, source, period, customer_id, email, variant, status, created_at, "
        "sent_at, attempts, message_id) VALUES (?, ?, ?, ?, ?, ?, 'a', ?, ?, ?, 1, ?)",
        [
            send_id,
            kind,
            source,
            period,
            customer_id,
            email,
            status,
            sent_at or SENT_AT,
            sent_at,
            message_id or f"<{send_id}.{source}@tienda.example>",
        ],
    )


def primavera_store(tmp_path: Path, statuses: dict[str, str] | None = None) -> tuple[Path, OpsStore]:
    """A DuckDB path (the file is not created) and its operational store holding the six sends."""
    db = tmp_path / "shop.duckdb"
    ops = open_ops(db)
    for send_id, (customer, email) in RECIPIENTS.items():
        add_send(ops, send_id, customer, email, status=(statuses or {}).get(send_id, "sent"))
    return db, ops
