"""`campaign send` as real processes against an SMTP server in its own process: SIGKILL and rerun, two sends at
once, analysts working during a send, the lock, confirmation, suppression commands, unsubscribe, GDPR."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.ops import OpsStore, ops_path
from send_data import address, customer_id, make_shop, write_campaign
from smtp_server import ServerProcess, spawn_server

NOW = ["--now", "2026-09-01T10:00"]


def write_config(directory: Path, server: ServerProcess | None, connections: int = 2) -> Path:
    lines = ["db: test.duckdb"]
    if server is not None:
        lines += [
            "delivery:",
            "  transport: smtp",
            "  smtp:",
            f"    host: {server.host}",
            f"    port: {server.port}",
            f"    security: {'starttls' if server.ca_file else 'none'}",
            *([f"    ca_file: {server.ca_file}"] if server.ca_file else []),
            f"    connections: {connections}",
            "    retry_backoff: 0.01",
        ]
    path = directory / "pleasepoint.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pleasepoint(directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PLEASEPOINT_DB"}
    return subprocess.Popen(
        [sys.executable, "-m", "pleasepoint_cli", *args],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def received(server: ServerProcess) -> Counter[str]:
    return Counter(r for m in server.received() for r in m.rcpt_tos)


def statuses(db: Path) -> dict[str, str]:
    with OpsStore(ops_path(db)) as ops:
        return {
            r["customer_id"]: r["status"]
            for r in ops.rows("SELECT customer_id, status FROM ledger WHERE kind = 'campaign'")
        }


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "test.duckdb"  # also $PLEASEPOINT_DB of the CliRunner tests
    return db, write_campaign(tmp_path)


def test_sigkill_mid_send_then_rerun_mails_everyone_once_except_the_reported_uncertain(
    tmp_path: Path, shop: tuple[Path, Path]
) -> None:
    db, campaign = shop
    total, connections = 60, 2
    make_shop(db, total)
    with spawn_server(tmp_path / "server", tls=True, delay=0.03) as server:
        write_config(tmp_path, server, connections)
        first = pleasepoint(tmp_path, "campaign", "send", str(campaign), "--yes", *NOW)
        wait_until(lambda: server.count() >= total // 2)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        killed_at = server.count()
        assert killed_at < total, "the send finished before it was killed: slow the server down"
        rerun = pleasepoint(tmp_path, "campaign", "send", str(campaign), "--yes", "--format", "json", *NOW)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        summary = json.loads(out)
        got = received(server)
    ledger = statuses(db)
    uncertain = {c for c, s in ledger.items() if s == "uncertain"}
    assert summary["recovered_uncertain"] == summary["uncertain"] == len(uncertain) <= connections
    for i in range(total):
        if customer_id(i) in uncertain:
            assert got[address(i)] <= 1  # maybe delivered before the kill; never twice
        else:
            assert got[address(i)] == 1, address(i)
            assert ledger[customer_id(i)] == "sent"
    assert sum(got.values()) <= total


def test_two_sends_started_together_mail_each_address_once(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    db, campaign = shop
    total = 40
    make_shop(db, total)
    with spawn_server(tmp_path / "server", delay=0.005) as server:
        write_config(tmp_path, server)
        runs = [
            pleasepoint(tmp_path, "--lock-timeout", "120", "campaign", "send", str(campaign), "--yes", *NOW)
            for _ in range(2)
        ]
        results = [r.communicate(timeout=180) for r in runs]
        assert [r.returncode for r in runs] == [0, 0], results
        assert received(server) == Counter({address(i): 1 for i in range(total)})
    assert set(statuses(db).values()) == {"sent"}


def test_a_second_send_while_one_holds_the_lock_exits_75(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    from pleasepoint_cli.delivery.lock import send_lock

    db, campaign = shop
    make_shop(db, 3)
    write_config(tmp_path, None)
    with send_lock(db, "campaign-rebajas-de-otono", 1):
        busy = CliRunner().invoke(
            app, ["--lock-timeout", "0.2", "campaign", "send", str(campaign), "--yes", *NOW]
        )
    assert busy.exit_code == 75, busy.output
    assert "already being sent" in busy.stderr
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").iterdir())


def test_persona_list_answers_while_a_send_is_running(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    db, campaign = shop
    total = 80
    make_shop(db, total)
    with spawn_server(tmp_path / "server", delay=0.05) as server:
        write_config(tmp_path, server, connections=1)
        sending = pleasepoint(tmp_path, "campaign", "send", str(campaign), "--yes", *NOW)
        wait_until(lambda: server.count() >= 3)
        analyst = pleasepoint(tmp_path, "persona", "list", "--format", "json")
        out, err = analyst.communicate(timeout=60)
        assert analyst.returncode == 0, err
        assert json.loads(out)["runs"] == []
        # Ordered by events, not by time: the analyst's command finished while the send was still going.
        assert sending.poll() is None and server.count() < total
        sending.communicate(timeout=120)
        assert sending.returncode == 0
        assert server.count() == total


def test_without_a_terminal_and_without_yes_nothing_is_sent(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    db, campaign = shop
    make_shop(db, 3)
    write_config(tmp_path, None)
    result = CliRunner().invoke(app, ["campaign", "send", str(campaign), *NOW])
    assert result.exit_code == 1
    assert "pass --yes" in result.stderr
    dry = CliRunner().invoke(app, ["campaign", "send", str(campaign), "--dry-run", "--format", "json", *NOW])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["would_send"] == 3
    assert statuses(db) == {}
    sent = CliRunner().invoke(app, ["campaign", "send", str(campaign), "--yes", "--format", "json", *NOW])
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["sent"] == 3
    status = CliRunner().invoke(app, ["campaign", "status", str(campaign), "--format", "json"])
    assert json.loads(status.stdout)["counts"]["sent"] == 3
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_suppress_commands_and_unsubscribe(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    db, campaign = shop
    make_shop(db, 4)
    write_config(tmp_path, None)
    runner = CliRunner()
    assert runner.invoke(app, ["suppress", "add", address(0), "--reason", "complained"]).exit_code == 0
    (tmp_path / "old.csv").write_text(f"email,reason\n{address(1)},bounced\nnope,\n", encoding="utf-8")
    imported = runner.invoke(app, ["suppress", "import", "old.csv", "--format", "json"])
    assert imported.exit_code == 0 and json.loads(imported.stdout)["added"] == 1
    listed = json.loads(runner.invoke(app, ["suppress", "list", "--format", "json"]).stdout)
    assert {(r["email"], r["reason"]) for r in listed} == {
        (address(0), "complained"),
        (address(1), "bounced"),
    }
    # The audience funnel reads the operational store's list.
    funnel = runner.invoke(
        app, ["campaign", "audience", str(campaign), "--as-of", "2026-09-01", "--format", "json"]
    )
    steps = {s["step"]: s["removed"] for s in json.loads(funnel.stdout)["funnels"][0]["steps"]}
    assert steps["not suppressed"] == 2
    assert runner.invoke(app, ["suppress", "remove", address(1)]).exit_code == 0
    sent = runner.invoke(app, ["campaign", "send", str(campaign), "--yes", "--format", "json", *NOW])
    assert json.loads(sent.stdout)["sent"] == 3  # everyone but the complaint
    eml = next(p for p in (tmp_path / "outbox").glob("*.eml") if address(2).encode() in p.read_bytes())
    from email import message_from_bytes, policy

    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    link = next(u.strip("<> ") for u in message["List-Unsubscribe"].split(",") if "https://" in u)
    forged = runner.invoke(app, ["unsubscribe", link.replace(customer_id(2), customer_id(3))])
    assert forged.exit_code == 1 and "forged or altered" in forged.stderr
    assert runner.invoke(app, ["unsubscribe", link]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["suppress", "list", "--format", "json"]).stdout)
    assert (address(2), "unsubscribed") in {(r["email"], r["reason"]) for r in listed}


def _everything(db: Path, outbox: Path) -> list[str]:
    """Every text cell of every table of both stores, and every outbox file's bytes."""
    import duckdb

    cells: list[str] = []
    con = duckdb.connect(str(db), read_only=True)
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()
    for (table,) in tables:
        for row in con.execute(f'SELECT * FROM "{table}"').fetchall():
            cells += [str(v) for v in row if v is not None]
    con.close()
    with OpsStore(ops_path(db)) as ops:
        for table in ops.tables():
            for row in ops.execute(f'SELECT * FROM "{table}"').fetchall():
                cells += [str(v) for v in row if v is not None]
    cells += [p.read_bytes().decode("utf-8", "replace") for p in outbox.rglob("*") if p.is_file()]
    return cells


def test_forget_leaves_no_trace_and_a_reimport_is_never_mailed(
    tmp_path: Path, shop: tuple[Path, Path]
) -> None:
    db, campaign = shop
    make_shop(db, 5, extra=[("ZK9", "Zoe.Kaur@Example.com", "Zoë")])
    write_config(tmp_path, None)
    runner = CliRunner()
    assert runner.invoke(app, ["campaign", "send", str(campaign), "--yes", *NOW]).exit_code == 0
    (tmp_path / "qa.csv").write_text("email\nqa@tienda.example\n", encoding="utf-8")
    test = runner.invoke(
        app, ["campaign", "send", str(campaign), "--test-csv", "qa.csv", "--customer", "ZK9", *NOW]
    )
    assert test.exit_code == 0, test.output
    exported = runner.invoke(app, ["customers", "export", "ZK9"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.stdout)
    assert data["profile"]["email"] == "Zoe.Kaur@Example.com"
    assert {r["kind"] for r in data["ledger"]} == {"campaign", "test"}
    needles = ["zoe.kaur@example.com", "ZK9", "Zoë Núñez"]
    assert any(n.lower() in c.lower() for c in _everything(db, tmp_path / "outbox") for n in needles)

    forgot = runner.invoke(app, ["customers", "forget", "ZK9", "--yes", "--format", "json"])
    assert forgot.exit_code == 0, forgot.output
    assert json.loads(forgot.stdout)["outbox_files"] == 2  # the campaign message and the test message
    leftovers = [c for c in _everything(db, tmp_path / "outbox") for n in needles if n.lower() in c.lower()]
    assert leftovers == []
    with OpsStore(ops_path(db)) as ops:
        assert ops.scalar("SELECT count(*) FROM ledger WHERE email IS NULL") == 2  # anonymous counts remain
        assert ops.scalar("SELECT reason FROM suppressions WHERE email IS NULL") == "erased"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 5

    # Re-imported, the customer is never mailed again (a new campaign too).
    (tmp_path / "customers.csv").write_text(
        "customer_id,email,first_name,email_consent\nZK9,zoe.kaur@example.com,Zoë,true\n", encoding="utf-8"
    )
    ingested = runner.invoke(app, ["ingest", "customers", "customers.csv"])
    assert ingested.exit_code == 0, ingested.output
    other = write_campaign(
        tmp_path / "other",
        body=(tmp_path / "campaigns" / "rebajas.yaml").read_text().replace("Rebajas de otoño", "Navidad"),
    )
    again = runner.invoke(app, ["campaign", "send", str(other), "--yes", "--format", "json", *NOW])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["sent"] == 5
    assert not any(b"zoe.kaur" in p.read_bytes().lower() for p in (tmp_path / "outbox").glob("*.eml"))
