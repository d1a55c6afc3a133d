"""Recency states, the one rule: a customer is active, inactive, hibernating or lost by the days from the last
purchase to the as-of day, cut at the thresholds of pleasepoint.yaml `states:` (each the first day of the next
state). `clv score/enrich` (SQL), the audience rule `state:` (day ranges) and the email context (Python) all
take them from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.config import StateThresholds

STATES = ("active", "inactive", "hibernating", "lost")


def state_ranges(limits: StateThresholds) -> dict[str, tuple[int | None, int | None]]:
    """Each state's days since the last purchase as [low, high): None is unbounded."""
    return {
        "active": (None, limits.active_below),
        "inactive": (limits.active_below, limits.inactive_below),
        "hibernating": (limits.inactive_below, limits.hibernating_below),
        "lost": (limits.hibernating_below, None),
    }


def state_of(days: int | None, limits: StateThresholds) -> str | None:
    """The state of a customer whose last purchase was `days` ago (None without purchases)."""
    if days is None:
        return None
    for name, (low, high) in state_ranges(limits).items():
        if (low is None or days >= low) and (high is None or days < high):
            return name
    raise AssertionError("the state ranges cover every day count")  # pragma: no cover


def state_sql(days: str = "recency_days") -> str:
    """A SQL CASE giving the state of the day count `days`; takes the named parameters of `state_params`."""
    cases = "\n".join(f"    WHEN {days} < ${name}_below THEN '{name}'" for name in STATES[:-1])
    return f"CASE\n{cases}\n    ELSE '{STATES[-1]}' END"


def state_params(limits: StateThresholds) -> dict[str, int]:
    """The named parameters of `state_sql`."""
    return {
        "active_below": limits.active_below,
        "inactive_below": limits.inactive_below,
        "hibernating_below": limits.hibernating_below,
    }
