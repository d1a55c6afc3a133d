"""`pleasepoint campaign audience FILE`: the audience funnel of a campaign or rule file, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pleasepoint_cli.cli._common import (
    FormatOption,
    OutputFormat,
    emit_json,
    emit_rows,
    say,
    state,
    use_clock,
)

if TYPE_CHECKING:
    from pleasepoint_cli.audience.files import AudienceFunnel


def register(campaign_app: typer.Typer) -> None:
    """Add `audience` to the campaign sub-app."""
    campaign_app.command("audience")(campaign_audience)


def _step_rows(funnel: AudienceFunnel) -> list[dict[str, Any]]:
    rows = []
    previous = None
    for step in funnel.steps:
        removed = 0 if previous is None else previous - step.customers
        rows.append({"step": step.label, "customers": step.customers, "removed": removed})
        previous = step.customers
    return rows


def campaign_audience(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="A campaign YAML, or any YAML with a top-level `audience:` rule."
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="DATE",
            help="The day the audience is computed for (YYYY-MM-DD). Default: the day of the latest purchase.",
        ),
    ] = None,
    no_guards: Annotated[
        bool,
        typer.Option(
            "--no-guards",
            help="Leave out the marketing guards (consent, valid email, not suppressed, not erased): "
            "an analysis audience, not a send.",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Print the funnel of a campaign's audience: how many customers remain after each step.

    Steps: all customers, the marketing guards, then each item of the rule's top-level `all:`. A campaign
    with `variants:` gets one funnel per variant (the campaign's audience, then the variant's, then
    `not in an earlier variant`). JSON: {file, as_of, guards, no_customer_record (buyers with orders but no customer row), warnings, funnels: [{variant, customers,
    steps: [{step, customers, removed}]}]}.

    Example: pleasepoint campaign audience examples/audiences/blog_segmentation.yaml --as-of 2025-09-01
    """
    from pleasepoint_cli.audience.files import buyers_without_record, file_funnels, guard_warnings
    from pleasepoint_cli.clock import ANALYSIS, latest_purchase_day

    app_state = state(ctx)
    with app_state.reader() as store:
        day = use_clock(ctx, ANALYSIS, latest_purchase_day(store), as_of=as_of).as_of
        if not no_guards:  # the suppression list lives in the operational store
            from pleasepoint_cli.ops.suppression import attach_suppressions_beside

            attach_suppressions_beside(app_state.db_path, store, app_state.lock_timeout)
        funnels = file_funnels(store, file, as_of=day, marketing=not no_guards, settings=app_state.settings)
        orphans = buyers_without_record(store)
    warnings = guard_warnings(funnels[0]) if funnels and not no_guards else []
    if fmt is OutputFormat.json:
        emit_json(
            {
                "file": str(file),
                "as_of": day,
                "guards": not no_guards,
                "no_customer_record": orphans,
                "warnings": warnings,
                "funnels": [
                    {"variant": f.name, "customers": f.customers, "steps": _step_rows(f)} for f in funnels
                ],
            }
        )
    elif fmt is OutputFormat.csv:
        rows = [{"variant": f.name, **row} for f in funnels for row in _step_rows(f)]
        emit_rows(rows, fmt, columns=["variant", "step", "customers", "removed"])
    else:
        for f in funnels:
            title = f"{file} on {day}" if f.name is None else f"variant {f.name!r} on {day}"
            # Labels such as `tier in [gold, silver]` are text: emit_rows escapes Rich markup in cells.
            emit_rows(_step_rows(f), fmt, title=title, columns=["step", "customers", "removed"])
    for warning in warnings:
        say(ctx, f"[yellow]warning:[/] {warning}")
    if orphans:
        say(
            ctx,
            f"[yellow]note:[/] {orphans:,} buyers have orders but no customer record (no email, no consent): "
            "no audience can select them. Load them with `pleasepoint ingest customers`.",
        )
    for f in funnels:
        who = "the audience" if f.name is None else f"variant {f.name!r}"
        say(ctx, f"{f.customers:,} customers in {who}" + ("" if not no_guards else " (no marketing guards)"))
