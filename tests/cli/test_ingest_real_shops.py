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
    warnings = json.loads(result.stdout)[0]["warnings"]
    assert any("1 duplicate lines repeat another line" in w for w in warnings)
    # Customers and products not loaded yet: with both tables empty, every line.
    assert "2 lines are of customers not loaded yet" in " ".join(warnings)
    assert "2 lines are of products not loaded yet" in " ".join(warnings)
    # A file with a bad line goes through the checking path, which counts the duplicates on its own.
    orders = _write(
        tmp_path / "bad.csv",
        ORDERS + "B,C1,2024-01-02,P1,1,2,\nB,C1,2024-01-02,P1,1,2,\nC,C1,nunca,P1,1,2,\n",
    )
    result = runner.invoke(app, ["ingest", "orders", str(orders), "--on-error", "skip", "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)[0]
    assert report["rejected"] == 1 and any("1 duplicate lines repeat" in w for w in report["warnings"])
    products = _write(tmp_path / "p.csv", "product_id,name\nP1,Taza\n")
    result = runner.invoke(app, ["ingest", "products", str(products), "-f", "json"])
    assert any("1 products have no category" in w for w in json.loads(result.stdout)[0]["warnings"])
    customers = _write(tmp_path / "c.csv", "customer_id,email\nC1,ana@example.com\n")
    result = runner.invoke(app, ["ingest", "customers", str(customers), "-f", "json"])
    assert any("has given consent" in w for w in json.loads(result.stdout)[0]["warnings"])
    # With both tables filled: only the lines of the unknown customer and product, and P1 has no category.
    orders = _write(tmp_path / "more.csv", ORDERS + "D,C1,2024-01-03,P1,1,2,\nE,C2,2024-01-04,P9,1,2,\n")
    result = runner.invoke(app, ["ingest", "orders", str(orders), "-f", "json"])
    warnings = " ".join(json.loads(result.stdout)[0]["warnings"])
    assert "1 lines are of customers not loaded yet" in warnings
    assert "1 lines are of products not loaded yet" in warnings
    assert "1 lines are of products without a category" in warnings


EXAMPLES = Path(__file__).parents[2] / "examples"


def _ingest(runner: CliRunner, entity: str, source: Path, mapping: str) -> dict[str, object]:
    result = runner.invoke(
        app, ["ingest", entity, str(source), "--mapping", str(EXAMPLES / mapping), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)[0]
    return report


def test_online_retail_ii_mapping(runner: CliRunner, tmp_path: Path, db_path: Path) -> None:
    source = _write(
        tmp_path / "online_retail_II.csv",
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085,United Kingdom\n"
        "489434,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:45:00,6.75,13085,United Kingdom\n"
        "C489449,22087,PAPER BUNTING WHITE LACE,-12,2009-12-01 10:33:00,2.95,16321,Australia\n"
        "489435,22350,CAT BOWL,12,2009-12-01 07:46:00,2.55,,United Kingdom\n",
    )
    report = _ingest(runner, "orders", source, "online_retail_ii_mapping.yaml")
    assert report["inserted"] == 3 and report["rejected"] == 1
    _ingest(runner, "customers", source, "online_retail_ii_mapping.yaml")
    _ingest(runner, "products", source, "online_retail_ii_mapping.yaml")
    with open_store(db_path) as store:
        assert store.scalar("SELECT status FROM order_lines WHERE order_id = 'C489449'") == "returned"
        assert store.scalar("SELECT country FROM customers WHERE customer_id = '16321'") == "Australia"
        assert store.scalar("SELECT name FROM products WHERE product_id = '22350'") == "CAT BOWL"


def test_shopify_orders_export_mapping(runner: CliRunner, tmp_path: Path, db_path: Path) -> None:
    header = (
        "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,"
        "Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,"
        "Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,Lineitem sku,"
        "Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,Billing Name,Billing City,"
        "Billing Zip,Billing Country,Billing Phone,Cancelled at,Id\n"
    )
    paid = "2024-03-05 10:23:45 +0100"
    source = _write(
        tmp_path / "orders_export.csv",
        header
        + f"#1001,ana@example.com,paid,{paid},fulfilled,,yes,EUR,30,0,0,30,,0,Standard,{paid},2,Taza,10,,TZ-1,"
        "true,true,fulfilled,Ana Ruiz,Cádiz,11001,ES,,,5001\n"
        + f"#1001,ana@example.com,,,,,,,,,,,,,,{paid},1,Plato,10,,PL-1,true,true,fulfilled,,,,,,,\n"
        + "#1002,ana@example.com,voided,,,,yes,EUR,99,0,0,99,,0,Standard,2024-03-06 09:00:00 +0100,1,Jarra,"
        "50,,JR-1,true,true,,Ana Ruiz,Cádiz,11001,ES,,2024-03-06 10:00:00 +0100,5002\n"
        + "#1002,ana@example.com,,,,,,,,,,,,,,2024-03-06 09:00:00 +0100,1,Vaso,49,,VS-1,true,true,,,,,,,,\n",
    )
    report = _ingest(runner, "orders", source, "shopify_orders_mapping.yaml")
    assert report["inserted"] == 4 and report["not_purchases"] == {"cancelled": 1}
    _ingest(runner, "customers", source, "shopify_orders_mapping.yaml")
    with open_store(db_path) as store:
        assert store.scalar("SELECT city FROM customers WHERE customer_id = 'ana@example.com'") == "Cádiz"
        assert str(store.scalar("SELECT min(ordered_at) FROM order_lines")) == "2024-03-05 10:23:45"
    total = _score_total(runner)
    # The voided order #1002 is left out whole, though only its first row carries the status.
    assert total["tickets"] == 1 and abs(total["total_spend"] - 30.0) < 1e-9


def test_woocommerce_orders_export_mapping(runner: CliRunner, tmp_path: Path, db_path: Path) -> None:
    source = _write(
        tmp_path / "woo.csv",
        "order_id,order_number,order_date,status,customer_id,billing_first_name,billing_last_name,"
        "billing_email,billing_phone,billing_city,billing_postcode,billing_country,item_id,item_name,"
        "item_sku,item_quantity,item_subtotal,item_total,order_total\n"
        "101,101,2024-03-01 12:00:00,completed,7,Luis,Gil,luis@example.com,,Vigo,36201,ES,1,Café,CF-1,2,"
        "12,12,12\n"
        "102,102,2024-03-02 12:00:00,wc-cancelled,0,Eva,Sanz,eva@example.com,,Lugo,27001,ES,2,Té,TE-1,1,"
        "5,5,5\n"
        "103,103,2024-03-03 12:00:00,processing,0,Eva,Sanz,eva@example.com,,Lugo,27001,ES,3,Té,TE-1,1,"
        "5,5,5\n",
    )
    report = _ingest(runner, "orders", source, "woocommerce_orders_mapping.yaml")
    assert report["inserted"] == 3 and report["not_purchases"] == {"cancelled": 1, "pending": 1}
    _ingest(runner, "customers", source, "woocommerce_orders_mapping.yaml")
    with open_store(db_path) as store:
        assert store.scalar("SELECT last_name FROM customers WHERE customer_id = 'eva@example.com'") == "Sanz"
        assert store.scalar("SELECT unit_price FROM order_lines WHERE order_id = '101'") == 6.0
    total = _score_total(runner)
    assert total["tickets"] == 1 and abs(total["total_spend"] - 12.0) < 1e-9


MARKETPLACE = EXAMPLES / "marketplace" / "marketplace_mapping.yaml"


def test_a_relational_export_loads_through_a_query_in_the_mapping(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    for entity in ("customers", "orders", "orders"):  # the second orders load changes nothing
        result = runner.invoke(app, ["ingest", entity, "--mapping", str(MARKETPLACE), "-f", "json"])
        assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)[0]
    assert report["read"] == 4 and report["inserted"] == 0 and report["updated"] == 4
    with open_store(db_path) as store:
        assert store.scalar("SELECT count(*) FROM order_lines") == 4
        assert store.scalar("SELECT count(*) FROM customers") == 2
        assert store.scalar("SELECT status FROM order_lines WHERE order_id = 'o2'") == "cancelled"
        assert store.scalar("SELECT value FROM customer_attributes WHERE customer_id = 'u2'") == "PR"
    total = _score_total_at(runner, "2018-03-31")
    assert total["customers"] == 2 and total["tickets"] == 2 and abs(total["total_spend"] - 138.9) < 1e-6


def _score_total_at(runner: CliRunner, as_of: str) -> dict[str, float]:
    result = runner.invoke(app, ["clv", "score", "--as-of", as_of, "-f", "json"])
    assert result.exit_code == 0, result.output
    total: dict[str, float] = json.loads(result.stdout)["total"]
    return total


def test_sql_on_the_command_line_with_the_same_checks(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    _write(tmp_path / "items.csv", "order_id,product_id,quantity,unit_price\nA,P1,1,2\nB,P1,1,muchos\n")
    _write(tmp_path / "orders.csv", "order_id,customer_id,ordered_at\nA,C1,2024-01-01\nB,C2,2024-01-02\n")
    query = "SELECT * FROM read_csv('items.csv', all_varchar = true) i JOIN read_csv('orders.csv', all_varchar = true) o USING (order_id)"
    result = runner.invoke(app, ["ingest", "orders", "--sql", query])
    assert result.exit_code == 1 and "muchos" in result.stderr and "row 2" in result.stderr
    with open_store(db_path) as store:
        assert store.scalar("SELECT count(*) FROM order_lines") == 0
    good = query.replace(
        "SELECT *",
        "SELECT * REPLACE (CASE WHEN unit_price = 'muchos' THEN '3' ELSE unit_price END AS unit_price)",
    )
    result = runner.invoke(app, ["ingest", "orders", "--sql", good])
    assert result.exit_code == 0, result.output
    with open_store(db_path) as store:
        assert store.scalar("SELECT sum(amount) FROM order_lines") == 5.0


def test_only_a_select_reading_files_is_allowed(runner: CliRunner, tmp_path: Path, db_path: Path) -> None:
    for query, message in (
        ("COPY (SELECT 1) TO 'x.csv'", "only a SELECT"),
        ("ATTACH 'other.duckdb'", "only a SELECT"),
        ("SELECT 1; DROP TABLE customers", "exactly one SELECT"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets() is not allowed"),
        ("SELECT getenv('HOME') AS order_id", "getenv() is not allowed"),
        ("INSTALL httpfs", "only a SELECT"),
    ):
        result = runner.invoke(app, ["ingest", "orders", "--sql", query])
        assert result.exit_code == 1 and message in result.stderr, (query, result.output)
    assert not (tmp_path / "x.csv").exists()
