"""Writes the bad-input corpus of issue 8 (run from this folder: `python make_corpus.py`); the files are
committed, this script says how each was made. One small file per case; see tests/cli/test_ingest_bad_input.py."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

HERE = Path(__file__).parent
ORDERS = "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n"
ORDERS_AMOUNT = "order_id,customer_id,ordered_at,product_id,quantity,unit_price,amount\n"
CUSTOMERS = "customer_id,email,first_name,city\n"


def text(name: str, content: str) -> None:
    (HERE / name).write_bytes(content.encode("utf-8"))


def raw(name: str, content: bytes) -> None:
    (HERE / name).write_bytes(content)


def main() -> None:
    # 3: short rows, and an export cut off mid-line
    text("short_row_customers.csv", CUSTOMERS + "C1,ana@example.com,Ana,Madrid\nC2,luis@example.com\n")
    text("cut_mid_line_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,1,2\nO3,C1,2024-03-01,P2")
    # 4: money missing, or negative on a purchase
    text("missing_money_orders.csv", ORDERS_AMOUNT + "O3,C1,2024-03-01,P1,1,2,2\nO3,C1,2024-03-01,P2,1,,\n")
    text("negative_price_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,2,-5\n")
    # 5: one cp1252 line and one UTF-8 line; a control byte; a C1 control in a latin-1 file
    raw(
        "mixed_encoding_customers.csv",
        CUSTOMERS.encode()
        + "C1,a@example.com,Begoña,Madrid\n".encode("cp1252")
        + "C2,b@example.com,Iñigo,Bilbao\n".encode(),
    )
    raw("control_byte_customers.csv", CUSTOMERS.encode() + b"C1,a@example.com,An\x01a,Madrid\n")
    raw("c1_control_latin1_customers.csv", CUSTOMERS.encode() + b"C1,a@example.com,Ana\x81,Madrid\n")
    # 8: NaN, Infinity, overflow
    text("nan_price_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,1,NaN\n")
    text("infinity_price_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,1,Infinity\n")
    text("overflow_price_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,1,1e400\n")
    text("huge_quantity_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,1e300,1e300\n")
    # ... and money derived from the other beyond the bound (an amount over a quantity of almost zero)
    text("tiny_quantity_orders.csv", ORDERS_AMOUNT + "O3,C1,2024-03-01,P1,1e-310,,5\n")
    text("derived_amount_overflow_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,100000,100000\n")
    # 9: dates outside the window
    text("year_0001_orders.csv", ORDERS + "O3,C1,0001-03-01,P1,1,2\n")
    text("year_2100_orders.csv", ORDERS + "O3,C1,2100-03-01,P1,1,2\n")
    text("year_9999_orders.csv", ORDERS + "O3,C1,9999-12-31,P1,1,2\n")
    text("birth_year_1066_customers.csv", "customer_id,birth_date\nC1,1066-10-14\n")
    # 10: more fields than the header
    text("long_row_orders.csv", ORDERS + "O3,C1,2024-03-01,P1,1,2\nO3,C1,2024-03-01,P2,1,2,3\n")
    text("long_row_customers.csv", CUSTOMERS + "C1,a@example.com,Ana,Madrid,extra,more\n")
    # 11: a NUL byte in an id (CSV and JSON); keys with spaces in JSON; a list as an id (Parquet)
    raw("nul_in_id_orders.csv", ORDERS.encode() + b"O3,C\x001,2024-03-01,P1,1,2\n")
    text("nul_in_id_customers.jsonl", '{"customer_id": "C\\u00009", "email": "x@example.com"}\n')
    text("padded_keys_customers.json", '[{"customer_id": " C1 ", "city": "Toledo"}]\n')
    # ... and one order id with lines of two customers, or at two times (warned, in every format)
    text(
        "mixed_customers_orders.csv",
        ORDERS + "O3,C1,2024-03-01,P1,1,2\nO4,C2,2024-03-02,P1,1,2\nO3,C2,2024-03-01,P2,1,2\n",
    )
    text(
        "mixed_times_orders.jsonl",
        '{"order_id": "O3", "customer_id": "C1", "ordered_at": "2024-03-01 10:00", "product_id": "P1", '
        '"quantity": 1, "unit_price": 2}\n'
        '{"order_id": "O3", "customer_id": "C1", "ordered_at": "2024-03-05 18:30", "product_id": "P2", '
        '"quantity": 1, "unit_price": 2}\n',
    )
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES ('O3', 'C1', TIMESTAMP '2024-03-01', 'P1', 1, 2.0), "
        "('O3', 'C3', TIMESTAMP '2024-03-01', 'P2', 1, 2.0)) AS t(order_id, customer_id, ordered_at, product_id, "
        f"quantity, unit_price)) TO '{HERE / 'mixed_customers_orders.parquet'}' (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT 'O3' AS order_id, [1, 2] AS customer_id, DATE '2024-03-01' AS ordered_at, 'P1' AS product_id, "
        f"1 AS quantity, 2.0 AS unit_price) TO '{HERE / 'list_id_orders.parquet'}' (FORMAT parquet)"
    )
    con.execute(
        "COPY (SELECT 'O3' AS order_id, 'C1' AS customer_id, DATE '2024-03-01' AS ordered_at, 'P1' AS product_id, "
        f"'muchos' AS quantity, 2.0 AS unit_price) TO '{HERE / 'wrong_types_orders.parquet'}' (FORMAT parquet)"
    )
    # 13: a quoted field holding CRLF and LF (valid CSV)
    raw(
        "quoted_newlines_customers.csv",
        CUSTOMERS.replace("\n", "\r\n").encode()
        + b'C1,ana@example.com,"Ana\r\nMar\xc3\xada",Madrid\r\nC2,luis@example.com,"Luis\nJos\xc3\xa9",Sevilla\r\n',
    )
    # 16: an empty file, a JSON scalar, a symlink loop, a header only, a long value
    text("empty_orders.csv", "")
    text("scalar_orders.json", "42\n")
    for a, b in (("symlink_loop_a.csv", "symlink_loop_b.csv"), ("symlink_loop_b.csv", "symlink_loop_a.csv")):
        (HERE / a).unlink(missing_ok=True)
        os.symlink(b, HERE / a)
    text("header_only_orders.csv", ORDERS)
    text("long_value_orders.csv", ORDERS + "O3,C1,2024-03-01,P1," + "9" * 300 + "x,2\n")
    # Cases that held before issue 8 (kept so they keep holding)
    text("fake_orders.parquet", "this is not a parquet file\n")
    (HERE / "a_folder.csv").mkdir(exist_ok=True)
    text("a_folder.csv/.keep", "")


if __name__ == "__main__":
    main()
