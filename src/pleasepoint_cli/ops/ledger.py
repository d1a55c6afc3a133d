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
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
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


COUNTED = ("queued", "sending", "sent", "uncertain", "bounced")
"""Ledger statuses that count as a send for frequency caps (the server took it, may have, or is about to)."""
MARKETING_KINDS = ("campaign", "automation")
"""The kinds that are marketing email (test sends never count)."""
SEND_TIME = "coalesce(sent_at, claimed_at, not_before, created_at)"
"""A row's send time for the caps: when it was sent, else claimed, else planned for, else created."""


@dataclass(frozen=True)
class PlannedRow:
    """One row to plan: `queued` by default; `capped` or `deferred` (with `not_before`) when a cap or quiet
    hours hold it back, with `error` saying why."""

    customer_id: str
    email: str | None
    variant: str | None
    status: str = "queued"
    not_before: datetime | None = None
    error: str | None = None


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
    skip_missing: bool = True,
) -> int:
    """Insert the planned rows with their status (existing keys untouched) in one transaction; returns how
    many were new. With `skip_missing` (a campaign's whole audience), queued rows of this key no longer
    planned become `skipped` ('left the audience'); an automation planning one slot's new customers passes
    False."""
    stamp = iso(now)
    rows = list(rows)
    for r in rows:
        if r.status not in STATUSES:
            raise ValueError(f"unknown ledger status {r.status!r}")
    with ops.transaction() as con:
        before = con.total_changes
        con.executemany(
            "INSERT INTO ledger (send_id, kind, source, period, customer_id, email, variant, status, not_before, "
            "error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, source, period, customer_id) DO NOTHING",
            [
                (make_send_id(kind, source, period, r.customer_id), kind, source, period, r.customer_id, r.email,
                 r.variant, r.status, None if r.not_before is None else iso(r.not_before), r.error, stamp)
                for r in rows
            ],
        )  # fmt: skip
        new = con.total_changes - before
        if skip_missing:
            con.execute("CREATE TEMP TABLE IF NOT EXISTS planned_now (customer_id TEXT PRIMARY KEY)")
            con.execute("DELETE FROM planned_now")
            con.executemany("INSERT OR IGNORE INTO planned_now VALUES (?)", [(r.customer_id,) for r in rows])
            con.execute(
                "UPDATE ledger SET status = 'skipped', error = 'left the audience' WHERE kind = ? AND source = ? "
                "AND period = ? AND status = 'queued' AND customer_id NOT IN (SELECT customer_id FROM planned_now)",
                [kind, source, period],
            )
            con.execute("DELETE FROM planned_now")
    return new


Decide = Callable[[list[str]], tuple[list[str], list[str], dict[str, datetime]]]
"""customers -> (send now, capped, deferred -> not_before): the caller's caps and quiet hours."""


@dataclass(frozen=True)
class Released:
    released: int
    capped: int
    deferred: int


def release_deferred(
    ops: OpsStore, kind: str, source: str, *, now: datetime, decide: Decide, dry_run: bool = False
) -> Released:
    """Deferred rows whose `not_before` has come: `queued` again if `decide` lets them go now, `capped` if a
    cap now holds them for good, else deferred again to the new time. A customer with several due deferred
    rows is released one row per call (so the caps see each send)."""
    rows = ops.rows(
        "SELECT send_id, customer_id FROM ledger WHERE kind = ? AND source = ? AND status = 'deferred' "
        "AND julianday(not_before) <= julianday(?) ORDER BY period, customer_id",
        [kind, source, iso(now)],
    )
    first: dict[str, str] = {}
    for row in rows:
        first.setdefault(str(row["customer_id"]), str(row["send_id"]))
    if not first:
        return Released(0, 0, 0)
    send, capped, deferred = decide(list(first))
    if dry_run:
        return Released(len(send), len(capped), len(deferred))
    with ops.transaction() as con:
        con.executemany(
            "UPDATE ledger SET status = 'queued', not_before = ? WHERE send_id = ? AND status = 'deferred'",
            [(iso(now), first[c]) for c in send],
        )
        con.executemany(
            "UPDATE ledger SET status = 'capped', error = 'frequency cap' WHERE send_id = ? "
            "AND status = 'deferred'",
            [(first[c],) for c in capped],
        )
        con.executemany(
            "UPDATE ledger SET not_before = ? WHERE send_id = ? AND status = 'deferred'",
            [(iso(until), first[c]) for c, until in deferred.items()],
        )
    return Released(len(send), len(capped), len(deferred))


def _from_julian(day: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day - 2440587.5)


def recent_sends(
    con: sqlite3.Connection | OpsStore,
    customers: Iterable[str],
    *,
    at_least: int,
    until: datetime,
    window: timedelta | None,
    source: str | None = None,
    exclude_period: str | None = None,
    exclude: tuple[str, str, str] | None = None,
) -> dict[str, datetime | None]:
    """The rolling-window send count per customer, for frequency caps: the customers of `customers` with at
    least `at_least` counted sends (statuses `COUNTED`, at `SEND_TIME`) in (until - window, until] (ever, when
    `window` is None), each with the time of the oldest such send.

    Counts the sends of automation `source` (less its period `exclude_period`), or with `source` None every
    marketing email (`MARKETING_KINDS`) less the rows of the key `exclude` (kind, source, period)."""
    raw = con.con if not isinstance(con, sqlite3.Connection) else con
    where = [f"l.status IN ({', '.join('?' for _ in COUNTED)})"]
    params: list[object] = list(COUNTED)
    if source is not None:
        where.append("l.kind = 'automation' AND l.source = ?")
        params.append(source)
        if exclude_period is not None:
            where.append("l.period <> ?")
            params.append(exclude_period)
    else:
        where.append(f"l.kind IN ({', '.join('?' for _ in MARKETING_KINDS)})")
        params.extend(MARKETING_KINDS)
        if exclude is not None:
            where.append("NOT (l.kind = ? AND l.source = ? AND l.period = ?)")
            params.extend(exclude)
    send_time = "julianday(coalesce(l.sent_at, l.claimed_at, l.not_before, l.created_at))"
    if window is not None:
        where.append(f"{send_time} > julianday(?) AND {send_time} <= julianday(?)")
        params += [iso(until - window), iso(until)]
    # Every marketing email is most of the ledger: walk it from the candidates (the customer index), in
    # their order (so the grouping needs no sort), not the candidates from the ledger, which reads every row
    # of the kind and its send time. One automation's rows are few: the planner's choice (the key index)
    # stays.
    joined, customer = (
        ("ledger AS l JOIN temp.cap_candidates AS c ON c.customer_id = l.customer_id", "l.customer_id")
        if source is not None
        else (
            "temp.cap_candidates AS c CROSS JOIN ledger AS l ON l.customer_id = c.customer_id",
            "c.customer_id",
        )
    )
    sql = f"""
        SELECT {customer}, min({send_time})
        FROM {joined}
        WHERE {" AND ".join(where)}
        GROUP BY {customer} HAVING count(*) >= ?"""
    # The candidates go into a temporary table in one statement (a JSON array: a third of the time of an
    # INSERT per candidate) inside one savepoint (in autocommit mode every INSERT was its own transaction,
    # ~40 us each); the savepoint nests inside a caller's transaction too.
    raw.execute("CREATE TEMP TABLE IF NOT EXISTS cap_candidates (customer_id TEXT PRIMARY KEY)")
    raw.execute("SAVEPOINT recent_sends")
    try:
        raw.execute("DELETE FROM temp.cap_candidates")
        raw.execute(
            "INSERT OR IGNORE INTO temp.cap_candidates SELECT value FROM json_each(?)",
            [json.dumps([str(c) for c in customers])],
        )
        rows = raw.execute(sql, [*params, at_least]).fetchall()
        raw.execute("DELETE FROM temp.cap_candidates")
    except BaseException:
        raw.execute("ROLLBACK TO recent_sends")
        raw.execute("RELEASE recent_sends")
        raise
    raw.execute("RELEASE recent_sends")
    return {str(c): None if oldest is None else _from_julian(float(oldest)) for c, oldest in rows}


def existing(ops: OpsStore, kind: str, source: str, period: str) -> dict[str, str]:
    """customer -> status of the rows already planned under one key (planning never adds a second row)."""
    return {
        str(r["customer_id"]): str(r["status"])
        for r in ops.rows(
            "SELECT customer_id, status FROM ledger WHERE kind = ? AND source = ? AND period = ?",
            [kind, source, period],
        )
    }


def expire_queued(ops: OpsStore, kind: str, source: str, *, before: datetime, reason: str) -> int:
    """Queued rows whose time (`not_before`, else the period's instant) is before `before` become `skipped`
    with `reason`: too late to send (an automation's max_lateness)."""
    with ops.transaction() as con:
        cursor = con.execute(
            "UPDATE ledger SET status = 'skipped', error = ? WHERE kind = ? AND source = ? AND status = 'queued' "
            "AND julianday(coalesce(not_before, period)) < julianday(?)",
            [reason, kind, source, iso(before)],
        )
    return int(cursor.rowcount)


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
        return _claim(con, send_id, email, iso(now), worker)


def _claim(con: sqlite3.Connection, send_id: str, email: str, stamp: str, worker: str) -> Claim:
    # One guarded UPDATE in the common case (queued, not suppressed); the reasons are read only on a miss.
    cursor = con.execute(
        "UPDATE ledger SET status = 'sending', email = ?, claimed_at = ?, attempts = attempts + 1, worker = ? "
        "WHERE send_id = ? AND status = 'queued' "
        "AND NOT EXISTS (SELECT 1 FROM suppressions WHERE email_sha256 = ?)",
        [email, stamp, worker, send_id, email_hash(email)],
    )
    if cursor.rowcount == 1:
        return Claim(send_id, True, "sending")
    row = con.execute("SELECT status FROM ledger WHERE send_id = ?", [send_id]).fetchone()
    if row is None or row[0] != "queued":
        return Claim(send_id, False, "missing" if row is None else str(row[0]))
    hit = con.execute(
        "SELECT reason FROM suppressions WHERE email_sha256 = ?", [email_hash(email)]
    ).fetchone()
    reason = hit[0] if hit is not None else "unknown"
    con.execute(
        "UPDATE ledger SET status = 'suppressed', email = ?, error = ? WHERE send_id = ?",
        [email, f"suppressed ({reason})", send_id],
    )
    return Claim(send_id, False, "suppressed")


@dataclass(frozen=True)
class Settlement:
    """How one row ended, to record (see `settle`)."""

    send_id: str
    status: str
    message_id: str | None = None
    error: str | None = None
    from_status: tuple[str, ...] = ("sending",)
    suppress_reason: str | None = None
    email: str | None = None


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
    done = Settlement(send_id, status, message_id, error, tuple(from_status), suppress_reason, email)
    with ops.transaction() as con:
        return _settle(con, done, iso(now))


def settle_and_claim(
    ops: OpsStore,
    done: Sequence[Settlement],
    claim_next: tuple[str, str] | None,
    *,
    now: datetime,
    worker: str,
) -> tuple[list[bool], Claim | None]:
    """Record the settlements and claim the next row (send id, email) in one transaction: a sending
    connection settles its previous message and claims its next with one commit instead of two.

    Nothing is weakened: the claim is still committed before the next message's first byte, the settled row
    was already answered by the server, and a connection never holds more than one row `sending`.
    Returns whether each settlement applied, and the claim (None when nothing was to be claimed)."""
    stamp = iso(now)
    with ops.transaction() as con:
        applied = [_settle(con, d, stamp) for d in done]
        claimed = None if claim_next is None else _claim(con, claim_next[0], claim_next[1], stamp, worker)
    return applied, claimed


def _settle(con: sqlite3.Connection, done: Settlement, stamp: str) -> bool:
    if done.status not in STATUSES:
        raise ValueError(f"unknown ledger status {done.status!r}")
    marks = ", ".join("?" for _ in done.from_status)
    cursor = con.execute(
        f"UPDATE ledger SET status = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
        f"message_id = COALESCE(?, message_id), error = ? WHERE send_id = ? AND status IN ({marks})",
        [done.status, done.status, stamp, done.message_id, done.error, done.send_id, *done.from_status],
    )
    if done.suppress_reason and done.email and cursor.rowcount:
        con.execute(
            "INSERT INTO suppressions (email_sha256, email, reason, source, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_sha256) DO NOTHING",
            [email_hash(done.email), done.email.strip().lower(), done.suppress_reason,
             f"ledger:{done.send_id}", stamp],
        )  # fmt: skip
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
    "COUNTED",
    "MARKETING_KINDS",
    "SEND_TIME",
    "STATUSES",
    "Claim",
    "LedgerCounts",
    "PlannedRow",
    "Released",
    "Settlement",
    "claim",
    "counts",
    "existing",
    "expire_queued",
    "make_send_id",
    "mark_uncertain",
    "plan_rows",
    "queued",
    "recent_sends",
    "release_deferred",
    "requeue",
    "settle",
    "settle_and_claim",
    "skipped_reasons",
]
