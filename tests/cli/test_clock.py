"""One clock (issue 9) and the stale-data warning (issue 13 item 4), through the CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.clock import ANALYSIS, SENDING, resolve_clock
from pleasepoint_cli.store import Store

END = date(2018, 8, 31)
TEMPLATE = Path(__file__).parents[2] / "examples" / "templates" / "bienvenida.mjml"


@pytest.fixture
def old_shop(store: Store, tmp_path: Path) -> Path:
    """Twelve customers with consent whose orders end on 2018-08-31 (C00 bought that day)."""
    with store.transaction() as con:
        con.executemany(
            "INSERT INTO customers (customer_id, email, email_consent) VALUES (?, ?, true)",
            [[f"C{i:02}", f"c{i}@example.com"] for i in range(12)],
        )
        con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, "
            "amount) VALUES (?, ?, ?, 'P', 1, 10, 10)",
            [[f"O{i}", f"C{i:02}", END - timedelta(days=40 * i)] for i in range(12)],
        )
    store.close()
    rule = tmp_path / "active.yaml"
    rule.write_text("audience:\n  all:\n    - state: active\n", encoding="utf-8")
    return rule


def _funnel(runner: CliRunner, rule: Path) -> tuple[dict[str, object], str]:
    result = runner.invoke(app, ["campaign", "audience", str(rule), "--no-guards", "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_audience_defaults_to_the_latest_purchase_like_clv_score(old_shop: Path, runner: CliRunner) -> None:
    document, stderr = _funnel(runner, old_shop)
    assert document["as_of"] == END.isoformat()
    assert document["funnels"][0]["customers"] > 0  # type: ignore[index]
    assert "as of 2018-08-31 (the day of the latest purchase)" in stderr
    assert "warning" not in stderr
    score = runner.invoke(app, ["clv", "score", "-f", "json"])
    active = {s["segment"]: s["customers"] for s in json.loads(score.stdout)["segments"]}["active"]
    assert active == document["funnels"][0]["customers"]  # type: ignore[index]


def test_an_as_of_long_after_the_data_warns_and_suggests_the_data_end(
    old_shop: Path, runner: CliRunner
) -> None:
    result = runner.invoke(
        app, ["campaign", "audience", str(old_shop), "--as-of", "2026-11-30", "--no-guards"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: the data's latest purchase is 2018-08-31" in result.stderr
    assert "--as-of 2018-08-31" in result.stderr
    quiet = runner.invoke(
        app, ["--quiet", "campaign", "audience", str(old_shop), "--as-of", "2026-11-30", "--no-guards"]
    )
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_clv_score_warns_too_and_30_days_is_not_stale(old_shop: Path, runner: CliRunner) -> None:
    late = runner.invoke(app, ["clv", "score", "--as-of", (END + timedelta(days=31)).isoformat()])
    assert "warning: the data's latest purchase" in late.stderr
    fresh = runner.invoke(app, ["clv", "score", "--as-of", (END + timedelta(days=30)).isoformat()])
    assert fresh.exit_code == 0 and "warning" not in fresh.stderr


def test_one_rule_for_every_kind_of_command() -> None:
    analysis = resolve_clock(ANALYSIS, shop_tz="Europe/Madrid", latest_purchase=END)
    assert (analysis.as_of, analysis.source) == (END, "latest purchase")
    sending = resolve_clock(SENDING, shop_tz="Europe/Madrid", latest_purchase=END)
    assert sending.source == "clock" and sending.warning() is not None
    # A sending command takes --now, not --as-of: the warning suggests what the command accepts.
    assert "pass --now" in str(sending.warning()) and "--as-of" not in str(sending.warning())
    assert f"--as-of {END}" in str(
        resolve_clock(ANALYSIS, shop_tz="UTC", latest_purchase=END, as_of="2026-11-30").warning()
    )
    given = resolve_clock(SENDING, shop_tz="Europe/Madrid", latest_purchase=END, now="2018-09-01T09:00")
    assert given.as_of == date(2018, 9, 1) and given.now.isoformat() == "2018-09-01T07:00:00+00:00"
    assert given.warning() is None


def test_buyers_without_a_customer_row_are_counted_and_preview_says_why(
    old_shop: Path, runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    from pleasepoint_cli.store import open_store

    with open_store(db_path) as store, store.transaction() as con:
        con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, "
            "amount) VALUES (?, 'X1010', ?, 'P', 1, 10, 10)",
            [[f"X{i}", END - timedelta(days=i)] for i in range(3)],
        )
    document, stderr = _funnel(runner, old_shop)
    assert document["no_customer_record"] == 1
    assert "1 buyers have orders but no customer record" in " ".join(stderr.split())
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        f"name: Prueba\nsubject: Hola\ntemplate: {TEMPLATE}\naudience:\n  all:\n    - state: active\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["campaign", "preview", str(campaign), "--customer", "X1010"])
    assert result.exit_code == 1
    assert "has 3 orders but no customer record" in " ".join(result.stderr.split())
