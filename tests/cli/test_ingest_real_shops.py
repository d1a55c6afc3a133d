"""What real shops' exports need (issue 13): statuses, ambiguous dates, product conflicts, clearer errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.store import open_store

ORDERS = "order_id,customer_id,ordered_at,product_id,quantity,unit_price,status\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _score_total(runner: CliRunner) -> dict[str, float]:
    result = runner.invoke(app, ["clv", "score", "--as-of", "2024-03-31", "-f", "json"])
    assert result.exit_code == 0, result.output
    total: dict[str, float] = json.loads(result.stdout)["total"]
    return total


def test_cancelled_orders_are_stored_canonical_counted_and_left_out_of_clv(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    source = _write(
        tmp_path / "o.csv",
        ORDERS
        + "A,C1,2024-01-01,P1,1,10,Entregue\n"
        + "B,C1,2024-02-01,P1,1,100,Cancelado\n"
        + "C,C2,2024-02-01,P1,2,5,\n"
        + "D,C2,2024-03-01,P1,1,7,wc-refunded\n"
        + "E,C3,2024-03-01,P1,1,9,pendiente\n"
        + "F,C3,2024-03-02,P1,1,3,canceled\n",
    )
    result = runner.invoke(app, ["ingest", "orders", str(source), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)[0]
    assert report["not_purchases"] == {"cancelled": 2, "pending": 1, "returned": 1}
    assert any("do not count as purchases" in w for w in report["warnings"])
    with open_store(db_path) as store:
        rows = store.rows("SELECT order_id, status FROM order_lines ORDER BY order_id")
    statuses = {r["order_id"]: r["status"] for r in rows}
    assert statuses == {
        "A": "completed",
        "B": "cancelled",
        "C": "completed",
        "D": "returned",
        "E": "pending",
        "F": "cancelled",
    }
    total = _score_total(runner)
    # Only A (10) and C (2 x 5) are purchases: the cancelled 100 is not spend, C3 bought nothing.
    assert total["customers"] == 2 and total["tickets"] == 2
    assert abs(total["total_spend"] - 20.0) < 1e-9


def test_purchase_statuses_come_from_the_config(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(
        tmp_path / "o.csv", ORDERS + "A,C1,2024-01-01,P1,1,10,completed\nB,C1,2024-02-01,P1,1,5,processing\n"
    )
    config = _write(tmp_path / "pleasepoint.yaml", "ingest:\n  purchase_statuses: [completed, pending]\n")
    result = runner.invoke(app, ["--config", str(config), "ingest", "orders", str(source), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["not_purchases"] == {}
    total = _score_total(runner)
    assert total["tickets"] == 2 and abs(total["total_spend"] - 15.0) < 1e-9


US_DATES = "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n" + "".join(
    f"O{i},C{i % 3},3/{i}/2017,P1,1,2\n" for i in range(1, 13)
)


def test_dates_valid_both_ways_are_refused_until_the_order_is_said(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    source = _write(tmp_path / "us.csv", US_DATES)
    result = runner.invoke(app, ["ingest", "orders", str(source)])
    assert result.exit_code == 1, result.output
    assert "day/month and as month/day" in result.stderr and "--monthfirst" in result.stderr
    with open_store(db_path) as store:
        assert store.scalar("SELECT count(*) FROM order_lines") == 0
    result = runner.invoke(app, ["ingest", "orders", str(source), "--monthfirst"])
    assert result.exit_code == 0, result.output
    with open_store(db_path) as store:
        days = store.rows("SELECT DISTINCT month(ordered_at) AS m, day(ordered_at) AS d FROM order_lines")
    assert {(r["m"], r["d"]) for r in days} == {(3, d) for d in range(1, 13)}


def test_the_config_says_the_date_order_and_unambiguous_files_load(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(tmp_path / "us.csv", US_DATES)
    config = _write(tmp_path / "pleasepoint.yaml", "ingest:\n  date_order: dmy\n")
    result = runner.invoke(app, ["--config", str(config), "ingest", "orders", str(source)])
    assert result.exit_code == 0, result.output
    clear = _write(tmp_path / "es.csv", US_DATES.replace("3/1/2017", "13/1/2017").replace("O1,", "X1,"))
    assert runner.invoke(app, ["ingest", "orders", str(clear)]).exit_code == 0


def test_ambiguous_dates_in_a_customers_file_are_refused_too(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(tmp_path / "c.csv", "customer_id,birth_date\nC1,01/02/1980\nC2,05/06/1990\n")
    result = runner.invoke(app, ["ingest", "customers", str(source)])
    assert result.exit_code == 1 and "birth_date" in result.stderr


def test_products_from_an_order_export_keep_the_most_frequent_non_empty_values(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    source = _write(
        tmp_path / "p.csv",
        "product_id,name,price,category,marca\n"
        "P1,Taza roja,2.5,Hogar,Sol\n"
        "P1,Taza roja,2.5,,Sol\n"
        "P1,Taza ROJA,3,Hogar,\n"
        "P1,,,,\n"
        "P2,Plato,4,Hogar,Luna\n",
    )
    result = runner.invoke(app, ["ingest", "products", str(source), "-f", "json"])
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)[0]["warnings"]
    assert any(w.startswith("1 products have conflicting values") for w in warnings), warnings
    with open_store(db_path) as store:
        row = store.rows("SELECT name, price, category FROM products WHERE product_id = 'P1'")[0]
        brand = store.scalar("SELECT value FROM product_attributes WHERE product_id = 'P1' AND key = 'marca'")
    assert row == {"name": "Taza roja", "price": 2.5, "category": "Hogar"} and brand == "Sol"


def test_a_wrong_delimiter_says_the_header_came_out_as_one_column(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(tmp_path / "o.csv", ORDERS.replace(",", ";") + "A;C1;2024-01-01;P1;1;2;\n")
    result = runner.invoke(app, ["ingest", "orders", str(source), "--delimiter", ","])
    assert result.exit_code == 1
    assert "header came out as one column" in result.stderr and "--delimiter ';'" in result.stderr


def test_every_missing_column_is_reported_at_once_with_the_closest_header(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    source = _write(
        tmp_path / "retail.csv",
        "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID\n1,P1,1,2024-01-01,2,C1\n",
    )
    result = runner.invoke(
        app,
        [
            "ingest",
            "orders",
            str(source),
            "--map",
            "order_id=Invoice",
            "--map",
            "product_id=StockCod",
            "--map",
            "ordered_at=InvoiceDate",
            "--map",
            "unit_price=Price",
        ],
    )
    assert result.exit_code == 1
    assert "2 column problems" in result.stderr
    assert "did you mean 'StockCode'?" in result.stderr and "did you mean 'Customer ID'?" in result.stderr
    with open_store(db_path) as store:
        assert store.scalar("SELECT count(*) FROM order_lines") == 0


def test_a_typo_in_a_mapping_key_is_named_with_file_and_line(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(tmp_path / "o.csv", ORDERS + "A,C1,2024-01-01,P1,1,2,\n")
    mapping = _write(
        tmp_path / "m.yaml", "orders:\n  columns:\n    order_id: order_id\n    custmer_id: customer_id\n"
    )
    result = runner.invoke(app, ["ingest", "orders", str(source), "--mapping", str(mapping)])
    assert result.exit_code != 0
    assert f"{mapping}:4:" in result.stderr and "did you mean 'customer_id'?" in result.stderr


def test_loads_that_deserve_a_warning(runner: CliRunner, tmp_path: Path) -> None:
    orders = _write(tmp_path / "o.csv", ORDERS + "A,C1,2024-01-01,P1,1,2,\nA,C1,2024-01-01,P1,1,2,\n")
    result = runner.invoke(app, ["ingest", "orders", str(orders), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert any("1 lines repeat another line" in w for w in json.loads(result.stdout)[0]["warnings"])
    products = _write(tmp_path / "p.csv", "product_id,name\nP1,Taza\n")
    result = runner.invoke(app, ["ingest", "products", str(products), "-f", "json"])
    assert any("1 products have no category" in w for w in json.loads(result.stdout)[0]["warnings"])
    customers = _write(tmp_path / "c.csv", "customer_id,email\nC1,ana@example.com\n")
    result = runner.invoke(app, ["ingest", "customers", str(customers), "-f", "json"])
    assert any("has given consent" in w for w in json.loads(result.stdout)[0]["warnings"])
