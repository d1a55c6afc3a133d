"""`automate tick` end to end on real files: the ledger, the engine, a file transport counting deliveries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from automate_data import (
    add_orders,
    customer_id,
    delivered,
    ledger_rows,
    make_customers,
    schedule_automation,
    set_attribute,
    tick,
    write_automation,
)
from pleasepoint_cli.automate.caps import CAP_SLACK
from pleasepoint_cli.automate.slots import slot_key
from pleasepoint_cli.config import Settings
from pleasepoint_cli.ops.store import OpsStore, ops_path

MADRID = ZoneInfo("Europe/Madrid")
TESTS = Path(__file__).parent


def local(text: str, zone: ZoneInfo = MADRID) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def periods(db: Path, name: str, status: str = "sent") -> list[str]:
    rows = ledger_rows(db, "source = ? AND status = ?", (name, status))
    return sorted({str(r["period"]) for r in rows})


# --- 60 simulated days, 1/month, against a plain-Python oracle ----------------------------------------------


def test_sixty_days_daily_one_per_month_matches_oracle(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    n = 24
    make_customers(db, n)
    last_order = {customer_id(i): date(2026, 9, 1) + timedelta(days=4 * i) for i in range(n)}
    add_orders(db, [(f"O{i}", c, f"{d} 12:00") for i, (c, d) in enumerate(last_order.items())])
    write_automation(
        tmp_path,
        "inactivos",
        schedule_automation(
            "inactivos",
            "0 9 * * *",
            extra="frequency:\n  per_customer: 1/month\naudience:\n  recency_days: {gte: 30}\n",
        ),
    )
    start = date(2026, 10, 15)
    sent_by_tick: dict[str, list[str]] = {}
    for day in range(60):
        today = start + timedelta(days=day)
        for clock in ("09:00", "21:00"):  # the evening tick must never send more
            report = tick(db, tmp_path, local(f"{today} {clock}"))
            assert report.ok, report.as_json()
            if report.total("sent"):
                sent_by_tick.setdefault(f"{today} {clock}", []).append(str(report.total("sent")))
    # The oracle: every day at 09:00 local, recency (days since the last order) >= 30 and no send in the
    # 30 days before (less the documented allowance).
    expected: set[tuple[str, str]] = set()
    last_sent: dict[str, datetime] = {}
    for day in range(60):
        today = start + timedelta(days=day)
        slot = local(f"{today} 09:00")
        for customer, ordered in last_order.items():
            if (today - ordered).days < 30:
                continue
            previous = last_sent.get(customer)
            if previous is not None and previous > slot - timedelta(days=30) + CAP_SLACK:
                continue
            last_sent[customer] = slot
            expected.add((customer, slot_key(slot)))
    got = {(str(r["customer_id"]), str(r["period"])) for r in ledger_rows(db, "status = 'sent'")}
    assert got == expected
    assert {t[-5:] for t in sent_by_tick} == {"09:00"}
    per_customer = {c: sum(1 for cc, _ in expected if cc == c) for c in last_order}
    assert set(per_customer.values()) == {0, 1, 2}  # never eligible, once, and again a month later
    messages, duplicates = delivered(tmp_path / "sent")
    assert (messages, duplicates) == (len(expected), 0)


# --- concurrency and crashes ----------------------------------------------------------------------------------


def _tick_process(
    db: Path, base: Path, now: datetime, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(TESTS / "automate_data.py"), str(db), str(base), now.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]), **(env or {})},
    )


def test_two_ticks_started_together_send_once_each(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 150)
    write_automation(tmp_path, "diario", schedule_automation("diario", "0 9 * * *"))
    now = local("2026-12-01 09:00")
    processes = [_tick_process(db, tmp_path, now) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert delivered(tmp_path / "sent") == (150, 0)
    assert len(ledger_rows(db, "status = 'sent'")) == 150
    lines = sorted(out.strip() for out, _ in outputs)
    assert any("sent 150" in line for line in lines) or sum("sent" in line for line in lines) == 2, lines


def test_sigkill_mid_send_then_rerun_sends_the_rest_once(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 60)
    write_automation(tmp_path, "diario", schedule_automation("diario", "0 9 * * *"))
    now = local("2026-12-01 09:00")
    process = _tick_process(db, tmp_path, now, {"AUTOMATE_TEST_SLOW": "0.05"})
    outbox = tmp_path / "sent"
    deadline = time.monotonic() + 60
    while delivered(outbox)[0] < 10:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the tick did not start sending"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    sent_before = delivered(outbox)[0]
    assert sent_before < 60
    # The kernel released the tick lock: the next tick runs at once (2 minutes later, within grace).
    report = tick(db, tmp_path, now + timedelta(minutes=2))
    assert not report.skipped
    (run,) = report.runs
    rows = ledger_rows(db)
    statuses = [str(r["status"]) for r in rows]
    assert statuses.count("uncertain") == run.uncertain <= 1
    assert statuses.count("sent") + statuses.count("uncertain") == 60
    messages, duplicates = delivered(outbox)
    assert duplicates == 0
    assert messages == sent_before + run.sent  # each new message once; the uncertain one not resent
    assert 60 - run.uncertain <= messages <= 60


# --- DST: tick every 5 minutes through each transition night, no cap ---------------------------------------


NIGHTS = "catch_up: none\n"
"""The transition nights are months apart and the ticks between them are not simulated: without this the
first tick of the second night would rightly catch up the latest slot before it."""


def _tick_through(db: Path, base: Path, zone: ZoneInfo, night: str, hours: float = 5.0) -> None:
    start = local(f"{night} 00:00", zone)
    steps = int(hours * 12)
    for i in range(steps + 1):
        report = tick(db, base, start + timedelta(minutes=5 * i))
        assert report.ok, report.as_json()


MADRID_NIGHTS = {
    "2026-03-29": ["00:00+0100", "01:00+0100", "03:00+0200", "04:00+0200", "05:00+0200", "06:00+0200"],
    "2026-10-25": ["00:00+0200", "01:00+0200", "02:00+0200", "02:00+0100", "03:00+0100", "04:00+0100"],
}
NEW_YORK_NIGHTS = {
    "2026-03-08": ["00:00-0500", "01:00-0500", "03:00-0400", "04:00-0400", "05:00-0400", "06:00-0400"],
    "2026-11-01": ["00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500", "03:00-0500", "04:00-0500"],
}


@pytest.mark.parametrize(
    ("zone_name", "nights", "daily"),
    [
        ("Europe/Madrid", MADRID_NIGHTS, ["2026-03-29T01:30:00Z", "2026-10-25T00:30:00Z"]),
        ("America/New_York", NEW_YORK_NIGHTS, ["2026-03-08T07:30:00Z", "2026-11-01T07:30:00Z"]),
    ],
)
def test_dst_nights_daily_once_hourly_both_passes(
    tmp_path: Path, zone_name: str, nights: dict[str, list[str]], daily: list[str]
) -> None:
    """Ticks every 5 minutes for 5 hours from local midnight of each transition night, no cap: the daily
    02:30 job runs once each night (at 03:30 after the spring gap, at the first 02:30 in autumn); the hourly
    job fires in both passes of the repeated hour and once for the hour that does not exist."""
    zone = ZoneInfo(zone_name)
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    write_automation(
        tmp_path, "diario", schedule_automation("diario", "30 2 * * *", timezone=zone_name, extra=NIGHTS)
    )
    write_automation(
        tmp_path, "horario", schedule_automation("horario", "0 * * * *", timezone=zone_name, extra=NIGHTS)
    )
    settings = Settings.model_validate({"shop": {"timezone": zone_name}})
    for night in nights:
        start = local(f"{night} 00:00", zone)
        for i in range(5 * 12 + 1):
            report = tick(db, tmp_path, start + timedelta(minutes=5 * i), settings)
            assert report.ok, report.as_json()
    assert periods(db, "diario") == daily
    assert len(ledger_rows(db, "status = 'sent' AND source = 'diario'")) == 2 * 2  # 2 customers, 2 nights
    hourly = [
        datetime.fromisoformat(p.replace("Z", "+00:00")).astimezone(zone) for p in periods(db, "horario")
    ]
    for night, expected in nights.items():
        start = local(f"{night} 00:00", zone)
        got = [h.strftime("%H:%M%z") for h in hourly if start <= h < start + timedelta(hours=6)]
        assert got == expected, night


def test_dst_lord_howe_daily_0145_once_each_transition_day(tmp_path: Path) -> None:
    zone = ZoneInfo("Australia/Lord_Howe")
    db = tmp_path / "shop.duckdb"
    make_customers(db, 1)
    write_automation(
        tmp_path, "lh", schedule_automation("lh", "45 1 * * *", timezone="Australia/Lord_Howe", extra=NIGHTS)
    )
    settings = Settings.model_validate({"shop": {"timezone": "Australia/Lord_Howe"}})
    for night in ("2026-04-05", "2026-10-04"):
        start = local(f"{night} 00:00", zone)
        for i in range(4 * 12 + 1):
            assert tick(db, tmp_path, start + timedelta(minutes=5 * i), settings).ok
    assert periods(db, "lh") == ["2026-04-04T14:45:00Z", "2026-10-03T15:15:00Z"]


# --- downtime -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catch_up", "tick_at", "max_lateness", "expected"),
    [
        ("latest", "12:13", None, ["12:00"]),
        ("all", "12:13", None, None),
        ("none", "12:13", None, []),
        ("none", "12:05", None, ["12:00"]),
        ("latest", "12:13", "10m", []),
    ],
)
def test_downtime_after_0900(
    tmp_path: Path, catch_up: str, tick_at: str, max_lateness: str | None, expected: list[str] | None
) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    extra = f"catch_up: {catch_up}\n" + (f"max_lateness: {max_lateness}\n" if max_lateness else "")
    write_automation(tmp_path, "cuarto", schedule_automation("cuarto", "*/15 * * * *", extra=extra))
    assert tick(db, tmp_path, local("2026-05-04 09:00")).ok
    report = tick(db, tmp_path, local(f"2026-05-04 {tick_at}"))
    assert report.ok
    after = [p for p in periods(db, "cuarto") if p > "2026-05-04T07:00:00Z"]
    got = [
        datetime.fromisoformat(p.replace("Z", "+00:00")).astimezone(MADRID).strftime("%H:%M") for p in after
    ]
    if expected is None:
        assert len(got) == 12 and got[0] == "09:15" and got[-1] == "12:00"
    else:
        assert got == expected
    with OpsStore(ops_path(db)) as ops:
        log = ops.rows("SELECT event, detail FROM automation_log WHERE name = 'cuarto' AND event = 'missed'")
    if max_lateness:
        (entry,) = log
        (missed,) = json.loads(entry["detail"])["missed"]
        assert (missed["reason"], missed["count"]) == ("too late", 12)


# --- caps and quiet hours -------------------------------------------------------------------------------------


def test_capped_is_recorded_and_global_cap_counts_campaigns(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 3)
    write_automation(
        tmp_path,
        "semanal",
        schedule_automation("semanal", "0 9 * * *", extra="frequency:\n  per_customer: 1/week\n"),
    )
    settings = Settings.model_validate({"marketing": {"global_cap": "1/day"}})
    with OpsStore(ops_path(db)) as ops:
        ops.execute(
            "INSERT INTO ledger (send_id, kind, source, period, customer_id, status, created_at, sent_at) "
            "VALUES ('x', 'campaign', 'rebajas', '', 'C0001', 'sent', '2026-12-01T07:00:00Z', "
            "'2026-12-01T07:00:00.000000Z')"
        )
    tick(db, tmp_path, local("2026-12-01 09:00"), settings)
    tick(db, tmp_path, local("2026-12-02 09:00"), settings)
    rows = {(r["customer_id"], r["period"][:10]): r["status"] for r in ledger_rows(db, "kind = 'automation'")}
    assert rows == {
        ("C0000", "2026-12-01"): "sent",
        ("C0001", "2026-12-01"): "capped",  # the campaign 1 hour before: global cap 1/day
        ("C0002", "2026-12-01"): "sent",
        ("C0000", "2026-12-02"): "capped",  # 1/week
        ("C0001", "2026-12-02"): "sent",
        ("C0002", "2026-12-02"): "capped",
    }


def test_on_cap_defer_sends_when_the_window_frees(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 1)
    body = schedule_automation(
        "bienvenida", "0 9,15 * * *", extra="frequency:\n  per_customer: 1/day\n  on_cap: defer\n"
    )
    write_automation(tmp_path, "bienvenida", body)
    tick(db, tmp_path, local("2026-12-01 09:00"))
    tick(db, tmp_path, local("2026-12-01 15:00"))
    (deferred,) = ledger_rows(db, "status = 'deferred'")
    not_before = datetime.fromisoformat(str(deferred["not_before"]).replace("Z", "+00:00"))
    assert local("2026-12-02 07:00") <= not_before <= local("2026-12-02 07:01")  # 09:00 + 24 h - 2 h
    assert tick(db, tmp_path, local("2026-12-02 06:55")).total("sent") == 0
    report = tick(db, tmp_path, local("2026-12-02 07:05"))
    assert (report.total("released"), report.total("sent")) == (1, 1)
    statuses = [(r["period"], r["status"]) for r in ledger_rows(db)]
    assert statuses == [("2026-12-01T08:00:00Z", "sent"), ("2026-12-01T14:00:00Z", "sent")]
    assert delivered(tmp_path / "sent") == (2, 0)


def test_quiet_hours_defer_to_the_window_end_in_the_customers_zone(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    set_attribute(db, "timezone", {"C0001": "America/New_York"})
    write_automation(tmp_path, "noche", schedule_automation("noche", "0 22 * * *"))
    settings = Settings.model_validate(
        {"marketing": {"quiet_hours": {"start": "21:00", "end": "09:00", "timezone": "customer"}}}
    )
    report = tick(db, tmp_path, local("2026-12-01 22:00"), settings)
    assert (report.total("sent"), report.total("deferred")) == (1, 1)  # 16:00 in New York: not quiet
    (row,) = ledger_rows(db, "status = 'deferred'")
    assert row["customer_id"] == "C0000"
    assert str(row["not_before"]).startswith("2026-12-02T08:00:00")  # 09:00 Madrid
    assert tick(db, tmp_path, local("2026-12-02 08:55"), settings).total("sent") == 0
    later = tick(db, tmp_path, local("2026-12-02 09:00"), settings)
    assert later.total("sent") == 1
    assert [r["status"] for r in ledger_rows(db)] == ["sent", "sent"]


def test_quiet_hours_customer_zone_ends_at_its_own_morning(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 2)
    set_attribute(db, "timezone", {"C0001": "America/New_York"})
    write_automation(tmp_path, "manana", schedule_automation("manana", "0 10 * * *"))
    settings = Settings.model_validate(
        {"marketing": {"quiet_hours": {"start": "21:00", "end": "09:00", "timezone": "customer"}}}
    )
    tick(db, tmp_path, local("2026-12-01 10:00"), settings)  # 04:00 in New York
    (row,) = ledger_rows(db, "status = 'deferred'")
    assert (row["customer_id"], str(row["not_before"])[:19]) == ("C0001", "2026-12-01T14:00:00")  # 09:00 EST


# --- bad automations never stop the good ones -----------------------------------------------------------------


def test_bad_automations_reported_good_ones_still_run(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    make_customers(db, 3)
    write_automation(tmp_path, "buena", schedule_automation("buena", "0 9 * * *"))
    write_automation(tmp_path, "mal-cron", schedule_automation("mal-cron", "0 25 * * *"))
    write_automation(
        tmp_path,
        "mal-atributo",
        schedule_automation(
            "mal-atributo", "0 9 * * *", extra="audience:\n  attribute: no_existe\n  equals: x\n"
        ),
    )
    write_automation(
        tmp_path,
        "sin-plantilla",
        schedule_automation("sin-plantilla", "0 9 * * *").replace("email.mjml", "falta.mjml"),
    )
    report = tick(db, tmp_path, local("2026-12-01 09:00"))
    assert not report.ok
    assert [r.name for r in report.runs if r.ok] == ["buena"]
    assert report.total("sent") == 3
    problems = "\n".join([*report.problems.values(), *(r.error or "" for r in report.runs)])
    automations = tmp_path / "automations"
    assert f"{automations / 'mal-cron.yaml'}:6: trigger.cron" in problems
    assert "hour: 25 is out of range 0-23" in problems
    assert (
        f"{automations / 'mal-atributo.yaml'}:9: audience.attribute: unknown attribute 'no_existe'"
        in problems
        and "no_existe" in problems
    )
    assert f"{automations / 'sin-plantilla.yaml'}:3: template" in problems
