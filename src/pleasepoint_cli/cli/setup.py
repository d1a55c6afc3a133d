"""`pleasepoint init`: a project folder with its settings file and working folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_rows, say, state

FOLDERS = ("campaigns", "automations", "templates", "outbox")

CONFIG_TEMPLATE = """\
# pleasepoint settings. Every key is optional; unknown keys are errors.
db: pleasepoint.duckdb

shop:
  name: {name}
  url: https://tienda.example
  timezone: {timezone}
  currency: {currency}
  language: {language}    # es or en: starter templates, greetings ("Hola:" / "Hello," without a name)

# Recency states in days since the last purchase (the guide's defaults).
states:
  active_below: 182
  inactive_below: 365
  hibernating_below: 730

# Propensity levels: index = cluster value / population value.
# high at or above `high`, medium at or above `medium`, else low; zero where the cluster never buys it.
# A variable is high or medium in a cluster (and can name it) only when at least min_support of the
# cluster's customers bought it; persona run warns about clusters under tiny_cluster of the customers.
levels:
  high: 1.25
  medium: 0.75
  min_support: 0.05
  tiny_cluster: 0.01

email:
  from_address: "{name} <{mailbox}@tienda.example>"
  signature: "{signature}"
  unsubscribe_base_url: https://tienda.example/baja
"""


def config_text(
    name: str, *, timezone: str = "Europe/Madrid", currency: str = "EUR", language: str = "es"
) -> str:
    """The starter pleasepoint.yaml for a shop."""
    return CONFIG_TEMPLATE.format(
        name=name,
        timezone=timezone,
        currency=currency,
        language=language,
        mailbox="hola" if language == "es" else "hello",
        signature=f"El equipo de {name}" if language == "es" else f"The {name} team",
    )


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Project folder (created if missing).")] = Path(),
    name: Annotated[
        str, typer.Option("--name", help="The shop's name, for the settings and emails.")
    ] = "Mi tienda",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing pleasepoint.yaml.")] = False,
    currency: Annotated[
        str, typer.Option("--currency", help="ISO 4217 code of the shop's prices (EUR, USD...).")
    ] = "EUR",
    timezone: Annotated[
        str,
        typer.Option("--timezone", help="The shop's IANA time zone (Europe/Madrid, America/New_York...)."),
    ] = "Europe/Madrid",
    language: Annotated[
        str,
        typer.Option("--language", help="es or en: starter templates, greetings and the email signature."),
    ] = "es",
) -> None:
    """Write pleasepoint.yaml and the folders campaigns/, automations/, templates/, outbox/.

    Example: pleasepoint init mi-tienda --name "Ecomercado"
    """
    from pleasepoint_cli.clock import shop_zone
    from pleasepoint_cli.errors import ConfigError

    if language not in ("es", "en"):
        raise typer.BadParameter(f"{language!r}: use es or en.", param_hint="--language")
    code = currency.strip().upper()
    if not (len(code) == 3 and code.isalpha()):
        raise typer.BadParameter(
            f"{currency!r}: use a 3-letter ISO 4217 code such as EUR.", param_hint="--currency"
        )
    shop_zone(timezone)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "pleasepoint.yaml"
    if config.exists() and not force:
        raise ConfigError(f"{config}: already exists. Keep it, or pass --force to overwrite it.")
    config.write_text(
        config_text(name, timezone=timezone, currency=code, language=language), encoding="utf-8"
    )
    for folder in FOLDERS:
        (directory / folder).mkdir(exist_ok=True)
    say(ctx, f"wrote {config} and {', '.join(f + '/' for f in FOLDERS)} in {directory.resolve()}")


def doctor(
    ctx: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", help="Delete the orphan rows, in one transaction.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
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
