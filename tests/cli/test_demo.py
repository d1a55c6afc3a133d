"""`pleasepoint demo` walks the whole workflow on a small example shop."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.store import open_store


def test_demo_runs_the_whole_workflow(runner: CliRunner, tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    db = tmp_path / "demo.duckdb"
    result = runner.invoke(
        app, ["--db", str(db), "demo", "--customers", "800", "--seed", "3", "--dir", str(shop)]
    )
    assert result.exit_code == 0, result.output
    for step in (
        "persona run",
        "enrich levels",
        "clv score --by state",
        "campaign create",
        "campaign preview",
        "campaign send",
        "campaign status",
        "automate tick",
        "automate list",
        "events ingest",
        "stats",
    ):
        assert f"$ pleasepoint {step}" in result.stdout
    assert (shop / "outbox" / "personas.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    preview = (shop / "outbox" / "preview.html").read_text(encoding="utf-8")
    assert "<html" in preview and (shop / "outbox" / "preview.txt").exists()
    # No broken images: every product picture is the demo's own, shown from data/img (issue 13 item 17).
    import re

    sources = re.findall(r'<img[^>]* src="([^"]*)"', preview)
    products = [src for src in sources if "tienda.example/img/" in src or src.startswith("data:image/png")]
    assert products and all(src.startswith("data:image/png;base64,") for src in products)
    assert len(list((shop / "data" / "img").glob("PR*.jpg"))) > 100
    assert (shop / "pleasepoint.yaml").exists() and list((shop / "campaigns").glob("*.yaml"))
    with open_store(db) as store:
        missing = json.loads((shop / "data" / "truth.json").read_text(encoding="utf-8"))["dirt"]["counts"][
            "customers_missing_from_export"
        ]
        assert store.scalar("SELECT count(*) FROM customers") == 800 - missing
        assert store.scalar("SELECT count(*) FROM persona_runs") == 1
        assert (
            store.scalar(
                "SELECT count(DISTINCT customer_id) FROM customer_attributes WHERE key = 'hibernation'"
            )
            == 800
        )
        assert store.scalar("SELECT count(*) FROM customer_attributes WHERE key = 'segment'") == 800

    # Sending: the campaign and the automation tick went into the outbox, one .eml per sent ledger row.
    from pleasepoint_cli.ops import OpsStore, ops_path

    with OpsStore(ops_path(db)) as ops:
        sent = {
            (r["kind"], r["source"]): r["n"]
            for r in ops.rows(
                "SELECT kind, source, count(*) AS n FROM ledger WHERE status = 'sent' GROUP BY 1, 2"
            )
        }
        providers = {r["provider"] for r in ops.rows("SELECT DISTINCT provider FROM events")}
    assert sent[("automation", "recuperar-inactivos-plantas")] > 0
    assert sum(n for (kind, _), n in sent.items() if kind == "campaign") > 0
    emls = list((shop / "outbox").glob("*.eml"))
    assert len(emls) == sum(sent.values())
    assert providers == {"sendgrid", "mailgun", "ses"}
    stats = runner.invoke(
        app, ["--db", str(db), "--config", str(shop / "pleasepoint.yaml"), "stats", "--format", "json"]
    )
    assert stats.exit_code == 0, stats.output
    figures = json.loads(stats.stdout)
    assert figures["counters"]["sent"] == sum(sent.values()) and figures["counters"]["delivered"] > 0


def test_demo_refuses_a_customer_count_below_ten(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--customers", "3", "--dir", str(tmp_path / "s")])
    assert result.exit_code == 2
