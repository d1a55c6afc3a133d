"""A plain-Python evaluation of audience rules over an in-memory shop, written from docs/audiences.md.

It shares no code with the SQL compiler (only the rule models it reads), so the property test that compares
the two checks the compiler against an independent reading of the spec.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from pleasepoint_cli.audience.model import (
    AgeLeaf,
    AllRule,
    AnyRule,
    AttributeLeaf,
    BirthdayLeaf,
    BoughtLeaf,
    ClusterLeaf,
    ConsentLeaf,
    ContactableLeaf,
    ConversionLeaf,
    EngagementLeaf,
    FieldLeaf,
    IntRange,
    NearStoreLeaf,
    NotRule,
    NumberRange,
    OrdersLeaf,
    PatternLeaf,
    RecencyLeaf,
    Rule,
    SpendLeaf,
    StateLeaf,
)
from pleasepoint_cli.store.connection import Store


@dataclass
class Customer:
    customer_id: str
    email: str | None = None
    email_consent: bool | None = None
    lat: float | None = None
    lon: float | None = None
    birth_date: date | None = None
    city: str | None = None
    gender: str | None = None
    country: str | None = None
    postal_code: str | None = None
    language: str | None = None
    erased_at: datetime | None = None


@dataclass
class Line:
    order_id: str
    customer_id: str
    ordered_at: datetime
    product_id: str
    quantity: float
    unit_price: float
    store_id: str | None

    @property
    def amount(self) -> float:
        return self.quantity * self.unit_price


@dataclass
class Run:
    run_id: int
    name: str
    created_at: datetime


@dataclass
class Send:
    """A ledger row: a message to a customer (times are shop-local, like the as-of moment)."""

    send_id: str
    customer_id: str
    source: str
    kind: str = "campaign"  # campaign | automation | test
    status: str = "sent"
    sent_at: datetime | None = None


@dataclass
class Ev:
    """An event matched to a send: open (subkind machine for a privacy proxy), click, delivered..."""

    send_id: str
    kind: str
    occurred_at: datetime
    subkind: str = ""


@dataclass
class Shop:
    customers: list[Customer] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    products: dict[str, str | None] = field(default_factory=dict)  # product_id -> category
    stores: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # (customer, key) -> value
    suppressed_emails: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    assignments: dict[tuple[int, str], int] = field(default_factory=dict)  # (run, customer) -> cluster
    sends: list[Send] = field(default_factory=list)
    events: list[Ev] = field(default_factory=list)


def email_hash(email: str) -> str:
    """How the suppression list keys an address: sha256 of the trimmed, lower-cased text."""
    return hashlib.sha256(email.strip(" ").lower().encode()).hexdigest()


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """All rows in one INSERT (one statement per table keeps a hundred-row shop fast to load)."""
    if rows:
        row = "(" + ", ".join("?" for _ in rows[0]) + ")"
        values = ", ".join(row for _ in rows)
        con.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", [v for r in rows for v in r])


def load(con: duckdb.DuckDBPyConnection, shop: Shop) -> None:
    """Write the shop into a migrated, empty store."""
    _insert(
        con,
        "customers",
        "customer_id, email, email_consent, lat, lon, birth_date, city, gender, country, postal_code, language, "
        "erased_at",
        [
            (
                c.customer_id,
                c.email,
                c.email_consent,
                c.lat,
                c.lon,
                c.birth_date,
                c.city,
                c.gender,
                c.country,
                c.postal_code,
                c.language,
                c.erased_at,
            )
            for c in shop.customers
        ],
    )
    _insert(con, "products", "product_id, category", list(shop.products.items()))
    _insert(con, "stores", "store_id, lat, lon", [(s, lat, lon) for s, (lat, lon) in shop.stores.items()])
    _insert(
        con,
        "order_lines",
        "order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount, store_id",
        [
            (
                line.order_id,
                line.customer_id,
                line.ordered_at,
                line.product_id,
                line.quantity,
                line.unit_price,
                line.amount,
                line.store_id,
            )
            for line in shop.lines
        ],
    )
    when = datetime(2024, 1, 1)
    _insert(
        con,
        "customer_attributes",
        "customer_id, key, value, source, set_at",
        [(c, key, value, "test", when) for (c, key), value in shop.attributes.items()],
    )
    _insert(
        con,
        "suppressions",
        "email_sha256, reason, created_at",
        [(h, "unsubscribed", when) for h in dict.fromkeys(email_hash(e) for e in shop.suppressed_emails)],
    )
    _insert(
        con,
        "persona_runs",
        "run_id, name, created_at, k, customers, manifest",
        [(run.run_id, run.name, run.created_at, 3, 0, json.dumps({})) for run in shop.runs],
    )
    _insert(
        con,
        "persona_assignments",
        "run_id, customer_id, cluster",
        [(run_id, c, cluster) for (run_id, c), cluster in shop.assignments.items()],
    )


def register_engagement(store: Store, shop: Shop) -> None:
    """Hand the shop's sends and events to DuckDB the way the operational store's are (ops_sends, ops_events)."""
    from pleasepoint_cli.events.views import register_rows

    by_id = {s.send_id: s for s in shop.sends}
    register_rows(
        store,
        [(s.send_id, s.kind, s.source, s.customer_id, s.status, s.sent_at) for s in shop.sends],
        [
            (
                e.send_id,
                by_id[e.send_id].customer_id,
                by_id[e.send_id].kind,
                by_id[e.send_id].source,
                e.kind,
                e.subkind,
                e.occurred_at,
            )
            for e in shop.events
            if e.send_id in by_id
        ],
    )


def valid_email(email: str | None) -> bool:
    """An address with one @, a dot-atom local part and a dotted domain ending in a 2+ letter TLD (ASCII)."""
    if email is None:
        return False
    text = email.strip(" ")
    if not text.isascii() or text.count("@") != 1:
        return False
    local, domain = text.split("@")
    specials = set("!#$%&'*+/=?^_`{|}~-")
    atoms = local.split(".")
    if not all(atom and all(ch.isalnum() or ch in specials for ch in atom) for atom in atoms):
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    *hosts, tld = labels
    for label in hosts:
        if not label or not all(ch.isalnum() or ch == "-" for ch in label):
            return False
        if label.startswith("-") or label.endswith("-"):
            return False
    return len(tld) >= 2 and tld.isalpha()


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))


class Oracle:
    """Evaluates rules customer by customer, the slow and obvious way."""

    def __init__(
        self,
        shop: Shop,
        as_of: datetime,
        states: tuple[int, int, int] = (182, 365, 730),
        attribution_days: int = 7,
    ) -> None:
        self.attribution_days = attribution_days
        self.shop = shop
        self.as_of = as_of
        self.today = as_of.date()
        self.states = states
        self.lines: dict[str, list[Line]] = defaultdict(list)
        for line in shop.lines:
            if line.ordered_at <= as_of:
                self.lines[line.customer_id].append(line)
        self.suppressed = {email_hash(e) for e in shop.suppressed_emails}

    # --- facts -------------------------------------------------------------------------------------------

    def purchases(self, c: Customer) -> list[Line]:
        return [line for line in self.lines[c.customer_id] if line.quantity > 0]

    def recency(self, c: Customer) -> int | None:
        purchases = self.purchases(c)
        if not purchases:
            return None
        return (self.today - max(line.ordered_at for line in purchases).date()).days

    def preferred_store(self, c: Customer) -> str | None:
        orders: dict[str, set[str]] = defaultdict(set)
        latest: dict[str, datetime] = {}
        for line in self.purchases(c):
            if line.store_id is None:
                continue
            orders[line.store_id].add(line.order_id)
            latest[line.store_id] = max(latest.get(line.store_id, line.ordered_at), line.ordered_at)
        if not orders:
            return None
        # Most orders, then the latest order, then the smallest id (a stable sort keeps that last order).
        best = sorted(sorted(orders), key=lambda s: (len(orders[s]), latest[s]), reverse=True)
        return best[0]

    def guards(self, c: Customer) -> bool:
        return (
            bool(c.email_consent)
            and valid_email(c.email)
            and not self.is_suppressed(c)
            and c.erased_at is None
        )

    def is_suppressed(self, c: Customer) -> bool:
        return c.email is not None and email_hash(c.email) in self.suppressed

    # --- rules -------------------------------------------------------------------------------------------

    def select(self, rule: Rule, marketing: bool) -> list[str]:
        return sorted(
            c.customer_id
            for c in self.shop.customers
            if (not marketing or self.guards(c)) and self.holds(rule, c)
        )

    def holds(self, rule: Rule, c: Customer) -> bool:
        if isinstance(rule, AllRule):
            return all(self.holds(r, c) for r in rule.all)
        if isinstance(rule, AnyRule):
            return any(self.holds(r, c) for r in rule.any)
        if isinstance(rule, NotRule):
            return not self.holds(rule.not_, c)
        if isinstance(rule, ClusterLeaf):
            return self.in_cluster(rule, c)
        if isinstance(rule, AttributeLeaf):
            return self.attribute(rule, c)
        if isinstance(rule, RecencyLeaf):
            recency = self.recency(c)
            return recency is not None and in_range(recency, rule.recency_days)
        if isinstance(rule, OrdersLeaf):
            return in_range(len({line.order_id for line in self.purchases(c)}), rule.orders)
        if isinstance(rule, SpendLeaf):
            return in_range(round(sum(line.amount for line in self.lines[c.customer_id]), 2), rule.spend)
        if isinstance(rule, AgeLeaf):
            if c.birth_date is None:
                return False
            b = c.birth_date
            age = self.today.year - b.year - ((self.today.month, self.today.day) < (b.month, b.day))
            return in_range(age, rule.age)
        if isinstance(rule, BoughtLeaf):
            return self.bought(rule, c)
        if isinstance(rule, PatternLeaf):
            return self.pattern(rule, c)
        if isinstance(rule, BirthdayLeaf):
            return self.birthday(rule.birthday.within_days, c)
        if isinstance(rule, NearStoreLeaf):
            return self.near(rule, c)
        if isinstance(rule, ConsentLeaf):
            return bool(c.email_consent) == rule.consent
        if isinstance(rule, ContactableLeaf):
            return (valid_email(c.email) and not self.is_suppressed(c)) == rule.contactable
        if isinstance(rule, StateLeaf):
            recency = self.recency(c)
            if recency is None:
                return False
            active, inactive, hibernating = self.states
            state = (
                "active"
                if recency < active
                else "inactive"
                if recency < inactive
                else "hibernating"
                if recency < hibernating
                else "lost"
            )
            return state in rule.state
        if isinstance(rule, FieldLeaf):
            spec = rule.field
            value = getattr(c, spec.name)
            return text_ops(
                value,
                spec.equals,
                spec.not_equals,
                spec.in_,
                spec.not_in,
                spec.exists,
                present=value is not None and value.strip(" ") != "",
            )
        if isinstance(rule, EngagementLeaf):
            return self.engagement(rule, c)
        if isinstance(rule, ConversionLeaf):
            last = self.last_conversion(c)
            return last is not None and in_range((self.today - last).days, rule.last_conversion_days)
        raise TypeError(rule)

    def _in_window(self, moment: datetime | None, within_days: int | None) -> bool:
        if moment is None or moment > self.as_of:
            return False
        return within_days is None or (self.today - moment.date()).days <= within_days

    def _counts(self, send: Send, campaign: str | None, automation: str | None) -> bool:
        if campaign is not None:
            return send.kind == "campaign" and send.source == campaign
        if automation is not None:
            return send.kind == "automation" and send.source == automation
        return send.kind != "test"

    def engagement(self, rule: EngagementLeaf, c: Customer) -> bool:
        spec = rule.engagement
        mine = {
            s.send_id: s
            for s in self.shop.sends
            if s.customer_id == c.customer_id and self._counts(s, spec.campaign, spec.automation)
        }
        if spec.received is not None:
            received = sum(
                1
                for s in mine.values()
                if s.status == "sent" and self._in_window(s.sent_at, spec.within_days)
            )
            return in_range(received, spec.received)
        kind = "open" if spec.opened is not None else "click"
        wanted = spec.opened if spec.opened is not None else spec.clicked
        happened = any(
            e.send_id in mine
            and e.kind == kind
            and (kind != "open" or e.subkind != "machine" or bool(spec.machine_opens))
            and self._in_window(e.occurred_at, spec.within_days)
            for e in self.shop.events
        )
        return happened == wanted

    def last_conversion(self, c: Customer) -> date | None:
        """The day of the latest purchase made within attribution_days after a click on one of our emails."""
        mine = {s.send_id for s in self.shop.sends if s.customer_id == c.customer_id and s.kind != "test"}
        clicks = [e.occurred_at for e in self.shop.events if e.send_id in mine and e.kind == "click"]
        days = [
            line.ordered_at.date()
            for line in self.purchases(c)
            if any(t <= line.ordered_at <= t + timedelta(days=self.attribution_days) for t in clicks)
        ]
        return max(days, default=None)

    def in_cluster(self, rule: ClusterLeaf, c: Customer) -> bool:
        ref = rule.cluster
        name = ref.name if ref.run == "latest" or isinstance(ref.run, int) else ref.run
        runs = [
            r
            for r in self.shop.runs
            if (not isinstance(ref.run, int) or r.run_id == ref.run) and (name is None or r.name == name)
        ]
        if not runs:
            return False
        run = max(runs, key=lambda r: (r.created_at, r.run_id))
        return self.shop.assignments.get((run.run_id, c.customer_id)) == ref.cluster

    def attribute(self, rule: AttributeLeaf, c: Customer) -> bool:
        value = self.shop.attributes.get((c.customer_id, rule.attribute))
        if not text_ops(
            value, rule.equals, rule.not_equals, rule.in_, rule.not_in, rule.exists, present=value is not None
        ):
            return False
        bounds = NumberRange.model_construct(gte=rule.gte, lte=rule.lte, gt=rule.gt, lt=rule.lt)
        if all(v is None for v in (rule.gte, rule.lte, rule.gt, rule.lt)):
            return True
        try:
            number = float(value) if value is not None else None
        except ValueError:
            number = None
        return number is not None and in_range(number, bounds)

    def bought(self, rule: BoughtLeaf, c: Customer) -> bool:
        spec = rule.bought
        for line in self.purchases(c):
            if spec.within_days is not None and (self.today - line.ordered_at.date()).days > spec.within_days:
                continue
            if spec.category is not None and self.shop.products.get(line.product_id) in spec.category:
                return True
            if spec.product is not None and line.product_id in spec.product:
                return True
        return False

    def pattern(self, rule: PatternLeaf, c: Customer) -> bool:
        days = sorted({line.ordered_at.date() for line in self.purchases(c)})
        if len(days) < 3:
            return False
        gap = statistics.median((b - a).days for a, b in itertools.pairwise(days))
        kind = (
            "frequent"
            if gap < 4
            else "weekly"
            if gap < 10
            else "fortnightly"
            if gap < 20
            else "monthly"
            if gap <= 40
            else "quarterly"
            if gap <= 120
            else "occasional"
        )
        if kind != rule.pattern:
            return False
        if rule.bought_within_days is None:
            return True
        return (self.today - days[-1]).days <= rule.bought_within_days

    def birthday(self, within_days: int, c: Customer) -> bool:
        if c.birth_date is None:
            return False
        for year in (self.today.year, self.today.year + 1):
            month, day = c.birth_date.month, c.birth_date.day
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            if (month, day) == (2, 29) and not leap:
                day = 28
            if self.today <= date(year, month, day) <= self.today + timedelta(days=within_days):
                return True
        return False

    def near(self, rule: NearStoreLeaf, c: Customer) -> bool:
        spec = rule.near_store
        if c.lat is None or c.lon is None:
            return False
        if spec.store == "preferred":
            preferred = self.preferred_store(c)
            candidates = [preferred] if preferred is not None else []
        elif spec.store == "any":
            candidates = list(self.shop.stores)
        else:
            candidates = [spec.store]
        for store_id in candidates:
            lat, lon = self.shop.stores.get(store_id, (None, None))
            if lat is not None and lon is not None and haversine_km(c.lat, c.lon, lat, lon) <= spec.km:
                return True
        return False


def in_range(value: float, bounds: IntRange | NumberRange) -> bool:
    return (
        (bounds.gte is None or value >= bounds.gte)
        and (bounds.lte is None or value <= bounds.lte)
        and (bounds.gt is None or value > bounds.gt)
        and (bounds.lt is None or value < bounds.lt)
    )


def text_ops(
    value: str | None,
    equals: str | None,
    not_equals: str | None,
    in_: Any,
    not_in: Any,
    exists: bool | None,
    *,
    present: bool,
) -> bool:
    return (
        (equals is None or value == equals)
        and (not_equals is None or value != not_equals)
        and (in_ is None or value in in_)
        and (not_in is None or value not in not_in)
        and (exists is None or present == exists)
    )
