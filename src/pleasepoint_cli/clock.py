"""One clock: what "now" and "as of" mean for every command.

Analysis commands (persona, clv, enrich, `campaign audience/validate/preview`) default to the day of the
latest purchase, so an old export is analysed as of its own end; sending commands (`campaign send`,
`automate tick`) default to the real clock. `--as-of DATE` and `--now TIMESTAMP` override: ISO 8601, and a
timestamp without an offset is read in the shop's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store


def shop_zone(name: str) -> ZoneInfo:
    """The shop's time zone by IANA name, or a clear error naming the setting."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(
            f"shop.timezone {name!r} is not a known time zone; use an IANA name such as Europe/Madrid."
        ) from e


def parse_now(value: str | None, shop_tz: str) -> datetime:
    """`--now` as an aware UTC instant: ISO 8601, without an offset read in the shop's zone; None = clock."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise ConfigError(
            f"--now {value!r} is not an ISO 8601 timestamp; write e.g. 2026-12-01T09:00 or "
            "2026-12-01T09:00+01:00."
        ) from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=shop_zone(shop_tz))
    return parsed.astimezone(UTC)


def parse_day(value: str | None, option: str = "--as-of") -> date | None:
    """A YYYY-MM-DD option value, or None."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as e:
        raise ConfigError(f"{option} {value!r} is not a date; use YYYY-MM-DD.") from e


def local_day(now: datetime, shop_tz: str) -> date:
    """The shop's calendar day at an instant."""
    return now.astimezone(shop_zone(shop_tz)).date()


def start_of_day(day: date, shop_tz: str) -> datetime:
    """Midnight of a shop day as an aware UTC instant."""
    return datetime.combine(day, time(0), tzinfo=shop_zone(shop_tz)).astimezone(UTC)


STALE_DAYS = 30
"""A warning says so when the data's latest purchase is more than this many days before the as-of in use."""

ANALYSIS = "analysis"
SENDING = "sending"


@dataclass(frozen=True)
class Clock:
    """The as-of day and the instant a command works at, where they came from, and the data's latest purchase."""

    as_of: date
    now: datetime
    source: str
    """'--as-of', '--now', 'latest purchase' or 'clock'."""
    latest_purchase: date | None
    kind: str = ANALYSIS
    """ANALYSIS or SENDING: which option the stale-data warning suggests."""

    @property
    def stale_days(self) -> int:
        """Days from the data's latest purchase to the as-of (0 when there is no purchase or it is later)."""
        if self.latest_purchase is None:
            return 0
        return max(0, (self.as_of - self.latest_purchase).days)

    def describe(self) -> str:
        """One line for stderr: the as-of used and why."""
        why = {
            "--as-of": "from --as-of",
            "--now": "from --now",
            "latest purchase": "the day of the latest purchase",
            "clock": "today, by the clock",
        }[self.source]
        return f"as of {self.as_of} ({why})"

    def warning(self) -> str | None:
        """The stale-data warning, or None when the data reach within STALE_DAYS of the as-of."""
        if self.stale_days <= STALE_DAYS:
            return None
        if self.kind == SENDING:  # `campaign send` and `automate tick` take --now, not --as-of
            return (
                f"the data's latest purchase is {self.latest_purchase}, {self.stale_days:,} days before this "
                f"send's day {self.as_of}: recency states and rules count from {self.as_of}. Load the latest "
                "orders (`pleasepoint ingest orders`), or pass --now to send at another instant."
            )
        return (
            f"the data's latest purchase is {self.latest_purchase}, {self.stale_days:,} days before the as-of "
            f"{self.as_of} in use: recency states, rules and figures count from {self.as_of}. To analyse the "
            f"data as of its end, pass --as-of {self.latest_purchase}."
        )


def resolve_clock(
    kind: str,
    *,
    shop_tz: str,
    latest_purchase: date | None,
    as_of: str | None = None,
    now: str | None = None,
    option: str = "--as-of",
) -> Clock:
    """The one rule for "as of" and "now". `--as-of DATE` and `--now TIMESTAMP` override; otherwise analysis
    commands work as of the day of the latest purchase (the clock when there is none) and sending commands at
    the real clock. `now` of an as-of day is the end of that shop day."""
    if kind not in (ANALYSIS, SENDING):
        raise ValueError(f"unknown kind of command {kind!r}")
    day = parse_day(as_of, option)
    if day is not None:
        instant = start_of_day(day + timedelta(days=1), shop_tz) - timedelta(microseconds=1)
        return Clock(day, instant, "--as-of", latest_purchase, kind)
    if now is not None:
        instant = parse_now(now, shop_tz)
        return Clock(local_day(instant, shop_tz), instant, "--now", latest_purchase, kind)
    if kind == ANALYSIS and latest_purchase is not None:
        instant = start_of_day(latest_purchase + timedelta(days=1), shop_tz) - timedelta(microseconds=1)
        return Clock(latest_purchase, instant, "latest purchase", latest_purchase, kind)
    instant = parse_now(None, shop_tz)
    return Clock(local_day(instant, shop_tz), instant, "clock", latest_purchase, kind)


def latest_purchase_day(store: Store) -> date | None:
    """The day of the latest purchase line (the view purchase_lines), or None when empty."""
    day: date | None = store.scalar("SELECT CAST(max(ordered_at) AS DATE) FROM purchase_lines")
    return day
