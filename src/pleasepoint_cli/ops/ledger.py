"""The send ledger: one row per planned message under the unique key (kind, source, period, customer_id).

The life of a row: `queued` when the audience is planned; `sending`, committed, before the first byte goes to
the server (the claim is one UPDATE guarded by `status = 'queued'`, so two processes can never claim the same
row); then `sent`, `bounced` or `failed` once the server has answered; `suppressed` when the address was
suppressed after planning; `skipped` when the customer left the audience or the database. A run that finds
`sending` rows left by a dead run (it holds the campaign's lock, so nobody else is sending them) turns them
`uncertain`: the server may or may not have accepted them, so they are resent only when asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.ops.suppression import email_hash, iso

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore

STATUSES = (
    "queued",
    "sending",
    "sent",
    "failed",
    "bounced",
    "suppressed",
    "skipped",
    "capped",
    "deferred",
    "uncertain",
)


def make_send_id(kind: str, source: str, period: str, customer_id: str) -> str:
    """The deterministic id of a ledger row (and of its message): a hash of the row's unique key."""
    key = "\x00".join((kind, source, period, customer_id)).encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True)
class PlannedRow:
    customer_id: str
    email: str | None
    variant: str | None


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim one row: `sending` (go ahead), or why not."""

    send_id: str
    claimed: bool
    """True only for the caller that moved the row from `queued` to `sending`: it may send it."""
    status: str
    """The row's status now ('suppressed' when it was suppressed by this call)."""


def plan_rows(
    ops: OpsStore,
    kind: str,
    source: str,
    period: str,
    rows: Iterable[PlannedRow],
    *,
    now: datetime,
) -> int:
    """Insert the planned rows as `queued` (existing keys untouched) in one transaction; returns how many were
    new. Queued rows of this key no longer planned become `skipped` ('left the audience')."""
    stamp = iso(now)
    rows = list(rows)
    with ops.transaction() as con:
        before = con.execute(
            "SELECT count(*) FROM ledger WHERE kind = ? AND source = ? AND period = ?", [kind, source, period]
        ).fetchone()[0]
        con.executemany(
            "INSERT INTO ledger (send_id, kind, source, period, customer_id, email, variant, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?) ON CONFLICT (kind, source, period, customer_id) DO NOTHING",
            [
                (make_send_id(kind, source, period, r.customer_id), kind, source, period, r.customer_id, r.email,
                 r.variant, stamp)
                for r in rows
            ],
        )  # fmt: skip
        after = con.execute(
            "SELECT count(*) FROM ledger WHERE kind = ? AND source = ? AND period = ?", [kind, source, period]
        ).fetchone()[0]
        con.execute("CREATE TEMP TABLE IF NOT EXISTS planned_now (customer_id TEXT PRIMARY KEY)")
        con.execute("DELETE FROM planned_now")
        con.executemany("INSERT OR IGNORE INTO planned_now VALUES (?)", [(r.customer_id,) for r in rows])
        con.execute(
            "UPDATE ledger SET status = 'skipped', error = 'left the audience' WHERE kind = ? AND source = ? "
            "AND period = ? AND status = 'queued' AND customer_id NOT IN (SELECT customer_id FROM planned_now)",
            [kind, source, period],
        )
        con.execute("DELETE FROM planned_now")
    return int(after) - int(before)


def mark_uncertain(ops: OpsStore, kind: str, source: str, period: str | None = None) -> int:
    """Turn the `sending` rows a dead run left into `uncertain`. Call only while holding the send's lock."""
    where, params = _key(kind, source, period)
    with ops.transaction() as con:
        cursor = con.execute(
            f"UPDATE ledger SET status = 'uncertain', error = 'the sending process died before the server "
            f"answered was recorded' WHERE {where} AND status = 'sending'",
            params,
        )
    return cursor.rowcount


def requeue(ops: OpsStore, kind: str, source: str, status: str, period: str | None = None) -> int:
    """Put rows of one status back in the queue (`--retry-uncertain`)."""
    where, params = _key(kind, source, period)
    with ops.transaction() as con:
        cursor = con.execute(
            f"UPDATE ledger SET status = 'queued', error = NULL WHERE {where} AND status = ?",
            [*params, status],
        )
    return cursor.rowcount


def queued(ops: OpsStore, kind: str, source: str, period: str | None = None) -> list[dict[str, Any]]:
    """The queued rows, in customer order."""
    where, params = _key(kind, source, period)
    return ops.rows(
        f"SELECT send_id, customer_id, email, variant FROM ledger WHERE {where} AND status = 'queued' "
        "ORDER BY customer_id, period",
        params,
    )


def claim(ops: OpsStore, send_id: str, email: str, *, now: datetime, worker: str) -> Claim:
    """Claim one queued row for sending (committed before anything goes to the server), after checking the
    address against the suppression list at this very moment."""
    with ops.transaction() as con:
        row = con.execute("SELECT status FROM ledger WHERE send_id = ?", [send_id]).fetchone()
        if row is None or row[0] != "queued":
            return Claim(send_id, False, "missing" if row is None else str(row[0]))
        hit = con.execute(
            "SELECT reason FROM suppressions WHERE email_sha256 = ?", [email_hash(email)]
        ).fetchone()
        if hit is not None:
            con.execute(
                "UPDATE ledger SET status = 'suppressed', email = ?, error = ? WHERE send_id = ?",
                [email, f"suppressed ({hit[0]})", send_id],
            )
            return Claim(send_id, False, "suppressed")
        cursor = con.execute(
            "UPDATE ledger SET status = 'sending', email = ?, claimed_at = ?, attempts = attempts + 1, "
            "worker = ? WHERE send_id = ? AND status = 'queued'",
            [email, iso(now), worker, send_id],
        )
    return Claim(send_id, cursor.rowcount == 1, "sending")


def settle(
    ops: OpsStore,
    send_id: str,
    status: str,
    *,
    now: datetime,
    message_id: str | None = None,
    error: str | None = None,
    from_status: Sequence[str] = ("sending",),
    suppress_reason: str | None = None,
    email: str | None = None,
) -> bool:
    """Record how a row ended; with `suppress_reason`, also suppress its address, in the same transaction."""
    if status not in STATUSES:
        raise ValueError(f"unknown ledger status {status!r}")
    marks = ", ".join("?" for _ in from_status)
    with ops.transaction() as con:
        cursor = con.execute(
            f"UPDATE ledger SET status = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
            f"message_id = COALESCE(?, message_id), error = ? WHERE send_id = ? AND status IN ({marks})",
            [status, status, iso(now), message_id, error, send_id, *from_status],
        )
        if suppress_reason and email and cursor.rowcount:
            con.execute(
                "INSERT INTO suppressions (email_sha256, email, reason, source, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_sha256) DO NOTHING",
                [email_hash(email), email.strip().lower(), suppress_reason, f"ledger:{send_id}", iso(now)],
            )
    return cursor.rowcount > 0


@dataclass(frozen=True)
class LedgerCounts:
    """A source's rows per status, with the first and last send time."""

    kind: str
    source: str
    counts: dict[str, int]
    first_sent_at: str | None
    last_sent_at: str | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def counts(ops: OpsStore, kind: str, source: str, period: str | None = None) -> LedgerCounts:
    where, params = _key(kind, source, period)
    per_status = {
        str(r["status"]): int(r["n"])
        for r in ops.rows(f"SELECT status, count(*) AS n FROM ledger WHERE {where} GROUP BY status", params)
    }
    first, last = ops.execute(
        f"SELECT min(sent_at), max(sent_at) FROM ledger WHERE {where} AND status = 'sent'", params
    ).fetchone() or (None, None)
    return LedgerCounts(kind, source, {s: per_status.get(s, 0) for s in STATUSES}, first, last)


def skipped_reasons(ops: OpsStore, kind: str, source: str, period: str | None = None) -> dict[str, int]:
    where, params = _key(kind, source, period)
    return {
        str(r["error"] or "unknown"): int(r["n"])
        for r in ops.rows(
            f"SELECT error, count(*) AS n FROM ledger WHERE {where} AND status IN ('skipped', 'suppressed') "
            "GROUP BY error ORDER BY n DESC",
            params,
        )
    }


def _key(kind: str, source: str, period: str | None) -> tuple[str, list[Any]]:
    if period is None:
        return "kind = ? AND source = ?", [kind, source]
    return "kind = ? AND source = ? AND period = ?", [kind, source, period]


__all__ = [
    "STATUSES",
    "Claim",
    "LedgerCounts",
    "PlannedRow",
    "claim",
    "counts",
    "make_send_id",
    "mark_uncertain",
    "plan_rows",
    "queued",
    "requeue",
    "settle",
    "skipped_reasons",
]
