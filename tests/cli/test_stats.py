"""`pleasepoint stats` on the pleasepoint fixture: hand-computed counters, rates and daily table, day boundaries
in the shop's time zone, the 80-column chart, JSON without NaN, the HTML report."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from events_data import FIXTURES, NOW, add_send, primavera_store
from pleasepoint_cli.cli import app
from pleasepoint_cli.events.ingest import ingest_events_file
from pleasepoint_cli.ops.store import open_ops


def _shop(tmp_path: Path) -> Path:
    db, ops = primavera_store(tmp_path)
    ingest_events_file(ops, FIXTURES["pleasepoint"], "pleasepoint", now=NOW)
    # A second open of S1 (total opens 2, unique 1) and a test send that never counts.
    extra = tmp_path / "more.jsonl"
    extra.write_text(
        '{"id": "m1", "event": "open", "at": "2026-04-24T12:00:00Z", "send_id": "S1"}\n'
        '{"id": "m2", "event": "open", "at": "2026-04-24T12:00:00Z", "send_id": "T1"}\n',
        encoding="utf-8",
    )
    add_send(ops, "T1", "C1", "tester@tienda.example", kind="test", source="primavera")
    ingest_events_file(ops, extra, "pleasepoint", now=NOW)
    ops.close()
    return db


def _json(runner: CliRunner, db: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["--db", str(db), "stats", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout, parse_constant=lambda c: math.nan)  # type: ignore[no-any-return]


def test_counters_and_rates_match_the_hand_computed_values(tmp_path: Path, runner: CliRunner) -> None:
    data = _json(runner, _shop(tmp_path), "--campaign", "primavera")
    assert data["counters"] == {
        "sent": 6,
        "delivered": 4,  # S1, S2, S5, S6
        "opens_total": 2,  # S1 twice (the test send's open is not the campaign's)
        "opens_unique": 1,
        "opens_unique_with_machine": 2,  # + S2's machine open
        "machine_opens": 1,
        "clicks_total": 1,
        "clicks_unique": 1,
        "bounces_hard": 1,
        "bounces_soft": 1,
        "complaints": 1,
        "unsubscribes": 1,
        "deferred": 1,
        "rate_base": 4,
        "rate_base_kind": "delivered",
        "open_rate": 0.25,
        "click_rate": 0.25,
        "click_to_open_rate": 1.0,
    }


def test_daily_table_cuts_days_in_the_shop_time_zone(tmp_path: Path, runner: CliRunner) -> None:
    db = _shop(tmp_path)
    madrid = _json(runner, db, "--campaign", "primavera", "--by", "day")
    days = {row["start"][:10]: row for row in madrid["daily"]}
    # S6's unsubscribe at 22:30 UTC is 00:30 on the 25th in Madrid (UTC+2 in April).
    assert days["2026-04-24"]["unsubscribes"] == 0 and days["2026-04-25"]["unsubscribes"] == 1
    assert (days["2026-04-24"]["sent"], days["2026-04-24"]["opens"], days["2026-04-24"]["clicks"]) == (
        6,
        1,
        1,
    )
    assert days["2026-04-24"]["bounces"] == 2 and days["2026-04-24"]["complaints"] == 1
    (tmp_path / "utc.yaml").write_text("shop:\n  timezone: UTC\n", encoding="utf-8")
    result = runner.invoke(
        app,
        ["--db", str(db), "--config", str(tmp_path / "utc.yaml"), "stats", "--by", "day", "--format", "json"],
    )
    utc_days = {row["start"][:10]: row for row in json.loads(result.stdout)["daily"]}
    assert list(utc_days) == ["2026-04-24"] and utc_days["2026-04-24"]["unsubscribes"] == 1


def test_hourly_by_default_under_seven_days_and_the_period_filters(tmp_path: Path, runner: CliRunner) -> None:
    db = _shop(tmp_path)
    data = _json(runner, db)
    assert data["by"] == "hour"
    assert data["series"][0]["start"] == "2026-04-24T10:00:00"  # 08:00 UTC, shop time
    assert sum(row["sent"] for row in data["series"]) == 6
    only_25 = _json(runner, db, "--from", "2026-04-25", "--to", "2026-04-25")
    assert only_25["counters"]["sent"] == 0 and only_25["counters"]["unsubscribes"] == 1
    assert only_25["counters"]["open_rate"] is None  # nothing delivered that day: null, never NaN
    weekly = _json(runner, db, "--from", "2026-04-01", "--to", "2026-04-30", "--by", "week")
    assert weekly["series"][0]["start"] == "2026-03-30T00:00:00"  # weeks start on Monday


def test_json_has_no_nan_on_an_empty_store_and_an_unknown_campaign_is_an_error(
    tmp_path: Path, runner: CliRunner
) -> None:
    db = tmp_path / "empty.duckdb"
    open_ops(db).close()
    result = runner.invoke(app, ["--db", str(db), "stats", "--format", "json"])
    assert result.exit_code == 0
    assert "NaN" not in result.stdout
    data = json.loads(result.stdout)
    assert data["counters"]["open_rate"] is None and data["counters"]["click_to_open_rate"] is None
    missing = runner.invoke(app, ["--db", str(db), "stats", "--campaign", "nada"])
    assert missing.exit_code == 1 and "no send of campaign 'nada'" in missing.output


def test_the_terminal_page_fits_80_columns(tmp_path: Path, runner: CliRunner) -> None:
    db = _shop(tmp_path)
    for args in ([], ["--by", "hour", "--from", "2026-04-20", "--to", "2026-04-26"], ["--metric", "clicks"]):
        result = runner.invoke(app, ["--db", str(db), "stats", *args])
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= 80
        assert "Clicks per" in result.stdout and "daily" in result.stdout
    sends_only = runner.invoke(app, ["--db", str(db), "stats", "--metric", "sends"]).stdout
    assert "Sends per" in sends_only and "Opens per" not in sends_only


def test_csv_is_the_series_and_html_is_self_contained(tmp_path: Path, runner: CliRunner) -> None:
    db = _shop(tmp_path)
    csv_out = runner.invoke(
        app, ["--db", str(db), "stats", "--by", "day", "--format", "csv"]
    ).stdout.splitlines()
    assert csv_out[0].startswith("start,sent,delivered,opens")
    assert csv_out[1].startswith("2026-04-24T00:00:00,6,4,1,")
    report = tmp_path / "report.html"
    result = runner.invoke(app, ["--db", str(db), "stats", "--campaign", "primavera", "--html", str(report)])
    assert result.exit_code == 0
    page = report.read_text(encoding="utf-8")
    assert "<svg" in page and 'id="series-opens"' in page and "polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script src" not in page and "<link" not in page
