"""`pleasepoint demo`: make the example shop, load it and walk the guide's workflow on it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from pleasepoint_cli.cli._common import emit_rows, say, state, stdout_console

DEMO_AS_OF = date(2026, 6, 30)


def _heading(text: str) -> None:
    stdout_console().rule(f"[bold]{text}", align="left")


def demo(
    ctx: typer.Context,
    customers: int = typer.Option(5000, "--customers", min=10, help="How many customers the shop has."),
    seed: int = typer.Option(
        42, "--seed", help="Seed of the generator (same seed, same shop, same results)."
    ),
    directory: Path = typer.Option(
        Path("demo-shop"), "--dir", help="Folder for the shop's files and database."
    ),
) -> None:
    """Make the example eco-supermarket (seeded, planted personas), load it and run the whole workflow.

    The database is the folder's pleasepoint.duckdb (made anew) unless --db or $PLEASEPOINT_DB names one.

    Example: pleasepoint demo --customers 5000 --seed 42 --dir demo-shop
    """
    from pleasepoint_cli.cli.setup import CONFIG_TEMPLATE, FOLDERS
    from pleasepoint_cli.demo.generator import generate_shop
    from pleasepoint_cli.ingest.loader import ingest_file

    app_state = state(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "pleasepoint.yaml"
    if not config.exists():
        config.write_text(CONFIG_TEMPLATE.format(name="Ecomercado"), encoding="utf-8")
    for folder in FOLDERS:
        (directory / folder).mkdir(exist_ok=True)
    if app_state.db is None:
        app_state.db = directory / "pleasepoint.duckdb"
        for stale in (app_state.db, Path(f"{app_state.db}.wal")):
            stale.unlink(missing_ok=True)
    say(ctx, f"making the example shop: {customers:,} customers, seed {seed}, in {directory}/data")
    shop = generate_shop(directory / "data", customers=customers, seed=seed, as_of=DEMO_AS_OF)

    _heading("1. Load the shop")
    rows = []
    with app_state.store() as store, store.transaction():
        for entity, file in (
            ("stores", shop.stores),
            ("products", shop.products),
            ("customers", shop.customers),
            ("orders", shop.orders),
        ):
            report = ingest_file(store, entity, file)
            rows.append(
                {
                    "entity": entity,
                    "file": file.name,
                    "read": report.rows_read,
                    "inserted": report.inserted,
                    "rejected": report.rejected,
                }
            )
    from pleasepoint_cli.cli._common import OutputFormat

    emit_rows(rows, OutputFormat.table, title=f"loaded into {app_state.db_path}")
    say(ctx, f"planted personas: {', '.join(shop.personas)} (truth in {shop.truth})")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
