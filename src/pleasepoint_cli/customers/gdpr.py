"""GDPR access and erasure: everything held on one person, and forgetting them in both stores and the outbox.

Erasure deletes the person's rows from every DuckDB table keyed by customer_id (profile, attributes and their
history, persona assignments, and any table added later), keeps their order lines for the shop's figures under
a random pseudonym, scrubs their address, id and name from every other text column of both stores, replaces
the address in the send ledger by nothing (the rows stay as anonymous counts), strips their delivery and
engagement events (provider payloads, webhook events, tracking hits) down to kind and time, deletes outbox
files that name them, and leaves only the sha256 of the address on the suppression list (reason `erased`): a later import of
the same customer is never mailed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import NotFoundError

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore
    from pleasepoint_cli.store.connection import Store

ERASED_TEXT = "[erased]"
PSEUDONYMISED = ("order_lines",)
"""Tables whose rows outlive the person (the shop's revenue), under a random pseudonym instead of the id."""


@dataclass
class ForgetResult:
    customer_id: str
    deleted: dict[str, int] = field(default_factory=dict)
    pseudonymised: dict[str, int] = field(default_factory=dict)
    scrubbed: dict[str, int] = field(default_factory=dict)
    ledger_rows: int = 0
    events: int = 0
    """Their delivery and engagement events (provider files, webhooks, tracking hits) stripped to anonymous
    counts: raw payload, address hash and URL removed; kind, time and the (pseudonymised) send kept."""
    outbox_files: int = 0
    suppressed_hashes: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _tables(store: Store) -> list[tuple[str, list[tuple[str, str]]]]:
    rows = store.tuples(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
        "ORDER BY table_name, column_index"
    )
    views = {r[0] for r in store.tuples("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        if table not in views:
            tables.setdefault(str(table), []).append((str(column), str(data_type)))
    return list(tables.items())


def _person(store: Store, customer_id: str) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM customers WHERE customer_id = ?", [customer_id])
    return rows[0] if rows else None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime) or hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def export_customer(store: Store, ops: OpsStore, customer_id: str) -> dict[str, Any]:
    """Everything held on a person: their row of every DuckDB table keyed by customer_id (profile,
    attributes with history, orders, persona assignments...), ledger rows, events and suppression entry."""
    from pleasepoint_cli.ops.suppression import email_hash

    person = _person(store, customer_id)
    if person is None and not ops.scalar("SELECT 1 FROM ledger WHERE customer_id = ?", [customer_id]):
        raise NotFoundError(f"no customer {customer_id!r} in the database or the send ledger.")
    data: dict[str, Any] = {"customer_id": customer_id, "profile": None, "tables": {}}
    for table, columns in _tables(store):
        if "customer_id" not in {c for c, _ in columns}:
            continue
        found = store.rows(f'SELECT * FROM "{table}" WHERE customer_id = ?', [customer_id])
        rows = [{n: _plain(v) for n, v in row.items()} for row in found]
        if table == "customers":
            data["profile"] = rows[0] if rows else None
        else:
            data["tables"][table] = rows
    email = (person or {}).get("email")
    hashes = [email_hash(email)] if email else []
    ledger = ops.rows("SELECT * FROM ledger WHERE customer_id = ? ORDER BY created_at", [customer_id])
    data["ledger"] = ledger
    data["suppression"] = [
        row for h in hashes for row in ops.rows("SELECT * FROM suppressions WHERE email_sha256 = ?", [h])
    ]
    if "events" in ops.tables():
        send_ids = [str(r["send_id"]) for r in ledger]
        marks = ", ".join("?" for _ in send_ids) or "NULL"
        data["events"] = ops.rows(
            f"SELECT * FROM events WHERE send_id IN ({marks}) OR email_sha256 IN ({', '.join('?' for _ in hashes) or 'NULL'}) "
            "ORDER BY occurred_at",
            [*send_ids, *hashes],
        )
    return data


def _id_pattern(customer_id: str) -> str:
    """The id as a whole token (so forgetting C1 leaves C10 alone)."""
    return f"(^|[^A-Za-z0-9_]){re.escape(customer_id)}($|[^A-Za-z0-9_])"


def forget_customer(
    store: Store,
    ops: OpsStore,
    customer_id: str,
    *,
    now: datetime,
    outbox_dir: Path | None = None,
) -> ForgetResult:
    """Erase a person (see the module docstring). `con` is a writable DuckDB connection; the DuckDB part is
    one transaction, the operational store's part another."""
    from pleasepoint_cli.ops.suppression import email_hash, suppress_erased

    person = _person(store, customer_id)
    ledger_emails = [
        str(r[0])
        for r in ops.execute(
            "SELECT DISTINCT email FROM ledger WHERE customer_id = ? AND kind <> 'test' AND email IS NOT NULL",
            [customer_id],
        ).fetchall()
    ]
    if (
        person is None
        and not ledger_emails
        and not ops.scalar("SELECT 1 FROM ledger WHERE customer_id = ?", [customer_id])
    ):
        raise NotFoundError(f"no customer {customer_id!r} in the database or the send ledger.")
    emails = sorted(
        {
            e.strip()
            for e in [*([person["email"]] if person and person.get("email") else []), *ledger_emails]
            if e.strip()
        }
    )
    full_name = " ".join(p for p in ((person or {}).get("first_name"), (person or {}).get("last_name")) if p)
    needles = [*emails, *([full_name] if len(full_name) >= 5 else [])]
    result = ForgetResult(customer_id)
    pseudonym = f"erased-{secrets.token_hex(8)}"

    store.execute("BEGIN TRANSACTION")
    try:
        for table, columns in _tables(store):
            names = {c for c, _ in columns}
            if "customer_id" in names:
                if table in PSEUDONYMISED:
                    count = store.tuples(
                        f'UPDATE "{table}" SET customer_id = ? WHERE customer_id = ?',
                        [pseudonym, customer_id],
                    )
                    result.pseudonymised[table] = int(count[0][0]) if count else 0
                else:
                    count = store.tuples(f'DELETE FROM "{table}" WHERE customer_id = ?', [customer_id])
                    result.deleted[table] = int(count[0][0]) if count else 0
            for column, data_type in columns:
                if data_type not in ("VARCHAR", "JSON"):
                    continue
                changed = _scrub_duckdb(store, table, column, data_type, customer_id, needles)
                if changed:
                    result.scrubbed[f"{table}.{column}"] = changed
        store.execute("COMMIT")
    except BaseException:
        store.execute("ROLLBACK")
        raise
    store.execute("CHECKPOINT")

    with ops.transaction() as ocon:
        result.events = _strip_events(ocon, customer_id, [email_hash(e) for e in emails])
        cursor = ocon.execute(
            "UPDATE ledger SET customer_id = ? || '-' || send_id, email = NULL, "
            "error = CASE WHEN error IS NULL THEN NULL ELSE '[erased]' END WHERE customer_id = ?",
            [pseudonym, customer_id],
        )
        result.ledger_rows = cursor.rowcount
        for email in emails:
            ocon.execute("UPDATE ledger SET email = NULL WHERE lower(trim(email)) = ?", [email.lower()])
            suppress_erased(ocon, email_hash(email), now=now)
            result.suppressed_hashes += 1
        _scrub_ops(ocon, customer_id, needles, result)
    if outbox_dir is not None and outbox_dir.is_dir():
        result.outbox_files = _scrub_outbox(outbox_dir, customer_id, needles)
    return result


def _strip_events(ocon: Any, customer_id: str, hashes: list[str]) -> int:
    """Their events (by their sends or their address hash; provider payloads may hold the address in any
    encoding, so the raw JSON goes whole), kept only as anonymous counts."""
    tables = {r[0] for r in ocon.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    if "events" not in tables:
        return 0
    marks = ", ".join("?" for _ in hashes) or "NULL"
    cursor = ocon.execute(
        "UPDATE events SET raw = NULL, email_sha256 = NULL, url = NULL "
        "WHERE send_id IN (SELECT send_id FROM ledger WHERE customer_id = ?) "
        f"OR email_sha256 IN ({marks})",
        [customer_id, *hashes],
    )
    return int(cursor.rowcount)


def _re2_escape(text: str) -> str:
    """A literal for DuckDB's RE2 regular expressions."""
    out = []
    for ch in text:
        if ch.isalnum() or ord(ch) > 127:
            out.append(ch)
        elif ch.isspace():
            out.append("\\s")
        else:
            out.append("\\" + ch)
    return "".join(out)


def _scrub_duckdb(
    store: Store,
    table: str,
    column: str,
    data_type: str,
    customer_id: str,
    needles: list[str],
) -> int:
    col = f'"{column}"'
    text = f"CAST({col} AS VARCHAR)" if data_type == "JSON" else col
    id_pattern = f"(^|[^A-Za-z0-9_]){_re2_escape(customer_id)}($|[^A-Za-z0-9_])"
    expression = f"regexp_replace({text}, ?, '\\1{ERASED_TEXT}\\2', 'g')"
    params: list[Any] = [id_pattern]
    conditions = [f"regexp_matches({text}, ?)"]
    where_params: list[Any] = [id_pattern]
    for needle in needles:  # addresses and names, whatever their case
        expression = f"regexp_replace({expression}, ?, '{ERASED_TEXT}', 'gi')"
        params.append(_re2_escape(needle))
        conditions.append(f"contains(lower({text}), ?)")
        where_params.append(needle.lower())
    value = f"CAST({expression} AS JSON)" if data_type == "JSON" else expression
    rows = store.tuples(
        f'UPDATE "{table}" SET {col} = {value} WHERE {" OR ".join(conditions)}', [*params, *where_params]
    )
    return int(rows[0][0]) if rows else 0


def _scrub_ops(ocon: Any, customer_id: str, needles: list[str], result: ForgetResult) -> None:
    pattern = re.compile(_id_pattern(customer_id))
    lowered = [n.lower() for n in needles]

    def scrub(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = pattern.sub(lambda m: f"{m.group(1)}{ERASED_TEXT}{m.group(2)}", value)
        for needle in needles:
            value = re.sub(re.escape(needle), ERASED_TEXT, value, flags=re.IGNORECASE)
        return value

    def hit(value: Any) -> int:
        if not isinstance(value, str):
            return 0
        low = value.lower()
        return int(bool(pattern.search(value)) or any(n in low for n in lowered))

    ocon.create_function("pp_scrub", 1, scrub, deterministic=True)
    ocon.create_function("pp_hit", 1, hit, deterministic=True)
    tables = [r[0] for r in ocon.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    for table in tables:
        if table.startswith("sqlite_"):
            continue
        for column in ocon.execute(f'PRAGMA table_info("{table}")').fetchall():
            name, data_type = column[1], str(column[2]).upper()
            if data_type not in ("TEXT", "") or (table, name) == ("suppressions", "email_sha256"):
                continue
            cursor = ocon.execute(
                f'UPDATE "{table}" SET "{name}" = pp_scrub("{name}") WHERE pp_hit("{name}")'
            )
            if cursor.rowcount:
                result.scrubbed[f"ops.{table}.{name}"] = cursor.rowcount


def _scrub_outbox(outbox_dir: Path, customer_id: str, needles: list[str]) -> int:
    """Delete every outbox file that names the person (their messages, previews rendered for them)."""
    id_pattern = re.compile(_id_pattern(customer_id).encode())
    lowered = [n.lower().encode("utf-8") for n in needles]
    deleted = 0
    for path in sorted(outbox_dir.rglob("*")):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        low = data.lower()
        if id_pattern.search(data) or any(n in low for n in lowered) or _names_encoded(data, needles):
            path.unlink()
            deleted += 1
    return deleted


def _names_encoded(data: bytes, needles: list[str]) -> bool:
    """Whether a message names the person in an encoded header or body part (RFC 2047, base64, QP)."""
    if not needles or not (
        data.startswith(b"From") or b"\nMessage-ID:" in data or b"\nmessage-id:" in data.lower()
    ):
        return False
    from email import message_from_bytes, policy

    try:
        message = message_from_bytes(data, policy=policy.default)
        text = " ".join(str(v) for v in message.values())
        for part in message.walk():
            if not part.is_multipart():
                payload = part.get_content()
                text += " " + (payload if isinstance(payload, str) else "")
    except Exception:
        return False
    low = text.lower()
    return any(n.lower() in low for n in needles)
