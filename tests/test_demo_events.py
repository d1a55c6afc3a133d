"""The demo's provider event files: the same seed gives the same files, and each parses in its format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pleasepoint_cli.demo.events import write_demo_events
from pleasepoint_cli.events.providers import parse_events
from pleasepoint_cli.ops import OpsStore, ledger

NOW = datetime(2026, 6, 30, 8, 0, tzinfo=UTC)


def _sent_ledger(path: Path, n: int) -> OpsStore:
    ops = OpsStore(path)
    rows = [ledger.PlannedRow(f"C{i:04d}", f"c{i}@example.com", "a") for i in range(n)]
    ledger.plan_rows(ops, "campaign", "demo", "", rows, now=NOW)
    for row in ledger.queued(ops, "campaign", "demo", ""):
        claimed = ledger.claim(ops, row["send_id"], row["email"], now=NOW, worker="t")
        assert claimed.claimed
        ledger.settle(ops, row["send_id"], "sent", now=NOW, message_id=f"<{row['send_id']}@tienda.example>")
    return ops


def test_same_seed_same_files_and_every_file_parses(tmp_path: Path) -> None:
    with _sent_ledger(tmp_path / "shop.ops.sqlite", 300) as ops:
        first = write_demo_events(ops, tmp_path / "a", seed=7, shop_url="https://tienda.example")
        again = write_demo_events(ops, tmp_path / "b", seed=7, shop_url="https://tienda.example")
        other = write_demo_events(ops, tmp_path / "c", seed=8, shop_url="https://tienda.example")
        send_ids = {r["send_id"] for r in ops.rows("SELECT send_id FROM ledger")}
    assert [p.read_bytes() for p in first.values()] == [p.read_bytes() for p in again.values()]
    assert [p.read_bytes() for p in first.values()] != [p.read_bytes() for p in other.values()]
    kinds: set[str] = set()
    for provider, path in first.items():
        parsed = parse_events(path.read_text(encoding="utf-8"), provider)
        assert parsed.problems == () and parsed.events
        assert {e.send_id for e in parsed.events} <= send_ids
        kinds |= {e.kind for e in parsed.events}
    assert {"delivered", "open", "click", "bounce"} <= kinds
