"""Checking a parsed rule against a store: attributes, persona runs and clusters, stores, categories."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.audience.describe import describe_run
from pleasepoint_cli.audience.model import (
    AllRule,
    AnyRule,
    AttributeLeaf,
    BoughtLeaf,
    ClusterLeaf,
    NearStoreLeaf,
    NotRule,
    Rule,
)
from pleasepoint_cli.audience.parse import Problem, format_problems
from pleasepoint_cli.errors import RuleError

if TYPE_CHECKING:
    from pleasepoint_cli.store import Store

SHOWN_NAMES = 12
"""How many known names an error lists before saying how many more there are."""


def walk(rule: Rule, path: tuple[Any, ...]) -> Iterator[tuple[Rule, tuple[Any, ...]]]:
    """Every node of a rule with its key path in the YAML it was parsed from."""
    yield rule, path
    if isinstance(rule, AllRule):
        for i, child in enumerate(rule.all):
            yield from walk(child, (*path, "all", i))
    elif isinstance(rule, AnyRule):
        for i, child in enumerate(rule.any):
            yield from walk(child, (*path, "any", i))
    elif isinstance(rule, NotRule):
        yield from walk(rule.not_, (*path, "not"))


def _known(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    shown = ", ".join(names[:SHOWN_NAMES])
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return f"{guess}known: {shown}{more}"


def validate_rule(
    store: Store,
    rule: Rule,
    *,
    source: Path | None = None,
    lines: dict[tuple[Any, ...], int] | None = None,
    prefix: tuple[Any, ...] = ("audience",),
) -> None:
    """Raise RuleError (`file:line: path: problem`, every problem) if the rule names what the store lacks."""
    nodes = list(walk(rule, prefix))
    problems: list[Problem] = []
    problems += _check_attributes(store, nodes)
    problems += _check_clusters(store, nodes)
    problems += _check_stores(store, nodes)
    problems += _check_bought(store, nodes)
    if problems:
        from pleasepoint_cli.yamlio import line_of

        problems.sort(key=lambda problem: line_of(lines or {}, problem[0]) or 0)
        raise RuleError(format_problems(problems, source, lines))


def _check_attributes(store: Store, nodes: list[tuple[Rule, tuple[Any, ...]]]) -> list[Problem]:
    leaves = [(r, p) for r, p in nodes if isinstance(r, AttributeLeaf)]
    if not leaves:
        return []
    # One early-stopping probe per attribute named; every key (a scan of the whole table, ~25 million rows
    # at a million customers) only to explain a name that is missing.
    if all(
        store.scalar("SELECT EXISTS (SELECT 1 FROM customer_attributes WHERE key = ?)", [attribute])
        for attribute in {leaf.attribute for leaf, _ in leaves}
    ):
        return []
    known = [row[0] for row in store.tuples("SELECT DISTINCT key FROM customer_attributes ORDER BY key")]
    problems: list[Problem] = []
    for leaf, path in leaves:
        if leaf.attribute in known:
            continue
        if known:
            message = (
                f"unknown attribute '{leaf.attribute}' ({_known(leaf.attribute, known)}); check the "
                "spelling, or set it first with `pleasepoint enrich` or `pleasepoint clv enrich`"
            )
        else:
            message = (
                f"unknown attribute '{leaf.attribute}': no customer has any attribute yet; set them "
                "with `pleasepoint enrich` or `pleasepoint clv enrich` first"
            )
        problems.append(((*path, "attribute"), message))
    return problems


def _check_clusters(store: Store, nodes: list[tuple[Rule, tuple[Any, ...]]]) -> list[Problem]:
    leaves = [(r, p) for r, p in nodes if isinstance(r, ClusterLeaf)]
    if not leaves:
        return []
    runs = store.tuples("SELECT run_id, name FROM persona_runs ORDER BY created_at DESC, run_id DESC")
    clusters: dict[int, list[int]] = {}
    for run_id, cluster in store.tuples(
        "SELECT run_id, cluster FROM persona_clusters UNION SELECT DISTINCT run_id, cluster "
        "FROM persona_assignments ORDER BY 1, 2"
    ):
        clusters.setdefault(int(run_id), []).append(int(cluster))
    listed = ", ".join(f"{run_id} '{name}'" for run_id, name in runs[:SHOWN_NAMES])
    problems: list[Problem] = []
    for leaf, path in leaves:
        ref = leaf.cluster
        wanted_name = ref.name if ref.run == "latest" else ref.run if isinstance(ref.run, str) else ref.name
        matching = [
            (int(run_id), name)
            for run_id, name in runs
            if (not isinstance(ref.run, int) or run_id == ref.run)
            and (wanted_name is None or name == wanted_name)
        ]
        if not matching:
            where = (
                "no persona run exists yet: run `pleasepoint persona run` first"
                if not runs
                else (f"runs, newest first: {listed}; see `pleasepoint persona list`")
            )
            problems.append(
                ((*path, "cluster", "run"), f"unknown persona run: {describe_run(ref)} ({where})")
            )
            continue
        run_id, name = matching[0]
        have = clusters.get(run_id, [])
        if ref.cluster not in have:
            span = f"clusters {have[0]}..{have[-1]}" if have else "no clusters"
            problems.append(
                (
                    (*path, "cluster", "cluster"),
                    f"run {run_id} '{name}' has no cluster {ref.cluster} ({span})",
                )
            )
    return problems


def _check_stores(store: Store, nodes: list[tuple[Rule, tuple[Any, ...]]]) -> list[Problem]:
    leaves = [
        (r, p)
        for r, p in nodes
        if isinstance(r, NearStoreLeaf) and r.near_store.store not in ("preferred", "any")
    ]
    if not leaves:
        return []
    known = [row[0] for row in store.tuples("SELECT store_id FROM stores ORDER BY store_id")]
    problems: list[Problem] = []
    for leaf, path in leaves:
        store_id = leaf.near_store.store
        if store_id not in known:
            hint = _known(store_id, known) if known else "no stores loaded: `pleasepoint ingest stores FILE`"
            problems.append(
                (
                    (*path, "near_store", "store"),
                    f"unknown store '{store_id}' ({hint}); or use `preferred` or `any`",
                )
            )
    return problems


def _check_bought(store: Store, nodes: list[tuple[Rule, tuple[Any, ...]]]) -> list[Problem]:
    leaves = [(r, p) for r, p in nodes if isinstance(r, BoughtLeaf)]
    if not leaves:
        return []
    problems: list[Problem] = []
    categories: list[str] | None = None
    for leaf, path in leaves:
        spec = leaf.bought
        if spec.category is not None:
            if categories is None:
                categories = [
                    row[0]
                    for row in store.tuples(
                        "SELECT DISTINCT category FROM products WHERE category IS NOT NULL ORDER BY 1"
                    )
                ]
            for i, category in enumerate(spec.category):
                if category not in categories:
                    problems.append(
                        (
                            (*path, "bought", "category", i),
                            f"unknown category '{category}' ({_known(category, categories)})",
                        )
                    )
        for i, product in enumerate(spec.product or []):
            if store.first("SELECT count(*) FROM products WHERE product_id = ?", [product]) == (0,):
                problems.append(
                    (
                        (*path, "bought", "product", i),
                        f"unknown product '{product}'; check its id in your products export",
                    )
                )
    return problems
