"""`pleasepoint clv score|enrich` through the CLI: JSON figures, the 80-column table, settings, errors."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from persona_rows import plant_personas
from pleasepoint_cli.cli import app
from pleasepoint_cli.store import Store, open_store

AS_OF = date(2026, 6, 30)
# customer: (days before AS_OF of each order, amount per order)
ORDERS = {
    "C01": ([0, 10], 20.0),
    "C02": ([181], 35.0),
    "C03": ([182], 50.0),
    "C05": ([365, 400], 10.0),
    "C06": ([729], 12.5),
    "C08": ([730], 99.99),
    "C10": ([3], 7.0),
}


@pytest.fixture
def db(store: Store) -> Path:
    """The crafted persona runs plus orders of seven customers (C10 is in no cluster)."""
    plant_personas(store.con)
    rows = [
        [f"{c}-{d}", c, AS_OF - timedelta(days=d), amount, amount]
        for c, (days, amount) in ORDERS.items()
        for d in days
    ]
    with store.transaction() as con:
        con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
            "VALUES (?, ?, ?, 'P', 1, ?, ?)",
            rows,
        )
    store.close()
    return store.path


def score(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["clv", "score", *args, "--as-of", AS_OF.isoformat(), "-f", "json"])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_score_by_state_in_json(db: Path, runner: CliRunner) -> None:
    document = score(runner)
    counts = {s["segment"]: s["customers"] for s in document["segments"]}  # type: ignore[attr-defined]
    assert counts == {"active": 3, "inactive": 1, "hibernating": 2, "lost": 1}
    total = document["total"]
    assert total["customers"] == 7 and total["tickets"] == 9  # type: ignore[index]
    assert total["total_spend"] == round(40 + 35 + 50 + 20 + 12.5 + 99.99 + 7, 2)  # type: ignore[index]


def test_thresholds_come_from_pleasepoint_yaml(db: Path, runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pleasepoint.yaml").write_text(
        "states:\n  active_below: 5\n  inactive_below: 182\n  hibernating_below: 731\n", encoding="utf-8"
    )
    counts = {s["segment"]: s["customers"] for s in score(runner)["segments"]}  # type: ignore[attr-defined]
    assert counts == {"active": 2, "inactive": 1, "hibernating": 4, "lost": 0}


def test_score_by_cluster_takes_the_run_as_argument(db: Path, runner: CliRunner) -> None:
    document = score(runner, "--by", "cluster", "analisis-categorias")
    assert document["run"] == 1
    rows = {s["segment"]: s for s in document["segments"]}  # type: ignore[attr-defined]
    assert {k: (v["label"], v["customers"]) for k, v in rows.items()} == {
        "1": ("Supermercado ECO + Huerto ECO", 3),
        "2": ("Bebé y niño", 2),
        "3": ("Plantas", 1),
        "unassigned": (None, 1),
    }
    latest = score(runner, "--by", "cluster")
    assert latest["run"] == 2


def test_score_table_fits_80_columns(db: Path, runner: CliRunner) -> None:
    for by in ("state", "rfm", "cluster"):
        result = runner.invoke(app, ["clv", "score", "--by", by, "--as-of", AS_OF.isoformat()])
        assert result.exit_code == 0, result.output
        assert "Total" in result.output and "avg" in result.output
        assert max(len(line) for line in result.output.splitlines()) <= 80


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["score", "1"], 1, "only goes with --by cluster"),
        (["score", "--by", "cluster", "9"], 1, "no persona run '9'"),
        (["score", "--as-of", "2020-01-01"], 1, "no customer has a purchase on or before 2020-01-01"),
        (["score", "--as-of", "30/06/2026"], 2, "is not a date"),
        (["score", "--by", "age"], 2, "age"),
        (["enrich", "--by", "rfm", "--as-of", "2025-06-01"], 1, "at least 5 customers"),
    ],
)
def test_errors(db: Path, runner: CliRunner, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["clv", *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM attribute_changes") == 0


def test_enrich_writes_the_state_as_an_attribute(db: Path, runner: CliRunner) -> None:
    args = [
        "clv",
        "enrich",
        "--by",
        "state",
        "--key",
        "hibernation",
        "--as-of",
        AS_OF.isoformat(),
        "-f",
        "json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["key"] == "hibernation" and document["values_changed"] == 7
    assert {s["segment"]: s["customers"] for s in document["segments"]} == {
        "active": 3,
        "inactive": 1,
        "hibernating": 2,
        "lost": 1,
    }
    with open_store(db) as store:
        values = dict(store.con.execute("SELECT customer_id, value FROM customer_attributes").fetchall())
    assert values == {
        "C01": "active",
        "C02": "active",
        "C10": "active",
        "C03": "inactive",
        "C05": "hibernating",
        "C06": "hibernating",
        "C08": "lost",
    }
    rfm = runner.invoke(app, ["clv", "enrich", "--by", "rfm", "--as-of", AS_OF.isoformat()])
    assert rfm.exit_code == 0 and "Champions" in rfm.output


def test_the_default_as_of_is_the_latest_order_day(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["clv", "score", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["as_of"] == AS_OF.isoformat()


def test_an_empty_store_says_to_load_orders(runner: CliRunner) -> None:
    result = runner.invoke(app, ["clv", "score"])
    assert result.exit_code == 1 and "pleasepoint ingest orders" in result.output


def test_long_segment_labels_are_cut_with_an_ellipsis_not_wrapped(db: Path, runner: CliRunner) -> None:
    with open_store(db) as store, store.transaction() as con:
        con.execute(
            "UPDATE persona_clusters SET label = 'MISCELLANEOUS SUPERMERCADO ECOLOGICO Y HUERTO' "
            "WHERE run_id = 1 AND cluster = 1"
        )
    result = runner.invoke(app, ["clv", "score", "--by", "cluster", "1", "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    row = next(line for line in lines if line.lstrip().startswith("1 MISC"))
    assert "…" in row and row.split()[-1] == "47.3"  # the last figure is whole
    body = [line for line in lines if line.strip() and not line.lstrip().startswith(("1 ", "2 ", "3 "))]
    assert not any("ECO" in line or "HUERTO" in line or "niño" in line for line in body)  # no wrapped rest
