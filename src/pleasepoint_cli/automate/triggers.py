"""System triggers: which customers have an event due now, each with the instant it is due, set-based in DuckDB.

Each trigger gives every customer zero or more **due times** (shop-local wall times, from `order_lines` and
`customers`); a due time becomes the ledger period (its UTC instant, read as RFC 5545 does, like a cron
slot), so a customer gets each event's email once however often the tick runs. A trigger fires only for
events due in (now - max_age, now]: loading two years of history never welcomes old customers.

- `welcome`: the customer's first purchase (the first order line with quantity > 0), plus `days` (default 0);
- `post_purchase`: every order (its first purchased line), plus `days`;
  with `hour:` these two are due at that local hour, `days` calendar days after the order's day (with
  `days: 0`, the next day if the order came after that hour), else at the order's own time plus the delay;
- `birthday`: the birthday in the local calendar at `hour` (default 09:00), `days` before (negative) or after;
  someone born on 29 February celebrates on 28 February in common years;
- `winback`: the day the customer enters the recency state `to_state` (last purchase day + the state's first
  day, from `states:` in pleasepoint.yaml as `clv score` reads them), at `hour`;
- `first_purchase_anniversary`: each anniversary (1, 2... years) of the first purchase day at `hour`, plus
  `days`; 29 February as for birthdays.

Selection is one SQL query per trigger; Python only turns the few distinct due wall times into instants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.automate.model import DEFAULT_HOUR
from pleasepoint_cli.automate.slots import local_instants, slot_key

if TYPE_CHECKING:
    from pleasepoint_cli.automate.model import Automation
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store.connection import Store

MARGIN = timedelta(days=1)
"""The local-time query window is widened by this much each side; the exact window is applied to instants."""

_PURCHASES = "SELECT customer_id, ordered_at FROM purchase_lines WHERE quantity > 0"


def _leap_fix(year: str, month: str, day: str) -> str:
    """A date SQL for (year, month, day) where 29 February becomes 28 February in common years."""
    leap = f"(({year}) % 4 = 0 AND (({year}) % 100 <> 0 OR ({year}) % 400 = 0))"
    return (
        f"make_date(CAST({year} AS BIGINT), CAST({month} AS BIGINT), "
        f"CAST(CASE WHEN {month} = 2 AND {day} = 29 AND NOT {leap} THEN 28 ELSE {day} END AS BIGINT))"
    )


def _years(low: datetime, high: datetime) -> list[int]:
    """The calendar years a window (with a `days` offset of up to a year either way) can touch."""
    return list(range(low.year - 1, high.year + 2))


@dataclass(frozen=True)
class EventQuery:
    """A query of (customer_id, due) where `due` is a naive shop-local TIMESTAMP, with its parameters."""

    sql: str
    params: list[Any]


def recency_state_start(to_state: str, settings: Settings) -> int:
    """The recency (days since the last purchase) at which a customer enters `to_state`.

    States and thresholds come from `clv.score` (the order of STATES, each state starting where the previous
    one's `*_below` threshold ends), so this never restates them.
    """
    from pleasepoint_cli.recency import STATES, state_params

    bounds = list(state_params(settings.states).values())
    index = STATES.index(to_state)
    if index == 0:
        raise ValueError(f"nobody enters {to_state!r} by not buying: it is the first state")
    return int(bounds[index - 1])


def event_query(automation: Automation, settings: Settings, low: datetime, high: datetime) -> EventQuery:
    """Customers with an event of the automation's trigger due between the local times `low` and `high`."""
    trigger = automation.trigger
    kind = trigger.type
    days = trigger.days or 0
    hour = trigger.hour
    window = "due BETWEEN ? AND ?"
    if kind in ("welcome", "post_purchase"):
        if kind == "welcome":
            events = (
                f"SELECT customer_id, min(ordered_at) AS event_at FROM ({_PURCHASES}) GROUP BY customer_id"
            )
        else:
            events = (
                "SELECT customer_id, order_id, min(ordered_at) AS event_at FROM purchase_lines "
                "WHERE quantity > 0 AND ordered_at BETWEEN ? AND ? GROUP BY customer_id, order_id"
            )
        shifted = f"event_at + INTERVAL ({days}) DAY"
        if hour is None:
            due = shifted
        else:
            on_day = (
                f"CAST(CAST(event_at AS DATE) + INTERVAL ({days}) DAY AS TIMESTAMP) + INTERVAL ({hour}) HOUR"
            )
            due = f"CASE WHEN {on_day} >= event_at THEN {on_day} ELSE {on_day} + INTERVAL 1 DAY END"
        sql = f"SELECT DISTINCT customer_id, {due} AS due FROM ({events}) WHERE {due} BETWEEN ? AND ?"
        params: list[Any] = [low, high]
        if kind == "post_purchase":
            # An order's email falls in the window only if the order is at most `days` + 1 before it.
            params = [
                low - timedelta(days=days + 1),
                high - timedelta(days=days) + timedelta(days=1),
                *params,
            ]
        return EventQuery(sql, params)
    at_hour = f"INTERVAL ({hour if hour is not None else DEFAULT_HOUR}) HOUR"
    if kind == "birthday":
        day = _leap_fix("y.year", "month(c.birth_date)", "day(c.birth_date)")
        sql = f"""
            SELECT customer_id, due FROM (
                SELECT c.customer_id,
                       CAST({day} + INTERVAL ({days}) DAY AS TIMESTAMP) + {at_hour} AS due
                FROM customers c
                CROSS JOIN (SELECT unnest(?::BIGINT[]) AS year) AS y
                WHERE c.birth_date IS NOT NULL
            ) WHERE {window}"""
        return EventQuery(sql, [_years(low, high), low, high])
    if kind == "first_purchase_anniversary":
        day = _leap_fix("y.year", "month(f.first_day)", "day(f.first_day)")
        sql = f"""
            SELECT customer_id, due FROM (
                SELECT f.customer_id,
                       CAST({day} + INTERVAL ({days}) DAY AS TIMESTAMP) + {at_hour} AS due
                FROM (SELECT customer_id, CAST(min(ordered_at) AS DATE) AS first_day
                      FROM ({_PURCHASES}) GROUP BY customer_id) AS f
                CROSS JOIN (SELECT unnest(?::BIGINT[]) AS year) AS y
                WHERE y.year > year(f.first_day)
            ) WHERE {window}"""
        return EventQuery(sql, [_years(low, high), low, high])
    if kind == "winback":
        assert trigger.to_state is not None
        start_day = recency_state_start(trigger.to_state, settings)
        sql = f"""
            SELECT customer_id, due FROM (
                SELECT customer_id,
                       CAST(CAST(max(ordered_at) AS DATE) + INTERVAL ({start_day}) DAY AS TIMESTAMP)
                           + {at_hour} AS due
                FROM ({_PURCHASES}) GROUP BY customer_id
            ) WHERE {window}"""
        return EventQuery(sql, [low, high])
    raise ValueError(f"not a system trigger: {kind}")


@dataclass(frozen=True)
class DueEvent:
    customer_id: str
    due: datetime
    """The UTC instant the event's email is due: the ledger period."""

    @property
    def period(self) -> str:
        return slot_key(self.due)


def due_events_query(store: Store, automation: Automation, settings: Settings, now: datetime) -> EventQuery:
    """A query of (customer_id, period) for the automation's events due in (now - max_age, now], within the
    trigger's start and end: the few distinct due wall times are read as instants in Python, the rest is SQL."""
    con = store.con
    zone = automation.zone
    earliest = now - automation.max_age
    low = earliest.astimezone(zone).replace(tzinfo=None) - MARGIN
    high = now.astimezone(zone).replace(tzinfo=None) + MARGIN
    query = event_query(automation, settings, low, high)
    walls = [
        row[0] for row in con.execute(f"SELECT DISTINCT due FROM ({query.sql})", query.params).fetchall()
    ]
    start, end = automation.start, automation.end
    kept_walls: list[datetime] = []
    periods: list[str] = []
    for wall in walls:
        instant = local_instants(wall, zone, both_passes=False)[0]
        if (
            earliest < instant <= now
            and (start is None or instant >= start)
            and (end is None or instant <= end)
        ):
            kept_walls.append(wall)
            periods.append(slot_key(instant))
    sql = f"""
        SELECT e.customer_id, m.period
        FROM ({query.sql}) AS e
        JOIN (SELECT unnest(?::TIMESTAMP[]) AS due, unnest(?::VARCHAR[]) AS period) AS m ON m.due = e.due"""
    return EventQuery(sql, [*query.params, kept_walls, periods])


def due_events(store: Store, automation: Automation, settings: Settings, now: datetime) -> list[DueEvent]:
    """The customers with an event due in (now - max_age, now], each with its due instant, by customer."""
    con = store.con
    query = due_events_query(store, automation, settings, now)
    rows: Sequence[tuple[str, str]] = con.execute(
        f"SELECT customer_id, period FROM ({query.sql}) ORDER BY period, customer_id", query.params
    ).fetchall()
    return [DueEvent(str(c), datetime.fromisoformat(p).astimezone(UTC)) for c, p in rows]
