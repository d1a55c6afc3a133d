"""Per-automation state in the operational store: the last completed tick, the Active/Inactive toggle, the log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore


def iso(moment: datetime) -> str:
    """The operational store's time format (shared with the ledger)."""
    from pleasepoint_cli.ops.suppression import iso as ops_iso

    return ops_iso(moment)


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class AutomationState:
    name: str
    last_tick: datetime | None
    active_override: bool | None

    def active(self, default: bool) -> bool:
        return default if self.active_override is None else self.active_override


def get_state(ops: OpsStore, name: str) -> AutomationState:
    row = ops.execute(
        "SELECT last_tick, active_override FROM automation_state WHERE name = ?", [name]
    ).fetchone()
    if row is None:
        return AutomationState(name, None, None)
    return AutomationState(name, parse_iso(row[0]), None if row[1] is None else bool(row[1]))


def all_states(ops: OpsStore) -> dict[str, AutomationState]:
    return {
        str(r[0]): AutomationState(str(r[0]), parse_iso(r[1]), None if r[2] is None else bool(r[2]))
        for r in ops.execute("SELECT name, last_tick, active_override FROM automation_state").fetchall()
    }


def set_last_tick(ops: OpsStore, name: str, at: datetime) -> None:
    ops.execute(
        "INSERT INTO automation_state (name, last_tick) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick",
        [name, iso(at)],
    )


def set_active(ops: OpsStore, name: str, active: bool, *, now: datetime) -> None:
    """The guide's Active/Inactive toggle. Activating starts the schedule afresh at `now`: slots that passed
    while the automation was off were not missed, so they are not caught up."""
    with ops.transaction() as con:
        con.execute(
            "INSERT INTO automation_state (name, last_tick, active_override) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET active_override = excluded.active_override, "
            "last_tick = CASE WHEN excluded.active_override = 1 THEN excluded.last_tick ELSE last_tick END",
            [name, iso(now), int(active)],
        )
        log(ops, name, now, "toggled", {"active": active})


def log(ops: OpsStore, name: str, tick_at: datetime, event: str, detail: dict[str, Any]) -> None:
    ops.execute(
        "INSERT INTO automation_log (name, tick_at, event, detail) VALUES (?, ?, ?, ?)",
        [name, iso(tick_at), event, json.dumps(detail, ensure_ascii=False)],
    )


def history(ops: OpsStore, name: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = ops.rows(
        "SELECT tick_at, event, detail FROM automation_log WHERE name = ? ORDER BY log_id DESC LIMIT ?",
        [name, limit],
    )
    return [{**r, "detail": json.loads(r["detail"])} for r in reversed(rows)]
