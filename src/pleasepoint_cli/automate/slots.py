"""Due slots of a 5-field cron schedule in a time zone, safe across daylight-saving transitions.

A cron expression names local wall-clock times. Turning them into instants is where DST bites (croniter fires
a daily 02:30 job twice on the day clocks go back: pitfalls.md), so this module parses the expression itself
and reads each local time the way RFC 5545 does, with `zoneinfo`:

- an **ambiguous** local time (it happens twice when clocks go back) is its **first** occurrence, so a job at
  a fixed hour runs once;
- a **nonexistent** local time (skipped when clocks go forward) takes the offset from **before** the gap
  (02:30 in Madrid on the spring night is 01:30 UTC, which the clock shows as 03:30), so it still runs once;
- a job whose hour field is `*` (every hour) fires in **both** passes of a repeated hour: they are different
  instants. Local times of a skipped hour fall on instants that later times of the same job already name,
  and a slot is identified by its UTC instant, so they run once.

Cron fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week (0-7 or
sun-sat, 0 and 7 both Sunday); each a `*`, a value, a range `a-b`, a list `a,b`, with an optional step `/n`;
`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly` and `@annually` are shorthands. As in
Vixie cron, when both day fields are restricted a day matches if either matches.

Everything here is pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
SEARCH_YEARS = 30
"""How far `next_slot` looks ahead: enough for `0 0 29 2 1` (29 February on a Monday, every 28 years)."""


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the set of values of each field, and whether the day fields were `*`."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """Days of the week, 0 = Sunday (7 is folded into 0)."""
    days_star: bool
    weekdays_star: bool

    @property
    def every_hour(self) -> bool:
        """True when the hour field covers all 24 hours: such a job fires in both passes of a repeated hour."""
        return len(self.hours) == 24

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.days_star and self.weekdays_star:
            return True
        if self.days_star:
            return in_weekdays
        if self.weekdays_star:
            return in_days
        return in_days or in_weekdays


def _value(token: str, field: str, low: int, high: int, names: tuple[str, ...] | None) -> int:
    text = token.strip().lower()
    if names is not None and text in names:
        return names.index(text) + (1 if names is _MONTHS else 0)
    if not text.isdigit():
        raise CronError(
            f"{field}: {token!r} is not a number" + (f" or a name ({names[0]}...)" if names else "")
        )
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{field}: {number} is out of range {low}-{high}")
    return number


def _field(
    text: str, field: str, low: int, high: int, names: tuple[str, ...] | None
) -> tuple[set[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise CronError(f"{field}: empty item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: the step in {part!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
            star = star or not slash
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _value(first, field, low, high, names)
            end = _value(last, field, low, high, names)
            if end < start:
                raise CronError(f"{field}: the range {base!r} runs backwards")
        else:
            start = _value(base, field, low, high, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return values, star


def parse_cron(text: str) -> Cron:
    """Parse a 5-field cron expression (or an @macro); raise CronError naming the field at fault."""
    expression = _MACROS.get(text.strip().lower(), text.strip())
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(
            f"{text!r} has {len(parts)} fields; a cron expression has 5: minute hour day-of-month month "
            "day-of-week (e.g. '0 9 * * *' for every day at 09:00)"
        )
    parsed = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    (minutes, _), (hours, _), (days, days_star), (months, _), (weekdays, weekdays_star) = parsed
    weekdays = {d % 7 for d in weekdays}
    if len(weekdays) == 7:
        weekdays_star = True
    if len(days) == 31:
        days_star = True
    return Cron(
        text=text.strip(),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        days_star=days_star,
        weekdays_star=weekdays_star,
    )


def local_instants(wall: datetime, zone: ZoneInfo, *, both_passes: bool) -> list[datetime]:
    """The UTC instants a naive local wall time names in `zone`, as RFC 5545 reads it.

    An existing time: one instant. An ambiguous time: its first occurrence, and also its second with
    `both_passes`. A nonexistent time: the wall time at the offset in force before the gap (zoneinfo's
    `fold=0` reading of a time in a gap).
    """
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    first_utc = first.astimezone(UTC)
    instants = [first_utc]
    if both_passes and first.utcoffset() != second.utcoffset():
        second_utc = second.astimezone(UTC)
        # Both readings exist (round-trip to the same wall time) only for an ambiguous time.
        if second_utc.astimezone(zone).replace(tzinfo=None) == wall and second_utc != first_utc:
            instants.append(second_utc)
    return instants


@dataclass(frozen=True)
class Schedule:
    """A cron expression in a time zone, active from `start` (inclusive) to `end` (inclusive), UTC instants."""

    cron: Cron
    zone: ZoneInfo
    start: datetime | None = None
    end: datetime | None = None

    def day_slots(self, day: date) -> list[datetime]:
        """The slots of one local calendar day, as sorted, distinct UTC instants (empty if the day does not match)."""
        if not self.cron.matches_day(day):
            return []
        both = self.cron.every_hour
        instants = {
            instant
            for hour in self.cron.hours
            for minute in self.cron.minutes
            for instant in local_instants(
                datetime.combine(day, time(hour, minute)), self.zone, both_passes=both
            )
        }
        return sorted(instants)

    def _in_range(self, instant: datetime) -> bool:
        return (self.start is None or instant >= self.start) and (self.end is None or instant <= self.end)

    def iter_slots(self, after: datetime, until: datetime | None = None) -> Iterator[datetime]:
        """Slots in (after, until], in order (without `until`: forever, or to `end`)."""
        _check_aware(after, "after")
        if until is not None:
            _check_aware(until, "until")
        if self.start is not None and self.start > after:
            after = self.start - timedelta(microseconds=1)
        limit = until if self.end is None else (self.end if until is None else min(until, self.end))
        day = after.astimezone(self.zone).date() - timedelta(days=1)
        last_day = None if limit is None else limit.astimezone(self.zone).date() + timedelta(days=1)
        horizon = day + timedelta(days=366 * SEARCH_YEARS)
        while (last_day is None or day <= last_day) and day <= horizon:
            for instant in self.day_slots(day):
                if instant <= after:
                    continue
                if limit is not None and instant > limit:
                    return
                if self._in_range(instant):
                    yield instant
            day += timedelta(days=1)

    def slots(self, after: datetime, until: datetime) -> list[datetime]:
        """Every slot in (after, until], in order."""
        return list(self.iter_slots(after, until))

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after` (None when the schedule has ended or never matches)."""
        return next(self.iter_slots(after), None)

    def previous_slot(self, at: datetime, lookback: timedelta = timedelta(days=366)) -> datetime | None:
        """The last slot at or before `at`, looking back at most `lookback`."""
        found = None
        for instant in self.iter_slots(at - lookback, at):
            found = instant
        return found


def _check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got a naive {value.isoformat()}")


def bound_instant(value: date | datetime | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """A schedule's start or end as a UTC instant.

    A date means the start of that local day for `start` and the end of it for `end` (so `end: 2027-01-31`
    includes the 31st); a naive datetime is local time in `zone` (read as RFC 5545 does); an aware one is kept.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return local_instants(value, zone, both_passes=False)[0]
    if end:
        next_day = datetime.combine(value + timedelta(days=1), time())
        return local_instants(next_day, zone, both_passes=False)[0] - timedelta(microseconds=1)
    return local_instants(datetime.combine(value, time()), zone, both_passes=False)[0]


def slot_key(instant: datetime) -> str:
    """The ledger period of a slot: its UTC instant as ISO 8601 text, e.g. `2026-10-25T01:30:00Z`."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
