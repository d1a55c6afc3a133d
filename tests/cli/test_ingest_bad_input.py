"""The bad-input corpus of issue 8: every file in tests/data/bad_input is refused (or loaded) through the CLI
with the expected exit code and a message naming the file, the line and the field, and a refused file leaves
every table exactly as it was (row counts and a hash of each table's content)."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app

CORPUS = Path(__file__).parents[1] / "data" / "bad_input"

BASE_CUSTOMERS = (
    "customer_id,email,first_name,city\n"
    "C1,ana@example.com,Ana,Madrid\n"
    "C2,luis@example.com,Luis,Sevilla\n"
    "C3,eva@example.com,Eva,Bilbao\n"
)
ORDERS_HEADER = "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n"
BASE_ORDERS = ORDERS_HEADER + (
    "O1,C1,2024-01-05,P1,1,10.5\nO1,C1,2024-01-05,P2,2,3\nO2,C2,2024-02-01,P1,1,10.5\n"
)


def snapshot(db: Path) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of its rows (order-independent)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            ).fetchall()
        ]
        result = {}
        for table in tables:
            row = con.execute(
                f"SELECT count(*), md5(COALESCE(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY CAST(t AS VARCHAR)), '')) FROM \"{table}\" t"
            ).fetchall()[0]
            result[table] = (int(row[0]), str(row[1]))
        return result
    finally:
        con.close()


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shop loaded through the CLI: 3 customers, 2 orders (copied before each case)."""
    folder = tmp_path_factory.mktemp("base")
    db = folder / "base.duckdb"
    customers, orders = folder / "customers.csv", folder / "orders.csv"
    customers.write_text(BASE_CUSTOMERS, encoding="utf-8")
    orders.write_text(BASE_ORDERS, encoding="utf-8")
    runner = CliRunner()
    for entity, file in (("customers", customers), ("orders", orders)):
        result = runner.invoke(app, ["--db", str(db), "-q", "ingest", entity, str(file)])
        assert result.exit_code == 0, result.output
    return db


@pytest.fixture
def db(base_db: Path, tmp_path: Path) -> Path:
    target = tmp_path / "shop.duckdb"
    shutil.copy(base_db, target)
    return target


def run(db: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--db", str(db), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"a traceback instead of a message: {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


@dataclass
class Case:
    """One corpus file: the entity it is loaded as, extra flags, the exit code and what the message says."""

    file: str
    entity: str
    says: tuple[str, ...]
    exit_code: int = 1
    args: tuple[str, ...] = ()
    changes: bool = False  # True when the load is expected to succeed (and so change the database)
    notes: list[str] = field(default_factory=list)


CASES: list[Case] = [
    # 3: a short row is an error, never padded with NULLs (which blanked a customer's email and name)
    Case(
        "short_row_customers.csv",
        "customers",
        ("short_row_customers.csv:3: the row has 2 fields where the header has 4", "'C2,luis@example.com'"),
    ),
    Case(
        "cut_mid_line_orders.csv",
        "orders",
        ("cut_mid_line_orders.csv:3: the row has 4 fields where the header has 6", "cut off mid-line"),
    ),
    # 4: money
    Case(
        "missing_money_orders.csv",
        "orders",
        ("missing_money_orders.csv:3: column 'unit_price'", "is empty and so is amount"),
    ),
    Case(
        "negative_price_orders.csv",
        "orders",
        ("negative_price_orders.csv:2: column 'unit_price': value '-5': is negative on a purchase line",),
    ),
    # 5: bytes: mixed encodings, control bytes
    Case(
        "mixed_encoding_customers.csv",
        "customers",
        (
            "mixed_encoding_customers.csv:3: UTF-8 text ('ñ') in a file read as cp1252",
            "'C2,b@example.com,IÃ±igo,Bilbao'",
        ),
    ),
    Case("control_byte_customers.csv", "customers", ("control_byte_customers.csv:2: a control byte 0x01",)),
    Case(
        "c1_control_latin1_customers.csv",
        "customers",
        (
            "c1_control_latin1_customers.csv:2: a control byte 0x81 (C1) in a file read as latin-1",
            "--encoding cp1252",
        ),
    ),
    # 8: NaN, Infinity, overflow
    Case(
        "nan_price_orders.csv",
        "orders",
        ("nan_price_orders.csv:2: column 'unit_price': value 'NaN': is not a finite number",),
    ),
    Case(
        "infinity_price_orders.csv",
        "orders",
        ("infinity_price_orders.csv:2: column 'unit_price': value 'Infinity': is not a finite number",),
    ),
    Case(
        "overflow_price_orders.csv",
        "orders",
        ("overflow_price_orders.csv:2: column 'unit_price': value '1e400': is not a finite number",),
    ),
    Case(
        "huge_quantity_orders.csv",
        "orders",
        (
            "huge_quantity_orders.csv:2: column 'quantity': value '1e300': is not a finite number within ±1,000,000,000",
        ),
    ),
    Case(
        "tiny_quantity_orders.csv",
        "orders",
        (
            "tiny_quantity_orders.csv:2: column 'quantity': value '1e-310': divides the amount into a unit price "
            "beyond ±1,000,000,000",
        ),
    ),
    Case(
        "derived_amount_overflow_orders.csv",
        "orders",
        (
            "derived_amount_overflow_orders.csv:2: column 'quantity': value '100000': times the unit price is an "
            "amount beyond ±1,000,000,000",
        ),
    ),
    # 9: the date window
    Case(
        "year_0001_orders.csv",
        "orders",
        ("year_0001_orders.csv:2: column 'ordered_at': value '0001-03-01': is before 1900-01-01",),
    ),
    Case(
        "year_2100_orders.csv",
        "orders",
        ("year_2100_orders.csv:2: column 'ordered_at': value '2100-03-01': is in the future",),
    ),
    Case(
        "year_9999_orders.csv",
        "orders",
        ("year_9999_orders.csv:2: column 'ordered_at': value '9999-12-31': is in the future",),
    ),
    Case(
        "birth_year_1066_customers.csv",
        "customers",
        ("birth_year_1066_customers.csv:2: column 'birth_date': value '1066-10-14': is before 1900-01-01",),
    ),
    # 10: more fields than the header
    Case(
        "long_row_orders.csv",
        "orders",
        ("long_row_orders.csv:3: the row has more fields than the header's 6",),
    ),
    Case(
        "long_row_customers.csv",
        "customers",
        ("long_row_customers.csv:2: the row has more fields than the header's 4",),
    ),
    # 11: NUL bytes, a list as an id (untrimmed keys: test_json_keys_are_trimmed_like_csv_keys)
    Case("nul_in_id_orders.csv", "orders", ("nul_in_id_orders.csv:2: a control byte 0x00",)),
    Case(
        "nul_in_id_customers.jsonl",
        "customers",
        ("nul_in_id_customers.jsonl, record 1: column 'customer_id'", "holds a NUL byte"),
    ),
    Case(
        "list_id_orders.parquet",
        "orders",
        (
            "list_id_orders.parquet: column 'customer_id' holds INTEGER[] values",
            "it cannot be the customer_id",
        ),
    ),
    # 11: one order id with lines of two customers or at two times: loaded, and warned in every format,
    # naming the order, the column, each value and the lines (rows, records) that hold it
    Case(
        "mixed_customers_orders.csv",
        "orders",
        (
            "mixed_customers_orders.csv: 1 order id with lines of two or more customers (column 'customer_id'): "
            "order 'O3': 'C1' (line 2), 'C2' (line 4)",
            "The lines were loaded as they are",
        ),
        exit_code=0,
        changes=True,
    ),
    Case(
        "mixed_customers_orders.parquet",
        "orders",
        (
            "mixed_customers_orders.parquet: 1 order id with lines of two or more customers",
            "'C1' (row 1), 'C3' (row 2)",
        ),
        exit_code=0,
        changes=True,
    ),
    Case(
        "mixed_times_orders.jsonl",
        "orders",
        (
            "mixed_times_orders.jsonl: 1 order id with lines of two or more dates or times (column 'ordered_at'): "
            "order 'O3': '2024-03-01 10:00:00' (record 1), '2024-03-05 18:30:00' (record 2)",
        ),
        exit_code=0,
        changes=True,
    ),
    # 16: wording
    Case("empty_orders.csv", "orders", ("empty_orders.csv: is empty (0 bytes)",)),
    Case("scalar_orders.json", "orders", ("scalar_orders.json: holds bigint values, not records",)),
    Case("symlink_loop_a.csv", "orders", ("symlink_loop_a.csv: is a loop of symbolic links",)),
    Case(
        "header_only_orders.csv",
        "orders",
        ("warning: no rows: the file has a header and nothing else",),
        exit_code=0,
    ),
    Case(
        "long_value_orders.csv",
        "orders",
        ("long_value_orders.csv:2: column 'quantity': value '99999999999", "…': is not a number"),
    ),
    # held before issue 8
    Case("does_not_exist.csv", "orders", ("does_not_exist.csv: no such file",)),
    Case("a_folder.csv", "orders", ("a_folder.csv: is a folder",)),
    Case("fake_orders.parquet", "orders", ("fake_orders.parquet: cannot read the file",)),
    Case(
        "wrong_types_orders.parquet",
        "orders",
        ("wrong_types_orders.parquet, row 1: column 'quantity': value 'muchos': is not a number",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_a_bad_input_is_refused_with_a_message_and_changes_nothing(db: Path, case: Case) -> None:
    path = CORPUS / case.file
    before = snapshot(db)
    code, _out, err = run(db, "ingest", case.entity, str(path), *case.args)
    assert code == case.exit_code, err
    message = " ".join(err.split())  # Rich may wrap long lines
    for fragment in case.says:
        assert fragment in message, (fragment, err)
    if not case.changes:
        assert snapshot(db) == before


def test_rejects_pointing_at_the_input_is_refused_also_through_a_link(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(BASE_ORDERS + "O3,C1,2024-03-01,P1,muchos,2\n", encoding="utf-8")
    original = export.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(export)
    hard = tmp_path / "hard.csv"
    hard.hardlink_to(export)
    before = snapshot(db)
    for rejects in (export, link, hard):
        code, _, err = run(db, "ingest", "orders", str(export), "--rejects", str(rejects))
        assert code == 1 and "is the input file itself" in err, err
        assert export.read_bytes() == original
    assert snapshot(db) == before


def test_ingests_finish_after_they_start(db: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(BASE_ORDERS, encoding="utf-8")
    second.write_text(BASE_ORDERS.replace("O1", "O7"), encoding="utf-8")
    code, _, err = run(db, "ingest", "orders", str(first), str(second))
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        wrong = con.execute("SELECT count(*) FROM ingests WHERE finished_at < started_at").fetchall()[0][0]
    finally:
        con.close()
    assert wrong == 0


@pytest.mark.parametrize(
    ("yaml_text", "says"),
    [
        ("states: {active_below: true}\n", "states.active_below: Input should be a valid integer"),
        ("states: {active_below: '90'}\n", "states.active_below: Input should be a valid integer"),
        ("levels: {high: '1.5'}\n", "levels.high: Input should be a valid number"),
        ("tracking: {port: '8787'}\n", "tracking.port: Input should be a valid integer"),
        (
            "delivery: {smtp: {connections: true}}\n",
            "delivery.smtp.connections: Input should be a valid integer",
        ),
    ],
)
def test_settings_numbers_are_strict(db: Path, tmp_path: Path, yaml_text: str, says: str) -> None:
    config = tmp_path / "pleasepoint.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    orders = tmp_path / "o.csv"
    orders.write_text(BASE_ORDERS, encoding="utf-8")
    before = snapshot(db)
    code, _, err = run(db, "--config", str(config), "ingest", "orders", str(orders))
    assert code == 1 and f"{config}:1: {says}" in err, err
    assert snapshot(db) == before


def test_a_mapping_boolean_is_strict(db: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("customers:\n  keep_extra_columns: 1\n", encoding="utf-8")
    customers = tmp_path / "c.csv"
    customers.write_text(BASE_CUSTOMERS, encoding="utf-8")
    code, _, err = run(db, "ingest", "customers", str(customers), "--mapping", str(mapping))
    assert (
        code == 1 and f"{mapping}:2: customers.keep_extra_columns: Input should be a valid boolean" in err
    ), err


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _orders_csv(folder: Path, body: str, name: str = "orders.csv") -> Path:
    """An order export with the usual header and these lines."""
    export = folder / name
    export.write_text(ORDERS_HEADER + body, encoding="utf-8")
    return export


def test_skip_rejects_a_short_row_and_keeps_the_customer_as_it_was(db: Path, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    code, _, err = run(
        db,
        "ingest",
        "customers",
        str(CORPUS / "short_row_customers.csv"),
        "--on-error",
        "skip",
        "--rejects",
        str(rejects),
    )
    assert code == 0, err
    assert _query(db, "SELECT email, first_name FROM customers WHERE customer_id = 'C2'") == [
        ("luis@example.com", "Luis")
    ]
    with rejects.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "customer_id", "email", "first_name", "city"]
    assert len(rows) == 2 and rows[1][0] == "3" and rows[1][2:] == ["C2", "luis@example.com"]
    assert rows[1][1].startswith("the row has 2 fields where the header has 4")


def test_quoted_line_breaks_load_and_later_lines_keep_their_numbers(db: Path, tmp_path: Path) -> None:
    code, _, err = run(db, "ingest", "customers", str(CORPUS / "quoted_newlines_customers.csv"))
    assert code == 0, err
    assert _query(db, "SELECT first_name FROM customers WHERE customer_id IN ('C1', 'C2') ORDER BY 1") == [
        ("Ana\r\nMaría",),
        ("Luis\nJosé",),
    ]
    bad = tmp_path / "orders.csv"
    bad.write_text(
        "order_id,customer_id,ordered_at,product_id,quantity,unit_price,status\n"
        'O5,C1,2024-03-01,P1,1,2,"en\nvarias\nlíneas"\n'
        "O5,C1,2024-03-01,P1,1,2,ok,extra\n"
        "O6,C1,2024-03-01,P1,muchos,2,ok\n",
        encoding="utf-8",
    )
    before = snapshot(db)
    code, _, err = run(db, "ingest", "orders", str(bad))
    assert code == 1
    assert (
        "orders.csv:5: the row has more fields" in err
        and "orders.csv:6: column 'quantity': value 'muchos'" in err
    ), err
    assert snapshot(db) == before


def test_a_10_mb_field_is_named_on_its_line_and_not_echoed(db: Path, tmp_path: Path) -> None:
    big = _orders_csv(
        tmp_path,
        f"O5,C1,2024-03-01,P1,1,2\nO6,C1,2024-03-01,P1,1,{'9' * (10 << 20)}\nO7,C1,2024-03-01,P1,1,2\n",
        "big.csv",
    )
    before = snapshot(db)
    code, _, err = run(db, "ingest", "orders", str(big))
    assert code == 1
    assert "big.csv:3: the line is longer than 2,000,000 bytes" in err, err[:500]
    assert len(err) < 1000
    assert snapshot(db) == before


def test_json_keys_are_trimmed_like_csv_keys(db: Path) -> None:
    code, _, err = run(db, "ingest", "customers", str(CORPUS / "padded_keys_customers.json"))
    assert code == 0, err
    assert _query(db, "SELECT customer_id, city FROM customers ORDER BY 1") == [
        ("C1", "Toledo"),
        ("C2", "Sevilla"),
        ("C3", "Bilbao"),
    ]


def test_dates_window_is_configurable(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "pleasepoint.yaml"
    config.write_text("ingest:\n  earliest_date: 2024-06-01\n", encoding="utf-8")
    orders = tmp_path / "o.csv"
    orders.write_text(BASE_ORDERS.replace("O1", "O8"), encoding="utf-8")
    code, _, err = run(db, "--config", str(config), "ingest", "orders", str(orders))
    assert code == 1 and "o.csv:2: column 'ordered_at': value '2024-01-05': is before 2024-06-01" in err, err


def test_a_mixed_order_is_found_among_many_and_warned_once_with_every_line(db: Path, tmp_path: Path) -> None:
    """3,000 orders of one to four lines, one of which names a second customer on its last line and another
    a second time: each is named, with its lines, and the rest of the file is not (the check
    sorts 48-bit order heads, so a clean order never trips it)."""
    lines = [ORDERS_HEADER.rstrip("\n")]
    for n in range(3000):
        for k in range(1 + n % 4):
            customer = "C2" if n == 1234 and k >= 2 else "C1"
            when = "2024-05-02 09:00" if n == 2999 and k == 3 else "2024-05-01 09:00"
            lines.append(f"N{n},{customer},{when},P{k},1,2.5")
    export = tmp_path / "orders.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(db, "ingest", "orders", str(export), "--format", "json")
    assert code == 0, err
    warnings = json.loads(out)[0]["warnings"]
    mixed = [w for w in warnings if "order id with lines of two or more" in w]
    first = 1 + sum(1 + m % 4 for m in range(1234)) + 1  # the header, then the lines before order N1234
    assert mixed == [
        f"{export}: 1 order id with lines of two or more customers (column 'customer_id'): order 'N1234': "
        f"'C1' (lines {first}, {first + 1}), 'C2' (line {first + 2}). An order id names one "
        "customer and one time: two exports merged, or order numbers reused? The lines were loaded as they are",
        f"{export}: 1 order id with lines of two or more dates or times (column 'ordered_at'): order 'N2999': "
        f"'2024-05-01 09:00:00' (lines {len(lines) - 3}, {len(lines) - 2}, {len(lines) - 1}), "
        f"'2024-05-02 09:00:00' (line {len(lines)}). An order id names one customer and one time: two "
        "exports merged, or order numbers reused? The lines were loaded as they are",
    ]
    assert _query(db, "SELECT count(*) FROM order_lines WHERE order_id LIKE 'N%'") == [(len(lines) - 1,)]


def test_orders_derived_from_customer_and_day_are_not_warned_for_two_times(db: Path, tmp_path: Path) -> None:
    """With `order_id_from: customer_day` an order is a customer's day: its lines may have different times."""
    export = tmp_path / "orders.csv"
    export.write_text(
        "customer_id,ordered_at,product_id,quantity,unit_price\n"
        "C1,2024-05-01 09:00,P1,1,2\nC1,2024-05-01 18:00,P2,1,2\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text("orders:\n  order_id_from: customer_day\n", encoding="utf-8")
    code, _, err = run(db, "ingest", "orders", str(export), "--mapping", str(mapping))
    assert code == 0, err
    assert "order id with lines" not in err


def test_a_quoted_value_after_the_sniffed_sample_still_reads(db: Path, tmp_path: Path) -> None:
    """DuckDB's sniffer found no quote in the first 20,480 rows and read the file without quoting, so a valid
    quoted value further down ("P,2") was refused as a row with a field too many. The dialect is sniffed
    once and a file without quotes in its sample is read with RFC 4180's."""
    rows = "".join(f"Q{i},C1,2024-05-01,P1,1,2\n" for i in range(25_000))
    export = _orders_csv(tmp_path, rows + 'Q-last,C1,2024-05-01,"P,2",1,2\n')
    code, _, err = run(db, "ingest", "orders", str(export))
    assert code == 0, err
    assert _query(db, "SELECT product_id FROM order_lines WHERE order_id = 'Q-last'") == [("P,2",)]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_control_bytes_are_found_in_a_file_of_several_chunks(db: Path, tmp_path: Path, line_end: str) -> None:
    """Beyond 1 MB the byte check counts with NumPy: tabs and CRLF line ends pass, a control byte on the last
    line is named."""
    header = "customer_id,email,first_name,city" + line_end
    body = "".join(f"K{i},k{i}@example.com,Ana\tMaría,Madrid{line_end}" for i in range(60_000))
    good = tmp_path / "customers.csv"
    good.write_text(header + body, encoding="utf-8", newline="")
    assert good.stat().st_size > 2 << 20
    code, _, err = run(db, "ingest", "customers", str(good))
    assert code == 0, err
    bad = tmp_path / "bad.csv"
    bad.write_bytes((header + body).encode() + b"K-last,k@example.com,An\x07a,Madrid" + line_end.encode())
    before = snapshot(db)
    code, _, err = run(db, "ingest", "customers", str(bad))
    assert code == 1 and f"bad.csv:{60_002}: a control byte 0x07" in err, err
    assert snapshot(db) == before


def test_padded_order_keys_are_one_order_and_one_duplicate(db: Path, tmp_path: Path) -> None:
    """Keys are trimmed on the one-pass load too: ' O7' and 'O7 ' are one order of one customer (no
    mixed-order warning), a customer id of spaces is no customer (the line is not loaded), and a padded
    key's duplicate is counted as one."""
    export = _orders_csv(
        tmp_path,
        " O7,C1,2024-05-01,P1,1,2\nO7 , C1 ,2024-05-01,P2,1,2\nO7,C1,2024-05-01, P2,1,2\nO8,   ,2024-05-01,P1,1,2\n",
    )
    code, out, err = run(db, "ingest", "orders", str(export), "--format", "json")
    assert code == 0, err
    report = json.loads(out)[0]
    assert not any("order id with lines" in w for w in report["warnings"])
    assert "1 duplicate lines repeat another line" in " ".join(report["warnings"])
    assert report["rejected"] == 1
    assert _query(
        db, "SELECT DISTINCT order_id, customer_id FROM order_lines WHERE order_id LIKE '%O7%'"
    ) == [("O7", "C1")]


def test_a_mixed_order_is_named_on_its_lines_past_skipped_rows(db: Path, tmp_path: Path) -> None:
    """Through the checking path (a bad value and a short row, skipped): the mixed order's lines are the
    file's lines, counted past the rows that did not load."""
    export = _orders_csv(
        tmp_path,
        "O3,C1,2024-03-01,P1,1,2\nO4,C2,2024-03-02,P1,muchos,2\nO5,C2,2024-03-02,P1,1\nO3,C2,2024-03-01,P2,1,2\n",
    )
    code, _, err = run(db, "ingest", "orders", str(export), "--on-error", "skip")
    assert code == 0, err
    assert "order 'O3': 'C1' (line 2), 'C2' (line 5)" in " ".join(err.split()), err


def test_a_mixed_order_with_padded_keys_is_named_not_a_traceback(db: Path, tmp_path: Path) -> None:
    """The one-pass load trims padded keys after the insert, and the lines of a mixed order are looked up
    by its trimmed id: ' O3' and 'O3 ' are order 'O3' on lines 2 and 3 (this was a KeyError)."""
    export = _orders_csv(tmp_path, " O3, C1,2024-03-01,P1,1,2\nO3 ,C2 ,2024-03-01,P2,1,2\n")
    code, _, err = run(db, "ingest", "orders", str(export))
    assert code == 0, err
    assert "order 'O3': 'C1' (line 2), 'C2' (line 3)" in " ".join(err.split()), err
