"""The statistics page: counters, a series over time and the daily table, from the ledger and the events.

The ledger and events are read from the operational store and handed to an in-memory DuckDB through Arrow
(no DuckDB file is opened, so `stats` never waits for an analyst). Buckets are calendar hours, days or weeks
(Monday first) in the shop's time zone.

Definitions (docs/events.md): a period selects sends by their send time and events by the time they
happened. `sent` counts ledger rows sent; `delivered`, unique opens and unique clicks count distinct sends with
such an event; machine opens (privacy proxies) are kept apart and never count as opens unless named so;
rates divide by delivered (by sent minus bounced sends when no delivery event exists), click-to-open divides
unique clicks by unique opens; a rate over zero is null, never NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import NotFoundError

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore
    from pleasepoint_cli.store.connection import Store

GRANULARITIES = ("hour", "day", "week")
METRICS = ("sends", "opens", "clicks")
HOURLY_BELOW_DAYS = 7
"""Hourly buckets by default when the period is shorter than this many days; daily otherwise."""
MAX_BUCKETS = 20_000


@dataclass(frozen=True)
class Counters:
    sent: int
    delivered: int
    opens_total: int
    """Open events by people (machine opens excluded)."""
    opens_unique: int
    """Sends opened at least once by a person."""
    opens_unique_with_machine: int
    """Sends with any open, machine opens included."""
    machine_opens: int
    """Open events by privacy proxies (e.g. Apple Mail Privacy Protection, SendGrid sg_machine_open)."""
    clicks_total: int
    clicks_unique: int
    bounces_hard: int
    bounces_soft: int
    complaints: int
    unsubscribes: int
    deferred: int
    rate_base: int
    rate_base_kind: str
    """`delivered`, or `sent minus bounced` when the provider reported no delivery."""
    open_rate: float | None
    click_rate: float | None
    click_to_open_rate: float | None


@dataclass(frozen=True)
class Bucket:
    """One hour, day or week (shop time): its start as local time and its figures."""

    start: datetime
    sent: int = 0
    delivered: int = 0
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        return data


@dataclass(frozen=True)
class StatsReport:
    selection: dict[str, str | None]
    timezone: str
    start: datetime | None
    """First local day/hour of the period (None: no data at all)."""
    end: datetime | None
    """End of the period (exclusive), local time."""
    by: str
    counters: Counters
    series: list[Bucket] = field(default_factory=list)
    daily: list[Bucket] = field(default_factory=list)
    unmatched_events: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "selection": self.selection,
            "timezone": self.timezone,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "by": self.by,
            "counters": asdict(self.counters),
            "series": [b.as_json() for b in self.series],
            "daily": [b.as_json() for b in self.daily],
            "unmatched_events": self.unmatched_events,
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _selection_sql(campaign: str | None, automation: str | None) -> tuple[str, list[Any]]:
    if campaign is not None:
        return "l.kind = 'campaign' AND l.source = ?", [campaign]
    if automation is not None:
        return "l.kind = 'automation' AND l.source = ?", [automation]
    return "l.kind <> 'test'", []


def load_tables(ops: OpsStore, store: Store, *, campaign: str | None, automation: str | None) -> int:
    """Register `st_sends` (send_id, status, at) and `st_events` (send_id, kind, subkind, at) for the
    selection into `con` through Arrow; returns how many events match no send (left out)."""
    import pyarrow as pa

    where, params = _selection_sql(campaign, automation)
    if campaign is not None or automation is not None:
        found = ops.scalar(f"SELECT count(*) FROM ledger l WHERE {where}", params)
        if not found:
            what = f"campaign {campaign!r}" if campaign is not None else f"automation {automation!r}"
            raise NotFoundError(f"no send of {what} in the ledger (see `campaign list` / `automate list`).")
    sends = ops.execute(
        f"SELECT l.send_id, l.status, COALESCE(l.sent_at, l.claimed_at, l.created_at) FROM ledger l WHERE {where} "
        "AND l.status IN ('sent', 'bounced')",
        params,
    ).fetchall()
    events = ops.execute(
        "SELECT e.send_id, e.kind, e.subkind, e.occurred_at FROM events e JOIN ledger l ON l.send_id = e.send_id "
        f"WHERE {where}",
        params,
    ).fetchall()
    unmatched = int(
        ops.scalar(
            "SELECT count(*) FROM events e WHERE e.send_id IS NULL OR e.send_id NOT IN (SELECT send_id FROM ledger)"
        )
        or 0
    )
    stamp = pa.timestamp("us", tz="UTC")
    store.con.register(
        "st_sends",
        pa.table(
            {
                "send_id": pa.array([r[0] for r in sends], pa.string()),
                "status": pa.array([r[1] for r in sends], pa.string()),
                "ts": pa.array([_parse(r[2]) for r in sends], stamp),
            }
        ),
    )
    store.con.register(
        "st_events",
        pa.table(
            {
                "send_id": pa.array([r[0] for r in events], pa.string()),
                "kind": pa.array([r[1] for r in events], pa.string()),
                "subkind": pa.array([r[2] or "" for r in events], pa.string()),
                "ts": pa.array([_parse(r[3]) for r in events], stamp),
            }
        ),
    )
    return unmatched


_COUNTERS_SQL = """
WITH s AS (SELECT * FROM st_sends WHERE ts >= ? AND ts < ?),
     e AS (SELECT * FROM st_events WHERE ts >= ? AND ts < ?)
SELECT
  (SELECT count(*) FROM s WHERE status = 'sent') AS sent,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'delivered') AS delivered,
  (SELECT count(*) FROM e WHERE kind = 'open' AND subkind <> 'machine') AS opens_total,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'open' AND subkind <> 'machine') AS opens_unique,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'open') AS opens_unique_with_machine,
  (SELECT count(*) FROM e WHERE kind = 'open' AND subkind = 'machine') AS machine_opens,
  (SELECT count(*) FROM e WHERE kind = 'click') AS clicks_total,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'click') AS clicks_unique,
  (SELECT count(DISTINCT send_id) FROM (
      SELECT send_id FROM e WHERE kind = 'bounce' AND subkind = 'hard'
      UNION SELECT send_id FROM s WHERE status = 'bounced')) AS bounces_hard,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'bounce' AND subkind = 'soft'
      AND send_id NOT IN (SELECT send_id FROM e WHERE kind = 'bounce' AND subkind = 'hard')) AS bounces_soft,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'complaint') AS complaints,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'unsubscribe') AS unsubscribes,
  (SELECT count(DISTINCT send_id) FROM e WHERE kind = 'deferred') AS deferred,
  (SELECT count(DISTINCT send_id) FROM (
      SELECT send_id FROM e WHERE kind = 'bounce' UNION SELECT send_id FROM s WHERE status = 'bounced'))
      AS bounced_any
"""


def _bucket_sql(unit: str) -> str:
    return f"date_trunc('{unit}', timezone(?, ts))"


def _series_sql(unit: str) -> str:
    bucket = _bucket_sql(unit)
    return f"""
WITH s AS (SELECT {bucket} AS b, status FROM st_sends WHERE ts >= ? AND ts < ?),
     e AS (SELECT {bucket} AS b, send_id, kind, subkind FROM st_events WHERE ts >= ? AND ts < ?),
     sent AS (SELECT b, count(*) AS n FROM s WHERE status = 'sent' GROUP BY b),
     ev AS (
       SELECT b,
         count(DISTINCT send_id) FILTER (WHERE kind = 'delivered') AS delivered,
         count(DISTINCT send_id) FILTER (WHERE kind = 'open' AND subkind <> 'machine') AS opens,
         count(*) FILTER (WHERE kind = 'open' AND subkind = 'machine') AS machine_opens,
         count(DISTINCT send_id) FILTER (WHERE kind = 'click') AS clicks,
         count(DISTINCT send_id) FILTER (WHERE kind = 'bounce') AS bounces,
         count(DISTINCT send_id) FILTER (WHERE kind = 'complaint') AS complaints,
         count(DISTINCT send_id) FILTER (WHERE kind = 'unsubscribe') AS unsubscribes
       FROM e GROUP BY b)
SELECT COALESCE(sent.b, ev.b) AS b, COALESCE(sent.n, 0), COALESCE(ev.delivered, 0), COALESCE(ev.opens, 0),
       COALESCE(ev.machine_opens, 0), COALESCE(ev.clicks, 0), COALESCE(ev.bounces, 0),
       COALESCE(ev.complaints, 0), COALESCE(ev.unsubscribes, 0)
FROM sent FULL OUTER JOIN ev ON sent.b = ev.b ORDER BY 1
"""


def _step(start: datetime, unit: str) -> datetime:
    if unit == "hour":
        return start + timedelta(hours=1)
    return start + timedelta(days=1 if unit == "day" else 7)


def _truncate(moment: datetime, unit: str) -> datetime:
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if unit == "week" else day


def _series(
    store: Store,
    unit: str,
    tz: str,
    bounds: list[datetime],
    first: datetime,
    last: datetime,
) -> list[Bucket]:
    """Every bucket from `first` to `last` (local, truncated), empty ones included."""
    rows = store.tuples(_series_sql(unit), [tz, *bounds[:2], tz, *bounds[2:]])
    found = {row[0]: Bucket(row[0], *(int(v) for v in row[1:])) for row in rows}
    buckets: list[Bucket] = []
    moment = _truncate(first, unit)
    end = _truncate(last, unit)
    while moment <= end and len(buckets) < MAX_BUCKETS:
        buckets.append(found.get(moment, Bucket(moment)))
        # Local wall-clock steps: a day is a calendar day even across a daylight-saving change.
        moment = _step(moment, unit)
    return buckets


def compute_stats(
    ops: OpsStore,
    *,
    campaign: str | None = None,
    automation: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    by: str | None = None,
    timezone: str,
) -> StatsReport:
    """The statistics of a campaign, an automation, or every send (tests excluded).

    `start` and `end` are aware instants (end exclusive); None means from the first / to the last record.
    `by` is hour, day or week (None: hourly for periods under 7 days, else daily).
    """
    from pleasepoint_cli.clock import shop_zone
    from pleasepoint_cli.store.connection import memory_store

    zone = shop_zone(timezone)
    if by is not None and by not in GRANULARITIES:
        raise ValueError(f"by must be one of {GRANULARITIES}")
    store = memory_store()
    try:
        unmatched = load_tables(ops, store, campaign=campaign, automation=automation)
        low = start or datetime(1970, 1, 1, tzinfo=UTC)
        high = end or datetime(9999, 1, 1, tzinfo=UTC)
        bounds = [low, high, low, high]
        span = store.tuples(
            "SELECT min(ts), max(ts) FROM (SELECT ts FROM st_sends WHERE ts >= ? AND ts < ? "
            "UNION ALL SELECT ts FROM st_events WHERE ts >= ? AND ts < ?)",
            bounds,
        )[0]
        row = store.tuples(_COUNTERS_SQL, bounds)[0]
        values = [int(v) for v in row]
        (sent, delivered, opens_total, opens_unique, opens_all, machine, clicks_total, clicks_unique) = (
            values[:8]
        )
        hard, soft, complaints, unsubscribes, deferred, bounced_any = values[8:]
        if delivered > 0:
            base, base_kind = delivered, "delivered"
        else:
            base, base_kind = max(sent - bounced_any, 0), "sent minus bounced"
        counters = Counters(
            sent=sent,
            delivered=delivered,
            opens_total=opens_total,
            opens_unique=opens_unique,
            opens_unique_with_machine=opens_all,
            machine_opens=machine,
            clicks_total=clicks_total,
            clicks_unique=clicks_unique,
            bounces_hard=hard,
            bounces_soft=soft,
            complaints=complaints,
            unsubscribes=unsubscribes,
            deferred=deferred,
            rate_base=base,
            rate_base_kind=base_kind,
            open_rate=_ratio(opens_unique, base),
            click_rate=_ratio(clicks_unique, base),
            click_to_open_rate=_ratio(clicks_unique, opens_unique),
        )
        selection = {"campaign": campaign, "automation": automation}
        first_at = start if start is not None else span[0]
        last_at = (end - timedelta(microseconds=1)) if end is not None else span[1]
        if first_at is None or last_at is None or last_at < first_at:
            return StatsReport(selection, timezone, None, None, by or "day", counters, [], [], unmatched)
        first = first_at.astimezone(zone).replace(tzinfo=None)
        last = last_at.astimezone(zone).replace(tzinfo=None)
        unit = by or ("hour" if (last - first) < timedelta(days=HOURLY_BELOW_DAYS) else "day")
        series = _series(store, unit, timezone, bounds, first, last)
        daily = series if unit == "day" else _series(store, "day", timezone, bounds, first, last)
        period_end = _step(_truncate(last, unit), unit)
        return StatsReport(
            selection, timezone, _truncate(first, unit), period_end, unit, counters, series, daily, unmatched
        )
    finally:
        store.close()
