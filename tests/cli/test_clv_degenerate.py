"""Degenerate data never give a silent wrong answer (issue 13 item 1) and no `--format json` prints NaN or
Infinity (issue 13, done-when): a BG/NBD fit at a boundary exits 1 before writing, a Pareto/NBD whose dropout
is not identified warns, and every command that prints figures is parsed with a strict JSON parser."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.cli._common import to_json
from pleasepoint_cli.store import Store, open_store

END = date(2018, 8, 31)


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _insert(store: Store, rows: list[list[Any]]) -> Path:
    with store.transaction() as con:
        con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, "
            "amount) VALUES (?, ?, ?, 'P', 1, ?, ?)",
            [[*r, r[-1]] for r in rows],
        )
        con.executemany(
            "INSERT INTO customers (customer_id, email, email_consent) VALUES (?, ?, true)",
            sorted({(r[1], f"{r[1].lower()}@example.com") for r in rows}),
        )
    store.close()
    return store.path


@pytest.fixture
def one_percent_repeat(store: Store) -> Path:
    """3,000 customers, 1% of whom bought a second time: BG/NBD runs to r -> 0, a and b apart, and its
    predictions were NaN (exit 0, NaN in JSON, every customer's tier very_low) before this issue."""
    r = random.Random(2)
    rows: list[list[Any]] = []
    for i in range(3000):
        first = END - timedelta(days=r.randint(0, 600))
        rows.append([f"O{i}a", f"C{i}", first, 20.0])
        if i < 30:
            second = min(END, first + timedelta(days=r.randint(1, 30)))
            rows.append([f"O{i}b", f"C{i}", second, r.lognormvariate(3, 0.6)])
    return _insert(store, rows)


@pytest.fixture
def nobody_leaves(store: Store) -> Path:
    """300 customers who all bought regularly until lately: the Pareto/NBD dropout rate s runs to zero."""
    r = random.Random(0)
    rows: list[list[Any]] = []
    for i in range(300):
        T, k = r.randint(100, 600), r.randint(1, 6)
        last = T - r.randint(0, 40)
        first, mean_spend = END - timedelta(days=T), r.lognormvariate(3, 0.8)
        for j in range(k + 1):
            spend = mean_spend * r.lognormvariate(0, 0.3)
            rows.append([f"O{i}-{j}", f"C{i}", first + timedelta(days=last * j // k), spend])
    return _insert(store, rows)


def test_a_fit_at_a_boundary_exits_1_naming_cause_and_fix_and_writes_nothing(
    one_percent_repeat: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["clv", "predict", "--write-tier", "clv_tier", "-f", "json"])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert "1.0% of customers repeat" in result.stderr and "not identified" in result.stderr
    assert "--penalizer" in result.stderr
    with open_store(one_percent_repeat) as store:
        assert store.scalar("SELECT count(*) FROM customer_attributes") == 0
        assert store.scalar("SELECT count(*) FROM attribute_changes") == 0
    fixed = runner.invoke(app, ["clv", "predict", "--penalizer", "0.001", "-f", "json"])
    assert fixed.exit_code == 0, fixed.output
    assert _strict(fixed.stdout)["totals"]["clv"] > 0


def test_a_pareto_nbd_without_dropout_warns_that_s_and_beta_are_not_identified(
    nobody_leaves: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["clv", "predict", "--model", "pareto", "-f", "json"])
    assert result.exit_code == 0, result.output
    document = _strict(result.stdout)
    assert document["transaction_model"]["params"]["s"] < 0.01
    assert "dropout is not identified" in result.stderr
    assert document["warnings"] and "s " in document["warnings"][0]


@pytest.mark.parametrize(
    "args",
    [
        ["clv", "score"],
        ["clv", "score", "--by", "rfm"],
        ["clv", "predict"],
        ["clv", "predict", "--penalizer", "0.001"],
        ["clv", "predict", "--model", "pareto", "--penalizer", "0.001"],
        ["customers", "show", "C0"],
        ["persona", "list"],
    ],
)
def test_every_figure_command_prints_strict_json_on_degenerate_data(
    one_percent_repeat: Path, runner: CliRunner, args: list[str]
) -> None:
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 0:
        _strict(result.stdout)
    else:
        assert result.stdout == ""


def test_campaign_audience_prints_strict_json(
    one_percent_repeat: Path, runner: CliRunner, tmp_path: Path
) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text("audience:\n  all:\n    - state: active\n", encoding="utf-8")
    result = runner.invoke(app, ["campaign", "audience", str(rule), "-f", "json"])
    assert result.exit_code == 0, result.output
    _strict(result.stdout)


def test_to_json_maps_non_finite_floats_to_null_at_any_depth() -> None:
    import numpy as np

    text = to_json({"a": float("nan"), "b": [float("inf"), {"c": np.float64("-inf")}], "d": 1.5})
    assert _strict(text) == {"a": None, "b": [None, {"c": None}], "d": 1.5}


def test_a_holdout_before_the_data_end_says_calibration_end_is_needed(
    one_percent_repeat: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["clv", "predict", "--holdout", "2018-06-30"])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "must be after the calibration end 2018-08-31" in message
    assert "--calibration-end 2017-06-30" in message
