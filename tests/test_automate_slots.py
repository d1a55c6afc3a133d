"""Due slots of cron schedules in a time zone: parsing, and RFC 5545 readings across DST transitions."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pleasepoint_cli.automate.slots import (
    CronError,
    Schedule,
    bound_instant,
    local_instants,
    parse_cron,
    slot_key,
)

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(cron: str, zone: ZoneInfo, **kwargs: datetime) -> Schedule:
    return Schedule(parse_cron(cron), zone, **kwargs)


def local_day(sched: Schedule, day: str) -> list[str]:
    """The slots of one local day, as UTC ISO strings."""
    start = datetime.fromisoformat(day).replace(tzinfo=sched.zone)
    first = local_instants(start.replace(tzinfo=None), sched.zone, both_passes=False)[0]
    following = datetime.fromisoformat(day) + timedelta(days=1)
    last = local_instants(following, sched.zone, both_passes=False)[0]
    return [
        slot_key(s) for s in sched.slots(first - timedelta(microseconds=1), last - timedelta(microseconds=1))
    ]


# --- parsing -------------------------------------------------------------------------------------------------


def test_parse_fields_lists_ranges_steps_names() -> None:
    cron = parse_cron("*/15 9-17/4 1,15 jan-mar mon-fri")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (9, 13, 17)
    assert cron.days == {1, 15}
    assert cron.months == {1, 2, 3}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert not cron.days_star and not cron.weekdays_star


def test_parse_sunday_is_0_and_7_and_macros() -> None:
    assert parse_cron("0 0 * * 7").weekdays == {0}
    assert parse_cron("0 0 * * 0,7").weekdays == {0}
    daily = parse_cron("@daily")
    assert (daily.minutes, daily.hours, daily.days_star, daily.weekdays_star) == ((0,), (0,), True, True)
    assert parse_cron("@hourly").every_hour
    assert parse_cron("5/20 * * * *").minutes == (5, 25, 45)


def test_every_hour_only_when_hour_field_covers_the_day() -> None:
    assert parse_cron("30 * * * *").every_hour
    assert parse_cron("30 */1 * * *").every_hour
    assert parse_cron("30 0-23 * * *").every_hour
    assert not parse_cron("30 */2 * * *").every_hour
    assert not parse_cron("30 2 * * *").every_hour


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 9 * *", "has 4 fields"),
        ("0 9 * * * *", "has 6 fields"),
        ("60 9 * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 9 0 * *", "day of month: 0 is out of range 1-31"),
        ("0 9 * 13 *", "month: 13 is out of range 1-12"),
        ("0 9 * * 8", "day of week: 8 is out of range 0-7"),
        ("0 9 * * lun", "day of week: 'lun' is not a number or a name"),
        ("*/0 9 * * *", "step in '*/0' must be a positive number"),
        ("0 17-9 * * *", "range '17-9' runs backwards"),
        ("0 9,,10 * * *", "hour: empty item"),
        ("x 9 * * *", "minute: 'x' is not a number"),
        ("", "has 0 fields"),
    ],
)
def test_parse_errors_name_the_field(text: str, fragment: str) -> None:
    with pytest.raises(CronError, match=None) as info:
        parse_cron(text)
    assert fragment in str(info.value)


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    cron = parse_cron("0 9 13 * fri")  # the 13th, or any Friday (Vixie cron)
    assert cron.matches_day(date(2026, 1, 13))  # a Tuesday, the 13th
    assert cron.matches_day(date(2026, 1, 16))  # a Friday
    assert not cron.matches_day(date(2026, 1, 14))
    only_dow = parse_cron("0 9 * * fri")
    assert not only_dow.matches_day(date(2026, 1, 13))
    only_dom = parse_cron("0 9 13 * *")
    assert not only_dom.matches_day(date(2026, 1, 16))


# --- ordinary days -------------------------------------------------------------------------------------------


def test_daily_slots_in_winter_and_summer() -> None:
    sched = schedule("0 9 * * *", MADRID)
    assert local_day(sched, "2026-01-15") == ["2026-01-15T08:00:00Z"]
    assert local_day(sched, "2026-07-15") == ["2026-07-15T07:00:00Z"]


def test_slots_window_is_half_open() -> None:
    sched = schedule("*/15 * * * *", ZoneInfo("UTC"))
    got = sched.slots(utc("2026-05-01T09:00:00"), utc("2026-05-01T10:00:00"))
    assert [slot_key(s)[11:16] for s in got] == ["09:15", "09:30", "09:45", "10:00"]


def test_start_and_end_bounds_inclusive() -> None:
    start = bound_instant(date(2026, 12, 1), MADRID, end=False)
    end = bound_instant(date(2026, 12, 3), MADRID, end=True)
    sched = schedule("0 9 * * *", MADRID, start=start, end=end)  # type: ignore[arg-type]
    got = sched.slots(utc("2026-11-01T00:00:00"), utc("2027-01-01T00:00:00"))
    assert [slot_key(s) for s in got] == [
        "2026-12-01T08:00:00Z",
        "2026-12-02T08:00:00Z",
        "2026-12-03T08:00:00Z",
    ]
    assert sched.next_slot(utc("2026-12-03T08:00:00")) is None
    assert sched.next_slot(utc("2026-01-01T00:00:00")) == utc("2026-12-01T08:00:00")


def test_start_at_exact_slot_is_included() -> None:
    start = bound_instant(datetime(2026, 12, 1, 9, 0), MADRID, end=False)
    sched = schedule("0 9 * * *", MADRID, start=start)  # type: ignore[arg-type]
    assert sched.slots(utc("2026-11-30T00:00:00"), utc("2026-12-01T08:00:00")) == [utc("2026-12-01T08:00:00")]


def test_next_slot_finds_rare_days() -> None:
    sched = schedule("0 0 29 2 *", ZoneInfo("UTC"))
    assert sched.next_slot(utc("2026-03-01T00:00:00")) == utc("2028-02-29T00:00:00")
    assert schedule("0 0 31 4 *", ZoneInfo("UTC")).next_slot(utc("2026-03-01T00:00:00")) is None


def test_previous_slot() -> None:
    sched = schedule("0 9 * * *", MADRID)
    assert sched.previous_slot(utc("2026-01-15T07:59:00")) == utc("2026-01-14T08:00:00")
    assert sched.previous_slot(utc("2026-01-15T08:00:00")) == utc("2026-01-15T08:00:00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        schedule("0 9 * * *", MADRID).slots(datetime(2026, 1, 1), utc("2026-01-02T00:00:00"))


# --- DST: Europe/Madrid (last Sunday of March 02:00 -> 03:00, last Sunday of October 03:00 -> 02:00) -----------


def test_madrid_daily_0230_once_on_both_transition_days() -> None:
    sched = schedule("30 2 * * *", MADRID)
    # Spring: 02:30 does not exist; read with the offset before the gap (+01:00): 01:30 UTC (03:30 CEST).
    assert local_day(sched, "2026-03-29") == ["2026-03-29T01:30:00Z"]
    # Autumn: 02:30 happens twice (+02:00 then +01:00); the first occurrence only.
    assert local_day(sched, "2026-10-25") == ["2026-10-25T00:30:00Z"]
    week = sched.slots(utc("2026-10-21T00:00:00"), utc("2026-10-29T00:00:00"))
    assert len(week) == 8 and len({s.astimezone(MADRID).date() for s in week}) == 8


def test_madrid_hourly_fires_in_both_passes_of_the_repeated_hour() -> None:
    sched = schedule("0 * * * *", MADRID)
    autumn = local_day(sched, "2026-10-25")
    assert len(autumn) == 25
    assert "2026-10-25T00:00:00Z" in autumn  # 02:00 CEST
    assert "2026-10-25T01:00:00Z" in autumn  # 02:00 CET
    spring = local_day(sched, "2026-03-29")
    assert len(spring) == 23  # 02:00 does not exist: it is the instant of 03:00 CEST
    assert len(set(spring)) == len(spring)


def test_madrid_every_15_minutes_repeated_hour_has_8_slots() -> None:
    sched = schedule("*/15 * * * *", MADRID)
    got = sched.slots(utc("2026-10-24T23:59:00"), utc("2026-10-25T02:00:00"))
    assert [s.astimezone(MADRID).strftime("%H:%M%z") for s in got][:9] == [
        "02:00+0200", "02:15+0200", "02:30+0200", "02:45+0200",
        "02:00+0100", "02:15+0100", "02:30+0100", "02:45+0100",
        "03:00+0100",
    ]  # fmt: skip


def test_fixed_hours_list_is_not_every_hour() -> None:
    sched = schedule("30 1,2,3 * * *", MADRID)
    assert local_day(sched, "2026-10-25") == [
        "2026-10-24T23:30:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-25T02:30:00Z",
    ]
    # Spring: 02:30 (gap) reads as 01:30 UTC, which is 03:30 CEST: the same instant as the 03:30 slot, once.
    assert local_day(sched, "2026-03-29") == ["2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"]


# --- DST: America/New_York (2nd Sunday of March 02:00 -> 03:00, 1st Sunday of November 02:00 -> 01:00) ----------


def test_new_york_daily_0230_once_on_both_transition_days() -> None:
    sched = schedule("30 2 * * *", NEW_YORK)
    assert local_day(sched, "2026-03-08") == ["2026-03-08T07:30:00Z"]  # 02:30 EST = 03:30 EDT
    assert local_day(sched, "2026-11-01") == ["2026-11-01T07:30:00Z"]  # not ambiguous there (01:xx is)
    sched_0130 = schedule("30 1 * * *", NEW_YORK)
    assert local_day(sched_0130, "2026-11-01") == ["2026-11-01T05:30:00Z"]  # 01:30 EDT, first pass


def test_new_york_hourly_fires_in_both_passes() -> None:
    sched = schedule("30 * * * *", NEW_YORK)
    autumn = local_day(sched, "2026-11-01")
    assert len(autumn) == 25
    assert {"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"} <= set(autumn)
    assert len(local_day(sched, "2026-03-08")) == 23


# --- DST: Australia/Lord_Howe (a 30-minute shift: +10:30 <-> +11:00 at 02:00) -----------------------------------


def test_lord_howe_daily_0145_once_on_each_transition_day() -> None:
    sched = schedule("45 1 * * *", LORD_HOWE)
    # April: 02:00 (+11) goes back to 01:30 (+10:30), so 01:45 happens twice; the first is 14:45 UTC.
    assert local_day(sched, "2026-04-05") == ["2026-04-04T14:45:00Z"]
    # October: 02:00 (+10:30) jumps to 02:30 (+11); 01:45 exists once.
    assert local_day(sched, "2026-10-04") == ["2026-10-03T15:15:00Z"]
    month = sched.slots(utc("2026-03-20T00:00:00"), utc("2026-04-20T00:00:00"))
    assert len({s.astimezone(LORD_HOWE).date() for s in month}) == len(month) == 31


def test_lord_howe_half_hour_gap_and_hourly_passes() -> None:
    gap = schedule("15 2 * * *", LORD_HOWE)  # 02:15 does not exist on 4 October: +10:30 -> 15:45 UTC
    assert local_day(gap, "2026-10-04") == ["2026-10-03T15:45:00Z"]
    every_quarter = schedule("*/15 * * * *", LORD_HOWE)
    autumn = local_day(every_quarter, "2026-04-05")
    assert len(autumn) == 96 + 2  # 01:30 and 01:45 happen twice
    spring = local_day(every_quarter, "2026-10-04")
    assert len(spring) == 96 - 2  # 02:00 and 02:15 land on the instants of 02:30 and 02:45


# --- a property over every time zone's transitions this year: fixed-hour jobs once a day ------------------------


@pytest.mark.parametrize(
    "zone_name",
    ["Europe/Madrid", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Tehran",
     "Europe/London", "America/Havana", "Pacific/Chatham"],
)  # fmt: skip
@pytest.mark.parametrize("cron", ["0 0 * * *", "30 1 * * *", "30 2 * * *", "45 1 * * *", "59 23 * * *"])
def test_fixed_time_jobs_run_once_every_local_day_of_a_year(zone_name: str, cron: str) -> None:
    zone = ZoneInfo(zone_name)
    sched = schedule(cron, zone)
    got = sched.slots(utc("2026-01-01T12:00:00"), utc("2027-01-01T12:00:00"))
    days = [s.astimezone(zone).date() for s in got]
    # Once a day: a nonexistent time can land on the next day only when the gap is at midnight.
    assert len(got) == len(set(got)) == 365
    assert got == sorted(got)
    gaps = [(b - a) for a, b in itertools.pairwise(got)]
    assert all(timedelta(hours=22) <= g <= timedelta(hours=26) for g in gaps), (zone_name, cron)
    assert len(set(days)) >= 364
