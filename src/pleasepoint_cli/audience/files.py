"""Audiences of a YAML file: a rule file's `audience:`, or a campaign's audience and each variant's, with funnels.

A campaign's variant receives the customers of the campaign's audience and its own, minus those an earlier
variant already took (a customer gets the first variant that matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.audience.model import Rule, combine_rules
from pleasepoint_cli.errors import ConfigError, PleasepointError, RuleError

if TYPE_CHECKING:
    from pleasepoint_cli.audience.select import FunnelStep
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store import Store


@dataclass(frozen=True)
class FileAudience:
    """One audience of a file: the variant's name (None for a single audience), its rule and where it came from."""

    name: str | None
    rule: Rule
    parts: tuple[tuple[Rule, tuple[Any, ...]], ...]
    """The rules combined into `rule`, each with its key path in the file (for validation errors)."""


@dataclass(frozen=True)
class AudienceFunnel:
    """The funnel of one audience of a file."""

    name: str | None
    steps: list[FunnelStep]

    @property
    def customers(self) -> int:
        return self.steps[-1].customers


def read_audiences(path: Path) -> tuple[list[FileAudience], dict[tuple[Any, ...], int]]:
    """The audiences of a rule or campaign file (other keys are ignored), and its line index."""
    from pleasepoint_cli.audience.parse import parse_rule
    from pleasepoint_cli.yamlio import read_yaml

    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: expected a mapping with an `audience:` key (or `variants:`, each with one)."
        )
    problems: list[str] = []

    def parse(value: Any, prefix: tuple[Any, ...]) -> Rule | None:
        try:
            return parse_rule(value, source=path, lines=lines, prefix=prefix)
        except RuleError as e:
            problems.extend(str(e).splitlines())
            return None

    has_shared = "audience" in data
    shared = parse(data["audience"], ("audience",)) if has_shared else None
    variants = data.get("variants")
    audiences: list[FileAudience] = []
    if isinstance(variants, list):
        for i, variant in enumerate(variants):
            where = f"{path}:{lines.get(('variants', i), 1)}: variants.{i}"
            if not isinstance(variant, dict):
                problems.append(f"{where}: expected a mapping (name, template, audience...)")
                continue
            prefix = ("variants", i, "audience")
            has_own = "audience" in variant
            own = parse(variant["audience"], prefix) if has_own else None
            if (has_shared and shared is None) or (has_own and own is None):
                continue  # already reported
            parts = [(r, p) for r, p in ((shared, ("audience",)), (own, prefix)) if r is not None]
            if not parts:
                problems.append(f"{where}: no audience: give the campaign an `audience:` or this variant one")
                continue
            rule = combine_rules(*(r for r, _ in parts))
            assert rule is not None
            audiences.append(FileAudience(str(variant.get("name") or f"variant {i + 1}"), rule, tuple(parts)))
    elif variants is not None:
        problems.append(f"{path}:{lines.get(('variants',), 1)}: variants: expected a list of variants")
    elif shared is not None:
        audiences.append(FileAudience(None, shared, ((shared, ("audience",)),)))
    elif not has_shared:
        problems.append(
            f"{path}:1: no top-level `audience:` key. Add one holding the rule (see docs/audiences.md)."
        )
    if problems:
        raise RuleError("\n".join(problems))
    return audiences, lines


def file_funnels(
    store: Store,
    path: Path,
    *,
    as_of: datetime | date,
    marketing: bool = True,
    settings: Settings | None = None,
) -> list[AudienceFunnel]:
    """Validate a file's audiences against the store and return the funnel of each, in the file's order."""
    from pleasepoint_cli.audience.select import funnel
    from pleasepoint_cli.audience.validate import validate_rule

    audiences, lines = read_audiences(path)
    problems: list[str] = []
    checked: set[tuple[Any, ...]] = set()
    for audience in audiences:
        for rule, prefix in audience.parts:
            if prefix in checked:
                continue
            checked.add(prefix)
            try:
                validate_rule(store, rule, source=path, lines=lines, prefix=prefix)
            except PleasepointError as e:
                problems.extend(str(e).splitlines())
    if problems:
        raise RuleError("\n".join(problems))
    funnels = []
    for i, audience in enumerate(audiences):
        earlier = [a.rule for a in audiences[:i]]
        steps = funnel(
            store, audience.rule, as_of=as_of, marketing=marketing, settings=settings, exclude=earlier
        )
        funnels.append(AudienceFunnel(audience.name, steps))
    return funnels


def buyers_without_record(store: Store) -> int:
    """Customers with orders but no row in `customers`: no audience can select them (no email, no consent)."""
    return int(
        store.scalar(
            "SELECT count(DISTINCT o.customer_id) FROM order_lines o "
            "WHERE o.customer_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM customers c WHERE c.customer_id = o.customer_id)"
        )
    )
