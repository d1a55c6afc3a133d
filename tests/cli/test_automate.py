"""`pleasepoint automate ...` through the real CLI: tick into the outbox, list, toggle, preview, history,
validate, the lock and the busy database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from automate_data import add_orders, customer_id, make_customers, schedule_automation, write_automation
from pleasepoint_cli.automate.tick import tick_lock
from pleasepoint_cli.cli import app

NOW = ["--now", "2026-12-01T09:00"]


def _setup(tmp_path: Path, db_path: Path, customers: int = 4) -> None:
    make_customers(db_path, customers)
    write_automation(
        tmp_path,
        "diario",
        schedule_automation("diario", "0 9 * * *", extra="frequency:\n  per_customer: 1/month\n"),
    )


def test_tick_into_the_outbox_then_quiet_when_nothing_is_due(
    tmp_path: Path, db_path: Path, runner: CliRunner
) -> None:
    _setup(tmp_path, db_path)
    result = runner.invoke(app, ["automate", "tick", *NOW, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "automate tick 2026-12-01T08:00:00Z: sent 4 (diario)"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 4
    again = runner.invoke(app, ["automate", "tick", "--now", "2026-12-01T09:05", "--quiet"])
    assert (again.exit_code, again.stdout) == (0, "")
    verbose = runner.invoke(app, ["automate", "tick", "--now", "2026-12-01T09:10", "--verbose"])
    assert "diario: slots 0" in verbose.output


def test_list_toggle_history_preview(tmp_path: Path, db_path: Path, runner: CliRunner) -> None:
    _setup(tmp_path, db_path)
    assert runner.invoke(app, ["automate", "tick", *NOW]).exit_code == 0
    listed = runner.invoke(app, ["automate", "list", *NOW, "--format", "json"])
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["active"], row["sent_30d"]) == ("diario", True, 4)
    assert row["next_run"] == "2026-12-02 09:00 CET" and row["last_run"] == "2026-12-01 09:00 CET"
    assert runner.invoke(app, ["automate", "deactivate", "diario", *NOW]).exit_code == 0
    off = runner.invoke(app, ["automate", "tick", "--now", "2026-12-02T09:00", "--format", "json"])
    assert json.loads(off.stdout)["runs"] == []
    assert runner.invoke(app, ["automate", "activate", "diario", "--now", "2026-12-03T08:00"]).exit_code == 0
    preview = runner.invoke(
        app, ["automate", "preview", "diario", "--now", "2026-12-03T09:00", "--format", "json"]
    )
    steps = {s["step"]: s["customers"] for s in json.loads(preview.stdout)["steps"]}
    assert steps["all customers"] == 4
    assert steps["within the cap 1/month"] == 0  # all sent on 1 December
    history = runner.invoke(app, ["automate", "history", "diario", "--format", "json"])
    data = json.loads(history.stdout)
    assert data["periods"] == [{"period": "2026-12-01T08:00:00Z", "sent": 4}]
    assert [e["event"] for e in data["log"]] == ["run", "toggled", "toggled"]


def test_validate_names_file_and_line_and_exit_1(tmp_path: Path, db_path: Path, runner: CliRunner) -> None:
    _setup(tmp_path, db_path)
    write_automation(
        tmp_path, "mala", schedule_automation("mala", "0 9 * * *", extra="frequency:\n  per_customer: 2\n")
    )
    result = runner.invoke(app, ["automate", "validate", *NOW])
    assert result.exit_code == 1
    assert (
        "automations/mala.yaml:9: frequency.per_customer: Value error, expected `once` or N/day"
        in result.output.replace(str(tmp_path) + "/", "")
    )
    good = runner.invoke(app, ["automate", "validate", "diario", *NOW, "--format", "json"])
    assert good.exit_code == 0 and json.loads(good.stdout)[0]["audience"] == 4


def test_strict_types_and_unknown_keys(tmp_path: Path, db_path: Path, runner: CliRunner) -> None:
    _setup(tmp_path, db_path)
    write_automation(
        tmp_path, "tipos", schedule_automation("tipos", "0 9 * * *", extra="active: 'yes'\ncatchup: all\n")
    )
    result = runner.invoke(app, ["automate", "validate", "tipos", *NOW])
    assert result.exit_code == 1
    assert "tipos.yaml:8: active: Input should be a valid boolean" in result.output
    assert "tipos.yaml:9: catchup: unknown key" in result.output


def test_second_tick_while_one_runs_is_skipped(tmp_path: Path, db_path: Path, runner: CliRunner) -> None:
    _setup(tmp_path, db_path)
    with tick_lock(db_path) as held:
        assert held
        result = runner.invoke(app, ["automate", "tick", *NOW])
    assert result.exit_code == 0
    assert "skipped: another tick is running" in result.output
    assert not (tmp_path / "outbox").exists()


def test_busy_database_exits_75(tmp_path: Path, db_path: Path, runner: CliRunner) -> None:
    _setup(tmp_path, db_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
         "time.sleep(60)", str(db_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        result = runner.invoke(app, ["automate", "tick", *NOW, "--lock-timeout", "0.2"])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 75, result.output
    assert "busy" in result.output


def test_a_tick_on_data_that_ended_long_ago_says_so_unless_quiet(
    tmp_path: Path, db_path: Path, runner: CliRunner
) -> None:
    """Issue 13 item 4 for the sending side: the tick reads the data's end when it opens DuckDB for work."""
    _setup(tmp_path, db_path)
    add_orders(db_path, [("O1", customer_id(0), "2026-01-15 10:00")])
    result = runner.invoke(app, ["automate", "tick", *NOW, "--dry-run", "--format", "json"])
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(result.stdout)["warnings"]
    assert "latest purchase is 2026-01-15, 320 days before this send's day 2026-12-01" in warning
    assert "--as-of" not in warning and "pass --now" in warning
    assert "warning: the data's latest purchase is 2026-01-15" in result.stderr
    quiet = runner.invoke(app, ["automate", "tick", *NOW, "--dry-run", "--quiet"])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
    add_orders(db_path, [("O2", customer_id(1), "2026-11-20 10:00")])
    fresh = runner.invoke(app, ["automate", "tick", *NOW, "--dry-run", "--format", "json"])
    assert json.loads(fresh.stdout)["warnings"] == []
