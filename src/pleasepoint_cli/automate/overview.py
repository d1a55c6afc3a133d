"""`automate list` and `automate history`: what each automation is, when it runs next, what it has sent."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleasepoint_cli.automate.model import Automation
    from pleasepoint_cli.automate.state import AutomationState
    from pleasepoint_cli.ops.store import OpsStore

RECENT = timedelta(days=30)


@dataclass(frozen=True)
class AutomationRow:
    name: str
    active: bool
    trigger: str
    next_run: str | None
    """Local time of the next slot (schedule), or `every tick` for a system trigger."""
    last_run: str | None
    """Local time of the last completed tick."""
    sent_30d: int
    file: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _local(moment: datetime | None, automation: Automation) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(automation.zone).strftime("%Y-%m-%d %H:%M %Z")


def sent_since(ops: OpsStore, name: str, since: datetime) -> int:
    from pleasepoint_cli.automate.state import iso

    value = ops.scalar(
        "SELECT count(*) FROM ledger WHERE kind = 'automation' AND source = ? AND status = 'sent' "
        "AND julianday(sent_at) > julianday(?)",
        [name, iso(since)],
    )
    return int(value or 0)


def automation_row(
    automation: Automation, state: AutomationState, ops: OpsStore, now: datetime
) -> AutomationRow:
    active = state.active(automation.model.active)
    next_run: str | None
    if not active:
        next_run = None
    elif automation.is_schedule:
        after = max(now, state.last_tick) if state.last_tick is not None else now
        next_run = _local(automation.schedule.next_slot(after), automation)
    else:
        start = automation.start
        next_run = f"from {_local(start, automation)}" if start is not None and start > now else "every tick"
    return AutomationRow(
        name=automation.name,
        active=active,
        trigger=automation.describe_trigger(),
        next_run=next_run,
        last_run=_local(state.last_tick, automation),
        sent_30d=sent_since(ops, automation.name, now - RECENT),
        file=str(automation.path),
    )


def ledger_by_period(ops: OpsStore, name: str, limit: int = 30) -> list[dict[str, Any]]:
    """The most recent periods of an automation, each with its rows per status."""
    rows = ops.rows(
        "SELECT period, status, count(*) AS n FROM ledger WHERE kind = 'automation' AND source = ? "
        "AND period IN (SELECT DISTINCT period FROM ledger WHERE kind = 'automation' AND source = ? "
        "ORDER BY period DESC LIMIT ?) GROUP BY period, status ORDER BY period",
        [name, name, limit],
    )
    periods: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = periods.setdefault(str(row["period"]), {"period": str(row["period"])})
        entry[str(row["status"])] = int(row["n"])
    return list(periods.values())
