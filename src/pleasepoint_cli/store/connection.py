"""Opening the DuckDB file: wait for another process's lock, migrate, hand out transactions."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import StoreBusyError, StoreError

if TYPE_CHECKING:
    import duckdb

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def fetch_int(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> int:
    """The first column of the first row of a query as an int (0 when the query returns no row or NULL)."""
    row = con.execute(sql, params or []).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


class Store:
    """An open pleasepoint database: a DuckDB connection plus the path it came from."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path
        self._in_transaction = False

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run the block in one transaction: all of it commits, or (on any exception) none of it."""
        if self._in_transaction:
            yield self.con
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._in_transaction = False

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return its rows as dictionaries keyed by column name."""
        cursor = self.con.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a query and return the first column of its first row (None when it has no rows)."""
        row = self.con.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close the connection, releasing the file lock for other processes."""
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _busy_message(path: Path, error: Exception, waited: float) -> str:
    holder = _LOCK_HOLDER.search(str(error))
    who = f"{holder['program']} (PID {holder['pid']})" if holder else "another process"
    return (
        f"{path}: the database is busy: {who} holds it, and it was still held after waiting {waited:g} s. "
        "Wait for that command to finish, or raise --lock-timeout."
    )


def connect(path: Path, lock_timeout: float = 30.0) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, retrying while another process holds its lock, up to `lock_timeout` seconds."""
    import duckdb

    deadline = time.monotonic() + max(lock_timeout, 0.0)
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():
                raise StoreError(f"{path}: cannot open the database: {e}") from e
            if time.monotonic() >= deadline:
                raise StoreBusyError(_busy_message(path, e, lock_timeout)) from e
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 0.5)
        except duckdb.Error as e:
            raise StoreError(
                f"{path}: cannot open the database: {e}. Is it a pleasepoint (DuckDB) file?"
            ) from e


def open_store(path: Path, lock_timeout: float = 30.0, migrate: bool = True) -> Store:
    """Open (creating if needed) the database at `path` and bring its schema up to date."""
    from pleasepoint_cli.store.migrations import apply_migrations

    if path.parent and not path.parent.exists():
        raise StoreError(f"{path}: the folder {path.parent} does not exist. Create it, or pass another --db.")
    store = Store(connect(path, lock_timeout), path)
    if migrate:
        try:
            apply_migrations(store)
        except BaseException:
            store.close()
            raise
    return store
