"""Compiling a rule to one parameterised DuckDB query: `SELECT customer_id FROM customers c WHERE ...`.

Values always travel as parameters; identifiers come only from fixed whitelists in this module. The
per-customer facts a rule needs (orders, pattern, preferred store) are aggregated once, in CTEs joined to
`customers`, never per customer. Every predicate is a non-NULL boolean, so `not` means what it says for
customers without orders, attributes or coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.audience import facts
from pleasepoint_cli.audience.model import (
    PATTERN_GAPS,
    PATTERN_MIN_DAYS,
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
    EngagementSpec,
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

if TYPE_CHECKING:
    from pleasepoint_cli.config import Settings

EMAIL_PATTERN = (
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
"""A valid address, matched against the whole trimmed email: dot-atom local part, dotted domain, TLD."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


VALID_EMAIL_SQL = (
    f"COALESCE(trim(c.email) <> '' AND regexp_full_match(trim(c.email), {_literal(EMAIL_PATTERN)}), FALSE)"
)
NOT_SUPPRESSED_SQL = (
    "NOT COALESCE(sha256(lower(trim(c.email))) IN (SELECT email_sha256 FROM suppressions), FALSE)"
)
GUARDS: tuple[tuple[str, str], ...] = (
    ("email consent", "COALESCE(c.email_consent, FALSE)"),
    ("valid email", VALID_EMAIL_SQL),
    ("not suppressed", NOT_SUPPRESSED_SQL),
    ("not erased", "c.erased_at IS NULL"),
)
"""The marketing guards, in funnel order: added to every marketing audience whatever the rule says."""

CUSTOMER_FIELDS = {
    "city": "c.city",
    "gender": "c.gender",
    "country": "c.country",
    "postal_code": "c.postal_code",
    "language": "c.language",
}


@dataclass(frozen=True)
class CompiledAudience:
    """A query selecting the audience's customer_id column, with its `?` parameters in order."""

    sql: str
    params: list[Any]
    needs_ops: bool = False
    """The rule reads `ops_sends` / `ops_events`: register them first (`events.views.ensure_ops_views`)."""


@dataclass(frozen=True)
class Fragment:
    """A piece of SQL and the values of its `?` placeholders, in order."""

    sql: str
    params: tuple[Any, ...] = ()


def _join(parts: Iterable[Fragment], separator: str) -> Fragment:
    parts = list(parts)
    return Fragment(separator.join(p.sql for p in parts), tuple(v for p in parts for v in p.params))


def _and(parts: Iterable[Fragment]) -> Fragment:
    joined = _join(parts, " AND ")
    return Fragment(f"({joined.sql})", joined.params) if joined.sql else Fragment("TRUE")


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def normalize_as_of(as_of: datetime | date, settings: Settings | None = None) -> datetime:
    """The as-of moment as a naive shop-local timestamp; a bare date means the end of that day."""
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            return as_of
        from zoneinfo import ZoneInfo

        from pleasepoint_cli.config import Settings

        zone = ZoneInfo((settings or Settings()).shop.timezone)
        return as_of.astimezone(zone).replace(tzinfo=None)
    return datetime.combine(as_of, time.max)


def _years_before(day: date, years: int) -> date | None:
    """The same calendar day `years` earlier (29 February -> 28 February); None before year 1."""
    if day.year - years < 1:
        return None
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


class RuleCompiler:
    """Turns rules into boolean SQL over `customers c` and the fact CTEs they need (`needs`)."""

    def __init__(
        self, as_of: datetime | date, settings: Settings | None = None, *, guarded: bool = False
    ) -> None:
        from pleasepoint_cli.config import Settings

        self.guarded = guarded
        """The query ANDs the marketing guards (`guards`) with every predicate compiled here: a `consent` or
        `contactable` leaf then repeats a guard, and is a constant. The blog's rule says both: its count ran
        the address check and the suppression lookup twice per customer."""
        self.settings = settings or Settings()
        self.as_of = normalize_as_of(as_of, self.settings)
        self.today = self.as_of.date()
        self.needs: set[str] = set()
        self.order_columns: set[str] = set()  # of facts.ORDER_FACTS, read by the predicates compiled
        self.pattern_recent_days: list[int | None] = []
        """`bought_within_days` of every pattern leaf: when all have one, only recent buyers need a pattern."""
        self.preferred_km: list[float] = []
        """`km` of every preferred-store leaf: only customers that near some store need their preferred one."""

    # --- assembling the query ----------------------------------------------------------------------------

    def sources(self) -> tuple[Fragment, str]:
        """The `WITH ...` clause (empty if none) and `FROM customers c LEFT JOIN ...` for the needed facts.

        Call after compiling every predicate of the query: compiling records which facts are needed.
        """
        ctes: list[Fragment] = []
        joins = ["FROM customers c"]
        if self.order_columns:
            sql = facts.order_facts_sql(until_param=True, columns=self.order_columns)
            ctes.append(Fragment(f"order_facts AS ({sql})", (self.as_of,)))
            joins.append("LEFT JOIN order_facts f ON f.customer_id = c.customer_id")
        if "pattern" in self.needs:
            recent = self._recent_buyers()
            sql = facts.pattern_facts_sql(until_param=True, customers_sql=recent.sql if recent else None)
            ctes.append(
                Fragment(f"pattern_facts AS ({sql})", (*(recent.params if recent else ()), self.as_of))
            )
            joins.append("LEFT JOIN pattern_facts pf ON pf.customer_id = c.customer_id")
        if "preferred" in self.needs:
            near = self._near_some_store(max(self.preferred_km))
            sql = facts.preferred_store_sql(until_param=True, customers_sql=near.sql)
            ctes.append(Fragment(f"preferred_store AS ({sql})", (*near.params, self.as_of)))
            joins.append("LEFT JOIN preferred_store ps ON ps.customer_id = c.customer_id")
            joins.append("LEFT JOIN stores ps_store ON ps_store.store_id = ps.store_id")
        with_sql = _join(ctes, ",\n")
        with_clause = Fragment(f"WITH {with_sql.sql}\n", with_sql.params) if ctes else Fragment("")
        return with_clause, "\n".join(joins)

    def _recent_buyers(self) -> Fragment | None:
        """Customers with a purchase in the widest `bought_within_days` of the pattern leaves (None: all)."""
        if not self.pattern_recent_days or None in self.pattern_recent_days:
            return None
        days = max(d for d in self.pattern_recent_days if d is not None)
        since = datetime.combine(self._days_before(days), time.min)
        return Fragment(
            "SELECT customer_id FROM purchase_lines WHERE quantity > 0 AND ordered_at >= ? AND ordered_at <= ?",
            (since, self.as_of),
        )

    @staticmethod
    def _near_some_store(km: float) -> Fragment:
        """Customers within `km` of at least one store (the latitude test first: it is cheap and necessary)."""
        distance = facts.haversine_km_sql("c2.lat", "c2.lon", "s.lat", "s.lon")
        return Fragment(
            "SELECT c2.customer_id FROM customers c2, stores s "
            f"WHERE abs(c2.lat - s.lat) <= ? AND {distance} <= ?",
            (facts.latitude_span_degrees(km), km),
        )

    def guards(self) -> list[tuple[str, Fragment]]:
        """The marketing guards as (label, predicate)."""
        return [(label, Fragment(sql)) for label, sql in GUARDS]

    # --- predicates --------------------------------------------------------------------------------------

    def predicate(self, rule: Rule) -> Fragment:
        """A boolean, never NULL, SQL expression true for the customers the rule selects."""
        if isinstance(rule, AllRule):
            return _and(self.predicate(r) for r in rule.all)
        if isinstance(rule, AnyRule):
            joined = _join((self.predicate(r) for r in rule.any), " OR ")
            return Fragment(f"({joined.sql})", joined.params)
        if isinstance(rule, NotRule):
            inner = self.predicate(rule.not_)
            return Fragment(f"(NOT {inner.sql})", inner.params)
        leaf = self._leaf(rule)
        return Fragment(f"COALESCE({leaf.sql}, FALSE)", leaf.params)

    def _leaf(self, rule: Rule) -> Fragment:
        if isinstance(rule, ClusterLeaf):
            return self._cluster(rule)
        if isinstance(rule, AttributeLeaf):
            return self._attribute(rule)
        if isinstance(rule, RecencyLeaf):
            return self._recency(rule.recency_days)
        if isinstance(rule, OrdersLeaf):
            self.order_columns.add("orders")
            return _bounds("COALESCE(f.orders, 0)", rule.orders)
        if isinstance(rule, SpendLeaf):
            self.order_columns.add("spend")
            return _bounds("COALESCE(f.spend, 0.0)", rule.spend)
        if isinstance(rule, AgeLeaf):
            return self._age(rule.age)
        if isinstance(rule, BoughtLeaf):
            return self._bought(rule)
        if isinstance(rule, PatternLeaf):
            return self._pattern(rule)
        if isinstance(rule, BirthdayLeaf):
            return self._birthday(rule.birthday.within_days)
        if isinstance(rule, NearStoreLeaf):
            return self._near_store(rule)
        if isinstance(rule, ConsentLeaf):
            if self.guarded:  # the guard holds consent: true
                return Fragment("TRUE" if rule.consent else "FALSE")
            return Fragment("COALESCE(c.email_consent, FALSE) = ?", (rule.consent,))
        if isinstance(rule, ContactableLeaf):
            if self.guarded:  # the guards hold a valid address, not suppressed
                return Fragment("TRUE" if rule.contactable else "FALSE")
            return Fragment(f"({VALID_EMAIL_SQL} AND {NOT_SUPPRESSED_SQL}) = ?", (rule.contactable,))
        if isinstance(rule, StateLeaf):
            return self._states(rule.state)
        if isinstance(rule, EngagementLeaf):
            self.needs.add("ops")
            return self._engagement(rule.engagement)
        if isinstance(rule, ConversionLeaf):
            self.needs.add("ops")
            return self._conversion(rule.last_conversion_days)
        if isinstance(rule, FieldLeaf):
            spec = rule.field
            return _text_operators(
                CUSTOMER_FIELDS[spec.name], spec.equals, spec.not_equals, spec.in_, spec.not_in, spec.exists
            )
        raise TypeError(f"not a rule: {rule!r}")

    def _cluster(self, rule: ClusterLeaf) -> Fragment:
        ref = rule.cluster
        conditions: list[Fragment] = []
        if isinstance(ref.run, int):
            conditions.append(Fragment("run_id = ?", (ref.run,)))
        elif ref.run != "latest":
            conditions.append(Fragment("name = ?", (ref.run,)))
        if ref.name is not None:
            conditions.append(Fragment("name = ?", (ref.name,)))
        where = _and(conditions)
        return Fragment(
            "c.customer_id IN (SELECT customer_id FROM persona_assignments WHERE cluster = ? AND run_id = "
            f"(SELECT run_id FROM persona_runs WHERE {where.sql} "
            "ORDER BY created_at DESC, run_id DESC LIMIT 1))",
            (ref.cluster, *where.params),
        )

    def _attribute(self, rule: AttributeLeaf) -> Fragment:
        def having(condition: str, *params: Any) -> Fragment:
            return Fragment(
                "c.customer_id IN (SELECT customer_id FROM customer_attributes "
                f"WHERE key = ? AND {condition})",
                (rule.attribute, *params),
            )

        def negated(fragment: Fragment) -> Fragment:
            return Fragment(f"NOT {fragment.sql}", fragment.params)

        parts: list[Fragment] = []
        if rule.equals is not None:
            parts.append(having("value = ?", rule.equals))
        if rule.not_equals is not None:
            parts.append(negated(having("value = ?", rule.not_equals)))
        if rule.in_ is not None:
            parts.append(having(f"value IN ({_placeholders(rule.in_)})", *rule.in_))
        if rule.not_in is not None:
            parts.append(negated(having(f"value IN ({_placeholders(rule.not_in)})", *rule.not_in)))
        if rule.exists is not None:
            parts.append(having("TRUE") if rule.exists else negated(having("TRUE")))
        for op, value in (("gte", rule.gte), ("lte", rule.lte), ("gt", rule.gt), ("lt", rule.lt)):
            if value is not None:
                parts.append(having(f"TRY_CAST(value AS DOUBLE) {_OPS[op]} ?", value))
        return _and(parts)

    def _recency(self, bounds: IntRange) -> Fragment:
        # recency = today - last purchase day, so each bound on recency is a bound on that day.
        self.order_columns.add("last_purchase_day")
        parts = []
        for op, value in (("gte", bounds.gte), ("lte", bounds.lte), ("gt", bounds.gt), ("lt", bounds.lt)):
            if value is not None:
                parts.append(Fragment(f"f.last_purchase_day {_FLIPPED[op]} ?", (self._days_before(value),)))
        return _and(parts)

    def _days_before(self, days: int) -> date:
        return self.today - timedelta(days=min(days, (self.today - date.min).days))

    def _states(self, states: Sequence[str]) -> Fragment:
        from pleasepoint_cli.recency import state_ranges

        ranges = state_ranges(self.settings.states)
        parts = []
        for name in states:
            low, high = ranges[name]
            parts.append(self._recency(IntRange(gte=low, lt=high)))
        joined = _join(parts, " OR ")
        return Fragment(f"({joined.sql})", joined.params)

    def _age(self, bounds: IntRange) -> Fragment:
        # age >= n  <=>  born on or before the same calendar day n years ago.
        def at_least(years: int) -> Fragment:
            limit = _years_before(self.today, years)
            return Fragment("c.birth_date <= ?", (limit,)) if limit else Fragment("FALSE")

        def below(years: int) -> Fragment:
            limit = _years_before(self.today, years)
            return Fragment("c.birth_date > ?", (limit,)) if limit else Fragment("c.birth_date IS NOT NULL")

        parts = []
        if bounds.gte is not None:
            parts.append(at_least(bounds.gte))
        if bounds.gt is not None:
            parts.append(at_least(bounds.gt + 1))
        if bounds.lte is not None:
            parts.append(below(bounds.lte + 1))
        if bounds.lt is not None:
            parts.append(below(bounds.lt))
        return _and(parts)

    def _bought(self, rule: BoughtLeaf) -> Fragment:
        spec = rule.bought
        conditions = [Fragment("ol.quantity > 0 AND ol.ordered_at <= ?", (self.as_of,))]
        if spec.within_days is not None:
            since = datetime.combine(self._days_before(spec.within_days), time.min)
            conditions.append(Fragment("ol.ordered_at >= ?", (since,)))
        if spec.category is not None:
            source = "purchase_lines ol JOIN products p ON p.product_id = ol.product_id"
            conditions.append(
                Fragment(f"p.category IN ({_placeholders(spec.category)})", tuple(spec.category))
            )
        else:
            assert spec.product is not None
            source = "purchase_lines ol"
            conditions.append(
                Fragment(f"ol.product_id IN ({_placeholders(spec.product)})", tuple(spec.product))
            )
        where = _and(conditions)
        return Fragment(
            f"c.customer_id IN (SELECT ol.customer_id FROM {source} WHERE {where.sql})", where.params
        )

    def _pattern(self, rule: PatternLeaf) -> Fragment:
        self.needs.add("pattern")
        self.pattern_recent_days.append(rule.bought_within_days)
        low, low_inclusive, high, high_inclusive = PATTERN_GAPS[rule.pattern]
        parts = [Fragment("pf.purchase_days >= ?", (PATTERN_MIN_DAYS,))]
        if low is not None:
            parts.append(Fragment(f"pf.median_gap_days {'>=' if low_inclusive else '>'} ?", (low,)))
        if high is not None:
            parts.append(Fragment(f"pf.median_gap_days {'<=' if high_inclusive else '<'} ?", (high,)))
        if rule.bought_within_days is not None:
            parts.append(self._recency(IntRange(lte=rule.bought_within_days)))
        return _and(parts)

    def _birthday(self, within_days: int) -> Fragment:
        # The birthday this year and next (29 February -> 28 February in common years) against the window.
        first, last = self.today, self.today + timedelta(days=within_days)
        anniversary = "CAST(c.birth_date + to_years(CAST(? AS INTEGER) - year(c.birth_date)) AS DATE)"
        return Fragment(
            f"({anniversary} BETWEEN ? AND ? OR {anniversary} BETWEEN ? AND ?)",
            (self.today.year, first, last, self.today.year + 1, first, last),
        )

    def _near_store(self, rule: NearStoreLeaf) -> Fragment:
        spec = rule.near_store
        if spec.store == "preferred":
            self.needs.add("preferred")
            self.preferred_km.append(spec.km)
            distance = facts.haversine_km_sql("c.lat", "c.lon", "ps_store.lat", "ps_store.lon")
            return Fragment(f"{distance} <= ?", (spec.km,))
        near = self._near_some_store(spec.km)
        if spec.store != "any":
            near = Fragment(f"{near.sql} AND s.store_id = ?", (*near.params, spec.store))
        return Fragment(f"c.customer_id IN ({near.sql})", near.params)

    def _window(self, column: str, within_days: int | None) -> list[Fragment]:
        parts = [Fragment(f"{column} <= ?", (self.as_of,))]
        if within_days is not None:
            since = datetime.combine(self._days_before(within_days), time.min)
            parts.append(Fragment(f"{column} >= ?", (since,)))
        return parts

    @staticmethod
    def _of_source(spec: EngagementSpec, kind_column: str) -> list[Fragment]:
        if spec.campaign is not None:
            return [Fragment(f"{kind_column} = 'campaign' AND source = ?", (spec.campaign,))]
        if spec.automation is not None:
            return [Fragment(f"{kind_column} = 'automation' AND source = ?", (spec.automation,))]
        return [Fragment(f"{kind_column} <> 'test'")]

    def _engagement(self, spec: EngagementSpec) -> Fragment:
        if spec.received is not None:
            where = _and(
                [
                    Fragment("s.customer_id = c.customer_id AND s.status = 'sent'"),
                    *self._window("s.sent_at", spec.within_days),
                    *self._of_source(spec, "s.kind"),
                ]
            )
            count = Fragment(
                f"COALESCE((SELECT count(*) FROM ops_sends s WHERE {where.sql}), 0)", where.params
            )
            received = spec.received
            checks = [
                Fragment(f"{count.sql} {_OPS[op]} ?", (*count.params, value))
                for op, value in (
                    ("gte", received.gte),
                    ("lte", received.lte),
                    ("gt", received.gt),
                    ("lt", received.lt),
                )
                if value is not None
            ]
            return _and(checks)
        kind = "open" if spec.opened is not None else "click"
        wanted = spec.opened if spec.opened is not None else spec.clicked
        parts = [Fragment("customer_id IS NOT NULL AND kind = ?", (kind,))]
        if kind == "open" and not spec.machine_opens:
            parts.append(Fragment("subkind <> 'machine'"))
        parts += self._window("occurred_at", spec.within_days)
        parts += self._of_source(spec, "send_kind")
        where = _and(parts)
        test = Fragment(
            f"c.customer_id IN (SELECT customer_id FROM ops_events WHERE {where.sql})", where.params
        )
        return test if wanted else Fragment(f"NOT COALESCE({test.sql}, FALSE)", test.params)

    def _conversion(self, bounds: IntRange) -> Fragment:
        # The last conversion day: the latest purchase within attribution_days after a click (on or before
        # the as-of moment); each bound on days since it is a bound on that day, as for recency.
        days = self.settings.tracking.attribution_days
        conversions = Fragment(
            "SELECT ol.customer_id, max(CAST(ol.ordered_at AS DATE)) AS last_day "
            "FROM purchase_lines ol JOIN ops_events e ON e.customer_id = ol.customer_id "
            "WHERE e.kind = 'click' AND e.send_kind <> 'test' AND ol.quantity > 0 AND ol.ordered_at <= ? "
            "AND ol.ordered_at >= e.occurred_at AND ol.ordered_at <= e.occurred_at + to_days(CAST(? AS INTEGER)) "
            "GROUP BY ol.customer_id",
            (self.as_of, days),
        )
        parts = []
        for op, value in (("gte", bounds.gte), ("lte", bounds.lte), ("gt", bounds.gt), ("lt", bounds.lt)):
            if value is not None:
                parts.append(Fragment(f"last_day {_FLIPPED[op]} ?", (self._days_before(value),)))
        where = _and(parts)
        return Fragment(
            f"c.customer_id IN (SELECT customer_id FROM ({conversions.sql}) WHERE {where.sql})",
            conversions.params + where.params,
        )


_OPS = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}
_FLIPPED = {"gte": "<=", "lte": ">=", "gt": "<", "lt": ">"}


def _bounds(expression: str, bounds: IntRange | NumberRange) -> Fragment:
    parts = []
    for op, value in (("gte", bounds.gte), ("lte", bounds.lte), ("gt", bounds.gt), ("lt", bounds.lt)):
        if value is not None:
            parts.append(Fragment(f"{expression} {_OPS[op]} ?", (value,)))
    return _and(parts)


def _text_operators(
    column: str,
    equals: str | None,
    not_equals: str | None,
    in_: Sequence[str] | None,
    not_in: Sequence[str] | None,
    exists: bool | None,
) -> Fragment:
    parts = []
    if equals is not None:
        parts.append(Fragment(f"COALESCE({column} = ?, FALSE)", (equals,)))
    if not_equals is not None:
        parts.append(Fragment(f"NOT COALESCE({column} = ?, FALSE)", (not_equals,)))
    if in_ is not None:
        parts.append(Fragment(f"COALESCE({column} IN ({_placeholders(in_)}), FALSE)", tuple(in_)))
    if not_in is not None:
        parts.append(Fragment(f"NOT COALESCE({column} IN ({_placeholders(not_in)}), FALSE)", tuple(not_in)))
    if exists is not None:
        parts.append(Fragment(f"COALESCE(trim({column}) <> '', FALSE) = ?", (exists,)))
    return _and(parts)


def compile_rule(
    rule: Rule, *, as_of: datetime | date, marketing: bool = True, settings: Settings | None = None
) -> CompiledAudience:
    """One query of the customer_ids the rule selects on `as_of`, with the marketing guards if `marketing`."""
    compiler = RuleCompiler(as_of, settings, guarded=marketing)
    condition = compiler.predicate(rule)
    if marketing:
        condition = _and([*(guard for _, guard in compiler.guards()), condition])
    with_clause, joins = compiler.sources()
    return CompiledAudience(
        sql=f"{with_clause.sql}SELECT c.customer_id\n{joins}\nWHERE {condition.sql}",
        params=[*with_clause.params, *condition.params],
        needs_ops="ops" in compiler.needs,
    )


def earlier_variants_excluded(compiler: RuleCompiler, earlier: Sequence[Rule]) -> Fragment:
    """The one definition of "a customer gets the first variant that matches": no earlier variant's rule
    selects them. Used by the send (`compile_variants`) and by the funnel's last step alike."""
    predicates = [compiler.predicate(rule) for rule in earlier]
    return Fragment(
        "NOT (" + " OR ".join(p.sql for p in predicates) + ")", tuple(v for p in predicates for v in p.params)
    )


def compile_variants(
    rules: Sequence[Rule], *, as_of: datetime | date, marketing: bool = True, settings: Settings | None = None
) -> CompiledAudience:
    """One query of (customer_id, variant): every customer some variant selects, with the index (from 0) of
    the first variant, in the given order, whose rule selects them."""
    compiler = RuleCompiler(as_of, settings, guarded=marketing)
    guards = [guard for _, guard in compiler.guards()] if marketing else []
    conditions = []
    for index, rule in enumerate(rules):
        parts = [*guards, compiler.predicate(rule)]
        if index:
            parts.append(earlier_variants_excluded(compiler, rules[:index]))
        conditions.append(_and(parts))
    with_clause, joins = compiler.sources()
    selects = [
        f"SELECT c.customer_id, {index} AS variant\n{joins}\nWHERE {condition.sql}"
        for index, condition in enumerate(conditions)
    ]
    return CompiledAudience(
        sql=with_clause.sql + "\nUNION ALL\n".join(selects),
        params=[*with_clause.params, *(v for condition in conditions for v in condition.params)],
        needs_ops="ops" in compiler.needs,
    )
