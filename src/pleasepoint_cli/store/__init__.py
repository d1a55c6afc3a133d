"""The store: one DuckDB file, its schema as ordered migrations, and a connect that waits for the lock."""

from pleasepoint_cli.store.connection import Store, open_store

__all__ = ["Store", "open_store"]
