"""Opening the DuckDB file: wait for another process's lock, migrate, hand out transactions."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from pleasepoint_cli.errors import StoreBusyError, StoreError

if TYPE_CHECKING:
    import duckdb

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def fetch_int(store: Store, sql: str, params: Sequence[Any] | None = None) -> int:
    """The first column of the first row of a query as an int (0 when the query returns no row or NULL).

    DuckDB's errors pass through as they are: the loader turns them into its own "rolled back" message."""
    rows = store.con.execute(sql, params or []).fetchall()
    return 0 if not rows or rows[0][0] is None else int(rows[0][0])


class Store:
    """An open pleasepoint database: a DuckDB connection plus the path it came from."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path
        self._in_transaction = False
        self.warnings: list[str] = []

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
        with wrapped_errors(self.path):
            cursor = self.con.execute(sql, params)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def tuples(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return all of its rows as tuples (for positional unpacking)."""
        with wrapped_errors(self.path):
            return self.con.execute(sql, params).fetchall()

    def first(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        """Run a query and return its first row as a tuple (None when it has no rows).

        The result is fetched whole (DuckDB 2.0 refuses `register` while a result is partly fetched): meant
        for queries of one row (aggregates, a key lookup, `LIMIT 1`).
        """
        with wrapped_errors(self.path):
            rows = self.con.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a query and return the first column of its first row (None when it has no rows)."""
        with wrapped_errors(self.path):
            rows = self.con.execute(sql, params).fetchall()
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        """Run a statement whose result is not needed (DDL, INSERT, UPDATE, DELETE)."""
        with wrapped_errors(self.path):
            self.con.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection, releasing the file lock for other processes."""
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


P = ParamSpec("P")
R = TypeVar("R")


def writer(
    body: Callable[Concatenate[Store, P], R],
) -> Callable[Concatenate[Store, P], R]:
    """Make a core function that writes take the `Store` and run in one transaction of its own.

    The transaction is re-entrant: a writer called inside another's joins it. So the CLI never opens one:
    `enrich_cluster(store, ...)` commits all of its rows, or (on any error) none of them.
    """

    @functools.wraps(body)
    def run(store: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store.transaction():
            return body(store, *args, **kwargs)

    return run


@contextmanager
def wrapped_errors(path: Path) -> Iterator[None]:
    """Turn DuckDB's errors into the store's typed errors (a one-line message, never a traceback)."""
    import duckdb

    try:
        yield
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreError(f"{path}: the database refused a query: {first}") from e


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[str]:
    """An Arrow table visible to queries as the view `name` for the length of the block.

    DuckDB 2.0 refuses `register` while a result of `execute()` is partly fetched (a `fetchone()` of a one-row
    result counts): nothing of such a result is still wanted here, so it is finished first.
    """
    import duckdb

    con.abort()
    con.register(name, table)
    try:
        yield name
    except BaseException:
        # In an aborted transaction DuckDB 2.0 refuses even `unregister`: keep the error that matters.
        with suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.abort()
    con.unregister(name)


def _busy_message(path: Path, error: Exception, waited: float) -> str:
    holder = _LOCK_HOLDER.search(str(error))
    who = f"{holder['program']} (PID {holder['pid']})" if holder else "another process"
    return (
        f"{path}: the database is busy: {who} holds it, and it was still held after waiting {waited:g} s. "
        "Wait for that command to finish, or raise --lock-timeout."
    )


# Never fetch or load an extension behind the user's back: a file that needs one (a SQLite file) is refused.
# DuckDB 2.0.1's row group pruner answers `ORDER BY ... LIMIT` from statistics that still count deleted rows,
# and returned no row at all on an in-memory table refilled after a DELETE (docs/store.md; tests/test_store.py).
_CONFIG: dict[str, str | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "disabled_optimizers": "row_group_pruner",
}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _refuse_foreign_file(path: Path) -> None:
    """A file that is not DuckDB's (a SQLite database, a CSV passed as --db) is refused before it is opened."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StoreError(f"{path}: cannot read the database file: {e.strerror}.") from e
    if head == _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is a SQLite database, not a pleasepoint (DuckDB) file. Pass another --db, "
            "or run `pleasepoint init` in a new folder."
        )


def connect(path: Path, lock_timeout: float = 30.0, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, retrying while another process holds its lock, up to `lock_timeout` seconds."""
    import duckdb

    _refuse_foreign_file(path)
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    delay = 0.05
    while True:
        try:
            return _quiet(duckdb.connect(str(path), read_only=read_only, config=dict(_CONFIG)))
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


def memory_store() -> Store:
    """A store in memory with the same settings as a file's (for tests and scratch work); not migrated."""
    import duckdb

    return Store(_quiet(duckdb.connect(":memory:", config=dict(_CONFIG))), Path(":memory:"))


def _quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No progress tracking by default: DuckDB's own bar prints to stdout once a query has run 2 s, which
    broke the JSON a library caller or a bench snippet prints (a session setting, refused in the config).
    `store.progress.reporting_progress` turns tracking on, silently, while a callback listens."""
    con.execute("SET enable_progress_bar = false")
    return con


def open_store(
    path: Path, lock_timeout: float = 30.0, migrate: bool = True, read_only: bool = False
) -> Store:
    """Open the database at `path` (created if needed unless read-only) and bring its schema up to date.

    A read-only store is never created: a missing file is an error that says how to make one.
    """
    from pleasepoint_cli.store.integrity import quick_check
    from pleasepoint_cli.store.migrations import apply_migrations, check_is_pleasepoint

    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a database file. Pass a file path with --db.")
    if read_only and not path.exists():
        raise StoreError(
            f"no database at {path}: load data with `pleasepoint ingest orders` or run `pleasepoint init`."
        )
    if path.parent and not path.parent.exists():
        raise StoreError(f"{path}: the folder {path.parent} does not exist. Create it, or pass another --db.")
    store = Store(connect(path, lock_timeout, read_only=read_only), path)
    try:
        check_is_pleasepoint(store)
        if migrate and not read_only:
            apply_migrations(store)
            store.warnings.extend(quick_check(store))
    except BaseException:
        store.close()
        raise
    return store
