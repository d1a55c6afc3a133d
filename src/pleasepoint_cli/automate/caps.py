"""Frequency caps and quiet hours, decided over the send ledger for a whole batch of customers at once.

- **Per automation and customer** (`frequency.per_customer`): `once` counts every send of the automation
  ever; `N/day`, `N/week`, `N/month` count its sends in the rolling 24 hours, 7 days or 30 days before the
  moment of the send, less an allowance of `CAP_SLACK` (2 hours): a daily job at a fixed local time with
  `1/day` must not be capped by the previous day's send, yet the day after clocks go forward has 23 hours
  and cron may tick a few minutes late (so `1/day` means "not within the last 22 hours").
- **Global** (`marketing.global_cap` in pleasepoint.yaml): the same rolling count over every marketing email
  (campaigns and automations; test sends excluded).

The counting itself is the ledger's (`ops.ledger.recent_sends`): a send counts when the row is `queued`,
`sending`, `sent`, `uncertain` or `bounced` (the server took it, or may have); its time is `sent_at`, else
when it was claimed, planned for (`not_before`) or created.
A capped customer is recorded `capped`; with `on_cap: defer` a rolling cap defers the message to the moment
the oldest counted send leaves the window (`deferred`, `not_before`), and the tick sends it then if the caps
allow (`once` never frees up: it is always `capped`).

**Quiet hours** (`marketing.quiet_hours`): a message whose send moment falls in the daily window (shop time
zone, or the customer's where the `timezone` attribute holds a valid zone) is `deferred` to the window's end,
never dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pleasepoint_cli.automate.marketing import Cap, QuietHours
from pleasepoint_cli.automate.slots import local_instants
from pleasepoint_cli.ops import ledger

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore

CAP_SLACK = timedelta(hours=2)
"""Rolling windows are this much shorter than their name (see the module doc)."""


@dataclass
class CapDecision:
    """Who may be sent to now, who is capped, and who is deferred until when."""

    allowed: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)
    deferred: dict[str, datetime] = field(default_factory=dict)


def over_cap(
    con: sqlite3.Connection | OpsStore,
    customers: Iterable[str],
    cap: Cap,
    at: datetime,
    *,
    source: str | None,
    exclude_period: str | None = None,
    exclude: tuple[str, str, str] | None = None,
) -> dict[str, datetime | None]:
    """Customers at or over `cap` for a send at `at` -> when the cap frees up for them (None: never).

    `source` counts one automation's sends (the per-automation cap); None counts all marketing email (the
    global cap), less the rows of `exclude` (a campaign's own key)."""
    window = None if cap.window is None else cap.window - CAP_SLACK
    over = ledger.recent_sends(
        con, customers, at_least=cap.count, until=at, window=window, source=source,
        exclude_period=exclude_period, exclude=exclude,
    )  # fmt: skip
    return {
        customer: None if window is None or oldest is None else oldest + window + timedelta(seconds=1)
        for customer, oldest in over.items()
    }


def apply_caps(
    con: sqlite3.Connection | OpsStore,
    customers: Sequence[str],
    *,
    at: datetime,
    source: str,
    cap: Cap | None,
    global_cap: Cap | None,
    on_cap: str = "skip",
    period: str | None = None,
    exclude: tuple[str, str, str] | None = None,
) -> CapDecision:
    """Split `customers` (about to be sent at `at` by automation `source`, or by a campaign with `cap` None)
    by the per-automation and the global cap. Rows of `period` itself are not counted (a resumed slot does
    not cap itself), nor for the global cap the rows of the key `exclude` (a campaign's own)."""
    decision = CapDecision()
    if cap is None and global_cap is None:
        decision.allowed = list(customers)
        return decision
    blocked: dict[str, datetime | None] = {}
    for this_cap, this_source in ((cap, source), (global_cap, None)):
        if this_cap is None:
            continue
        over = over_cap(
            con, customers, this_cap, at, source=this_source, exclude_period=period, exclude=exclude
        )
        for customer, frees in over.items():
            if customer in blocked:
                previous = blocked[customer]
                blocked[customer] = None if previous is None or frees is None else max(previous, frees)
            else:
                blocked[customer] = frees
    for customer in customers:
        if customer not in blocked:
            decision.allowed.append(customer)
            continue
        frees = blocked[customer]
        if on_cap == "defer" and frees is not None:
            decision.deferred[customer] = frees.replace(microsecond=0)
        else:
            decision.capped.append(customer)
    return decision


def _zone_or_none(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def quiet_until(quiet: QuietHours, at: datetime, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet window `at` falls in (in `zone`), as a UTC instant; None when `at` is not quiet."""
    local = at.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    start, end = quiet.start_time, quiet.end_time
    inside = (start <= now < end) if start < end else (now >= start or now < end)
    if not inside:
        return None
    end_day = local.date() if now < end else local.date() + timedelta(days=1)
    wall = datetime.combine(end_day, time(end.hour, end.minute))
    return local_instants(wall, zone, both_passes=False)[0]


def quiet_deferrals(
    quiet: QuietHours | None,
    at: datetime,
    customers: Sequence[str],
    *,
    shop_zone: ZoneInfo,
    customer_zones: dict[str, str] | None = None,
) -> dict[str, datetime]:
    """Customers whose send at `at` falls in quiet hours, each with the end of their window (UTC).

    With `timezone: customer`, `customer_zones` maps customers to zone names (where known); the others, and
    unknown zone names, use the shop's zone. Decided per distinct zone, not per customer.
    """
    if quiet is None:
        return {}
    zones = customer_zones if quiet.timezone == "customer" and customer_zones else {}
    ends: dict[str | None, datetime | None] = {}

    def end_for(name: str | None) -> datetime | None:
        if name not in ends:
            ends[name] = quiet_until(quiet, at, _zone_or_none(name) or shop_zone)
        return ends[name]

    out: dict[str, datetime] = {}
    for customer in customers:
        end = end_for(zones.get(customer))
        if end is not None:
            out[customer] = end
    return out
