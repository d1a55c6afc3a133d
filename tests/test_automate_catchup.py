"""Catch-up after downtime: the issue's example, exactly, and the limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pleasepoint_cli.automate.catchup import MAX_CATCH_UP, CatchUpPolicy, due_slots
from pleasepoint_cli.automate.slots import Schedule, parse_cron

MADRID = ZoneInfo("Europe/Madrid")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MADRID).astimezone(UTC)


def hhmm(slots: tuple[datetime, ...]) -> list[str]:
    return [s.astimezone(MADRID).strftime("%H:%M") for s in slots]


EVERY_15 = Schedule(parse_cron("*/15 * * * *"), MADRID)


@pytest.mark.parametrize(("mode", "expected"), [("latest", ["12:00"]), ("all", None), ("none", [])])
def test_downtime_tick_at_1213(mode: str, expected: list[str] | None) -> None:
    due = due_slots(EVERY_15, local("2026-05-04T09:00"), local("2026-05-04T12:13"), CatchUpPolicy(mode))  # type: ignore[arg-type]
    if expected is None:
        assert len(due.run) == 12
        assert hhmm(due.run)[0] == "09:15" and hhmm(due.run)[-1] == "12:00"
        assert due.missed == ()
    else:
        assert hhmm(due.run) == expected
        missed = {m.reason: m.count for m in due.missed}
        assert missed == ({"coalesced": 11} if mode == "latest" else {"late": 12})


def test_downtime_tick_at_1205_none_runs_the_on_time_slot() -> None:
    due = due_slots(EVERY_15, local("2026-05-04T09:00"), local("2026-05-04T12:05"), CatchUpPolicy("none"))
    assert hhmm(due.run) == ["12:00"]
    assert {m.reason: m.count for m in due.missed} == {"late": 11}


def test_grace_is_inclusive_and_configurable() -> None:
    last, now = local("2026-05-04T11:50"), local("2026-05-04T12:10")
    assert hhmm(due_slots(EVERY_15, last, now, CatchUpPolicy("none")).run) == ["12:00"]
    tight = CatchUpPolicy("none", grace=timedelta(minutes=9))
    assert due_slots(EVERY_15, last, now, tight).run == ()


@pytest.mark.parametrize("mode", ["latest", "all", "none"])
def test_slot_past_max_lateness_runs_0_and_is_logged(mode: str) -> None:
    daily = Schedule(parse_cron("0 9 * * *"), MADRID)
    policy = CatchUpPolicy(mode, max_lateness=timedelta(hours=2))  # type: ignore[arg-type]
    due = due_slots(daily, local("2026-05-04T08:00"), local("2026-05-04T12:13"), policy)
    assert due.run == ()
    (missed,) = due.missed
    assert (missed.reason, missed.count, missed.first) == ("too late", 1, local("2026-05-04T09:00"))
    assert missed.describe() == "1 slot not run (too late): 2026-05-04T07:00:00Z"


def test_max_lateness_splits_all_into_run_and_too_late() -> None:
    policy = CatchUpPolicy("all", max_lateness=timedelta(hours=1))
    due = due_slots(EVERY_15, local("2026-05-04T09:00"), local("2026-05-04T12:13"), policy)
    assert hhmm(due.run) == ["11:15", "11:30", "11:45", "12:00"]
    (missed,) = due.missed
    assert (missed.reason, missed.count) == ("too late", 8)
    assert hhmm((missed.first, missed.last)) == ["09:15", "11:00"]


def test_all_is_capped_at_100_most_recent() -> None:
    policy = CatchUpPolicy("all", max_lateness=timedelta(days=3))
    due = due_slots(EVERY_15, local("2026-05-03T00:00"), local("2026-05-04T12:00"), policy)
    assert len(due.run) == MAX_CATCH_UP
    assert hhmm(due.run)[-1] == "12:00"
    (missed,) = due.missed
    assert (missed.reason, missed.count) == ("over the catch-up limit", 36 * 4 - MAX_CATCH_UP)


def test_nothing_due_and_clock_going_back() -> None:
    assert (
        due_slots(EVERY_15, local("2026-05-04T09:01"), local("2026-05-04T09:14"), CatchUpPolicy()).run == ()
    )
    assert (
        due_slots(EVERY_15, local("2026-05-04T09:30"), local("2026-05-04T09:00"), CatchUpPolicy()).run == ()
    )


def test_long_downtime_counts_expired_slots_without_running_them() -> None:
    policy = CatchUpPolicy("latest")
    due = due_slots(EVERY_15, local("2026-04-01T00:00"), local("2026-05-04T12:13"), policy)
    assert hhmm(due.run) == ["12:00"]
    reasons = {m.reason: m.count for m in due.missed}
    assert reasons["too late"] + reasons["coalesced"] + 1 == len(
        EVERY_15.slots(local("2026-04-01T00:00"), local("2026-05-04T12:13"))
    )
