"""The send engine: plan a campaign into the ledger, then send it over `connections` threads, one row at a time
each (messages rendered and built beforehand, in worker processes for a large send: `delivery/workers.py`).

How each known failure of open-source senders is ruled out:
- Resumed sends mailing people again (listmonk 2070, 2313): progress is not a batch marker but each row's own
  status; a row is claimed (`sending`, committed) before its first byte and settled after the server answers,
  so a rerun sends only `queued` rows.
- Lost mail on a crash (listmonk 3022): nothing is marked sent before the server accepted it; a row left
  `sending` by a dead run becomes `uncertain`, reported, never silently dropped.
- Two overlapping runs (Mautic 1737, 2215, 3669): one OS lock per campaign (flock, released by the kernel when
  the process dies, never judged stale by age), and the claim itself is guarded by `status = 'queued'`.
- One rejected recipient failing the batch (Mautic 7226): every row is settled on its own; a 5xx bounces
  that row only.
- Claimed rows stuck forever after a worker died (Postal 645, 764): the next run, holding the lock, turns them
  `uncertain` (at most one per connection: a connection thread claims its next row in the transaction that
  settles its previous one, so it never holds two).
DuckDB is opened only for the short steps that read it (planning, each batch of contexts), never while a
message is on the network, so analysts keep working during a send.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import queue
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pleasepoint_cli.errors import (
    DeliveryError,
    InputDataError,
    NotFoundError,
    PleasepointError,
)

if TYPE_CHECKING:
    from pleasepoint_cli.campaign.model import Campaign
    from pleasepoint_cli.campaign.prepare import PreparedCampaign, RenderedEmail
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.content.context import ContextRows
    from pleasepoint_cli.delivery.message import MessageBuilder as Builder
    from pleasepoint_cli.delivery.workers import MessageWorkers
    from pleasepoint_cli.ops import ledger
    from pleasepoint_cli.ops.store import OpsStore
    from pleasepoint_cli.store.connection import Store

CONTEXT_BATCH = 5000
"""Recipients whose contexts are built per DuckDB visit (the file is held only for that step).

A visit costs about a second and a half whatever its size (the profile and recommendation queries scan the
whole order history once: it is not clustered by customer) plus a little per customer: 200 a visit fed the
senders 130 messages/s at a million customers, 5,000 about 1,800/s, holding the file about 2.5 s a visit
(bench/bench_campaign_send.py, docs/performance.md)."""
TEST_PREFIX = "[TEST] "

Progress = Callable[[int, int], None]


class Outcome(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def code(self) -> int | None: ...
    @property
    def detail(self) -> str: ...


class Connection(Protocol):
    def deliver(self, mail_from: str, rcpt: str, data: bytes, send_id: str) -> Outcome: ...

    def close(self) -> None: ...


class Transport(Protocol):
    def connect(self) -> Connection: ...


MessageBuilder = Callable[["RenderedEmail", str, datetime], bytes]
"""(rendered email, send id, date) -> the message's bytes."""


@dataclass
class Job:
    """One ledger row on its way to a sending connection: its message's bytes, or why it cannot be sent.

    Rendered and built before the row is claimed (in a worker process for a large send); nothing reaches the
    server before the claim."""

    send_id: str
    customer_id: str
    to: str = ""
    """The recipient's address as rendered (recorded by the claim)."""
    data: bytes | None = None
    mail_from: str = ""
    message_id: str | None = None
    failed: str | None = None
    skipped: str | None = None


@dataclass
class RunCounts:
    """What one run did, by outcome."""

    sent: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    skipped: int = 0
    uncertain: int = 0
    not_queued: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return (
            self.sent
            + self.bounced
            + self.failed
            + self.suppressed
            + self.skipped
            + self.uncertain
            + self.not_queued
        )


@dataclass
class SendPlan:
    """The audience of a campaign against its ledger: who is new, who was already handled, what will go."""

    campaign: str
    name: str
    audience: int
    new: int
    already: dict[str, int]
    uncertain: int
    recovered_uncertain: int
    recipients: list[tuple[str, int, str | None]] = field(repr=False, default_factory=list)
    capped: set[str] = field(repr=False, default_factory=set)
    """New customers held back by the global marketing cap (`marketing.global_cap`): recorded `capped`."""

    @property
    def to_send(self) -> int:
        return self.new - len(self.capped) + self.already.get("queued", 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "name": self.name,
            "audience": self.audience,
            "new": self.new,
            "already": self.already,
            "to_send": self.to_send,
            "capped": len(self.capped),
            "uncertain": self.uncertain,
            "recovered_uncertain": self.recovered_uncertain,
        }


@dataclass
class SendSummary:
    """The end of a run: this run's counts and the campaign's ledger totals."""

    campaign: str
    kind: str
    dry_run: bool
    planned: int
    run: RunCounts
    ledger: dict[str, int]
    skipped_reasons: dict[str, int]
    uncertain: int
    recovered_uncertain: int
    aborted: str | None = None
    capped: int = 0
    """Customers this run recorded `capped` (the global marketing cap)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "kind": self.kind,
            "dry_run": self.dry_run,
            "planned": self.planned,
            "sent": self.run.sent,
            "bounced": self.run.bounced,
            "failed": self.run.failed,
            "suppressed": self.run.suppressed,
            "skipped": self.run.skipped,
            "capped": self.capped,
            "skipped_by_reason": self.skipped_reasons,
            "uncertain": self.uncertain,
            "recovered_uncertain": self.recovered_uncertain,
            "errors": self.run.errors,
            "ledger": self.ledger,
            "aborted": self.aborted,
        }


def make_job(
    render: Callable[[dict[str, Any], int, str], RenderedEmail],
    build: MessageBuilder,
    send_id: str,
    customer_id: str,
    variant: int,
    context: dict[str, Any] | None,
    date: datetime,
) -> Job:
    """One recipient's job: rendered and built, or skipped (gone from the database, no address), or failed
    (a render error, or header injection from their data: that row only). Runs in a worker process for a
    large send (`delivery/workers.py`), else in the sending process."""
    job = Job(send_id=send_id, customer_id=customer_id)
    if context is None:
        job.skipped = "no longer in the database"
        return job
    if not (context.get("email") or "").strip():
        job.skipped = "no email address"
        return job
    try:
        email = render(context, variant, send_id)
    except PleasepointError as e:
        job.failed = f"render: {e}"
        return job
    return built(job, email, build, date)


def built(job: Job, email: RenderedEmail, build: MessageBuilder, date: datetime) -> Job:
    """The job with the bytes of `email` (or failed: a header injection, a bad address)."""
    job.to = email.to
    if not email.to.strip():
        job.skipped = "no email address"
        return job
    try:
        data = build(email, job.send_id, date)
        job.mail_from = _envelope_sender(email.from_address)
    except PleasepointError as e:
        job.failed = str(e)
        return job
    job.data = data
    job.message_id = _message_id_of(data)
    return job


def render_jobs(
    rows: Sequence[dict[str, Any]],
    contexts_of: Callable[[list[str]], tuple[PreparedCampaign, ContextRows]],
    build: MessageBuilder,
    clock: Callable[[], datetime],
    workers: MessageWorkers | None = None,
) -> Iterator[Job]:
    """The engine's jobs for queued ledger rows, CONTEXT_BATCH at a time: `contexts_of` opens DuckDB for one
    batch's context rows (and the prepared campaign to render them with) and closes it before any is sent.
    With `workers`, each batch's contexts are assembled, rendered and built by the worker processes, chunk by
    chunk, in order; else here. A customer gone from the database or without an email is skipped; a render
    or header error fails that row only."""
    from pleasepoint_cli.delivery.workers import CHUNK

    for start in range(0, len(rows), CONTEXT_BATCH):
        chunk = rows[start : start + CONTEXT_BATCH]
        prepared, found = contexts_of([str(r["customer_id"]) for r in chunk])
        index = {v.name: i for i, v in enumerate(prepared.variants)}
        items = [
            (str(r["send_id"]), str(r["customer_id"]), index.get(str(r["variant"]), 0),
             found.parts.get(str(r["customer_id"])))
            for r in chunk
        ]  # fmt: skip
        del found
        if workers is None:
            render, context_of = prepared.render, prepared.builder.context_of
            for send_id, customer, variant, part in items:
                context = None if part is None else context_of(part)
                yield make_job(render, build, send_id, customer, variant, context, clock())
            continue
        workers.start(prepared.renderer, prepared.builder)
        date = clock()
        futures = [workers.submit(items[i : i + CHUNK], date) for i in range(0, len(items), CHUNK)]
        del items
        for future in futures:
            yield from future.result()


@contextlib.contextmanager
def duckdb_step(db_path: Path, lock_timeout: float) -> Iterator[Store]:
    """Open the DuckDB file read-only for one short step, then close it (waiting up to lock_timeout)."""
    from pleasepoint_cli.store.opener import StoreOpener

    with StoreOpener(Path(db_path), lock_timeout).read() as store:
        yield store


def default_builder(settings: Settings, base_dir: Path) -> Builder:
    """The message builder of `delivery:` (DKIM key relative to base_dir)."""
    from pleasepoint_cli.delivery.dkim import load_signer
    from pleasepoint_cli.delivery.message import MessageBuilder as Builder

    return Builder(settings=settings, signer=load_signer(settings.delivery.dkim, base_dir))


def default_message_builder(settings: Settings, base_dir: Path) -> MessageBuilder:
    """The message builder of `delivery:` (DKIM key relative to base_dir), as a function."""
    return as_function(default_builder(settings, base_dir))


def as_function(builder: Builder) -> MessageBuilder:
    def build(email: RenderedEmail, send_id: str, date: datetime) -> bytes:
        return builder.build(email, send_id=send_id, date=date)

    return build


def message_workers(builder: Builder, rows: int) -> MessageWorkers | None:
    """Render worker processes for a send of `rows` messages, or None to render in this process."""
    from pleasepoint_cli.delivery.workers import MessageWorkers, worker_count

    count = worker_count(rows)
    return MessageWorkers(count, builder) if count > 0 else None


def default_transport(settings: Settings, base_dir: Path) -> Transport:
    """The transport of `delivery:` (outbox folder and CA file relative to base_dir)."""
    from pleasepoint_cli.delivery.transport import make_transport

    return make_transport(settings.delivery, base_dir)


def connections_of(settings: Settings) -> int:
    delivery = settings.delivery
    return int(delivery.smtp.connections) if delivery.transport == "smtp" else 1


@functools.lru_cache(maxsize=64)
def _envelope_sender(from_address: str) -> str:
    from email.utils import parseaddr

    return parseaddr(from_address)[1] or from_address


def _message_id_of(data: bytes) -> str | None:
    end = data.find(b"\r\n\r\n")
    head = (data if end < 0 else data[:end]).split(b"\n\n", 1)[0]
    for line in head.splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return None


_Pending = tuple["ledger.Settlement", str, Job, str | None]
"""A settlement not yet committed, with the count it adds, its job and the error to report."""


class Sender:
    """Runs built jobs through `connections` threads, one connection each: claim (re-checking suppression),
    deliver, settle. Each thread commits its previous message's settlement and its next claim together."""

    def __init__(
        self,
        ops_file: Path,
        transport: Transport,
        *,
        connections: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.ops_file = ops_file
        self.transport = transport
        self.connections = max(1, connections)
        self.clock = clock
        self.counts = RunCounts()
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: str | None = None

    def _count(self, outcome: str, job: Job | None = None, error: str | None = None) -> None:
        with self._lock:
            setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
            if error and job is not None and len(self.counts.errors) < 50:
                self.counts.errors.append({"customer_id": job.customer_id, "status": outcome, "error": error})

    def run(self, jobs: Iterator[Job], total: int, progress: Progress | None = None) -> RunCounts:
        """Send every job; returns the counts. A transport that cannot connect stops the run (rows stay
        queued); Ctrl-C stops it after the messages in flight are settled."""
        from pleasepoint_cli.ops.store import OpsStore

        # One ledger connection shared by the connection threads (its lock serialises their transactions):
        # with one each, they contended for SQLite's write lock, whose busy handler sleeps between retries.
        with OpsStore(self.ops_file, migrate=False) as ops:
            return self._run(ops, jobs, total, progress)

    def _run(self, ops: OpsStore, jobs: Iterator[Job], total: int, progress: Progress | None) -> RunCounts:
        work: queue.Queue[Job | None] = queue.Queue(maxsize=CONTEXT_BATCH)
        producer_error: list[BaseException] = []
        workers = [
            threading.Thread(
                target=self._worker, args=(ops, work, i), name=f"pleasepoint-send-{i}", daemon=True
            )
            for i in range(self.connections)
        ]

        def put(item: Job | None) -> bool:
            while not self.stop.is_set() or item is None:
                try:
                    work.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    if not any(w.is_alive() for w in workers):
                        return False
            return False

        def produce() -> None:
            try:
                for job in jobs:
                    if not put(job):
                        break
            except BaseException as e:  # reported by the main thread
                producer_error.append(e)
                self.stop.set()
            finally:
                for _ in workers:
                    put(None)

        producer = threading.Thread(target=produce, name="pleasepoint-render", daemon=True)
        producer.start()
        for worker in workers:
            worker.start()
        try:
            while any(w.is_alive() for w in workers):
                for worker in workers:
                    worker.join(timeout=0.1)
                if progress is not None:
                    progress(self.counts.done, total)
        except KeyboardInterrupt:
            self.stop.set()  # each worker settles the message in flight, then stops
            for worker in workers:
                worker.join()
            raise
        self.stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                work.get_nowait()
        producer.join(timeout=10)
        if progress is not None:
            progress(self.counts.done, total)
        if producer_error:
            error = producer_error[0]
            if isinstance(error, PleasepointError):
                raise error
            raise DeliveryError(f"preparing the messages failed: {error}") from error
        return self.counts

    def _worker(self, ops: OpsStore, work: queue.Queue[Job | None], index: int) -> None:
        name = f"{threading.get_native_id()}:{index}"
        connection: Connection | None = None
        pending: list[_Pending] = []
        try:
            while True:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    # Nothing to claim yet: record what is settled now rather than wait with it.
                    self._commit(ops, pending, None, name)
                    job = work.get()
                if job is None or self.stop.is_set():
                    return
                if job.data is None:
                    if job.skipped is not None:
                        done = ledger_settlement(
                            job.send_id, "skipped", error=job.skipped, from_status=("queued",)
                        )
                        pending.append((done, "skipped", job, None))
                    else:
                        error = job.failed or "nothing to send"
                        done = ledger_settlement(job.send_id, "failed", error=error, from_status=("queued",))
                        pending.append((done, "failed", job, error))
                    continue
                if connection is None:
                    try:
                        connection = self.transport.connect()
                    except Exception as e:  # a server down: stop, leaving the rest queued
                        self.fatal = self.fatal or f"cannot connect to the mail server: {e}"
                        self.stop.set()
                        return
                claimed = self._commit(ops, pending, job, name)
                if claimed is None or not claimed.claimed:
                    self._count("suppressed" if claimed and claimed.status == "suppressed" else "not_queued")
                    continue
                connection = self._deliver(connection, job, pending)
        finally:
            try:
                self._commit(ops, pending, None, name)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()

    def _commit(
        self, ops: OpsStore, pending: list[_Pending], job: Job | None, worker: str
    ) -> ledger.Claim | None:
        """Commit the pending settlements and, when `job` is given, its claim, in one transaction."""
        from pleasepoint_cli.ops import ledger

        if not pending and job is None:
            return None
        applied, claimed = ledger.settle_and_claim(
            ops,
            [done for done, _, _, _ in pending],
            None if job is None else (job.send_id, job.to),
            now=self.clock(),
            worker=worker,
        )
        for ok, (_, outcome, counted, error) in zip(applied, pending, strict=True):
            if ok:
                self._count(outcome, counted, error)
        pending.clear()
        return claimed

    def _deliver(self, connection: Connection, job: Job, pending: list[_Pending]) -> Connection | None:
        """Hand one claimed message to the connection; its settlement joins `pending` (committed with the
        next claim). Returns the connection, or None when it must be reopened."""
        assert job.data is not None
        try:
            outcome = connection.deliver(job.mail_from, job.to.strip(), job.data, job.send_id)
        except Exception as e:
            error = f"delivery failed: {e}"
            pending.append((ledger_settlement(job.send_id, "failed", error=error), "failed", job, str(e)))
            with contextlib.suppress(Exception):
                connection.close()
            return None  # the next job reconnects
        detail = f"{outcome.code} {outcome.detail}".strip() if outcome.code else outcome.detail
        if outcome.status == "sent":
            done = ledger_settlement(job.send_id, "sent", message_id=job.message_id)
            pending.append((done, "sent", job, None))
        elif outcome.status == "bounced":
            done = ledger_settlement(
                job.send_id, "bounced", message_id=job.message_id, error=detail, suppress_reason="bounced",
                email=job.to,
            )  # fmt: skip
            pending.append((done, "bounced", job, detail))
        elif getattr(outcome, "uncertain", False):  # lost after the whole message was handed over
            done = ledger_settlement(job.send_id, "uncertain", error=detail or "connection lost")
            pending.append((done, "uncertain", job, detail))
        else:
            done = ledger_settlement(job.send_id, "failed", error=detail or "failed")
            pending.append((done, "failed", job, detail))
        return connection


def ledger_settlement(send_id: str, status: str, **fields: Any) -> ledger.Settlement:
    from pleasepoint_cli.ops.ledger import Settlement

    return Settlement(send_id, status, **fields)


class CampaignSend:
    """One `campaign send`: hold the campaign's lock, plan the audience into the ledger, send what is queued.

    Use as a context manager (`with CampaignSend(...) as send: plan = send.plan(); send.queue(plan);
    send.run()`); with `dry_run`, no lock is taken and nothing is written.
    """

    def __init__(
        self,
        db_path: Path,
        campaign_file: Path,
        settings: Settings,
        *,
        now: datetime,
        lock_timeout: float = 30.0,
        base_dir: Path | None = None,
        dry_run: bool = False,
        transport: Transport | None = None,
        build: MessageBuilder | None = None,
        connections: int | None = None,
    ) -> None:
        from pleasepoint_cli.campaign.model import load_campaign
        from pleasepoint_cli.ops import ops_path

        self.db_path = Path(db_path)
        self.ops_file = ops_path(self.db_path)
        self.settings = settings
        self.now = now
        self.lock_timeout = lock_timeout
        self.base_dir = base_dir if base_dir is not None else Path()
        self.dry_run = dry_run
        self._transport = transport
        self._build = build
        self.connections = connections or connections_of(settings)
        self.campaign: Campaign = load_campaign(campaign_file)
        self.slug = self.campaign.slug
        self._stack = contextlib.ExitStack()
        self._started = time.monotonic()
        self.ops: OpsStore | None = None
        self.prepared: PreparedCampaign | None = None
        self.recovered_uncertain = 0
        self.capped = 0

    def clock(self) -> datetime:
        """The run's `now` moved on by the real time elapsed since the run began (ledger times)."""
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    def __enter__(self) -> CampaignSend:
        from pleasepoint_cli.delivery.lock import send_lock
        from pleasepoint_cli.ops import OpsStore, ledger

        try:
            if not self.dry_run:
                self._stack.enter_context(
                    send_lock(
                        self.db_path, f"campaign-{self.slug}", self.lock_timeout, f"campaign {self.slug!r}"
                    )
                )
            self.ops = self._stack.enter_context(
                OpsStore(self.ops_file, busy_timeout=max(self.lock_timeout, 5.0))
            )
            if not self.dry_run:
                self.recovered_uncertain = ledger.mark_uncertain(self.ops, "campaign", self.slug, "")
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _ops(self) -> OpsStore:
        if self.ops is None:
            raise RuntimeError("use CampaignSend as a context manager")
        return self.ops

    def plan(self) -> SendPlan:
        """Who the campaign goes to now, against what the ledger already holds (DuckDB held for this only)."""
        from pleasepoint_cli.campaign.prepare import prepare_campaign
        from pleasepoint_cli.ops.suppression import attach_suppressions

        ops = self._ops()
        as_of = self.now.astimezone(_shop_zone(self.settings)).date()
        with duckdb_step(self.db_path, self.lock_timeout) as store:
            attach_suppressions(store, ops)
            self.prepared = prepare_campaign(store, self.campaign, self.settings, as_of)
            assigned = self.prepared.assign(store)
            emails = dict(
                store.con.execute(
                    "SELECT customer_id, email FROM customers WHERE customer_id IN (SELECT unnest(?))",
                    [[c for c, _ in assigned]],
                ).fetchall()
            )
        from pleasepoint_cli.ops import ledger

        existing = ledger.existing(ops, "campaign", self.slug, "")
        already = Counter(existing[c] for c, _ in assigned if c in existing)
        uncertain = sum(1 for status in existing.values() if status == "uncertain")
        capped: set[str] = set()
        global_cap = self.settings.marketing.cap
        if global_cap is not None:
            from pleasepoint_cli.automate.caps import apply_caps

            fresh = [c for c, _ in assigned if c not in existing]
            decision = apply_caps(
                ops, fresh, at=self.now, source=self.slug, cap=None, global_cap=global_cap,
                exclude=("campaign", self.slug, ""),
            )  # fmt: skip
            capped = set(decision.capped)
        return SendPlan(
            campaign=self.slug,
            name=self.campaign.model.name,
            audience=len(assigned),
            new=sum(1 for c, _ in assigned if c not in existing),
            already=dict(sorted(already.items())),
            uncertain=uncertain,
            recovered_uncertain=self.recovered_uncertain,
            recipients=[(c, v, emails.get(c)) for c, v in assigned],
            capped=capped,
        )

    def queue(self, plan: SendPlan, *, retry_uncertain: bool = False) -> int:
        """Write the plan into the ledger (new rows `queued`, in one transaction); returns the new rows."""
        from pleasepoint_cli.ops import ledger

        if self.dry_run:
            return 0
        assert self.prepared is not None
        names = [v.name for v in self.prepared.variants]
        rows = [
            ledger.PlannedRow(c, e, names[v], "capped", None, "global marketing cap")
            if c in plan.capped
            else ledger.PlannedRow(c, e, names[v])
            for c, v, e in plan.recipients
        ]
        new = ledger.plan_rows(self._ops(), "campaign", self.slug, "", rows, now=self.clock())
        self.capped = len(plan.capped)
        if retry_uncertain:
            ledger.requeue(self._ops(), "campaign", self.slug, "uncertain", "")
        return new

    def jobs(
        self, rows: Sequence[dict[str, Any]], build: MessageBuilder, workers: MessageWorkers | None = None
    ) -> Iterator[Job]:
        """Render and build queued rows batch by batch; DuckDB is opened for each batch's contexts and closed."""
        prepared = self.prepared
        assert prepared is not None

        def contexts_of(customer_ids: list[str]) -> tuple[PreparedCampaign, ContextRows]:
            with duckdb_step(self.db_path, self.lock_timeout) as store:
                return prepared, prepared.context_rows(store, customer_ids)

        return render_jobs(rows, contexts_of, build, self.clock, workers)

    def run(self, *, limit: int | None = None, progress: Progress | None = None) -> SendSummary:
        """Send the queued rows (at most `limit`), then summarise."""
        from pleasepoint_cli.ops import ledger

        ops = self._ops()
        rows = [] if self.dry_run else ledger.queued(ops, "campaign", self.slug, "")
        if limit is not None:
            rows = rows[: max(limit, 0)]
        sender = None
        counts = RunCounts()
        if rows:
            if self.prepared is None:
                self.plan()
            sender = Sender(
                self.ops_file,
                self._transport or default_transport(self.settings, self.base_dir),
                connections=min(self.connections, len(rows)),
                clock=self.clock,
            )
            with contextlib.ExitStack() as stack:
                build = self._build
                workers = None
                if build is None:
                    builder = default_builder(self.settings, self.base_dir)
                    build = as_function(builder)
                    workers = message_workers(builder, len(rows))
                    if workers is not None:
                        stack.enter_context(workers)
                counts = sender.run(self.jobs(rows, build, workers), len(rows), progress)
        totals = ledger.counts(ops, "campaign", self.slug, "")
        return SendSummary(
            campaign=self.slug,
            kind="campaign",
            dry_run=self.dry_run,
            planned=len(rows),
            run=counts,
            ledger=totals.counts,
            skipped_reasons=ledger.skipped_reasons(ops, "campaign", self.slug, ""),
            uncertain=totals.counts["uncertain"],
            recovered_uncertain=self.recovered_uncertain,
            aborted=sender.fatal if sender else None,
            capped=self.capped,
        )


def _shop_zone(settings: Settings) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.shop.timezone)


def read_test_addresses(path: Path) -> list[str]:
    """The addresses of a test CSV: an `email` column, else the first column; blank lines skipped."""
    from pleasepoint_cli.ops.suppression import _valid_address

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError) as e:
        raise InputDataError(f"{path}: cannot read the file: {e}") from e
    if not rows:
        raise InputDataError(f"{path}: no addresses in the file.")
    header = [cell.strip().lower() for cell in rows[0]]
    column, body, first = (header.index("email"), rows[1:], 2) if "email" in header else (0, rows, 1)
    addresses: list[str] = []
    for number, row in enumerate(body, start=first):
        address = row[column].strip() if column < len(row) else ""
        if not _valid_address(address):
            raise InputDataError(f"{path}:{number}: {address!r} is not an email address.")
        addresses.append(address)
    return list(dict.fromkeys(addresses))


def send_test(
    db_path: Path,
    campaign_file: Path,
    settings: Settings,
    addresses: Sequence[str],
    *,
    now: datetime,
    customer: str | None = None,
    per_variant: int = 1,
    lock_timeout: float = 30.0,
    base_dir: Path | None = None,
    transport: Transport | None = None,
    build: MessageBuilder | None = None,
    progress: Progress | None = None,
) -> SendSummary:
    """The guide's test send: render for real customers (the first `per_variant` of each variant, or one
    given customer) and send each rendering to every test address, subject prefixed [TEST]. Recorded in the
    ledger as kind `test` under a fresh period, so it never counts as, or blocks, the real send."""
    from pleasepoint_cli.campaign.model import load_campaign
    from pleasepoint_cli.campaign.prepare import prepare_campaign
    from pleasepoint_cli.ops import OpsStore, ledger, ops_path
    from pleasepoint_cli.ops.suppression import attach_suppressions, iso

    campaign = load_campaign(campaign_file)
    as_of = now.astimezone(_shop_zone(settings)).date()
    ops_file = ops_path(Path(db_path))
    with OpsStore(ops_file, busy_timeout=max(lock_timeout, 5.0)) as ops:
        with duckdb_step(Path(db_path), lock_timeout) as store:
            attach_suppressions(store, ops)
            prepared = prepare_campaign(store, campaign, settings, as_of)
            if customer is not None:
                found = store.con.execute(
                    "SELECT count(*) FROM customers WHERE customer_id = ?", [customer]
                ).fetchall()
                if not found[0][0]:
                    raise NotFoundError(f"no customer {customer!r} in the database.")
                variant = prepared.variant_of(store, customer)
                picks = [(customer, variant if variant is not None else 0)]
            else:
                seen: Counter[int] = Counter()
                picks = []
                for c, v in prepared.assign(store):
                    if seen[v] < per_variant:
                        picks.append((c, v))
                        seen[v] += 1
            if not picks:
                raise NotFoundError(
                    f"campaign {campaign.slug!r} has nobody to render the test for; pass --customer ID."
                )
            contexts = prepared.contexts(store, [c for c, _ in picks])
        rendered = [(c, prepared.render(contexts[c], v)) for c, v in picks if c in contexts]
        nonce = secrets.token_hex(4)
        build = build or default_message_builder(settings, base_dir or Path())
        jobs: list[Job] = []
        planned: list[tuple[str, ledger.PlannedRow]] = []
        for address in addresses:
            period = f"{iso(now)}#{nonce}|{address}"
            for customer_id, email in rendered:
                planned.append((period, ledger.PlannedRow(customer_id, address, email.variant)))
                job = Job(
                    send_id=ledger.make_send_id("test", campaign.slug, period, customer_id),
                    customer_id=customer_id,
                )
                test_email = dataclasses.replace(
                    email, to=address, to_name="", subject=TEST_PREFIX + email.subject
                )
                jobs.append(built(job, test_email, build, now))
        for period, row in planned:
            ledger.plan_rows(ops, "test", campaign.slug, period, [row], now=now)
        sender = Sender(
            ops_file,
            transport or default_transport(settings, base_dir or Path()),
            connections=min(connections_of(settings), max(len(jobs), 1)),
            clock=lambda: now,
        )
        counts = sender.run(iter(jobs), len(jobs), progress)
        totals = Counter(
            str(r["status"])
            for r in ops.rows(
                "SELECT status FROM ledger WHERE kind = 'test' AND source = ? AND period LIKE ?",
                [campaign.slug, f"{iso(now)}#{nonce}|%"],
            )
        )
    return SendSummary(
        campaign=campaign.slug,
        kind="test",
        dry_run=False,
        planned=len(jobs),
        run=counts,
        ledger={s: totals.get(s, 0) for s in ledger.STATUSES},
        skipped_reasons={},
        uncertain=0,
        recovered_uncertain=0,
        aborted=sender.fatal,
    )
