"""`pleasepoint suppress add|remove|list|import` and `pleasepoint unsubscribe URL-or-TOKEN`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_json, emit_rows, say, state

app = typer.Typer(
    help="The suppression list: addresses never mailed again (unsubscribed, bounced, complained, manual).",
    no_args_is_help=True,
)

ReasonOption = Annotated[str, typer.Option("--reason", help="unsubscribed, bounced, complained or manual.")]


def _ops(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from pleasepoint_cli.ops import open_ops

    app_state = state(ctx)
    return open_ops(app_state.db_path, busy_timeout=app_state.lock_timeout)


@app.command("add")
def suppress_add_command(
    ctx: typer.Context,
    emails: Annotated[list[str], typer.Argument(help="One or more addresses.")],
    reason: ReasonOption = "manual",
) -> None:
    """Put addresses on the suppression list. Example: pleasepoint suppress add ana@example.com --reason complained"""
    from pleasepoint_cli.ops.suppression import add_suppression

    now = datetime.now(UTC)
    with _ops(ctx) as ops:
        added = sum(add_suppression(ops, e, reason, source="cli", now=now) for e in emails)
    say(ctx, f"{added} added, {len(emails) - added} already on the list.")


@app.command("remove")
def suppress_remove_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The address to take off the list (it may be mailed again).")],
) -> None:
    """Take an address off the list. An erased person's address cannot be removed."""
    from pleasepoint_cli.ops.suppression import remove_suppression

    with _ops(ctx) as ops:
        entry = remove_suppression(ops, email)
    say(ctx, f"removed {entry.email} (was {entry.reason}).")


@app.command("list")
def suppress_list_command(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", help="Only this reason.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The suppression list, newest first (erased people show only their address hash)."""
    from pleasepoint_cli.ops.suppression import list_suppressions

    with _ops(ctx) as ops:
        rows = [s.as_json() for s in list_suppressions(ops, reason)]
    emit_rows(
        rows, fmt, title="suppressions", columns=["email", "reason", "source", "created_at", "email_sha256"]
    )


@app.command("import")
def suppress_import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with an `email` column (and optionally `reason`).")],
    reason: ReasonOption = "manual",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Import a suppression export from a previous provider. Example: pleasepoint suppress import bajas.csv --reason unsubscribed"""
    from pleasepoint_cli.cli._common import stderr_console
    from pleasepoint_cli.ops.suppression import import_suppressions

    with _ops(ctx) as ops:
        result = import_suppressions(ops, file, reason=reason, now=datetime.now(UTC))
    if fmt is OutputFormat.json:
        emit_json(result.as_json())
    else:
        emit_rows(
            [
                {
                    "file": result.file,
                    "added": result.added,
                    "already": result.already,
                    "invalid": len(result.invalid),
                }
            ],
            fmt,
        )
    console = stderr_console()
    for problem in result.invalid:
        console.print(f"[yellow]skipped:[/] {problem}", highlight=False)


def unsubscribe_command(
    ctx: typer.Context,
    link: Annotated[
        str, typer.Argument(help="The unsubscribe URL of an email, or its query string c=..&m=..&t=..")
    ],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Record a one-click unsubscribe from a signed link; a forged or altered link is refused (exit 1).

    Example: pleasepoint unsubscribe 'https://tienda.example/baja?c=C000123&m=rebajas&t=...'
    """
    from pleasepoint_cli import keys
    from pleasepoint_cli.delivery.unsubscribe import record_unsubscribe
    from pleasepoint_cli.ops import open_ops

    app_state = state(ctx)
    db_path = app_state.db_path

    def lookup(customer_id: str) -> str | None:
        from pleasepoint_cli.store.opener import StoreOpener

        with StoreOpener(db_path, app_state.lock_timeout).read() as store:
            value = store.scalar("SELECT email FROM customers WHERE customer_id = ?", [customer_id])
        return None if value is None else str(value)

    with open_ops(db_path, busy_timeout=app_state.lock_timeout) as ops:
        result = record_unsubscribe(
            ops, keys.signing_secret(db_path), link, now=datetime.now(UTC), lookup_email=lookup
        )
    if fmt is OutputFormat.json:
        emit_json(result.as_json())
    say(
        ctx,
        f"customer {result.customer_id} unsubscribed"
        + ("" if result.added else " (already suppressed)")
        + ".",
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="suppress")
    root.command("unsubscribe")(unsubscribe_command)
