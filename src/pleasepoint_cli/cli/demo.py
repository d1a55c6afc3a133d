"""`pleasepoint demo`: make the example shop, load it and walk the workflow."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Registered once the example shop generator exists."""
