"""System triggers: who is due, when, and only within max_age (two years of history never welcome everyone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from automate_data import (
    add_orders,
    customer_id,
    ledger_rows,
    make_customers,
    set_attribute,
    tick,
    write_automation,
)
from pleasepoint_cli.automate.model import load_automation
from pleasepoint_cli.automate.triggers import due_events, recency_state_start
from pleasepoint_cli.config import Settings
from pleasepoint_cli.errors import ConfigError
from pleasepoint_cli.store import open_store

MADRID = ZoneInfo("Europe/Madrid")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MADRID).astimezone(UTC)


def automation_file(tmp_path: Path, name: str, trigger: str, extra: str = "") -> Path:
    return write_automation(
        tmp_path,
        name,
        f"""\
name: {name}
subject: "Hola {{{{ first_name }}}}"
template: ../templates/email.mjml
trigger:
{trigger}{extra}""",
    )


def due(db: Path, path: Path, now: datetime, settings: Settings | None = None) -> list[tuple[str, str]]:
    automation = load_automation(path)
    with open_store(db) as store:
        return [(e.customer_id, e.period) for e in due_events(store, automation, settings or Settings(), now)]


def test_welcome_after_two_years_of_history_only_within_max_age(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    n = 300
    make_customers(db, n)
    start = datetime(2024, 12, 1, 10, 0)
    # Customer i's first order is i * 2.5 days after 2024-12-01 (so two years of first orders), and
    # every customer orders again 3 days later.
    orders = []
    for i in range(n):
        first = start + timedelta(hours=60 * i)
        orders.append((f"A{i}", customer_id(i), first.strftime("%Y-%m-%d %H:%M")))
        orders.append((f"B{i}", customer_id(i), (first + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")))
    add_orders(db, orders)
    path = automation_file(tmp_path, "bienvenida", "  type: welcome\n")
    now = local("2026-09-30 12:00")
    expected = {
        customer_id(i)
        for i in range(n)
        if now - timedelta(days=2) < local(str(start + timedelta(hours=60 * i))) <= now
    }
    assert 0 < len(expected) < 3
    assert {c for c, _ in due(db, path, now)} == expected
    report = tick(db, tmp_path, now)
    assert report.total("sent") == len(expected)
    assert {r["customer_id"] for r in ledger_rows(db)} == expected
    # Ticking again (and again later) never welcomes them twice.
    tick(db, tmp_path, now + timedelta(minutes=5))
    tick(db, tmp_path, now + timedelta(hours=30))
    sent = [r["customer_id"] for r in ledger_rows(db, "status = 'sent'")]
    assert len(sent) == len(set(sent))


def test_welcome_period_is_the_first_order_instant_and_hour_option(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    add_orders(db, [("O1", "C0000", "2026-10-24 22:30"), ("O2", "C0001", "2026-10-25 07:00")])
    plain = automation_file(tmp_path, "w1", "  type: welcome\n")
    assert due(db, plain, local("2026-10-25 12:00")) == [
        ("C0000", "2026-10-24T20:30:00Z"),
        ("C0001", "2026-10-25T06:00:00Z"),
    ]
    at_ten = automation_file(tmp_path, "w2", "  type: welcome\n  days: 1\n  hour: 10\n")
    # One day after the order, at 10:00 local; for C0000 that is 2026-10-25 10:00 (CET after the change).
    assert due(db, at_ten, local("2026-10-26 12:00")) == [
        ("C0000", "2026-10-25T09:00:00Z"),
        ("C0001", "2026-10-26T09:00:00Z"),
    ]


def test_post_purchase_n_days_after_each_order(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    add_orders(
        db,
        [
            ("O1", "C0000", "2026-06-01 10:00"),
            ("O2", "C0000", "2026-06-20 18:00"),
            ("O3", "C0001", "2026-05-01 09:00"),
        ],
    )
    path = automation_file(tmp_path, "pp", "  type: post_purchase\n  days: 7\n  hour: 11\n")
    assert due(db, path, local("2026-06-08 12:00")) == [("C0000", "2026-06-08T09:00:00Z")]
    assert due(db, path, local("2026-06-27 12:00")) == [("C0000", "2026-06-27T09:00:00Z")]
    assert due(db, path, local("2026-06-27 10:59")) == []  # not yet 11:00
    assert due(db, path, local("2026-06-20 12:00")) == []


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2027-02-28 09:30", ["C0000", "C0001"]),  # 29 February celebrates on the 28th in a common year
        ("2028-02-28 09:30", ["C0001"]),
        ("2028-02-29 09:30", ["C0001", "C0000"]),  # C0001's (yesterday) still within max_age
        ("2027-03-01 09:30", ["C0000", "C0001"]),  # still within max_age (2 days)
        ("2027-03-02 09:30", []),
        ("2027-02-28 08:59", []),  # before the hour
    ],
)
def test_birthday_at_local_hour_with_29_february(tmp_path: Path, now: str, expected: list[str]) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 3, birth_dates={0: "1992-02-29", 1: "1990-02-28", 2: "1985-07-14"})
    path = automation_file(tmp_path, "cumple", "  type: birthday\n  hour: 9\n")
    assert [c for c, _ in due(db, path, local(now))] == expected


def test_birthday_days_before_crosses_the_new_year(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 1, birth_dates={0: "1990-01-02"})
    path = automation_file(tmp_path, "cumple", "  type: birthday\n  days: -3\n  hour: 10\n  max_age: 1h\n")
    assert due(db, path, local("2026-12-30 10:30")) == [("C0000", "2026-12-30T09:00:00Z")]


def test_winback_on_entering_a_recency_state(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 3)
    add_orders(
        db,
        [
            ("O1", "C0000", "2025-06-01 10:00"),
            ("O2", "C0001", "2025-05-31 10:00"),
            ("O3", "C0002", "2025-06-02 10:00"),
        ],
    )
    settings = Settings()
    start = recency_state_start("hibernating", settings)
    assert start == settings.states.inactive_below
    path = automation_file(
        tmp_path, "wb", "  type: winback\n  from_state: inactive\n  to_state: hibernating\n"
    )
    day = date(2025, 6, 1) + timedelta(days=start)
    got = due(db, path, local(f"{day} 09:30"))
    # C0000 enters today at 09:00 (the default hour), C0001 entered yesterday (within max_age), C0002
    # enters tomorrow.
    assert [c for c, _ in got] == ["C0001", "C0000"]
    assert got[1][1] == local(f"{day} 09:00").strftime("%Y-%m-%dT%H:%M:%SZ")
    custom = Settings.model_validate(
        {"states": {"active_below": 90, "inactive_below": 200, "hibernating_below": 400}}
    )
    assert recency_state_start("hibernating", custom) == 200
    assert recency_state_start("inactive", custom) == 90


def test_winback_from_state_must_precede_to_state(tmp_path: Path) -> None:
    path = automation_file(tmp_path, "wb", "  type: winback\n  from_state: active\n  to_state: hibernating\n")
    with pytest.raises(ConfigError, match=r"wb.yaml:4: trigger: .*only from 'inactive'"):
        load_automation(path)


def test_first_purchase_anniversary(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 3)
    add_orders(
        db,
        [("O1", "C0000", "2024-02-29 10:00"), ("O2", "C0001", "2025-03-01 10:00"), ("O3", "C0002", "2026-02-28 10:00"),
         ("O4", "C0000", "2025-05-01 10:00")],
    )  # fmt: skip
    path = automation_file(
        tmp_path, "aniv", "  type: first_purchase_anniversary\n  hour: 12\n  max_age: 1d\n"
    )
    assert [c for c, _ in due(db, path, local("2026-02-28 12:30"))] == ["C0000"]  # 2 years; C0002 is day 0
    assert [c for c, _ in due(db, path, local("2026-03-01 12:30"))] == ["C0001"]
    assert [c for c, _ in due(db, path, local("2027-02-28 12:30"))] == ["C0000", "C0002"]


def test_welcome_in_quiet_hours_uses_each_customers_zone(tmp_path: Path) -> None:
    # A system trigger's due customers get their zone with the audience: at 22:30 Madrid the one in New York
    # (16:30) is sent, the one without a zone (the shop's) is deferred to 09:00 Madrid.
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    set_attribute(db, "timezone", {"C0001": "America/New_York"})
    add_orders(db, [("O1", "C0000", "2026-10-20 20:00"), ("O2", "C0001", "2026-10-20 20:00")])
    automation_file(tmp_path, "bienvenida", "  type: welcome\n")
    settings = Settings.model_validate(
        {"marketing": {"quiet_hours": {"start": "21:00", "end": "09:00", "timezone": "customer"}}}
    )
    report = tick(db, tmp_path, local("2026-10-20 22:30"), settings)
    assert (report.total("sent"), report.total("deferred")) == (1, 1)
    rows = {r["customer_id"]: (r["status"], str(r["not_before"] or "")[:19]) for r in ledger_rows(db)}
    assert rows == {"C0000": ("deferred", "2026-10-21T07:00:00"), "C0001": ("sent", "")}
