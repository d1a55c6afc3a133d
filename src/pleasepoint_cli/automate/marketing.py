"""The `marketing:` block of pleasepoint.yaml: a global cap across all marketing email, and quiet hours.

```yaml
marketing:
  global_cap: 3/week          # at most 3 marketing emails per customer in any 7 days (campaigns included)
  quiet_hours:
    start: "21:00"            # no marketing email from 21:00 ...
    end: "09:00"              # ... to 09:00 (a window may cross midnight)
    timezone: customer        # the customer's zone where known (attribute `timezone`), else the shop's
```

Kept free of pleasepoint imports so `config.py` can hold it without an import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
"""A cap's rolling windows: `N/day` is any 24 hours, `N/week` any 7 days, `N/month` any 30 days."""
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(day|week|month)\s*$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Cap:
    """At most `count` emails in any rolling `window`; `window` None means once ever."""

    count: int
    window: timedelta | None
    text: str

    @property
    def once(self) -> bool:
        return self.window is None


def parse_cap(text: str, *, allow_once: bool) -> Cap:
    """`once` (if allowed) or `N/day|week|month`; ValueError otherwise."""
    if allow_once and text.strip().lower() == "once":
        return Cap(1, None, "once")
    match = _CAP.match(text)
    if not match or int(match[1]) < 1:
        expected = "`once` or " if allow_once else ""
        raise ValueError(
            f"expected {expected}N/day, N/week or N/month with N >= 1 (e.g. 1/month), got {text!r}"
        )
    return Cap(int(match[1]), WINDOWS[match[2]], f"{int(match[1])}/{match[2]}")


def parse_clock(text: str) -> time:
    match = _CLOCK.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected a time of day HH:MM (e.g. '21:00'), got {text!r}")
    return time(int(match[1]), int(match[2]))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # as config.Strict: YAML gives native types


class QuietHours(_Strict):
    """A daily window in which no marketing email goes out; one due in it is deferred to the window's end."""

    start: str
    end: str
    timezone: Literal["shop", "customer"] = "shop"
    attribute: str = "timezone"
    """The customer attribute holding an IANA zone name (used with `timezone: customer`)."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 21:00 as the sexagesimal number 1260.
            value = f"{value // 60:02d}:{value % 60:02d}"
        if not isinstance(value, str):
            raise ValueError(f"expected a time of day 'HH:MM' in quotes, got {value!r}")
        parse_clock(value)
        return value.strip()

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty (or the whole day)")
        return self

    @property
    def start_time(self) -> time:
        return parse_clock(self.start)

    @property
    def end_time(self) -> time:
        return parse_clock(self.end)


class MarketingSettings(_Strict):
    """`marketing:` in pleasepoint.yaml."""

    global_cap: str | None = None
    quiet_hours: QuietHours | None = None

    @field_validator("global_cap")
    @classmethod
    def _cap(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cap(value, allow_once=False)
        return value

    @property
    def cap(self) -> Cap | None:
        return None if self.global_cap is None else parse_cap(self.global_cap, allow_once=False)
