"""`automate preview NAME --now T`: who would get the automation's email at T, and at which step the others
drop out (a funnel). Nothing is written: the same functions as the tick, read-only.

Steps: all customers; the marketing guards (consent, valid email, not suppressed, not erased); each rule of
the audience; due now (the slot at or before T for a schedule, an event due in (T - max_age, T] for a
system trigger); not already planned for that period; within the per-automation cap; within the global cap;
outside quiet hours (the rest would be deferred, not dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from pleasepoint_cli.automate.model import Automation
    from pleasepoint_cli.config import Settings


@dataclass(frozen=True)
class PreviewStep:
    step: str
    customers: int

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "customers": self.customers}


@dataclass(frozen=True)
class Preview:
    name: str
    now: datetime
    period: str | None
    steps: list[PreviewStep]
    recipients: list[str]

    def as_json(self) -> dict[str, Any]:
        from pleasepoint_cli.automate.slots import slot_key

        return {
            "name": self.name,
            "now": slot_key(self.now),
            "period": self.period,
            "steps": [s.as_json() for s in self.steps],
            "recipients": self.recipients,
        }


def _flat(rule: Any) -> Any:
    """Nested `all` rules as one `all` of their items, so each item is a step of the funnel."""
    from pleasepoint_cli.audience.model import AllRule

    if not isinstance(rule, AllRule):
        return rule
    items = []
    for item in rule.all:
        flat = _flat(item)
        items += list(flat.all) if isinstance(flat, AllRule) else [flat]
    return AllRule(all=items)


def preview_automation(
    db_path: Path, automation: Automation, settings: Settings, now: datetime, *, lock_timeout: float = 30.0
) -> Preview:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from pleasepoint_cli.audience.select import funnel
    from pleasepoint_cli.automate.caps import apply_caps, quiet_deferrals
    from pleasepoint_cli.automate.slots import slot_key
    from pleasepoint_cli.automate.tick import AutomationTick
    from pleasepoint_cli.ops.store import OpsStore, ops_path

    with OpsStore(ops_path(db_path), busy_timeout=max(lock_timeout, 5.0)) as ops:
        job = AutomationTick(
            automation, db_path=db_path, ops=ops, settings=settings, now=now, lock_timeout=lock_timeout,
            dry_run=True, clock=lambda: now, transport=None, build=None, base_dir=None, last_tick=None,
        )  # fmt: skip
        as_of = now.astimezone(ZoneInfo(settings.shop.timezone)).date()
        with job.open_duckdb() as store:
            prepared = job.prepare(store)
            campaign = automation.campaign
            rules = [campaign.variant_rule(v) for v in campaign.variants]
            rule = _flat(rules[0])
            steps = [
                PreviewStep(s.label, s.customers) for s in funnel(store, rule, as_of=as_of, settings=settings)
            ]
            if len(rules) > 1:
                steps.append(PreviewStep("in some variant's audience", len(prepared.assign(store))))
        if automation.is_schedule:
            slot = automation.schedule.previous_slot(now, lookback=timedelta(days=400))
            period = None if slot is None else slot_key(slot)
            work = job.gather([slot]) if slot is not None else []
            label = f"slot {period} (at or before now)" if period else "no slot at or before now"
        else:
            work = job.gather()
            period = None
            label = f"event due in the last {automation.model.trigger.max_age or '2d'} (max_age)"
        steps.append(PreviewStep(label, sum(len(recipients) for _, recipients in work)))
        fresh: list[str] = []
        for p, recipients in work:
            existing = job.existing(p)
            fresh += [r.customer_id for r in recipients if r.customer_id not in existing]
        steps.append(PreviewStep("not already planned for that period", len(fresh)))
        own = apply_caps(ops.con, fresh, at=now, source=automation.name, cap=automation.cap, global_cap=None)
        steps.append(
            PreviewStep(
                f"within the cap {automation.model.frequency.per_customer or '(none)'}", len(own.allowed)
            )
        )
        glob = apply_caps(
            ops.con, own.allowed, at=now, source=automation.name, cap=None, global_cap=settings.marketing.cap
        )
        steps.append(
            PreviewStep(
                f"within the global cap {settings.marketing.global_cap or '(none)'}", len(glob.allowed)
            )
        )
        quiet = quiet_deferrals(
            settings.marketing.quiet_hours, now, glob.allowed,
            shop_zone=ZoneInfo(settings.shop.timezone), customer_zones=job.customer_zones(glob.allowed),
        )  # fmt: skip
        chosen = [c for c in glob.allowed if c not in quiet]
        steps.append(PreviewStep("outside quiet hours (the rest are deferred)", len(chosen)))
    return Preview(automation.name, now, period, steps, chosen)
