"""`pleasepoint events ...`: provider event files into the operational store."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pleasepoint_cli.cli._common import emit_json, say, state

app = typer.Typer(help="Delivery and engagement events from email providers.", no_args_is_help=True)


class EventFormat(str, Enum):
    pleasepoint = "pleasepoint"
    sendgrid = "sendgrid"
    mailgun = "mailgun"
    ses = "ses"


class ReportFormat(str, Enum):
    table = "table"
    json = "json"


@app.command("ingest")
def events_ingest_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSON array, one JSON object or JSON Lines file of events.")],
    fmt: Annotated[
        EventFormat, typer.Option("--format", "-f", help="pleasepoint, sendgrid, mailgun or ses.")
    ] = EventFormat.pleasepoint,
    output: Annotated[
        ReportFormat, typer.Option("--output", "-o", help="table or json (on stdout).")
    ] = ReportFormat.table,
    now: Annotated[
        str | None, typer.Option("--now", help="Time of receipt (ISO 8601; default: the clock).")
    ] = None,
) -> None:
    """Load a provider's events (delivered, open, click, bounce, complaint, unsubscribe) and match them to
    the sends of the ledger. Loading the same file twice changes nothing; a file with any unknown or
    malformed record loads nothing and lists them with their lines. Hard bounces, complaints and
    unsubscribes suppress the address; soft bounces do not.

    Example: pleasepoint events ingest sendgrid-2026-04-24.json --format sendgrid
    """
    from pleasepoint_cli.clock import parse_now
    from pleasepoint_cli.events.ingest import ingest_events_file
    from pleasepoint_cli.ops.store import open_ops

    app_state = state(ctx)
    moment = parse_now(now, app_state.settings.shop.timezone)
    with open_ops(app_state.db_path, app_state.lock_timeout) as ops:
        report = ingest_events_file(ops, file, fmt.value, now=moment)
    if output is ReportFormat.json:
        emit_json(report.as_json())
        return
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.by_kind.items())) or "none"
    say(
        ctx,
        f"{file}: {report.inserted} new events ({kinds}), {report.duplicates} already loaded, "
        f"{len(report.skipped)} records skipped; {report.matched} matched to sends, {report.unmatched} "
        f"unmatched; {report.suppressed} addresses suppressed, {report.settled} uncertain sends settled.",
    )
    if report.unmatched_lines:
        lines = ", ".join(str(n) for n in report.unmatched_lines[:10])
        say(ctx, f"unmatched events (no send id or Message-ID of the ledger) at lines {lines}")
