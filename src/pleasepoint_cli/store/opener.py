"""An opener for long jobs: a send or a tick holds the DuckDB file only for the step that touches it.

DuckDB allows one writer process per file, and a read-only open is refused while another process writes
(pitfalls.md). A job that kept one connection for its whole run would lock every analyst out while it
waited on an SMTP server. The opener is a plain value (path, lock timeout): a job keeps it and opens the
file around each short step, `with opener.write() as store:` or `with opener.read() as store:`.
Migrations run once per process and path, not on every reopen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pleasepoint_cli.errors import StoreError
from pleasepoint_cli.store.connection import Store, open_store

_migrated: set[Path] = set()
_migrated_lock = threading.Lock()


@dataclass(frozen=True)
class StoreOpener:
    """Where the database is and how long to wait for it; opens it for one step at a time."""

    path: Path
    lock_timeout: float = 30.0

    def _migrate_once(self) -> bool:
        key = self.path.resolve()
        with _migrated_lock:
            if key in _migrated:
                return False
            _migrated.add(key)
            return True

    @contextmanager
    def write(self) -> Iterator[Store]:
        """The database open for reading and writing, for the length of the block."""
        first = self._migrate_once()
        try:
            store = open_store(self.path, self.lock_timeout, migrate=first)
        except BaseException:
            if first:
                with _migrated_lock:
                    _migrated.discard(self.path.resolve())
            raise
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def read(self) -> Iterator[Store]:
        """The database open read-only (never created), for the length of the block.

        A file whose schema is behind this version (an upgrade, then cron's first `automate tick`) is migrated
        first, in a short write, so every read sees the schema the code expects.
        """
        from pleasepoint_cli.store.migrations import pending_migrations

        if not self.path.exists():
            raise StoreError(
                f"no database at {self.path}: load data with `pleasepoint ingest orders` or run `pleasepoint init`."
            )
        store = open_store(self.path, self.lock_timeout, migrate=False, read_only=True)
        if pending_migrations(store):
            store.close()
            open_store(self.path, self.lock_timeout, migrate=True).close()
            store = open_store(self.path, self.lock_timeout, migrate=False, read_only=True)
        try:
            yield store
        finally:
            store.close()
