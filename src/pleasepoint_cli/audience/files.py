"""Audiences of a YAML file: a rule file's `audience:`, or a campaign's audience and each variant's, with funnels.

A campaign's variant receives the customers of the campaign's audience and its own, minus those an earlier
variant already took (a customer gets the first variant that matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.audience.model import Rule
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


GUARD_WARNINGS = {
    "email consent": "no customer has given email consent: every marketing audience is empty. Load a "
    "customers file whose consent column is mapped to email_consent (docs/ingest.md)",
    "valid email": "no customer with consent has a valid email: every marketing audience is empty. Load a "
    "customers file with an email column (docs/ingest.md)",
}
"""What the funnel says plainly when a marketing guard leaves nobody out of customers who exist."""


def guard_warnings(funnel: AudienceFunnel) -> list[str]:
    """The guards that leave no customer at all, in the funnel's order (none when there are no customers)."""
    warnings = []
    before = funnel.steps[0].customers if funnel.steps else 0
    for step in funnel.steps[1:]:
        if step.label in GUARD_WARNINGS and before > 0 and step.customers == 0:
            warnings.append(GUARD_WARNINGS[step.label])
            break  # every later step is empty too
        before = step.customers
    return warnings


def read_audiences(path: Path) -> tuple[list[FileAudience], dict[tuple[Any, ...], int]]:
    """The audiences of a rule file (its `audience:`; other keys are ignored) or of a campaign file (one with
    `template:` or `variants:`, read by the campaign model: one per variant), and the file's line index."""
    from pleasepoint_cli.yamlio import read_yaml

    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: expected a mapping with an `audience:` key (or `variants:`, each with one)."
        )
    if "template" in data or "variants" in data:
        return _campaign_audiences(path), lines
    if "audience" not in data:
        raise RuleError(
            f"{path}:1: no top-level `audience:` key. Add one holding the rule (see docs/audiences.md)."
        )
    from pleasepoint_cli.audience.parse import parse_rule

    rule = parse_rule(data["audience"], source=path, lines=lines, prefix=("audience",))
    return [FileAudience(None, rule, ((rule, ("audience",)),))], lines


def _campaign_audiences(path: Path) -> list[FileAudience]:
    """A campaign's audiences through its model (campaign/model.py): the campaign's own when it has one
    email, else each variant's (the campaign's rule and the variant's, both)."""
    from pleasepoint_cli.campaign.model import load_campaign

    campaign = load_campaign(path, check_templates=False)
    shared = campaign.audience
    if campaign.model.variants is None:
        assert shared is not None, "the campaign model requires an audience"
        return [FileAudience(None, shared, ((shared, ("audience",)),))]
    audiences = []
    for variant in campaign.variants:
        own = ("variants", variant.index, "audience")
        parts = tuple((r, p) for r, p in ((shared, ("audience",)), (variant.audience, own)) if r is not None)
        audiences.append(FileAudience(variant.name, campaign.variant_rule(variant), parts))
    return audiences


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
