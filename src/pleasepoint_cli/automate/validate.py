"""`automate validate`: every automation file checked end to end against the store, each problem with its line.

The YAML (keys, trigger, caps, cron), the audience rules against the store (unknown attributes, runs,
stores, categories), the email's templates compiled and rendered for a sample of today's audience.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import PleasepointError

if TYPE_CHECKING:
    from pleasepoint_cli.automate.model import Automation
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store.connection import Store

SAMPLE = 5


@dataclass
class AutomationCheck:
    file: str
    name: str | None
    trigger: str | None = None
    audience: int | None = None
    rendered: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_automation(
    store: Store, automation: Automation, settings: Settings, now: datetime
) -> AutomationCheck:
    """Rules against the store, then the templates rendered for a few audience members (or a made-up one)."""
    from zoneinfo import ZoneInfo

    from pleasepoint_cli.campaign.prepare import prepare_campaign

    check = AutomationCheck(str(automation.path), automation.name, automation.describe_trigger())
    check.problems += automation.rule_problems(store)
    if check.problems:
        return check
    try:
        prepared = prepare_campaign(
            store, automation.campaign, settings, now.astimezone(ZoneInfo(settings.shop.timezone)).date()
        )
        assigned = prepared.assign(store)
        check.audience = len(assigned)
        sample = assigned[:SAMPLE]
        if sample:
            contexts = prepared.contexts(store, [c for c, _ in sample])
            pairs = [(contexts[c], v) for c, v in sample if c in contexts]
        else:
            pairs = [(prepared.builder.sample(store), 0)]
        for context, variant in pairs:
            prepared.render(context, variant)
            check.rendered += 1
    except PleasepointError as e:
        check.problems += str(e).splitlines()
    return check


def validate_automations(
    store: Store,
    directory: Path,
    settings: Settings,
    now: datetime,
    name: str | None = None,
) -> list[AutomationCheck]:
    """Check every automation file of the folder (or the one named); bad files are reported, not raised."""
    from pleasepoint_cli.automate.model import automation_files, load_automations
    from pleasepoint_cli.errors import NotFoundError

    loaded = load_automations(directory, shop_timezone=settings.shop.timezone)
    checks = [
        AutomationCheck(str(path), None, problems=problem.splitlines())
        for path, problem in loaded.problems.items()
    ]
    for automation in loaded.automations:
        if name is None or automation.name == name:
            checks.append(check_automation(store, automation, settings, now))
    if name is not None:
        checks = [c for c in checks if c.name == name or (c.name is None and Path(c.file).stem == name)]
        if not checks:
            files = ", ".join(p.name for p in automation_files(directory)) or "none"
            raise NotFoundError(f"no automation named {name!r} in {directory}/ (files: {files}).")
    return sorted(checks, key=lambda c: c.file)
