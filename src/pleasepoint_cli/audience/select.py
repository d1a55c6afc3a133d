"""Running compiled audiences: the selected customers, their count, and the funnel step by step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from pleasepoint_cli.audience.compile import Fragment, RuleCompiler, compile_rule, earlier_variants_excluded
from pleasepoint_cli.audience.describe import describe
from pleasepoint_cli.audience.model import AllRule, Rule

if TYPE_CHECKING:
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store import Store

EXCLUDED_LABEL = "not in an earlier variant"


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel: its label and how many customers remain after it (cumulative)."""

    label: str
    customers: int


def _ops_views(store: Store, needed: bool, settings: Settings | None) -> None:
    """Register the operational store's sends and events when the rule reads them (engagement leaves)."""
    if needed:
        from pleasepoint_cli.events.views import ensure_ops_views

        ensure_ops_views(store, settings)


def select_customers(
    store: Store,
    rule: Rule,
    *,
    as_of: datetime | date,
    marketing: bool = True,
    settings: Settings | None = None,
) -> list[str]:
    """The customer_ids the rule selects on `as_of`, sorted."""
    compiled = compile_rule(rule, as_of=as_of, marketing=marketing, settings=settings)
    _ops_views(store, compiled.needs_ops, settings)
    rows = store.tuples(f"SELECT customer_id FROM ({compiled.sql}) ORDER BY customer_id", compiled.params)
    return [row[0] for row in rows]


def count_customers(
    store: Store,
    rule: Rule,
    *,
    as_of: datetime | date,
    marketing: bool = True,
    settings: Settings | None = None,
) -> int:
    """How many customers the rule selects on `as_of`."""
    compiled = compile_rule(rule, as_of=as_of, marketing=marketing, settings=settings)
    _ops_views(store, compiled.needs_ops, settings)
    return int(store.scalar(f"SELECT count(*) FROM ({compiled.sql})", compiled.params) or 0)


def funnel(
    store: Store,
    rule: Rule,
    *,
    as_of: datetime | date,
    marketing: bool = True,
    settings: Settings | None = None,
    exclude: Sequence[Rule] = (),
) -> list[FunnelStep]:
    """Customers remaining after each step, in one query.

    Steps: all customers; with `marketing`, the guards (consent, valid email, not suppressed, not erased);
    then each item of a top-level `all` (or the whole rule); then, if `exclude` holds earlier variants'
    rules, the customers none of them selects (a customer gets the first variant that matches).
    """
    compiler = RuleCompiler(as_of, settings)
    steps: list[tuple[str, Fragment]] = list(compiler.guards()) if marketing else []
    items = rule.all if isinstance(rule, AllRule) else [rule]
    steps += [(describe(item), compiler.predicate(item)) for item in items]
    if exclude:
        steps.append((EXCLUDED_LABEL, earlier_variants_excluded(compiler, exclude)))
    with_clause, joins = compiler.sources()
    _ops_views(store, "ops" in compiler.needs, settings)
    flags = ",\n".join(f"{fragment.sql} AS s{i}" for i, (_, fragment) in enumerate(steps))
    counts = ["count(*)"] + [
        "count(*) FILTER (WHERE " + " AND ".join(f"s{j}" for j in range(i + 1)) + ")"
        for i in range(len(steps))
    ]
    sql = f"{with_clause.sql}SELECT {', '.join(counts)}\nFROM (SELECT {flags}\n{joins})"
    params = [*with_clause.params, *(v for _, fragment in steps for v in fragment.params)]
    row = store.first(sql, params)
    assert row is not None
    labels = ["all customers", *(label for label, _ in steps)]
    return [FunnelStep(label, int(n)) for label, n in zip(labels, row, strict=True)]
