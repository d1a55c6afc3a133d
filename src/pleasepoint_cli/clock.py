"""One clock: what "now" and "as of" mean for every command.

Analysis commands (persona, clv, enrich, `campaign audience/validate/preview`) default to the day of the
latest purchase, so an old export is analysed as of its own end; sending commands (`campaign send`,
`automate tick`) default to the real clock. `--as-of DATE` and `--now TIMESTAMP` override: ISO 8601, and a
timestamp without an offset is read in the shop's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pleasepoint_cli.errors import ConfigError


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
