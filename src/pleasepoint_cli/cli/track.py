"""`pleasepoint track serve`: the tracking, one-click unsubscribe and webhook server."""

from __future__ import annotations

from typing import Annotated

import typer

from pleasepoint_cli.cli._common import state

app = typer.Typer(help="The tracking and one-click unsubscribe server.", no_args_is_help=True)


@app.command("serve")
def track_serve_command(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default tracking.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port to listen on (default tracking.port, 8787)."),
    ] = None,
) -> None:
    """Answer one-click unsubscribes (RFC 8058), open pixels, signed click redirects and the providers'
    signed webhooks, writing into the operational store beside the database. It never opens the DuckDB
    file, so it keeps answering while other commands hold it. Put it behind the shop's reverse proxy (TLS
    there); see docs/events.md.

    Example: pleasepoint track serve --host 127.0.0.1 --port 8787
    """
    from pleasepoint_cli.tracking.server import serve

    app_state = state(ctx)
    settings = app_state.settings
    serve(
        app_state.db_path,
        settings,
        host=host or settings.tracking.host,
        port=port or settings.tracking.port,
        busy_timeout=app_state.lock_timeout,
    )
