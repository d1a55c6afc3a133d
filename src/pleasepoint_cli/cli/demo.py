"""`pleasepoint demo`: make the example shop, load it and walk the guide's workflow on it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from pleasepoint_cli.cli._common import emit_rows, say, state, stdout_console

DEMO_AS_OF = date(2026, 6, 30)
DEMO_SEND_AT = "2026-06-30T10:00"
"""The campaign send's clock (shop time): the shop's offers run around DEMO_AS_OF."""
DEMO_TICK_AT = "2026-07-01T09:05"
"""The automation tick's clock: five minutes after the win-back's first daily slot (09:00, 1 July 2026)."""
DEMO_EVENTS_AT = "2026-07-03T12:00"
"""When the demo's provider events are received (after the last of them happened)."""
DEMO_CAMPAIGN = ("campaigns/cluster_supermercado.yaml", "templates/cluster_supermercado.mjml")
DEMO_AUTOMATION = (
    "automations/recuperar_inactivos_plantas.yaml",
    "campaigns/recuperacion_plantas.yaml",
    "templates/recuperacion.mjml",
)


def _heading(text: str) -> None:
    stdout_console().rule(f"[bold]{text}", align="left")


def demo(
    ctx: typer.Context,
    customers: Annotated[
        int, typer.Option("--customers", min=10, help="How many customers the shop has.")
    ] = 5000,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generator (same seed, same shop, same results).")
    ] = 42,
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the shop's files and database.")
    ] = Path("demo-shop"),
) -> None:
    """Make the example eco-supermarket (seeded, planted personas), load it and run the whole workflow.

    The database is the folder's pleasepoint.duckdb (made anew) unless --db or $PLEASEPOINT_DB names one.

    Example: pleasepoint demo --customers 5000 --seed 42 --dir demo-shop
    """
    from pleasepoint_cli.cli.setup import FOLDERS, config_text
    from pleasepoint_cli.demo.generator import generate_shop
    from pleasepoint_cli.demo.load import load_example_shop

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
    with app_state.store() as store:
        loaded = load_example_shop(store, shop)
    rows = [
        {
            "entity": entity,
            "file": Path(report.file).name,
            "read": report.rows_read,
            "inserted": report.inserted,
            "rejected": report.rejected,
        }
        for entity, report in loaded
    ]
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
    run("clv", "predict", "--write-tier", "clv_tier")

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
    _send_and_measure(ctx, run, directory, campaign, seed)
    say(
        ctx,
        f"done: open {directory / 'outbox' / 'personas.html'}, {directory / 'outbox' / 'preview.html'} and "
        f"{directory / 'outbox' / 'stats.html'}; the messages are the .eml files in {directory / 'outbox'}",
    )


def _examples_dir() -> Path | None:
    """The repository's examples/ folder (a source checkout, as `make demo` runs it), if there is one."""
    folder = Path(__file__).resolve().parents[3] / "examples"
    return folder if folder.is_dir() else None


def _copy_examples(directory: Path, names: tuple[str, ...]) -> bool:
    import shutil

    examples = _examples_dir()
    if examples is None or not all((examples / name).is_file() for name in names):
        return False
    for name in names:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(examples / name, target)
    return True


def _send_and_measure(ctx: typer.Context, run: _Runner, directory: Path, created: Path, seed: int) -> None:
    """Steps 6-8: send a campaign into the outbox, tick the win-back automation, then load what the providers
    would report about those messages and show the statistics."""
    from pleasepoint_cli.config import load_settings
    from pleasepoint_cli.demo.events import write_demo_events
    from pleasepoint_cli.ops import open_ops

    _heading("6. Send the campaign (into the outbox: delivery.transport is outbox)")
    campaign = directory / DEMO_CAMPAIGN[0] if _copy_examples(directory, DEMO_CAMPAIGN) else created
    run("campaign", "send", str(campaign), "--now", DEMO_SEND_AT, "--yes")
    run("campaign", "status", str(campaign))

    _heading("7. The win-back automation: daily, once a month per customer")
    automations = directory / "automations"
    if _copy_examples(directory, DEMO_AUTOMATION):
        run("automate", "tick", "--dir", str(automations), "--now", DEMO_TICK_AT)
        run("automate", "list", "--dir", str(automations), "--now", DEMO_TICK_AT)
    else:
        say(ctx, "no examples/ folder beside this installation: the automation step is skipped.")

    _heading("8. Provider events and statistics")
    settings = load_settings(run.config)
    with open_ops(run.db) as ops:
        files = write_demo_events(ops, directory / "data", seed=seed, shop_url=settings.shop.url)
    for provider, file in files.items():
        run("events", "ingest", str(file), "--format", provider, "--now", DEMO_EVENTS_AT)
    run("stats", "--from", DEMO_AS_OF.isoformat(), "--to", "2026-07-03", "--by", "day",
        "--html", str(directory / "outbox" / "stats.html"))  # fmt: skip


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
    """A member of cluster 1 of the latest run who may receive marketing email (the audience language's own
    marketing guards: consent, a valid address, not suppressed, not erased), for the preview."""
    from pleasepoint_cli.audience.compile import GUARDS
    from pleasepoint_cli.ops.suppression import attach_suppressions_beside
    from pleasepoint_cli.store import open_store

    guards = " AND ".join(f"({sql})" for _, sql in GUARDS)
    with open_store(db) as store:
        attach_suppressions_beside(db, store)
        rows = store.rows(
            f"""
            SELECT a.customer_id FROM persona_assignments a JOIN customers c USING (customer_id)
            WHERE a.run_id = (SELECT max(run_id) FROM persona_runs) AND a.cluster = 1 AND {guards}
            ORDER BY a.customer_id LIMIT 1
            """
        )
    return str(rows[0]["customer_id"])


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
