"""`init --currency --timezone --language` (issue 13 item 14): the settings, a starter template in the shop's
language, greetings that never start with an empty name and a footer that never claims consent not given."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.content.context import greeting
from pleasepoint_cli.store import open_store


def test_greetings_fall_back_without_a_name() -> None:
    assert greeting("", "", "es") == "Hola:"
    assert greeting(None, "Sra.", None, "en") == "Hello,"
    assert greeting("Ana", "Sra.", "es-ES") == "Hola, Sra. Ana:"
    assert greeting("Ann", "", "en") == "Hello Ann,"


def test_init_in_english_then_a_created_campaign_greets_and_signs_off_honestly(
    runner: CliRunner, tmp_path: Path, db_path: Path
) -> None:
    result = runner.invoke(
        app, ["init", ".", "--name", "Corner Shop", "--currency", "usd", "--timezone", "America/New_York",
              "--language", "en"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = yaml.safe_load((tmp_path / "pleasepoint.yaml").read_text(encoding="utf-8"))
    assert settings["shop"] == {
        "name": "Corner Shop",
        "url": "https://tienda.example",
        "timezone": "America/New_York",
        "currency": "USD",
        "language": "en",
    }
    assert settings["email"]["signature"] == "The Corner Shop team"
    with open_store(db_path) as store, store.transaction() as con:
        con.execute(
            "INSERT INTO customers (customer_id, email, email_consent) VALUES ('C1', 'c1@example.com', false)"
        )
        con.execute(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
            "VALUES ('O1', 'C1', ?, 'P', 1, 10, 10)",
            [date(2026, 6, 1)],
        )
    (tmp_path / "everyone.yaml").write_text(
        "name: everyone\naudience:\n  all:\n    - state: active\n", encoding="utf-8"
    )
    created = runner.invoke(app, ["campaign", "create", "--from-filter", "everyone.yaml"])
    assert created.exit_code == 0, created.output
    campaign = Path(created.stdout.strip())
    text = campaign.read_text(encoding="utf-8")
    assert 'subject: "Offers picked for you{% if first_name %}, {{ first_name }}{% endif %}"' in text
    preview = runner.invoke(
        app, ["campaign", "preview", str(campaign), "--customer", "C1", "--out", "p.html"]
    )
    assert preview.exit_code == 0, preview.output
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "Hello," in html and "Hello ," not in html
    assert "agreed to hear from us" not in html and "as a customer of Corner Shop" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--language", "fr"], "use es or en"),
        (["--currency", "euro"], "3-letter"),
        (["--timezone", "Mars/Base"], "not a known time zone"),
    ],
)
def test_init_refuses_bad_values(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["init", ".", *args])
    assert result.exit_code in (1, 2)
    assert message in " ".join(result.output.split())
