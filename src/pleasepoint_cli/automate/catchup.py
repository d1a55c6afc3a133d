"""Which due slots a tick runs: the slots in (last tick, now], after downtime, by the automation's policy.

A slot is **on time** when the tick comes at most `grace` after it (default 10 minutes: cron every 5 minutes
is always on time). After downtime several slots are due at once, and the policy says what runs:

- `latest` (default, like systemd's `Persistent=true` and APScheduler's `coalesce`): only the most recent
  due slot runs; older due slots are coalesced into it;
- `all`: every due slot runs, oldest first, at most `MAX_CATCH_UP` (100; older ones are dropped and logged);
- `none`: only on-time slots run.

Whatever the policy, a slot more than `max_lateness` late (default 1 day, like Kubernetes' starting
deadline) never runs; such slots are counted and logged. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pleasepoint_cli.automate.slots import Schedule, slot_key

CatchUpMode = Literal["latest", "all", "none"]
DEFAULT_GRACE = timedelta(minutes=10)
DEFAULT_MAX_LATENESS = timedelta(days=1)
MAX_CATCH_UP = 100
"""At most this many slots run in one tick with `catch_up: all` (the most recent ones)."""
EXPIRED_LOOKBACK = timedelta(days=366)
"""Slots too late to run are counted at most this far back from the max_lateness limit."""


@dataclass(frozen=True)
class CatchUpPolicy:
    mode: CatchUpMode = "latest"
    grace: timedelta = DEFAULT_GRACE
    max_lateness: timedelta = DEFAULT_MAX_LATENESS


@dataclass(frozen=True)
class Missed:
    """Due slots that will not run, for the log: why, how many, the first and the last."""

    reason: Literal["too late", "coalesced", "late", "over the catch-up limit"]
    count: int
    first: datetime
    last: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "first": slot_key(self.first),
            "last": slot_key(self.last),
        }

    def describe(self) -> str:
        span = slot_key(self.first) if self.count == 1 else f"{slot_key(self.first)} .. {slot_key(self.last)}"
        return f"{self.count} slot{'s' if self.count != 1 else ''} not run ({self.reason}): {span}"


@dataclass(frozen=True)
class DueSlots:
    """The outcome for one automation at one tick: the slots to run (oldest first) and those that will not."""

    run: tuple[datetime, ...]
    missed: tuple[Missed, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {"run": [slot_key(s) for s in self.run], "missed": [m.as_json() for m in self.missed]}


def _missed(reason: Any, slots: list[datetime], count: int | None = None) -> list[Missed]:
    if not slots:
        return []
    return [Missed(reason, count if count is not None else len(slots), slots[0], slots[-1])]


def due_slots(schedule: Schedule, last_tick: datetime, now: datetime, policy: CatchUpPolicy) -> DueSlots:
    """The slots of `schedule` in (last_tick, now] that this tick runs, and those it leaves, with why."""
    if now <= last_tick:
        return DueSlots(())
    limit = now - policy.max_lateness
    expired: list[datetime] = []
    expired_count = 0
    if last_tick < limit:
        start = max(last_tick, limit - EXPIRED_LOOKBACK)
        for slot in schedule.iter_slots(start, limit - timedelta(microseconds=1)):
            expired_count += 1
            if not expired or len(expired) == 1:
                expired.append(slot)
            else:
                expired[1] = slot
    due = schedule.slots(max(last_tick, limit - timedelta(microseconds=1)), now)
    missed = _missed("too late", expired, expired_count)
    if policy.mode == "latest":
        run = due[-1:]
        missed += _missed("coalesced", due[:-1])
    elif policy.mode == "all":
        run = due[-MAX_CATCH_UP:]
        missed += _missed("over the catch-up limit", due[:-MAX_CATCH_UP])
    else:
        run = [slot for slot in due if now - slot <= policy.grace]
        missed += _missed("late", [slot for slot in due if now - slot > policy.grace])
    return DueSlots(tuple(run), tuple(missed))
