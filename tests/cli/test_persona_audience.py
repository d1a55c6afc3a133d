"""`persona run --audience`: the rule language as the analysis filter, reproduced by `persona verify`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from pleasepoint_cli.audience import compile_rule, parse_rule
from pleasepoint_cli.cli import app
from pleasepoint_cli.store import open_store

RULE = "audience:\n  all:\n    - state: active\n    - near_store: {store: preferred, km: 5}\n"


def test_an_audience_file_limits_the_analysis_and_verify_reproduces_it(
    runner: CliRunner, shop_path: Path, tmp_path: Path
) -> None:
    rule_file = tmp_path / "activos.yaml"
    rule_file.write_text(RULE, encoding="utf-8")
    result = runner.invoke(app, ["persona", "run", "-k", "3", "--audience", str(rule_file), "-f", "json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    with open_store(shop_path) as store:
        as_of = date.fromisoformat(run["as_of"])
        compiled = compile_rule(
            parse_rule({"all": [{"state": "active"}, {"near_store": {"store": "preferred", "km": 5}}]}),
            as_of=as_of,
            marketing=False,
        )
        expected = store.scalar(
            f"SELECT count(DISTINCT customer_id) FROM order_lines WHERE quantity > 0 AND ordered_at < ? + INTERVAL 1 DAY "
            f"AND customer_id IN ({compiled.sql})",
            [as_of, *compiled.params],
        )
        assigned = store.scalar("SELECT count(*) FROM persona_assignments WHERE run_id = ?", [run["run_id"]])
    assert 0 < assigned == expected == run["customers"]
    assert run["manifest"]["options"]["audience"] is not None
    verify = runner.invoke(app, ["persona", "verify", str(run["run_id"])])
    assert verify.exit_code == 0, verify.output


def test_audience_errors_name_the_file_and_store_nothing(
    runner: CliRunner, shop_path: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "malo.yaml"
    bad.write_text("audience:\n  all:\n    - recency_dayz: {gte: 10}\n", encoding="utf-8")
    result = runner.invoke(app, ["persona", "run", "-k", "3", "--audience", str(bad)])
    assert result.exit_code == 1 and "malo.yaml:3" in result.stderr
    nobody = tmp_path / "nadie.yaml"
    nobody.write_text("audience:\n  all:\n    - orders: {gte: 100000}\n", encoding="utf-8")
    empty = runner.invoke(app, ["persona", "run", "-k", "3", "--audience", str(nobody)])
    assert empty.exit_code == 1, empty.output
    with open_store(shop_path) as store:
        assert store.scalar("SELECT count(*) FROM persona_runs") == 0
