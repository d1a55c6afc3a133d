"""`automate tick`: for each active automation, its due slots (or due events), audience, caps and quiet hours,
planned into the send ledger, then sent by the delivery engine. Made to be run by cron every few minutes.

Exactly once, however ticks overlap or die:
- one tick at a time: an OS lock (flock on `<db stem>.locks/automate-tick.lock`) taken without waiting; a
  second tick finds it held and stops at once ("skipped: another tick is running"); the kernel releases it
  when a tick dies, so the next tick after a crash runs at once;
- the ledger key is (kind 'automation', automation name, the slot's UTC instant, customer): planning a slot
  twice inserts nothing new, and the engine claims each row (`sending`, committed) before its first byte;
- a tick that died mid-send leaves `sending` rows: the next one marks them `uncertain` (reported, never
  resent) and sends what is still `queued`, whatever its catch-up policy (planned work is never dropped,
  unless it is older than max_lateness: then it is `skipped`, "too late").

Order per automation: mark leftovers uncertain; release `deferred` rows that are due (caps and quiet hours
checked again); expire queued rows past max_lateness; plan the new slots (or events) one period at a time,
oldest first (so an earlier period's rows count against the caps of a later one); send every queued row;
record the tick. One automation failing (a bad template, an unknown attribute) is reported and the others
still run. DuckDB is opened only for the short steps that read it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from pleasepoint_cli.automate.caps import apply_caps, quiet_deferrals
from pleasepoint_cli.automate.slots import slot_key
from pleasepoint_cli.errors import PleasepointError, StoreBusyError

if TYPE_CHECKING:
    from pleasepoint_cli.automate.model import Automation
    from pleasepoint_cli.campaign.prepare import PreparedCampaign
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.content.context import ContextRows
    from pleasepoint_cli.delivery.send import Job, MessageBuilder, Transport
    from pleasepoint_cli.delivery.workers import MessageWorkers
    from pleasepoint_cli.ops.store import OpsStore
    from pleasepoint_cli.store.connection import Store

KIND = "automation"
LOCK_NAME = "automate-tick"
SKIPPED_MESSAGE = "skipped: another tick is running"


@contextlib.contextmanager
def tick_lock(db_path: Path) -> Iterator[bool]:
    """Hold the tick lock for the block if nobody else does (yields True), else yield False at once."""
    from pleasepoint_cli.delivery.lock import held_lock, lock_path

    with held_lock(lock_path(db_path, LOCK_NAME), timeout=0) as holder:
        yield holder is None


@dataclass
class AutomationRun:
    """What one tick did for one automation."""

    name: str
    trigger: str
    slots: list[str] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    planned: int = 0
    capped: int = 0
    deferred: int = 0
    released: int = 0
    expired: int = 0
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    skipped: int = 0
    uncertain: int = 0
    error: str | None = None
    aborted: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def eventful(self) -> bool:
        """Whether anything happened worth a line of output (cron stays silent otherwise)."""
        counts = (self.planned, self.capped, self.deferred, self.released, self.expired, self.sent,
                  self.bounced, self.failed, self.suppressed, self.skipped, self.uncertain)  # fmt: skip
        return any(counts) or bool(self.missed) or self.error is not None or self.aborted is not None

    @property
    def ok(self) -> bool:
        return self.error is None and self.aborted is None and self.failed == 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TickReport:
    """The whole tick: each active automation's run, and the files that could not be loaded."""

    now: datetime
    dry_run: bool
    skipped: bool = False
    runs: list[AutomationRun] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Said once each (the stale-data warning of issue 13, read when an automation opened DuckDB anyway)."""

    @property
    def ok(self) -> bool:
        return not self.problems and all(run.ok for run in self.runs)

    @property
    def eventful(self) -> bool:
        return bool(self.problems) or any(run.eventful for run in self.runs)

    def total(self, name: str) -> int:
        return sum(int(getattr(run, name)) for run in self.runs)

    def summary(self) -> str:
        """One line for cron's mail: what was sent, held back and failed."""
        if self.skipped:
            return SKIPPED_MESSAGE
        verb = "would plan" if self.dry_run else "sent"
        figure = self.total("planned") + self.total("released") if self.dry_run else self.total("sent")
        parts = [f"{verb} {figure}"]
        for name in (
            "capped",
            "deferred",
            "suppressed",
            "skipped",
            "bounced",
            "failed",
            "uncertain",
            "expired",
        ):
            if value := self.total(name):
                parts.append(f"{value} {name}")
        errors = sum(1 for run in self.runs if not run.ok) + len(self.problems)
        active = [run for run in self.runs if run.eventful]
        names = ", ".join(run.name for run in active[:5]) + (" ..." if len(active) > 5 else "")
        line = f"automate tick {slot_key(self.now)}: {', '.join(parts)}"
        if names:
            line += f" ({names})"
        if errors:
            line += f"; {errors} automation{'s' if errors != 1 else ''} failed"
        return line

    def as_json(self) -> dict[str, Any]:
        return {
            "now": slot_key(self.now),
            "dry_run": self.dry_run,
            "skipped": self.skipped,
            "ok": self.ok,
            "runs": [run.as_json() for run in self.runs],
            "problems": self.problems,
            "warnings": self.warnings,
        }


class Recipient(NamedTuple):
    """One customer of a period's audience (a tuple: a million of them are built in a tick's planning)."""

    customer_id: str
    variant: str
    email: str | None


class AutomationTick:
    """One automation at one tick: plan its work into the ledger and send it."""

    def __init__(
        self,
        automation: Automation,
        *,
        db_path: Path,
        ops: OpsStore,
        settings: Settings,
        now: datetime,
        lock_timeout: float,
        dry_run: bool,
        clock: Callable[[], datetime],
        transport: Transport | None,
        build: MessageBuilder | None,
        base_dir: Path | None,
        last_tick: datetime | None,
    ) -> None:
        self.automation = automation
        self.db_path = db_path
        self.ops = ops
        self.settings = settings
        self.now = now
        self.lock_timeout = lock_timeout
        self.dry_run = dry_run
        self.clock = clock
        self.transport = transport
        self.build = build
        self.base_dir = base_dir
        self.last_tick = last_tick
        self.run = AutomationRun(automation.name, automation.describe_trigger())
        self.prepared: PreparedCampaign | None = None
        self.shop_zone = ZoneInfo(settings.shop.timezone)
        self.zones: dict[str, str] = {}
        """Customer -> zone name (quiet hours in the customer's zone), read with the audience."""
        self.zones_read: set[str] = set()
        """The customers whose zone `zones` holds (or who have none)."""
        self.stale: str | None = None
        """The stale-data warning, when the audience was read from data that end long before now."""

    # --- DuckDB steps -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_duckdb(self) -> Iterator[Store]:
        from pleasepoint_cli.delivery.send import duckdb_step
        from pleasepoint_cli.ops.suppression import attach_suppressions

        with duckdb_step(self.db_path, self.lock_timeout) as store:
            attach_suppressions(store, self.ops)
            yield store

    def prepare(self, store: Store) -> PreparedCampaign:
        from pleasepoint_cli.campaign.prepare import prepare_campaign

        if self.prepared is None:
            problems = self.automation.rule_problems(store)
            if problems:
                raise PleasepointError("\n".join(problems))
            as_of = self.now.astimezone(self.shop_zone).date()
            self.stale = _stale_data(store, as_of, self.now)
            self.prepared = prepare_campaign(store, self.automation.campaign, self.settings, as_of)
        return self.prepared

    @property
    def lateness_limit(self) -> timedelta:
        if self.automation.is_schedule:
            return self.automation.policy.max_lateness
        return max(self.automation.max_age, self.automation.policy.max_lateness)

    def due_periods(self) -> list[datetime]:
        """The slots this tick runs (schedule triggers), logging those it will not."""
        from pleasepoint_cli.automate.catchup import due_slots

        policy = self.automation.policy
        last = self.last_tick if self.last_tick is not None else self.now - policy.grace
        due = due_slots(self.automation.schedule, last, self.now, policy)
        self.run.missed = [m.as_json() for m in due.missed]
        return list(due.run)

    def gather(self, slots: list[datetime] | None = None) -> list[tuple[str, list[Recipient]]]:
        """The work of this tick: for each period, oldest first, the recipients (audience and guards).

        Schedule triggers run the due slots (or the `slots` given); system triggers their due events."""
        if self.automation.is_schedule and slots is None:
            slots = self.due_periods()
        if not self.automation.is_schedule:
            slots = None
        if slots is not None and not slots:
            return []
        # Quiet hours in the customer's zone: the zone is read with the audience, in the same step (a second
        # step reopened the file and sent every customer id back as a parameter).
        zone_key = self.zone_attribute()
        zone_column = ", z.value" if zone_key is not None else ", NULL"
        zone_join = (
            " LEFT JOIN customer_attributes AS z ON z.customer_id = a.customer_id AND z.key = ?"
            if zone_key is not None
            else ""
        )
        zone_params = [zone_key] if zone_key is not None else []
        with self.open_duckdb() as store:
            prepared = self.prepare(store)
            names = [v.name for v in prepared.variants]
            audience_sql, audience_params = prepared.audience_query()
            if slots is not None:
                rows = store.con.execute(
                    f"SELECT a.customer_id, a.variant, c.email{zone_column} FROM ({audience_sql}) AS a "
                    f"JOIN customers AS c USING (customer_id){zone_join} ORDER BY a.customer_id",
                    [*audience_params, *zone_params],
                ).fetchall()
                recipients = [Recipient(str(c), names[int(v)], e) for c, v, e, _ in rows]
                self._read_zones((str(c), z) for c, _, _, z in rows)
                return [(slot_key(slot), recipients) for slot in slots]
            from pleasepoint_cli.automate.triggers import due_events_query

            events = due_events_query(store, self.automation, self.settings, self.now)
            rows = store.con.execute(
                f"SELECT e.period, a.customer_id, a.variant, c.email{zone_column} FROM ({events.sql}) AS e "
                f"JOIN ({audience_sql}) AS a USING (customer_id) JOIN customers AS c USING (customer_id)"
                f"{zone_join} ORDER BY e.period, a.customer_id",
                [*events.params, *audience_params, *zone_params],
            ).fetchall()
        work: dict[str, list[Recipient]] = {}
        for period, customer, variant, email, _ in rows:
            work.setdefault(str(period), []).append(Recipient(str(customer), names[int(variant)], email))
        self._read_zones((str(c), z) for _, c, _, _, z in rows)
        return sorted(work.items())

    def zone_attribute(self) -> str | None:
        """The attribute holding customers' zones, when quiet hours are kept in the customer's zone."""
        quiet = self.settings.marketing.quiet_hours
        if quiet is None or quiet.timezone != "customer":
            return None
        return quiet.attribute

    def _read_zones(self, pairs: Iterable[tuple[str, Any]]) -> None:
        if self.zone_attribute() is None:
            return
        pairs = list(pairs)
        self.zones_read.update(customer for customer, _ in pairs)
        self.zones.update((customer, str(zone)) for customer, zone in pairs if zone)

    def customer_zones(self, customers: Sequence[str]) -> dict[str, str]:
        """Customer -> zone name for quiet hours in the customer's zone (those with a zone attribute)."""
        attribute = self.zone_attribute()
        if attribute is None or not customers:
            return {}
        if all(c in self.zones_read for c in customers):
            return {c: self.zones[c] for c in customers if c in self.zones}
        with self.open_duckdb() as store:
            rows = store.con.execute(
                "SELECT customer_id, value FROM customer_attributes WHERE key = ? "
                "AND customer_id IN (SELECT unnest(?::VARCHAR[]))",
                [attribute, list(customers)],
            ).fetchall()
        return {str(c): str(v) for c, v in rows if v}

    # --- ledger steps ---------------------------------------------------------------------------------------

    def existing(self, period: str) -> set[str]:
        from pleasepoint_cli.ops import ledger

        return set(ledger.existing(self.ops, KIND, self.automation.name, period))

    def _decide(
        self, customers: Sequence[str], period: str | None
    ) -> tuple[list[str], list[str], dict[str, datetime]]:
        """Caps then quiet hours for customers about to be sent now: (send, capped, deferred -> not_before)."""
        automation = self.automation
        decision = apply_caps(
            self.ops.con,
            customers,
            at=self.now,
            source=automation.name,
            cap=automation.cap,
            global_cap=self.settings.marketing.cap,
            on_cap=automation.on_cap,
            period=period,
        )
        deferred = dict(decision.deferred)
        quiet = quiet_deferrals(
            self.settings.marketing.quiet_hours,
            self.now,
            decision.allowed,
            shop_zone=self.shop_zone,
            customer_zones=self.customer_zones(decision.allowed),
        )
        deferred.update(quiet)
        send = [c for c in decision.allowed if c not in quiet]
        return send, decision.capped, deferred

    def release_deferred(self) -> None:
        """Deferred rows whose time has come: queued if caps and quiet hours allow now, else held again."""
        from pleasepoint_cli.ops import ledger

        released = ledger.release_deferred(
            self.ops, KIND, self.automation.name, now=self.now, dry_run=self.dry_run,
            decide=lambda customers: self._decide(customers, None),
        )  # fmt: skip
        self.run.released += released.released
        if not self.dry_run:
            self.run.capped += released.capped

    def expire(self) -> None:
        """Queued rows more than the lateness limit behind their time are skipped ("too late"), not sent."""
        if self.dry_run:
            return
        from pleasepoint_cli.ops import ledger

        self.run.expired += ledger.expire_queued(
            self.ops, KIND, self.automation.name, before=self.now - self.lateness_limit,
            reason="too late: past max_lateness",
        )  # fmt: skip

    def plan(self, work: list[tuple[str, list[Recipient]]]) -> None:
        for period, recipients in work:
            self.run.slots.append(period)
            existing = self.existing(period)
            fresh = [r for r in recipients if r.customer_id not in existing]
            if not fresh:
                continue
            send, capped, deferred = self._decide([r.customer_id for r in fresh], period)
            self.run.planned += len(send)
            self.run.capped += len(capped)
            self.run.deferred += len(deferred)
            if self.dry_run:
                continue
            from pleasepoint_cli.ops import ledger

            status: dict[str, tuple[str, datetime | None, str | None]] = {
                c: ("queued", None, None) for c in send
            }
            status.update({c: ("capped", None, "frequency cap") for c in capped})
            status.update({c: ("deferred", until, None) for c, until in deferred.items()})
            ledger.plan_rows(
                self.ops,
                KIND,
                self.automation.name,
                period,
                [
                    ledger.PlannedRow(r.customer_id, r.email, r.variant, *status[r.customer_id])
                    for r in fresh
                    if r.customer_id in status
                ],
                now=self.now,
                skip_missing=False,
            )

    def jobs(
        self, rows: Sequence[dict[str, Any]], build: MessageBuilder, workers: MessageWorkers | None = None
    ) -> Iterator[Job]:
        """Queued rows rendered and built batch by batch (DuckDB opened per batch), as the engine's jobs."""
        from pleasepoint_cli.delivery.send import render_jobs

        def contexts_of(customer_ids: list[str]) -> tuple[PreparedCampaign, ContextRows]:
            with self.open_duckdb() as store:
                prepared = self.prepare(store)
                return prepared, prepared.context_rows(store, customer_ids)

        return render_jobs(rows, contexts_of, build, self.clock, workers)

    def send(self) -> None:
        from pleasepoint_cli.delivery.send import (
            Sender,
            as_function,
            connections_of,
            default_builder,
            default_transport,
            message_workers,
        )
        from pleasepoint_cli.ops import ledger
        from pleasepoint_cli.ops.store import ops_path

        if self.dry_run:
            return
        rows = ledger.queued(self.ops, KIND, self.automation.name)
        if not rows:
            return
        base_dir = self.base_dir or Path()
        sender = Sender(
            ops_path(self.db_path),
            self.transport or default_transport(self.settings, base_dir),
            connections=min(connections_of(self.settings) if self.transport is None else 1, len(rows)),
            clock=self.clock,
        )
        with contextlib.ExitStack() as stack:
            build = self.build
            workers = None
            if build is None:
                builder = default_builder(self.settings, base_dir)
                build = as_function(builder)
                workers = message_workers(builder, len(rows))
                if workers is not None:
                    stack.enter_context(workers)
            counts = sender.run(self.jobs(rows, build, workers), len(rows))
        for name in ("sent", "bounced", "failed", "suppressed", "skipped"):
            setattr(self.run, name, getattr(self.run, name) + getattr(counts, name))
        self.run.errors = counts.errors
        self.run.aborted = sender.fatal

    def execute(self) -> AutomationRun:
        from pleasepoint_cli.ops import ledger

        if not self.dry_run:
            self.run.uncertain = ledger.mark_uncertain(self.ops, KIND, self.automation.name)
        self.release_deferred()
        self.expire()
        self.plan(self.gather())
        self.send()
        return self.run


def _stale_data(store: Store, as_of: date, now: datetime) -> str | None:
    """The clock's stale-data warning for a tick, or None. The tick reads DuckDB only when work is due, so the
    data's latest purchase is read there rather than first: cron must not wait on DuckDB's lock for it."""
    from pleasepoint_cli.clock import SENDING, Clock, latest_purchase_day

    return Clock(as_of, now, "--now", latest_purchase_day(store), SENDING).warning()


def run_tick(
    db_path: Path,
    settings: Settings,
    automations_dir: Path,
    *,
    now: datetime,
    dry_run: bool = False,
    lock_timeout: float = 30.0,
    only: str | None = None,
    transport: Transport | None = None,
    build: MessageBuilder | None = None,
    base_dir: Path | None = None,
) -> TickReport:
    """One tick over every active automation of `automations_dir` (or the one named `only`)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    report = TickReport(now=now.astimezone(UTC), dry_run=dry_run)
    with contextlib.ExitStack() as stack:
        if not dry_run and not stack.enter_context(tick_lock(db_path)):
            report.skipped = True
            return report
        _tick(report, stack, db_path, settings, automations_dir, now, dry_run, lock_timeout, only,
              transport, build, base_dir)  # fmt: skip
    return report


def _tick(
    report: TickReport,
    stack: contextlib.ExitStack,
    db_path: Path,
    settings: Settings,
    automations_dir: Path,
    now: datetime,
    dry_run: bool,
    lock_timeout: float,
    only: str | None,
    transport: Transport | None,
    build: MessageBuilder | None,
    base_dir: Path | None,
) -> None:
    from pleasepoint_cli.automate import state
    from pleasepoint_cli.automate.model import load_automations
    from pleasepoint_cli.ops.store import OpsStore, ops_path

    loaded = load_automations(automations_dir, shop_timezone=settings.shop.timezone)
    report.problems = {str(path): problem for path, problem in loaded.problems.items()}
    automations = loaded.automations
    if only is not None:
        automations = [a for a in automations if a.name == only]
    ops = stack.enter_context(OpsStore(ops_path(db_path), busy_timeout=max(lock_timeout, 5.0)))
    states = state.all_states(ops)
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    for automation in automations:
        current = states.get(automation.name, state.AutomationState(automation.name, None, None))
        if not current.active(automation.model.active):
            continue
        job = AutomationTick(
            automation,
            db_path=db_path,
            ops=ops,
            settings=settings,
            now=now,
            lock_timeout=lock_timeout,
            dry_run=dry_run,
            clock=clock,
            transport=transport,
            build=build,
            base_dir=base_dir,
            last_tick=current.last_tick,
        )
        try:
            run = job.execute()
        except StoreBusyError:
            raise
        except PleasepointError as e:
            job.run.error = str(e)
            run = job.run
        report.runs.append(run)
        if job.stale is not None and job.stale not in report.warnings:
            report.warnings.append(job.stale)
        if dry_run:
            continue
        if run.missed:
            state.log(ops, automation.name, now, "missed", {"missed": run.missed})
        if run.error is not None:
            state.log(ops, automation.name, now, "error", {"error": run.error})
            continue  # last_tick stays: the next tick tries these slots again
        if run.eventful:
            detail = {k: v for k, v in run.as_json().items() if k not in ("missed", "name", "error") and v}
            state.log(ops, automation.name, now, "run", detail)
        state.set_last_tick(ops, automation.name, now)
    if not dry_run:
        for path, problem in report.problems.items():
            state.log(ops, Path(path).stem, now, "error", {"file": path, "error": problem})
