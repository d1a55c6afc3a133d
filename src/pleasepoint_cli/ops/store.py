"""The operational store: a SQLite file beside the DuckDB file for what several processes write at once.

WAL mode (readers never wait for the writer), `synchronous=NORMAL` (a commit survives a process crash; about
15 us here), a busy timeout so concurrent writers queue instead of failing. One connection per thread: open an
`OpsStore` in each worker. Transactions are explicit and start with `BEGIN IMMEDIATE`, so a read-then-write in
one transaction cannot be overtaken by another process between the read and the write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pleasepoint_cli.errors import StoreBusyError, StoreError
from pleasepoint_cli.ops.schema import MIGRATIONS, Migration

Params = Sequence[Any] | dict[str, Any]


def ops_path(db_path: Path) -> Path:
    """The operational store of a DuckDB file: `shop/pleasepoint.duckdb` -> `shop/pleasepoint.ops.sqlite`."""
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}.ops.sqlite")


def _is_busy(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class OpsStore:
    """An open operational store (one sqlite3 connection; use one per thread)."""

    def __init__(self, path: Path, busy_timeout: float = 30.0, migrate: bool = True) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise StoreError(f"{self.path}: the folder {self.path.parent} does not exist.")
        self.busy_timeout = busy_timeout
        try:
            # Autocommit mode (isolation_level=None): transactions are only the ones `transaction()` opens.
            self.con = sqlite3.connect(
                str(self.path), timeout=max(busy_timeout, 0.0), isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open the operational store: {e}") from e
        self._depth = 0
        self._lock = threading.RLock()
        try:
            self.con.execute(f"PRAGMA busy_timeout = {int(max(busy_timeout, 0.0) * 1000)}")
            self._set_wal()
            self.con.execute("PRAGMA synchronous = NORMAL")
            self.con.execute("PRAGMA foreign_keys = ON")
            if migrate:
                apply_migrations(self)
        except sqlite3.Error as e:
            self.con.close()
            if _is_busy(e):
                raise StoreBusyError(
                    f"{self.path}: the operational store is busy after {busy_timeout:g} s: {e}"
                ) from e
            raise StoreError(
                f"{self.path}: cannot open the operational store: {e}. Is it a SQLite file?"
            ) from e
        except BaseException:
            self.con.close()
            raise

    def _set_wal(self) -> None:
        row = self.con.execute("PRAGMA journal_mode").fetchone()
        if row is None or str(row[0]).lower() != "wal":
            self.con.execute("PRAGMA journal_mode = WAL")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction (BEGIN IMMEDIATE): all of it commits, or none of it."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.con
                finally:
                    self._depth -= 1
                return
            try:
                self.con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if _is_busy(e):
                    raise StoreBusyError(
                        f"{self.path}: the operational store is busy after {self.busy_timeout:g} s: {e}"
                    ) from e
                raise StoreError(f"{self.path}: cannot start a transaction: {e}") from e
            self._depth = 1
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            else:
                self.con.execute("COMMIT")
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement (in autocommit mode unless inside `transaction()`)."""
        with self._lock:
            return self.con.execute(sql, params)

    def rows(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Run a query and return its rows as dictionaries keyed by column name."""
        with self._lock:
            cursor = self.con.execute(sql, params)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row of a query (None when it returns no row)."""
        with self._lock:
            row = self.con.execute(sql, params).fetchone()
            return None if row is None else row[0]

    def tables(self) -> list[str]:
        """The names of the store's tables (the migrations' bookkeeping included)."""
        return [
            r["name"]
            for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if not str(r["name"]).startswith("sqlite_")
        ]

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> OpsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ops(db_path: Path, busy_timeout: float = 30.0) -> OpsStore:
    """Open (creating and migrating if needed) the operational store beside the DuckDB file at `db_path`."""
    return OpsStore(ops_path(db_path), busy_timeout=busy_timeout)


def apply_migrations(store: OpsStore, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply, in order and each in its own transaction, every migration the file has not seen yet.

    Each migration re-reads the applied set inside its BEGIN IMMEDIATE, so two processes opening a new file at
    once apply each migration once.
    """
    store.con.execute(
        "CREATE TABLE IF NOT EXISTS ops_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL "
        "DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    done = {r[0] for r in store.con.execute("SELECT name FROM ops_migrations").fetchall()}
    known = {m.name for m in migrations}
    if unknown := sorted(done - known):
        raise StoreError(
            f"{store.path}: the operational store was written by a newer pleasepoint (migrations "
            f"{', '.join(unknown)}). Upgrade pleasepoint to open it."
        )
    applied: list[str] = []
    for migration in migrations:
        if migration.name in done:
            continue
        with store.transaction() as con:
            if con.execute("SELECT 1 FROM ops_migrations WHERE name = ?", [migration.name]).fetchone():
                continue
            try:
                # executescript would COMMIT the open transaction; run statement by statement instead.
                for statement in _statements(migration.sql):
                    con.execute(statement)
            except sqlite3.Error as e:
                raise StoreError(f"{store.path}: migration {migration.name} failed: {e}") from e
            con.execute("INSERT INTO ops_migrations (name) VALUES (?)", [migration.name])
        applied.append(migration.name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (complete_statement knows about quotes and comments)."""
    statements: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise StoreError(f"unterminated SQL statement in a migration: {current.strip()[:80]}")
    return statements
