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
    from pleasepoint_cli.cli.setup import FOLDERS, config_text
    from pleasepoint_cli.demo.generator import generate_shop
    from pleasepoint_cli.ingest.loader import ingest_file

    app_state = state(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "pleasepoint.yaml"
    if not config.exists():
        config.write_text(config_text("Ecomercado"), encoding="utf-8")
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

    run = _Runner(app_state.db_path, config)
    k = str(len(shop.personas))
    _heading("2. Run the customer-persona analysis (category, frequency)")
    run("persona", "run", "--name", "analisis-categorias", "-k", k, "--seed", str(seed))
    run("persona", "show", "latest", "--view", "heatmap")
    run("persona", "show", "latest", "--view", "table", "--html", str(directory / "outbox" / "personas.html"))

    _heading("3. Enrich the customer profile")
    run("enrich", "levels", "latest")
    run("enrich", "top", "latest", "--n", "3", "--write")

    _heading("4. Value and loyalty: the CLV table")
    run("clv", "score", "--by", "state")
    run("clv", "score", "--by", "cluster", "latest")
    run("clv", "enrich", "--by", "state", "--key", "hibernation")
    # The example shop plants personas, not a buy-till-you-die process: a small penalty keeps the fit finite.
    run("clv", "predict", "--penalizer", "0.001", "--write-tier", "clv_tier")

    _heading("5. A personalised campaign for the largest cluster")
    campaigns = directory / "campaigns"
    run("campaign", "create", "--from-cluster", "latest:1", "--dir", str(campaigns), "--force")
    campaign = sorted(campaigns.glob("*.yaml"), key=lambda p: p.stat().st_mtime)[-1]
    as_of = DEMO_AS_OF.isoformat()  # the shop's offers run around this day
    run("campaign", "validate", str(campaign), "--as-of", as_of)
    customer = _first_recipient(app_state.db_path)
    run(
        "campaign",
        "preview",
        str(campaign),
        "--customer",
        customer,
        "--as-of",
        as_of,
        "--out",
        str(directory / "outbox" / "preview.html"),
        "--images",
        str(shop.directory / "img"),
    )
    say(
        ctx,
        f"done: open {directory / 'outbox' / 'personas.html'} and {directory / 'outbox' / 'preview.html'}",
    )


class _Runner:
    """Runs one pleasepoint command in this process, showing it first as the user would type it."""

    def __init__(self, db: Path, config: Path) -> None:
        self.db = db
        self.config = config

    def __call__(self, *args: str) -> None:
        from pleasepoint_cli.cli import app
        from pleasepoint_cli.errors import PleasepointError

        stdout_console().print(f"[bold cyan]$ pleasepoint {' '.join(_quoted(a) for a in args)}[/]")
        code = app(args=["--db", str(self.db), "--config", str(self.config), *args], standalone_mode=False)
        if code not in (None, 0):
            raise PleasepointError(f"the demo stopped: `pleasepoint {' '.join(args)}` exited {code}.")


def _quoted(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def _first_recipient(db: Path) -> str:
    """A member of cluster 1 of the latest run who can receive marketing email, for the preview."""
    from pleasepoint_cli.store import open_store

    with open_store(db) as store:
        customer = store.scalar(
            """
            SELECT a.customer_id FROM persona_assignments a JOIN customers c USING (customer_id)
            WHERE a.run_id = (SELECT max(run_id) FROM persona_runs) AND a.cluster = 1
              AND c.email_consent AND c.email LIKE '%_@_%._%'
            ORDER BY a.customer_id LIMIT 1
            """
        )
    return str(customer)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
