"""The `marketing:` settings: caps, quiet-hour windows (crossing midnight, DST), YAML's sexagesimal 21:00."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pleasepoint_cli.automate.caps import quiet_until
from pleasepoint_cli.automate.marketing import QuietHours, parse_cap
from pleasepoint_cli.config import load_settings
from pleasepoint_cli.errors import ConfigError

MADRID = ZoneInfo("Europe/Madrid")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MADRID).astimezone(UTC)


def test_parse_cap() -> None:
    assert parse_cap("3/week", allow_once=False).window == timedelta(days=7)
    assert parse_cap("once", allow_once=True).once
    for bad in ("once", "0/day", "3/fortnight", "3 per week"):
        with pytest.raises(ValueError, match="N/day"):
            parse_cap(bad, allow_once=False)


@pytest.mark.parametrize(
    ("now", "end"),
    [
        ("2026-12-01 20:59", None),
        ("2026-12-01 21:00", "2026-12-02 09:00"),
        ("2026-12-02 03:00", "2026-12-02 09:00"),
        ("2026-12-02 09:00", None),
        ("2026-10-24 23:00", "2026-10-25 09:00"),  # the window spans the autumn change: 09:00 CET
    ],
)
def test_quiet_window_crossing_midnight(now: str, end: str | None) -> None:
    quiet = QuietHours(start="21:00", end="09:00")
    assert quiet_until(quiet, at(now), MADRID) == (None if end is None else at(end))


def test_daytime_window_and_sexagesimal_yaml(tmp_path: Path) -> None:
    lunch = QuietHours(start="14:00", end="16:00")
    assert quiet_until(lunch, at("2026-12-01 15:00"), MADRID) == at("2026-12-01 16:00")
    assert quiet_until(lunch, at("2026-12-01 16:00"), MADRID) is None
    config = tmp_path / "pleasepoint.yaml"
    config.write_text("marketing:\n  global_cap: 2/day\n  quiet_hours: {start: 21:00, end: 09:00}\n")
    settings = load_settings(config)
    assert settings.marketing.quiet_hours is not None
    assert (settings.marketing.quiet_hours.start, settings.marketing.quiet_hours.end) == ("21:00", "09:00")
    config.write_text("marketing:\n  global_cap: 2 per day\n")
    with pytest.raises(ConfigError, match=r"pleasepoint.yaml:2: marketing.global_cap"):
        load_settings(config)
