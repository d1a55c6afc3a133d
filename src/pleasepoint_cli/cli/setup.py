"""`pleasepoint init`: a project folder with its settings file and working folders."""

from __future__ import annotations

from pathlib import Path

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_rows, say, state

FOLDERS = ("campaigns", "automations", "templates", "outbox")

CONFIG_TEMPLATE = """\
# pleasepoint settings. Every key is optional; unknown keys are errors.
db: pleasepoint.duckdb

shop:
  name: {name}
  url: https://tienda.example
  timezone: Europe/Madrid
  currency: EUR

# Recency states in days since the last purchase (the guide's defaults).
states:
  active_below: 182
  inactive_below: 365
  hibernating_below: 730

# Propensity levels: index = cluster value / population value.
# high at or above `high`, medium at or above `medium`, else low; zero where the cluster never buys it.
levels:
  high: 1.25
  medium: 0.75

email:
  from_address: "{name} <hola@tienda.example>"
  signature: "El equipo de {name}"
  unsubscribe_base_url: https://tienda.example/baja
"""


def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(Path(), help="Project folder (created if missing)."),
    name: str = typer.Option("Mi tienda", "--name", help="The shop's name, for the settings and emails."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing pleasepoint.yaml."),
) -> None:
    """Write pleasepoint.yaml and the folders campaigns/, automations/, templates/, outbox/.

    Example: pleasepoint init mi-tienda --name "Ecomercado"
    """
    from pleasepoint_cli.errors import ConfigError

    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "pleasepoint.yaml"
    if config.exists() and not force:
        raise ConfigError(f"{config}: already exists. Keep it, or pass --force to overwrite it.")
    config.write_text(CONFIG_TEMPLATE.format(name=name), encoding="utf-8")
    for folder in FOLDERS:
        (directory / folder).mkdir(exist_ok=True)
    say(ctx, f"wrote {config} and {', '.join(f + '/' for f in FOLDERS)} in {directory.resolve()}")


def doctor(
    ctx: typer.Context,
    repair: bool = typer.Option(False, "--repair", help="Delete the orphan rows, in one transaction."),
    fmt: OutputFormat = FormatOption,
) -> None:
    """Find rows that point to a missing header row (what an interrupted write leaves), and repair them.

    Example: pleasepoint doctor --repair
    """
    from pleasepoint_cli.store.integrity import find_orphans
    from pleasepoint_cli.store.integrity import repair as repair_orphans

    with state(ctx).store() as store:
        found = repair_orphans(store) if repair else find_orphans(store)
    rows = [o.as_json() | {"repaired": repair} for o in found]
    if fmt is not OutputFormat.table:
        emit_rows(rows, fmt)
        return
    if not found:
        say(ctx, "no orphan rows: every row points to its header row.")
    for orphans in found:
        say(ctx, ("deleted: " if repair else "") + orphans.describe())
    if found and not repair:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("doctor")(doctor)
