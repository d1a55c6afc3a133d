"""`pleasepoint init`: a project folder with its settings file and working folders."""

from __future__ import annotations

from pathlib import Path

import typer

from pleasepoint_cli.cli._common import say

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


def register(app: typer.Typer) -> None:
    app.command("init")(init)
