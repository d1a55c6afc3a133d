"""`pleasepoint stats`: the statistics page of the guide, in the terminal (and as an HTML report)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def stats(ctx: typer.Context) -> None:
    """Statistics (work in progress)."""
