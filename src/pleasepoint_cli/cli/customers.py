"""`pleasepoint customers ...`: one customer's profile; GDPR access (export) and erasure (forget)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_json, emit_rows, state, use_clock

app = typer.Typer(
    help="One customer at a time: profile, attributes, clusters and figures.", no_args_is_help=True
)


@app.command("show")
def customers_show_command(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="Customer id.")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Reference date YYYY-MM-DD for the figures, state and RFM segment (default: the day of the latest "
            "order).",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """A customer's profile, attributes (with source and time), persona cluster per run (latest first) and
    figures: orders, spend, average ticket, first and last order, recency, state and RFM segment.

    Example: pleasepoint customers show C000123 --as-of 2026-11-30
    """
    from pleasepoint_cli.clock import ANALYSIS
    from pleasepoint_cli.clv.score import latest_order_day
    from pleasepoint_cli.customers.profile import customer_profile

    app_state = state(ctx)
    with app_state.reader() as store:
        day = use_clock(ctx, ANALYSIS, latest_order_day(store), as_of=as_of).as_of
        shown = customer_profile(store, customer_id, day, app_state.settings.states)
    if fmt is OutputFormat.json:
        emit_json(shown.as_json())
        return
    if fmt is OutputFormat.csv:
        emit_rows(_flat(shown.as_json()), fmt, columns=["section", "key", "value", "source", "at"])
        return
    profile = [{"field": k, "value": v} for k, v in shown.profile.items() if v is not None]
    emit_rows(profile, fmt, title=f"customer {customer_id}", columns=["field", "value"])
    if shown.figures is None:
        emit_rows([], fmt, title=f"no purchase on or before {day}", columns=["figure", "value"])
    else:
        emit_rows(
            [{"figure": k, "value": v} for k, v in shown.figures.items()],
            fmt,
            title=f"figures as of {day}",
            columns=["figure", "value"],
        )
    emit_rows(
        shown.clusters,
        fmt,
        title="persona clusters (latest run first)",
        columns=["run_id", "run", "cluster", "label"],
    )
    _print_attributes(shown.attributes)


def _print_attributes(attributes: list[dict[str, Any]]) -> None:
    """Keys whole on one line; values and sources wrap."""
    from rich.table import Table

    from pleasepoint_cli.cli._common import stdout_console

    table = Table(title="attributes", title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value")
    table.add_column("source")
    table.add_column("set at", no_wrap=True)
    for a in attributes:
        table.add_row(a["key"], a["value"], a["source"], f"{a['set_at']:%Y-%m-%d %H:%M}")
    stdout_console().print(table)


def _flat(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile as (section, key, value, source, at) rows, for CSV."""
    rows: list[dict[str, Any]] = [
        {"section": "profile", "key": k, "value": v} for k, v in document["profile"].items()
    ]
    rows += [{"section": "figures", "key": k, "value": v} for k, v in (document["figures"] or {}).items()]
    rows += [
        {"section": f"run {c['run_id']}", "key": "cluster", "value": c["cluster"], "source": c["run"]}
        for c in document["clusters"]
    ]
    rows += [
        {
            "section": "attributes",
            "key": a["key"],
            "value": a["value"],
            "source": a["source"],
            "at": a["set_at"],
        }
        for a in document["attributes"]
    ]
    return rows


@app.command("export")
def customers_export_command(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="Customer id.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON here instead of stdout.")] = None,
) -> None:
    """GDPR access: everything held on a person as JSON (profile, attributes with history, orders, persona
    assignments, send ledger, events, suppression entry).

    Example: pleasepoint customers export C000123 --out C000123.json
    """
    from pleasepoint_cli.cli._common import to_json
    from pleasepoint_cli.customers.gdpr import export_customer
    from pleasepoint_cli.ops import open_ops
    from pleasepoint_cli.store.opener import StoreOpener

    app_state = state(ctx)
    with (
        open_ops(app_state.db_path, app_state.lock_timeout) as ops,
        StoreOpener(app_state.db_path, app_state.lock_timeout).read() as store,
    ):
        data = export_customer(store, ops, customer_id)
    if out is None:
        emit_json(data)
    else:
        from pleasepoint_cli.outfiles import write_text

        write_text(out, to_json(data) + "\n")  # whole or not at all: a full disk leaves no partial file
        typer.echo(str(out))


@app.command("forget")
def customers_forget_command(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="Customer id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """GDPR erasure: delete the person from every table (derived ones included) and the outbox; keep only
    anonymous counts and the hash of their address on the suppression list, so a re-import is never mailed.

    Example: pleasepoint customers forget C000123 --yes
    """
    import sys
    from datetime import UTC, datetime

    from pleasepoint_cli.cli.campaign import outbox_dir
    from pleasepoint_cli.customers.gdpr import forget_customer
    from pleasepoint_cli.ops import open_ops
    from pleasepoint_cli.store.opener import StoreOpener

    app_state = state(ctx)
    if not yes:
        if not sys.stdin.isatty():
            typer.echo("error: no terminal to confirm the erasure: pass --yes.", err=True)
            raise typer.Exit(1)
        if not typer.confirm(f"Erase customer {customer_id} for good?", default=False, err=True):
            raise typer.Exit(1)
    with (
        open_ops(app_state.db_path, app_state.lock_timeout) as ops,
        StoreOpener(app_state.db_path, app_state.lock_timeout).write() as store,
    ):
        result = forget_customer(store, ops, customer_id, now=datetime.now(UTC), outbox_dir=outbox_dir(ctx))
    data = result.as_json()
    if fmt is OutputFormat.json:
        emit_json(data)
    else:
        rows = [{"where": f"deleted from {t}", "rows": n} for t, n in result.deleted.items() if n]
        rows += [{"where": f"pseudonymised in {t}", "rows": n} for t, n in result.pseudonymised.items() if n]
        rows += [{"where": f"scrubbed {c}", "rows": n} for c, n in result.scrubbed.items()]
        rows += [
            {"where": "send ledger rows anonymised", "rows": result.ledger_rows},
            {"where": "outbox files deleted", "rows": result.outbox_files},
        ]
        emit_rows(rows, fmt, title=f"customer {customer_id} erased", columns=["where", "rows"])
