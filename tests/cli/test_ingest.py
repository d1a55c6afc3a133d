"""`pleasepoint ingest` through the CLI: summaries, JSON, rejects, and every option's error path."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.store import open_store

DATA = Path(__file__).parents[1] / "data"
ORDERS = "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n"


def _orders(path: Path, body: str) -> Path:
    path.write_text(ORDERS + body, encoding="utf-8")
    return path


def test_cdnow_loads_with_whitespace_columns_and_one_order_per_customer_day(
    runner: CliRunner, db_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "ingest",
            "orders",
            str(DATA / "cdnow_sample.txt"),
            "--delimiter",
            "whitespace",
            "--no-header",
            "--columns",
            "master_id,customer_id,date,cds,dollars",
            "--map",
            "ordered_at=date",
            "--map",
            "quantity=cds",
            "--map",
            "amount=dollars",
            "--map",
            "product_id=master_id",
            "--order-id-from",
            "customer-day",
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["inserted"] == 6_919
    with open_store(db_path) as store:
        assert store.scalar("SELECT count(DISTINCT customer_id) FROM order_lines") == 2_357
        assert store.scalar("SELECT count(DISTINCT order_id) FROM order_lines") == 6_696


def test_a_table_summary_with_warnings_and_a_rejects_file(runner: CliRunner, tmp_path: Path) -> None:
    source = _orders(tmp_path / "o.csv", "A,C1,2024-01-01,P1,1,2\nB,C2,2024-01-01,P1,muchos,2\n")
    rejects = tmp_path / "r.csv"
    result = runner.invoke(app, ["ingest", "orders", str(source), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    assert "o.csv" in result.stdout and "skipped:" in result.stderr and "warning:" in result.stderr
    assert "muchos" in rejects.read_text(encoding="utf-8")


def test_a_bad_row_exits_1_and_loads_nothing(runner: CliRunner, tmp_path: Path, db_path: Path) -> None:
    good = _orders(tmp_path / "good.csv", "A,C1,2024-01-01,P1,1,2\n")
    bad = _orders(tmp_path / "bad.csv", "B,C1,2024-01-01,P1,1,2\nC,C1,32/13/2024,P1,1,2\n")
    result = runner.invoke(app, ["ingest", "orders", str(good), str(bad)])
    assert result.exit_code == 1
    assert "bad.csv:3: column 'ordered_at': value '32/13/2024'" in result.stderr
    with open_store(db_path) as store:
        assert store.scalar("SELECT count(*) FROM order_lines") == 0  # the good file of the same command too


def test_option_errors_are_clear(runner: CliRunner, tmp_path: Path) -> None:
    source = _orders(tmp_path / "o.csv", "A,C1,2024-01-01,P1,1,2\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customers:\n  columns: {customer_id: id}\n", encoding="utf-8")
    cases = [
        (["--decimal", ";"], "--decimal"),
        (["--map", "quantity"], "canonical=SOURCE_COLUMN"),
        (["--map", "cantidad=quantity"], "'cantidad' is not a field of orders"),
        (["--mapping", str(mapping)], "has no `orders:` section"),
        (["--rejects", "r.csv", str(source)], "--rejects takes one file"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["ingest", "orders", str(source), *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.stderr, (extra, result.stderr)
    customers = runner.invoke(app, ["ingest", "customers", str(source), "--order-id-from", "customer-day"])
    assert customers.exit_code == 1 and "ingest orders` only" in customers.stderr
