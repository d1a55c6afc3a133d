"""Ingest: formats, Spanish exports, mapping, atomicity, idempotence, rejects, the UCI Online Retail file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pleasepoint_cli.errors import ConfigError, InputDataError
from pleasepoint_cli.ingest.loader import ingest_file
from pleasepoint_cli.ingest.mapping import load_mapping
from pleasepoint_cli.ingest.source import ReadOptions
from pleasepoint_cli.store import Store, open_store

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[1] / "examples"
UCI = DATA / "online_retail.parquet"

ORDERS_HEADER = "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n"


def counts(store: Store) -> dict[str, int]:
    """Row counts of every table that ingest writes."""
    tables = (
        "order_lines",
        "customers",
        "products",
        "stores",
        "product_attributes",
        "customer_attributes",
        "attribute_history",
        "ingests",
    )
    return {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in tables}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_uci_online_retail_loads_through_the_example_mapping(store: Store) -> None:
    mapping = load_mapping(EXAMPLES / "online_retail_mapping.yaml")
    orders = ingest_file(store, "orders", UCI, section=mapping.orders)
    customers = ingest_file(store, "customers", UCI, section=mapping.customers)
    products = ingest_file(store, "products", UCI, section=mapping.products)
    assert (orders.rows_read, orders.inserted, orders.rejected) == (541_909, 406_829, 135_080)
    assert orders.rejected_reasons == {"no customer_id": 135_080}
    assert any("135,080 rows without a customer_id" in w for w in orders.warnings)
    assert customers.inserted == 4_372 and products.inserted == 4_070
    assert store.scalar("SELECT count(DISTINCT customer_id) FROM order_lines") == 4_372
    # Returns and cancellations stay as negative lines.
    returns = store.rows("SELECT count(*) AS n, min(status) AS s FROM order_lines WHERE quantity < 0")[0]
    assert returns["n"] == 8_905 and returns["s"] == "returned"
    assert store.scalar("SELECT sum(quantity) FROM order_lines") == pytest.approx(4_906_888)
    assert store.scalar("SELECT customer_id FROM order_lines WHERE order_id = '536365' LIMIT 1") == "17850"
    before = counts(store)
    again = ingest_file(store, "orders", UCI, section=mapping.orders)
    ingest_file(store, "customers", UCI, section=mapping.customers)
    assert (again.inserted, again.updated) == (0, 406_829)
    after = counts(store)
    assert {k: v for k, v in after.items() if k != "ingests"} == {
        k: v for k, v in before.items() if k != "ingests"
    }


def test_a_spanish_export_loads_with_the_right_flags_and_keeps_accents(store: Store, tmp_path: Path) -> None:
    customers = write(
        tmp_path / "clientes.csv",
        "id_cliente;nombre;apellidos;email;alta;ciudad;consentimiento;tarjeta\n"
        "C1;José;Núñez Peña;jose@example.com;03/01/2024;Logroño;sí;Oro\n"
        "C2;María;Ibáñez;maria@example.com;15/02/2024;Málaga;no;\n",
        encoding="latin-1",
    )
    orders = write(
        tmp_path / "ventas.csv",
        "pedido;cliente;fecha;producto;cantidad;precio\n"
        "V1;C1;31/12/2024;P1;2;3,50\nV1;C1;31/12/2024;P2;1;1.234,95\nV2;C2;01/02/2025;P1;-1;3,50\n",
        encoding="latin-1",
    )
    options = ReadOptions(delimiter=";", encoding="latin-1", decimal=",", date_format="%d/%m/%Y")
    report = ingest_file(
        store,
        "customers",
        customers,
        options=options,
        explicit={
            "customer_id": "id_cliente",
            "first_name": "nombre",
            "last_name": "apellidos",
            "created_at": "alta",
            "city": "ciudad",
            "email_consent": "consentimiento",
        },
    )
    assert report.inserted == 2 and report.attributes == ["tarjeta"]
    ingest_file(
        store,
        "orders",
        orders,
        options=options,
        explicit={
            "order_id": "pedido",
            "customer_id": "cliente",
            "ordered_at": "fecha",
            "product_id": "producto",
            "quantity": "cantidad",
            "unit_price": "precio",
        },
    )
    rows = store.rows(
        "SELECT first_name, last_name, city, email_consent, created_at FROM customers ORDER BY 1"
    )
    assert [(r["first_name"], r["last_name"], r["city"], r["email_consent"]) for r in rows] == [
        ("José", "Núñez Peña", "Logroño", True),
        ("María", "Ibáñez", "Málaga", False),
    ]
    assert str(rows[0]["created_at"]) == "2024-01-03 00:00:00"
    assert (
        store.scalar("SELECT value FROM customer_attributes WHERE customer_id = 'C1' AND key = 'tarjeta'")
        == "Oro"
    )
    lines = store.rows(
        "SELECT order_id, amount, ordered_at, status FROM order_lines ORDER BY order_id, amount"
    )
    assert [round(r["amount"], 2) for r in lines] == [7.0, 1234.95, -3.5]
    assert str(lines[0]["ordered_at"]) == "2024-12-31 00:00:00" and lines[2]["status"] == "returned"


def test_encoding_delimiter_bom_and_dates_are_detected(store: Store, tmp_path: Path) -> None:
    cp1252 = write(
        tmp_path / "tiendas.csv",
        "store_id;name;city\nS1;Ecomercado “Centro” – Cádiz;Cádiz\n",
        encoding="cp1252",
    )
    ingest_file(store, "stores", cp1252)
    assert store.scalar("SELECT name FROM stores") == "Ecomercado “Centro” – Cádiz"
    bom = tmp_path / "orders.tsv"
    bom.write_bytes(
        b"\xef\xbb\xbf" + b"order_id\tcustomer_id\tordered_at\tproduct_id\tquantity\tunit_price\n"
        b"A\tC1\t15/03/2024 10:30\tP1\t1\t2.5\n"
    )
    ingest_file(store, "orders", bom)
    assert str(store.scalar("SELECT ordered_at FROM order_lines")) == "2024-03-15 10:30:00"


def test_json_and_jsonl_load(store: Store, tmp_path: Path) -> None:
    products = [
        {"product_id": "P1", "name": "Tomate rosa", "category": "Huerto ECO", "price": 2.5, "marca": "Sol"},
        {"product_id": "P2", "name": "Pañales", "category": "Bebé y niño", "price": 9.9},
    ]
    (tmp_path / "p.json").write_text(json.dumps(products, ensure_ascii=False), encoding="utf-8")
    ingest_file(store, "products", tmp_path / "p.json")
    (tmp_path / "c.jsonl").write_text('{"customer_id": 7, "first_name": "Íñigo"}\n', encoding="utf-8")
    ingest_file(store, "customers", tmp_path / "c.jsonl")
    assert store.scalar("SELECT category FROM products WHERE product_id = 'P2'") == "Bebé y niño"
    assert (
        store.scalar("SELECT value FROM product_attributes WHERE product_id = 'P1' AND key = 'marca'")
        == "Sol"
    )
    assert store.scalar("SELECT first_name FROM customers WHERE customer_id = '7'") == "Íñigo"


def test_a_missing_required_column_aborts_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    ingest_file(store, "orders", write(tmp_path / "ok.csv", ORDERS_HEADER + "A,C1,2024-01-01,P1,1,2\n"))
    before = counts(store)
    bad = write(
        tmp_path / "sin_cantidad.csv",
        "order_id,customer_id,ordered_at,product_id,unit_price\nB,C1,2024-01-01,P1,2\n",
    )
    with pytest.raises(InputDataError) as caught:
        ingest_file(store, "orders", bad)
    message = str(caught.value)
    assert "sin_cantidad.csv" in message and "quantity" in message and "--map quantity=" in message
    assert counts(store) == before


def big_orders(path: Path, lines: int, bad_line: int | None = None) -> Path:
    """A CSV of `lines` order lines (plus header); line `bad_line` (1-based, header = 1) has quantity 'dos'."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(ORDERS_HEADER)
        for i in range(2, lines + 2):
            quantity = "dos" if i == bad_line else str(1 + i % 3)
            f.write(
                f"O{i // 3},C{i % 997},2024-0{1 + i % 9}-1{i % 10} 10:00:00,P{i % 50},{quantity},{i % 7}.25\n"
            )
    return path


def test_a_bad_value_on_line_5000_names_file_line_column_and_value(store: Store, tmp_path: Path) -> None:
    ingest_file(store, "orders", write(tmp_path / "ok.csv", ORDERS_HEADER + "A,C1,2024-01-01,P1,1,2\n"))
    before = counts(store)
    big = big_orders(tmp_path / "big.csv", 20_000, bad_line=5_000)
    with pytest.raises(InputDataError) as caught:
        ingest_file(store, "orders", big)
    message = str(caught.value)
    assert f"{big}:5000" in message and "'quantity'" in message and "'dos'" in message
    assert "nothing was loaded" in message and "--on-error skip" in message
    assert counts(store) == before


def test_skip_loads_the_good_rows_and_writes_the_rejects(store: Store, tmp_path: Path) -> None:
    source = write(
        tmp_path / "o.csv",
        ORDERS_HEADER + "A,C1,2024-01-01,P1,1,2\nB,,2024-01-01,P1,1,2\n"
        "C,C2,ayer,P1,1,2\nD,C3,2024-01-02,P2,1,dos euros\n",
    )
    rejects = tmp_path / "rejects.csv"
    report = ingest_file(store, "orders", source, on_error="skip", rejects=rejects)
    assert (report.rows_read, report.inserted, report.rejected) == (4, 1, 3)
    assert report.rejected_reasons == {"bad values": 2, "no customer_id": 1}
    with rejects.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line"], r["order_id"]) for r in rows] == [("3", "B"), ("4", "C"), ("5", "D")]
    assert "cannot be attributed" in rows[0]["reason"] and "date" in rows[1]["reason"]
    assert "unit_price" in rows[2]["reason"]


def test_orders_are_replaced_per_order_id_and_customers_upserted(store: Store, tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.csv",
        ORDERS_HEADER + "A,C1,2024-01-01,P1,1,2\nA,C1,2024-01-01,P2,1,3\nB,C2,2024-01-02,P1,2,2\n",
    )
    overlap = write(tmp_path / "b.csv", ORDERS_HEADER + "B,C2,2024-01-02,P1,3,2\nC,C3,2024-01-03,P1,1,2\n")
    ingest_file(store, "orders", first)
    report = ingest_file(store, "orders", overlap)
    assert (report.inserted, report.updated) == (1, 1)
    assert store.rows("SELECT order_id, sum(quantity) AS q FROM order_lines GROUP BY 1 ORDER BY 1") == [
        {"order_id": "A", "q": 2.0},
        {"order_id": "B", "q": 3.0},
        {"order_id": "C", "q": 1.0},
    ]
    people = write(tmp_path / "c.csv", "customer_id,first_name,city\nC1,Ana,Soria\nC2,Luis,Teruel\n")
    assert ingest_file(store, "customers", people).inserted == 2
    changed = write(tmp_path / "d.csv", "customer_id,city\nC1,Soria\nC2,Huesca\nC3,Jaén\n")
    report = ingest_file(store, "customers", changed)
    assert (report.inserted, report.updated) == (1, 1)
    assert store.rows("SELECT customer_id, first_name, city FROM customers ORDER BY 1") == [
        {"customer_id": "C1", "first_name": "Ana", "city": "Soria"},
        {"customer_id": "C2", "first_name": "Luis", "city": "Huesca"},
        {"customer_id": "C3", "first_name": None, "city": "Jaén"},
    ]
    assert ingest_file(store, "customers", changed).updated == 0


def test_mapping_yaml_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "orders:\n  columns:\n    order_id: InvoiceNo\n  colums: {}\n")
    with pytest.raises(ConfigError, match=r"m\.yaml:4: orders\.colums: unknown key"):
        load_mapping(path)


def test_a_missing_file_and_an_unknown_format_are_clear(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="no such file"):
        ingest_file(store, "orders", tmp_path / "nope.csv")
    with pytest.raises(InputDataError, match="cannot tell the format"):
        ingest_file(store, "orders", write(tmp_path / "orders.xls", "x"))


def test_out_of_range_coordinates_are_rejected(store: Store, tmp_path: Path) -> None:
    bad = write(tmp_path / "s.csv", "store_id,lat,lon\nS1,140.0,2.0\n")
    with pytest.raises(InputDataError, match=r"s\.csv:2: column 'lat'"):
        ingest_file(store, "stores", bad)


def bytes_read(pid: int) -> int:
    """Bytes a process has read so far (Linux /proc/PID/io), 0 when unknown."""
    try:
        io = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in io.splitlines() if line.startswith("rchar:")), 0)


def test_sigkill_in_the_middle_of_a_large_ingest_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "kill.duckdb"
    with open_store(db) as s:
        ingest_file(s, "orders", write(tmp_path / "seed.csv", ORDERS_HEADER + "A,C1,2024-01-01,P1,1,2\n"))
        before = counts(s)
    big = tmp_path / "big.csv"
    duckdb.execute(
        f"COPY (SELECT 'O' || (i // 3) AS order_id, 'C' || (i % 50000) AS customer_id, "
        f"TIMESTAMP '2024-01-01' + to_seconds(i) AS ordered_at, 'P' || (i % 500) AS product_id, "
        f"1 + i % 3 AS quantity, 2.5 AS unit_price FROM range(2500000) t(i)) TO '{big}'"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pleasepoint_cli", "--db", str(db), "-q", "ingest", "orders", str(big)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    # Wait until the load is under way (the process has read a good part of the file), then kill it.
    while time.monotonic() < deadline and process.poll() is None and bytes_read(process.pid) < 40_000_000:
        time.sleep(0.02)
    time.sleep(0.3)
    assert process.poll() is None, "the ingest finished before it could be killed: make the file bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    with open_store(db) as s:
        assert counts(s) == before


def test_a_csv_whose_dates_change_format_late_still_loads_every_line(store: Store, tmp_path: Path) -> None:
    """The typed fast path samples the first lines; a later line in another format falls back to the
    text path, which accepts ISO and dd/mm/yyyy alike."""
    path = big_orders(tmp_path / "mixed.csv", 25_000)
    with path.open("a", encoding="utf-8") as f:
        f.write("Z,C1,31/12/2024 23:59:00,P1,1,2.5\n")
    report = ingest_file(store, "orders", path)
    assert report.inserted == 25_001
    assert (
        str(store.scalar("SELECT ordered_at FROM order_lines WHERE order_id = 'Z'")) == "2024-12-31 23:59:00"
    )


def test_padded_values_are_trimmed_on_the_fast_path_too(store: Store, tmp_path: Path) -> None:
    """Big order CSVs go through DuckDB's typed reader; keys are trimmed as on the text path, and a blank
    key is still an empty field."""
    path = big_orders(tmp_path / "padded.csv", 1_000)
    with path.open("a", encoding="utf-8") as f:
        f.write(" Z , C1 ,2024-01-05 10:00:00, P1 ,1,2.5\n")
    assert ingest_file(store, "orders", path).inserted == 1_001
    assert store.rows("SELECT customer_id, product_id FROM order_lines WHERE order_id = 'Z'") == [
        {"customer_id": "C1", "product_id": "P1"}
    ]
    with path.open("a", encoding="utf-8") as f:
        f.write('"   ",C2,2024-01-05 10:00:00,P1,1,2.5\n')
    with pytest.raises(
        InputDataError, match=r"padded\.csv:1003: column 'order_id': value \(empty\): is empty"
    ):
        ingest_file(store, "orders", path)
    assert store.scalar("SELECT count(*) FROM order_lines") == 1_001


def test_a_read_error_in_the_one_pass_load_names_the_file_and_its_cause(store: Store, tmp_path: Path) -> None:
    """A value DuckDB cannot convert while inserting (a customer id of 1e20 is no whole number DuckDB
    can hold) aborts with the reader's own reason, not a bare 'transaction aborted'."""
    ingest_file(store, "orders", write(tmp_path / "ok.csv", ORDERS_HEADER + "A,C1,2024-01-01,P1,1,2\n"))
    before = counts(store)
    big_id = tmp_path / "big_id.parquet"
    duckdb.execute(
        f"COPY (SELECT 'O1' AS order_id, 1e20::DOUBLE AS customer_id, TIMESTAMP '2024-01-01' AS ordered_at, "
        f"'P1' AS product_id, 1 AS quantity, 2.5 AS unit_price) TO '{big_id}'"
    )
    with pytest.raises(InputDataError, match=r"big_id\.parquet: cannot read the file: .*out of range"):
        ingest_file(store, "orders", big_id)
    store.con.execute("SELECT 1")  # the connection is usable again
    assert counts(store) == before
