"""The operational store (SQLite, WAL) beside the DuckDB file: send ledger, suppression list, events."""

from pleasepoint_cli.ops.store import OpsStore, open_ops, ops_path

__all__ = ["OpsStore", "open_ops", "ops_path"]
