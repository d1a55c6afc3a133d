"""The suppression list, whose source of truth is the operational store: who must never be mailed again.

An address is normalised (surrounding whitespace stripped, lower-cased) and keyed by the sha256 of that text,
the same key the audience guard computes in DuckDB (`sha256(lower(trim(email)))`). An erased person keeps only
the hash (reason `erased`), so a re-import of the same address is never mailed and cannot be un-suppressed.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import ConfigError, InputDataError, NotFoundError

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore
    from pleasepoint_cli.store.connection import Store

REASONS = ("unsubscribed", "bounced", "complained", "manual")
"""Reasons a person or a file may give; `erased` is set only by `customers forget`."""
ERASED = "erased"
_LEGACY_IMPORTED = "legacy_duckdb_suppressions_imported"


def normalize_email(email: str) -> str:
    """The address as the list keys it: surrounding whitespace stripped, lower-cased."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    """sha256 (hex) of the normalised address."""
    return hashlib.sha256(normalize_email(email).encode("utf-8")).hexdigest()


def iso(moment: datetime) -> str:
    """An aware datetime as ISO-8601 UTC text (the operational store's time format)."""
    from datetime import UTC

    if moment.tzinfo is None:
        raise ValueError("expected an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Suppression:
    """One entry of the list (email is None for an erased person)."""

    email_sha256: str
    email: str | None
    reason: str
    source: str | None
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImportResult:
    """What `import_suppressions` did with a file."""

    file: str
    added: int
    already: int
    invalid: list[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def check_reason(reason: str, *, allow_erased: bool = False) -> str:
    reason = reason.strip().lower()
    allowed = (*REASONS, ERASED) if allow_erased else REASONS
    if reason not in allowed:
        raise ConfigError(f"unknown suppression reason {reason!r}: use one of {', '.join(REASONS)}.")
    return reason


def _valid_address(email: str) -> bool:
    local, at, domain = normalize_email(email).rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in email.strip()))


def add_suppression(
    ops: OpsStore, email: str, reason: str, *, source: str | None, now: datetime, con: Any = None
) -> bool:
    """Suppress an address; True when it was not suppressed before (an existing entry keeps its reason).

    Pass `con` (an open transaction's connection) to add it inside that transaction.
    """
    reason = check_reason(reason)
    if not _valid_address(email):
        raise InputDataError(f"{email!r} is not an email address.")
    sql = (
        "INSERT INTO suppressions (email_sha256, email, reason, source, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (email_sha256) DO NOTHING"
    )
    params = [email_hash(email), normalize_email(email), reason, source, iso(now)]
    cursor = con.execute(sql, params) if con is not None else ops.execute(sql, params)
    return cursor.rowcount > 0


def suppress_erased(con: Any, email_sha256: str, *, now: datetime) -> None:
    """Keep only the hash of an erased person's address (inside the caller's ops transaction)."""
    con.execute(
        "INSERT INTO suppressions (email_sha256, email, reason, source, created_at) "
        "VALUES (?, NULL, 'erased', 'customers forget', ?) "
        "ON CONFLICT (email_sha256) DO UPDATE SET email = NULL, reason = 'erased', source = 'customers forget'",
        [email_sha256, iso(now)],
    )


def remove_suppression(ops: OpsStore, email: str) -> Suppression:
    """Take an address off the list (it may be mailed again); refuses an erased person's hash."""
    with ops.transaction():
        rows = ops.rows("SELECT * FROM suppressions WHERE email_sha256 = ?", [email_hash(email)])
        if not rows:
            raise NotFoundError(f"{normalize_email(email)} is not on the suppression list.")
        entry = Suppression(**rows[0])
        if entry.reason == ERASED:
            raise ConfigError(
                f"{normalize_email(email)} belongs to an erased person (customers forget): it stays suppressed."
            )
        ops.execute("DELETE FROM suppressions WHERE email_sha256 = ?", [entry.email_sha256])
    return entry


def list_suppressions(ops: OpsStore, reason: str | None = None) -> list[Suppression]:
    """The list, newest first (optionally one reason)."""
    where, params = ("WHERE reason = ?", [check_reason(reason, allow_erased=True)]) if reason else ("", [])
    rows = ops.rows(f"SELECT * FROM suppressions {where} ORDER BY created_at DESC, email_sha256", params)
    return [Suppression(**row) for row in rows]


def is_suppressed(ops: OpsStore, email: str) -> bool:
    return ops.scalar("SELECT 1 FROM suppressions WHERE email_sha256 = ?", [email_hash(email)]) is not None


def import_suppressions(
    ops: OpsStore, path: Path, *, reason: str = "manual", source: str | None = None, now: datetime
) -> ImportResult:
    """Add the addresses of a CSV (from a previous provider): an `email` column (else the first column) and
    an optional `reason` column; other columns are ignored. All of it in one transaction."""
    default_reason = check_reason(reason)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as e:
        raise InputDataError(f"{path}: cannot read the file: {e}") from e
    if not rows:
        return ImportResult(str(path), 0, 0, [])
    header = [cell.strip().lower() for cell in rows[0]]
    if "email" in header:
        email_col, body, first_line = header.index("email"), rows[1:], 2
    elif rows[0] and _valid_address(rows[0][0]):
        email_col, body, first_line = 0, rows, 1
    else:
        raise InputDataError(f"{path}:1: no `email` column (and the first cell is not an address).")
    reason_col = header.index("reason") if "reason" in header else None
    added = already = 0
    invalid: list[str] = []
    with ops.transaction() as con:
        for number, row in enumerate(body, start=first_line):
            if not row or not any(cell.strip() for cell in row):
                continue
            email = row[email_col] if email_col < len(row) else ""
            row_reason = default_reason
            if reason_col is not None and reason_col < len(row) and row[reason_col].strip():
                try:
                    row_reason = check_reason(row[reason_col])
                except ConfigError as e:
                    invalid.append(f"{path}:{number}: {e}")
                    continue
            if not _valid_address(email):
                invalid.append(f"{path}:{number}: {email!r} is not an email address")
                continue
            if add_suppression(
                ops, email, row_reason, source=source or f"import:{path.name}", now=now, con=con
            ):
                added += 1
            else:
                already += 1
    return ImportResult(str(path), added, already, invalid)


def suppressed_hashes(ops: OpsStore) -> list[str]:
    return [str(r[0]) for r in ops.execute("SELECT email_sha256 FROM suppressions").fetchall()]


def import_legacy_suppressions(store: Store, ops: OpsStore) -> int:
    """Copy the rows of the DuckDB `suppressions` table (where the list lived before the operational store)
    into the operational store, once per store; returns how many were new."""
    if ops.scalar("SELECT value FROM ops_meta WHERE key = ?", [_LEGACY_IMPORTED]) is not None:
        return 0
    tables = store.tuples(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'suppressions' AND NOT temporary"
    )
    rows: list[tuple[Any, ...]] = []
    if tables[0][0]:
        rows = store.tuples("SELECT email_sha256, email, reason, source, created_at FROM main.suppressions")
    added = 0
    with ops.transaction() as ocon:
        if ocon.execute("SELECT 1 FROM ops_meta WHERE key = ?", [_LEGACY_IMPORTED]).fetchone():
            return 0
        for sha, email, reason, source, created_at in rows:
            stamp = created_at.isoformat() if isinstance(created_at, datetime) else str(created_at)
            cursor = ocon.execute(
                "INSERT INTO suppressions VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_sha256) DO NOTHING",
                [sha, email, reason, source or "duckdb", stamp],
            )
            added += cursor.rowcount
        ocon.execute("INSERT INTO ops_meta (key, value) VALUES (?, ?)", [_LEGACY_IMPORTED, str(len(rows))])
    return added


def attach_suppressions(store: Store, ops: OpsStore) -> int:
    """Make the operational store's list what the DuckDB connection calls `suppressions` (an Arrow table
    registered as a temporary view, which shadows the old DuckDB table), so the marketing guard of every
    audience query reads it. Works on read-only connections. Returns the number of entries."""
    import pyarrow as pa

    import_legacy_suppressions(store, ops)
    rows = ops.execute("SELECT email_sha256, email, reason, source, created_at FROM suppressions").fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    table = pa.table(
        {
            name: pa.array(list(values), type=pa.string())
            for name, values in zip(
                ("email_sha256", "email", "reason", "source", "created_at"), columns, strict=True
            )
        }
    )
    store.con.register("suppressions", table)
    return len(rows)


def attach_suppressions_beside(db_path: Path, store: Store, busy_timeout: float = 30.0) -> int:
    """`attach_suppressions` with the operational store beside the DuckDB file at `db_path`."""
    from pleasepoint_cli.ops.store import open_ops

    with open_ops(db_path, busy_timeout) as ops:
        return attach_suppressions(store, ops)
