"""The bad-input corpus of issue 8: every file in tests/data/bad_input is refused (or loaded) through the CLI
with the expected exit code and a message naming the file, the line and the field, and a refused file leaves
every table exactly as it was (row counts and a hash of each table's content)."""

from __future__ import annotations

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
BASE_ORDERS = (
    "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n"
    "O1,C1,2024-01-05,P1,1,10.5\n"
    "O1,C1,2024-01-05,P2,2,3\n"
    "O2,C2,2024-02-01,P1,1,10.5\n"
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


CASES: list[Case] = []


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
