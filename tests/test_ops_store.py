"""The operational store: path beside the DuckDB file, WAL, migrations once, transactions all-or-nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pleasepoint_cli.errors import StoreError
from pleasepoint_cli.ops import OpsStore, ops_path
from pleasepoint_cli.ops.schema import MIGRATIONS, Migration
from pleasepoint_cli.ops.store import apply_migrations


def test_ops_path_sits_beside_the_duckdb_file() -> None:
    assert ops_path(Path("shop/pleasepoint.duckdb")) == Path("shop/pleasepoint.ops.sqlite")
    assert ops_path(Path("/a/b/tienda.db")) == Path("/a/b/tienda.ops.sqlite")


def test_a_new_store_has_the_fixed_tables_in_wal_mode(tmp_path: Path) -> None:
    with OpsStore(tmp_path / "s.ops.sqlite") as ops:
        assert {"ledger", "suppressions", "ops_migrations"} <= set(ops.tables())
        assert ops.scalar("PRAGMA journal_mode") == "wal"
        assert ops.scalar("PRAGMA synchronous") == 1  # NORMAL
        assert [r["name"] for r in ops.rows("SELECT name FROM ops_migrations ORDER BY rowid")] == [
            m.name for m in MIGRATIONS
        ]
        columns = [r["name"] for r in ops.rows("PRAGMA table_info(ledger)")]
        assert columns == [
            "send_id", "kind", "source", "period", "customer_id", "email", "variant", "status", "not_before",
            "created_at", "claimed_at", "sent_at", "attempts", "message_id", "error", "worker",
        ]  # fmt: skip
        columns = [r["name"] for r in ops.rows("PRAGMA table_info(suppressions)")]
        assert columns == ["email_sha256", "email", "reason", "source", "created_at"]


def test_the_ledger_key_is_unique(tmp_path: Path) -> None:
    with OpsStore(tmp_path / "s.ops.sqlite") as ops:
        insert = (
            "INSERT INTO ledger (send_id, kind, source, period, customer_id, status, created_at) "
            "VALUES (?, 'campaign', 'rebajas', '', 'C1', 'queued', 't')"
        )
        ops.execute(insert, ["a"])
        with pytest.raises(sqlite3.IntegrityError):
            ops.execute(insert, ["b"])


def test_reopening_applies_nothing_twice_and_new_migrations_once(tmp_path: Path) -> None:
    path = tmp_path / "s.ops.sqlite"
    OpsStore(path).close()
    with OpsStore(path) as ops:
        extra = (*MIGRATIONS, Migration("test_0001_extra", "CREATE TABLE extra (x INTEGER);"))
        assert apply_migrations(ops, extra) == ["test_0001_extra"]
        assert apply_migrations(ops, extra) == []


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.ops.sqlite"
    with OpsStore(path) as ops:
        ops.execute("INSERT INTO ops_migrations (name) VALUES ('zzz_future')")
    with pytest.raises(StoreError, match="newer pleasepoint"):
        OpsStore(path)


def test_a_failing_block_commits_nothing(tmp_path: Path) -> None:
    with OpsStore(tmp_path / "s.ops.sqlite") as ops:
        with pytest.raises(RuntimeError), ops.transaction() as con:
            con.execute("INSERT INTO suppressions VALUES ('h', 'a@b.es', 'manual', 'test', 't')")
            raise RuntimeError("boom")
        assert ops.scalar("SELECT count(*) FROM suppressions") == 0


def test_another_process_reads_while_a_write_transaction_is_open(tmp_path: Path) -> None:
    path = tmp_path / "s.ops.sqlite"
    with OpsStore(path) as ops:
        ops.execute("INSERT INTO suppressions VALUES ('h1', 'a@b.es', 'manual', 'test', 't')")
        with ops.transaction() as con:
            con.execute("INSERT INTO suppressions VALUES ('h2', 'c@d.es', 'manual', 'test', 't')")
            reader = subprocess.run(
                [sys.executable, "-c", f"import sqlite3; print(sqlite3.connect({str(path)!r}).execute("
                 "'SELECT count(*) FROM suppressions').fetchone()[0])"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert reader.stdout.strip() == "1"  # the committed row, not the open transaction's


def test_many_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "s.ops.sqlite"
    code = f"from pleasepoint_cli.ops import OpsStore; OpsStore(__import__('pathlib').Path({str(path)!r})).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with OpsStore(path) as ops:
        assert ops.scalar("SELECT count(*) FROM ops_migrations") == len(MIGRATIONS)
