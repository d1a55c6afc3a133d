"""`pleasepoint customers show` through the CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from persona_rows import plant_personas
from pleasepoint_cli.cli import app
from pleasepoint_cli.store import Store

AS_OF = date(2026, 6, 30)


@pytest.fixture
def db(store: Store) -> Path:
    """Personas, six buyers, and C01 with two orders (one with a return) and an enrichment."""
    plant_personas(store.con)
    with store.transaction() as con:
        con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
            "VALUES (?, ?, ?, 'P', ?, ?, ?)",
            [
                ["A1", "C01", date(2026, 1, 10), 2, 15.0, 30.0],
                ["A2", "C01", date(2026, 6, 10), 1, 20.0, 20.0],
                ["A2", "C01", date(2026, 6, 10), -1, 5.0, -5.0],
                *[
                    [f"B{i}", f"C0{i}", AS_OF - timedelta(days=30 * i), 1, 10.0 * i, 10.0 * i]
                    for i in range(2, 7)
                ],
            ],
        )
    from pleasepoint_cli.enrich.cluster import enrich_cluster

    enrich_cluster(store, 1, 1, {"segmento": "Súper y huerto"})
    store.close()
    return store.path


def test_show_gives_profile_attributes_clusters_and_figures(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["customers", "show", "C01", "--as-of", AS_OF.isoformat(), "-f", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["profile"]["email"] == "c01@example.es" and shown["profile"]["first_name"] == "Nombre C01"
    assert [(a["key"], a["value"], a["source"]) for a in shown["attributes"]] == [
        ("segmento", "Súper y huerto", "enrich run 1 cluster 1")
    ]
    assert [(c["run_id"], c["cluster"], c["label"]) for c in shown["clusters"]] == [
        (2, 1, "Marca A"),
        (1, 1, "Supermercado ECO + Huerto ECO"),
    ]
    figures = shown["figures"]
    assert (figures["orders"], figures["spend"], figures["avg_ticket"]) == (2, 45.0, 22.5)
    assert (figures["first_order"], figures["last_order"]) == ("2026-01-10", "2026-06-10")
    assert figures["recency_days"] == 20 and figures["state"] == "active"
    # R: most recent of six (5); F: the only one with two orders (5); M: 45.00 is the 4th of six spends (3)
    assert (figures["rfm_scores"], figures["rfm_segment"]) == ("553", "Champions")


def test_show_as_table_and_csv(db: Path, runner: CliRunner) -> None:
    table = runner.invoke(app, ["customers", "show", "C01", "--as-of", AS_OF.isoformat()])
    assert table.exit_code == 0, table.output
    for text in ("Nombre C01", "Súper y huerto", "Marca A", "recency_days", "active"):
        assert text in table.output
    csv_out = runner.invoke(app, ["customers", "show", "C01", "--as-of", AS_OF.isoformat(), "-f", "csv"])
    assert csv_out.exit_code == 0
    assert "attributes,segmento,Súper y huerto,enrich run 1 cluster 1," in csv_out.stdout


def test_a_customer_without_purchases_and_a_small_shop(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["customers", "show", "C10", "--as-of", AS_OF.isoformat(), "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["figures"] is None
    early = runner.invoke(app, ["customers", "show", "C01", "--as-of", "2026-02-01", "-f", "json"])
    figures = json.loads(early.stdout)["figures"]
    assert figures["orders"] == 1 and figures["rfm_segment"] is None, "three buyers by then: no quintiles"


def test_an_unknown_customer_is_an_error(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["customers", "show", "NOPE"])
    assert result.exit_code == 1 and "no customer 'NOPE'" in result.output
