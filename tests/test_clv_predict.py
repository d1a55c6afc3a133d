"""Predictive CLV on CDNOW, loaded through `pleasepoint ingest`, against the published figures."""

from __future__ import annotations

import csv
import itertools
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.clv.predict import build_summary
from pleasepoint_cli.store import Store, open_store

DATA = Path(__file__).parent / "data"
CALIBRATION = ["--calibration-end", "1997-09-30", "--unit", "weeks"]


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW 1/10 sample, ingested as a user would (read by the tests, never written)."""
    db = tmp_path_factory.mktemp("cdnow") / "cdnow.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "--db",
            str(db),
            "ingest",
            "orders",
            str(DATA / "cdnow_sample.txt"),
            "--mapping",
            str(DATA / "cdnow_mapping.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    return db


@pytest.fixture(scope="module")
def bgnbd(
    cdnow: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, object], dict[str, dict[str, str]]]:
    """`clv predict` with the papers' calibration and holdout: its JSON and the per-customer file."""
    out = tmp_path_factory.mktemp("out") / "predictions.csv"
    result = CliRunner().invoke(
        app,
        [
            "--db",
            str(cdnow),
            "clv",
            "predict",
            *CALIBRATION,
            "--holdout",
            "1998-06-30",
            "--out",
            str(out),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as f:
        rows = {r["customer_id"]: r for r in csv.DictReader(f)}
    return json.loads(result.stdout), rows


def within(value: float, published: float, rel: float = 0.01) -> bool:
    return abs(value - published) <= rel * abs(published)


def test_summary_matches_the_published_one_customer_by_customer(cdnow: Path) -> None:
    with open_store(cdnow) as store:
        customers, repeaters = build_summary(store, date(1997, 9, 30))
        ours = store.rows(
            "SELECT customer_id, x, t_x_days, T_days, monetary FROM clv_summary ORDER BY customer_id"
        )
    assert (customers, repeaters) == (2357, 946)
    with (DATA / "cdnow_summary.csv").open(encoding="utf-8", newline="") as f:
        published = list(csv.DictReader(f))
    assert len(published) == len(ours) == 2357
    assert sum(r["x"] for r in ours) == 2457
    for mine, theirs in zip(ours, published, strict=True):
        assert int(mine["customer_id"]) == int(theirs["ID"])
        assert mine["x"] == int(theirs["x"])
        assert round(mine["t_x_days"] / 7, 2) == float(theirs["t_x"]), theirs
        assert round(mine["T_days"] / 7, 2) == float(theirs["T"]), theirs
        assert abs(mine["monetary"] - float(theirs["zbar"])) <= 0.005 + 1e-9, theirs


def test_bgnbd_and_gamma_gamma_reproduce_the_papers(
    bgnbd: tuple[dict[str, object], dict[str, dict[str, str]]],
) -> None:
    document, _ = bgnbd
    params = document["transaction_model"]["params"]  # type: ignore[index]
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert within(params[name], published), (name, params[name])
    assert abs(document["transaction_model"]["log_likelihood"] - -9582.4) <= 0.5  # type: ignore[index]
    spend = document["spend_model"]  # type: ignore[index]
    assert spend["customers"] == 946
    for name, published in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert within(spend["params"][name], published), (name, spend["params"][name])
    assert within(spend["population_mean_spend"], 35.17, 0.001)
    assert document["customers"] == 2357 and document["repeaters"] == 946


def test_holdout_comparison_is_the_papers(bgnbd: tuple[dict[str, object], dict[str, dict[str, str]]]) -> None:
    document, rows = bgnbd
    holdout = document["holdout"]
    assert holdout["length"] == 39.0 and holdout["actual_total"] == 1882  # type: ignore[index]
    assert abs(holdout["correlation"] - 0.63) < 0.01  # type: ignore[index]
    zero = holdout["zero_repeat"]  # type: ignore[index]
    assert zero["customers"] == 1411
    assert round(zero["mean_actual"], 3) == 0.237
    assert abs(zero["mean_predicted"] - 0.225) < 0.002
    first = rows["0001"]  # x = 2, t_x = 30.43, T = 38.86: the papers' worked example over t = 39 weeks
    assert (first["x"], round(float(first["t_x"]), 2), round(float(first["T"]), 2)) == ("2", 30.43, 38.86)
    assert abs(float(first["holdout_expected"]) - 1.226) < 0.001


def test_pareto_nbd_reproduces_the_paper(cdnow: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["--db", str(cdnow), "clv", "predict", *CALIBRATION, "--model", "pareto", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    params = document["transaction_model"]["params"]
    for name, published in {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}.items():
        assert within(params[name], published), (name, params[name])
    assert abs(document["transaction_model"]["log_likelihood"] - -9595.0) <= 0.5
    assert document["holdout"] is None


def test_clv_is_discounted_expected_spend(bgnbd: tuple[dict[str, object], dict[str, dict[str, str]]]) -> None:
    document, rows = bgnbd
    totals = document["totals"]  # type: ignore[index]
    assert 0 < totals["clv"] < totals["expected_spend"]
    assert totals["clv"] > totals["expected_spend"] / 1.01, "1% a year discounts a year's spend by under 1%"
    new = next(r for r in rows.values() if r["x"] == "0")
    assert abs(float(new["expected_avg_spend"]) - 35.17) < 0.01, "no repeat purchase: the population mean"
    for r in rows.values():
        spend = float(r["expected_purchases"]) * float(r["expected_avg_spend"])
        assert abs(float(r["expected_spend"]) - spend) < 1e-6
        assert 0 <= float(r["p_alive"]) <= 1


def _orders(store: Store, customers: int, days: list[int]) -> None:
    """Each customer buys on the given days from 2025-01-01."""
    start = date(2025, 1, 1)
    store.con.executemany(
        "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
        "VALUES (?, ?, ?, 'P', 1, ?, ?)",
        [
            [f"{c}-{d}", f"C{c}", start + timedelta(days=d), 10 + c, 10 + c]
            for c in range(customers)
            for d in days
        ],
    )


@pytest.mark.parametrize(
    ("customers", "days", "args", "message"),
    [
        (20, [0, 30], ["--calibration-end", "2024-12-31"], "no orders on or before 2024-12-31"),
        (3, [0, 30, 60], ["--as-of", "2025-12-31"], "too few customers to fit a CLV model: 3"),
        (20, [0], ["--as-of", "2025-12-31"], "none of the 20 customers bought again"),
        (12, list(range(0, 71, 7)), ["--calibration-end", "2025-03-12"], "ran off to extreme values"),
        (
            20,
            [0, 30],
            ["--as-of", "2025-12-31", "--holdout", "2025-06-01"],
            "must be after the calibration end",
        ),
    ],
)
def test_predict_refuses_what_it_cannot_fit_and_writes_nothing(
    store: Store, runner: CliRunner, customers: int, days: list[int], args: list[str], message: str
) -> None:
    _orders(store, customers, days)
    store.close()
    result = runner.invoke(app, ["clv", "predict", *args, "--write-tier", "clv_tier"])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    with open_store(store.path) as again:
        assert again.scalar("SELECT count(*) FROM customer_attributes") == 0
        assert again.scalar("SELECT count(*) FROM attribute_changes") == 0


def test_write_tier_stores_quintiles(store: Store, runner: CliRunner) -> None:
    import random

    start, rows = date(2025, 1, 1), []
    # Purchase days and spends varying by customer (seeded); so few, so alike customers need a penalizer.
    for c in range(60):
        rng = random.Random(c)
        for d in sorted(rng.sample(range(150), 1 + c % 6)):
            rows.append([f"{c}-{d}", f"C{c:02d}", start + timedelta(days=d), rng.uniform(5, 80)])
    store.con.executemany(
        "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
        "VALUES (?, ?, ?, 'P', 1, ?, ?)",
        [[*r, r[-1]] for r in rows],
    )
    store.con.execute(
        "INSERT INTO customer_attributes VALUES ('GONE', 'clv_tier', 'high', 'clv predict bgnbd 2024-01-01', now(), 1)"
    )
    store.close()
    args = [
        "clv",
        "predict",
        "--as-of",
        "2025-06-30",
        "--unit",
        "days",
        "--write-tier",
        "CLV tier",
        "--penalizer",
        "0.01",
        "-f",
        "json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tier_change"]["key"] == "clv_tier" and document["tier_change"]["values_changed"] == 61
    assert [t["customers"] for t in document["tiers"]] == [12, 12, 12, 12, 12]
    with open_store(store.path) as again:
        tiers = dict(
            again.con.execute("SELECT value, count(*) FROM customer_attributes GROUP BY 1").fetchall()
        )
        assert tiers == dict.fromkeys(["very_high", "high", "medium", "low", "very_low"], 12)
    bounds = [(t["min_clv"], t["max_clv"]) for t in document["tiers"]]  # very_high first
    assert all(lower[1] <= higher[0] for higher, lower in itertools.pairwise(bounds))


def test_big_shops_fit_on_a_coarser_time_grid(
    cdnow: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pleasepoint_cli.clv.predict as predict

    monkeypatch.setattr(
        predict, "MAX_GROUPS", 700
    )  # CDNOW has 1,016 distinct (x, t_x, T) in days, 682 in weeks
    result = runner.invoke(app, ["--db", str(cdnow), "clv", "predict", *CALIBRATION, "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["grid_days"], document["groups"], document["spend_bin"]) == (7, 682, predict.SPEND_BIN)
    params = document["transaction_model"]["params"]
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert within(params[name], published, 0.03), (name, params[name])  # whole weeks move a by ~2%
    assert within(document["spend_model"]["params"]["p"], 6.25, 0.01)
    exact = runner.invoke(
        app, ["--db", str(cdnow), "clv", "predict", *CALIBRATION, "--grid", "exact", "-f", "json"]
    )
    assert json.loads(exact.stdout)["groups"] == 1016
    bad = runner.invoke(app, ["--db", str(cdnow), "clv", "predict", "--grid", "weekly"])
    assert bad.exit_code == 2 and "--grid" in bad.output
