"""The suppression list in the operational store, and what DuckDB's marketing guard reads of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pleasepoint_cli.audience.model import ConsentLeaf
from pleasepoint_cli.audience.select import select_customers
from pleasepoint_cli.errors import ConfigError, InputDataError, NotFoundError
from pleasepoint_cli.ops import OpsStore, ops_path
from pleasepoint_cli.ops.suppression import (
    add_suppression,
    attach_suppressions,
    email_hash,
    import_suppressions,
    is_suppressed,
    list_suppressions,
    remove_suppression,
    suppress_erased,
)
from pleasepoint_cli.store import open_store

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def ops(tmp_path: Path) -> OpsStore:
    return OpsStore(tmp_path / "t.ops.sqlite")


def test_the_hash_is_the_one_duckdb_computes_for_the_guard() -> None:
    (row,) = duckdb.connect().execute("SELECT sha256(lower(trim(' Rosa@Example.COM ')))").fetchall()
    assert email_hash(" Rosa@Example.COM ") == row[0] == email_hash("rosa@example.com")


def test_add_list_remove(ops: OpsStore) -> None:
    assert add_suppression(ops, " Ana@Example.com", "unsubscribed", source="test", now=NOW)
    assert not add_suppression(ops, "ana@example.com ", "bounced", source="test", now=NOW)  # kept as it was
    assert is_suppressed(ops, "ANA@example.com")
    (entry,) = list_suppressions(ops)
    assert (entry.email, entry.reason, entry.created_at) == (
        "ana@example.com",
        "unsubscribed",
        "2026-09-01T10:00:00.000000Z",
    )
    assert list_suppressions(ops, "bounced") == []
    with pytest.raises(ConfigError, match="unknown suppression reason"):
        add_suppression(ops, "b@example.com", "whim", source=None, now=NOW)
    with pytest.raises(InputDataError):
        add_suppression(ops, "not an address", "manual", source=None, now=NOW)
    assert remove_suppression(ops, "ana@example.com").reason == "unsubscribed"
    assert not is_suppressed(ops, "ana@example.com")
    with pytest.raises(NotFoundError):
        remove_suppression(ops, "ana@example.com")


def test_an_erased_person_keeps_only_the_hash_and_cannot_be_removed(ops: OpsStore) -> None:
    add_suppression(ops, "eva@example.com", "manual", source="test", now=NOW)
    with ops.transaction() as con:
        suppress_erased(con, email_hash("eva@example.com"), now=NOW)
    (entry,) = list_suppressions(ops)
    assert (entry.email, entry.reason) == (None, "erased")
    assert is_suppressed(ops, "Eva@example.com")
    with pytest.raises(ConfigError, match="erased"):
        remove_suppression(ops, "eva@example.com")


def test_import_a_providers_csv(ops: OpsStore, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Name,Email,Reason\nAna,ana@example.com,\nLuis,LUIS@example.com,bounced\n,,\n"
        "X,nope,manual\nY,y@example.com,whatever\nAna again,ana@example.com,\nÑoño,ñoño@ejemplo.es,complained\n",
        encoding="utf-8",
    )
    result = import_suppressions(ops, path, reason="unsubscribed", now=NOW)
    assert (result.added, result.already) == (3, 1)
    assert [p.split(": ")[0] for p in result.invalid] == [f"{path}:5", f"{path}:6"]
    reasons = {s.email: s.reason for s in list_suppressions(ops)}
    assert reasons == {
        "ana@example.com": "unsubscribed",
        "luis@example.com": "bounced",
        "ñoño@ejemplo.es": "complained",
    }
    headerless = tmp_path / "plain.csv"
    headerless.write_text("zoe@example.com\nyan@example.com\n", encoding="utf-8")
    assert import_suppressions(ops, headerless, now=NOW).added == 2


def test_the_marketing_guard_reads_the_ops_list_on_a_read_only_connection(db_path: Path) -> None:
    with open_store(db_path) as store:
        store.con.executemany(
            "INSERT INTO customers (customer_id, email, email_consent) VALUES (?, ?, TRUE)",
            [("C1", "uno@example.com"), ("C2", " Dos@Example.com"), ("C3", "tres@example.com")],
        )
        # The list as it lived in DuckDB before the operational store: copied over once.
        store.con.execute(
            "INSERT INTO suppressions VALUES (sha256('tres@example.com'), 'tres@example.com', 'manual', NULL, now())"
        )
    with OpsStore(ops_path(db_path)) as ops:
        add_suppression(ops, "dos@example.com", "unsubscribed", source="test", now=NOW)
        reader = open_store(db_path, read_only=True)
        assert attach_suppressions(reader, ops) == 2
        assert select_customers(reader, ConsentLeaf(consent=True), as_of=NOW) == ["C1"]
        # Removing the legacy entry sticks: the copy is made once, not at every attach.
        remove_suppression(ops, "tres@example.com")
        reader.close()
        reader = open_store(db_path, read_only=True)
        assert attach_suppressions(reader, ops) == 1
        assert select_customers(reader, ConsentLeaf(consent=True), as_of=NOW) == ["C1", "C3"]
        reader.close()
