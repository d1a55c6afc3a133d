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
from send_data import TEMPLATE, address, customer_id, make_shop, write_campaign
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
    # Recorded the way the tracking server records it: an unsubscribe event tied to the message's ledger row.
    with OpsStore(ops_path(db)) as ops:
        events = ops.rows(
            "SELECT e.provider, e.kind, l.customer_id FROM events e JOIN ledger l USING (send_id)"
        )
    assert events == [{"provider": "cli", "kind": "unsubscribe", "customer_id": customer_id(2)}]
    again = runner.invoke(app, ["unsubscribe", link, "--format", "json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["added"] is False


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
    make_shop(db, 5, extra=[("ZK9-OLVIDO", "Zoe.Kaur@Example.com", "Zoë")])
    write_config(tmp_path, None)
    runner = CliRunner()
    assert runner.invoke(app, ["campaign", "send", str(campaign), "--yes", *NOW]).exit_code == 0
    (tmp_path / "qa.csv").write_text("email\nqa@tienda.example\n", encoding="utf-8")
    test = runner.invoke(
        app, ["campaign", "send", str(campaign), "--test-csv", "qa.csv", "--customer", "ZK9-OLVIDO", *NOW]
    )
    assert test.exit_code == 0, test.output
    # Engagement about their message: a provider file (the address percent-encoded in a click URL, which no
    # plain-text scrub would find) and a tracking server hit.
    with OpsStore(ops_path(db)) as ops:
        send_id = ops.scalar(
            "SELECT send_id FROM ledger WHERE customer_id = 'ZK9-OLVIDO' AND kind = 'campaign'"
        )
        other_send = ops.scalar(
            "SELECT send_id FROM ledger WHERE customer_id = ? AND kind = 'campaign'", [customer_id(0)]
        )
        from pleasepoint_cli.tracking.hits import record_hit
        from pleasepoint_cli.tracking.links import LinkRef
        from send_data import NOW as SENT

        assert record_hit(ops, LinkRef(send_id=send_id), "open", now=SENT)
    click_url = "https://tienda.example/perfil?e=zoe.kaur%40example.com"
    events_file = tmp_path / "events.jsonl"
    events_file.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"id": "e1", "event": "delivered", "at": "2026-09-01T10:01:00Z", "send_id": send_id},
                {
                    "id": "e2",
                    "event": "click",
                    "at": "2026-09-01T11:00:00Z",
                    "send_id": send_id,
                    "url": click_url,
                },
                {"id": "e3", "event": "open", "at": "2026-09-01T11:00:00Z", "send_id": other_send},
            ]
        ),
        encoding="utf-8",
    )
    loaded = runner.invoke(app, ["events", "ingest", str(events_file), "--format", "pleasepoint"])
    assert loaded.exit_code == 0, loaded.output
    exported = runner.invoke(app, ["customers", "export", "ZK9-OLVIDO"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.stdout)
    assert data["profile"]["email"] == "Zoe.Kaur@Example.com"
    assert {r["kind"] for r in data["ledger"]} == {"campaign", "test"}
    assert sorted(e["kind"] for e in data["events"]) == ["click", "delivered", "open"]
    # The id is long enough that no random token (a send id, a signature, a MIME boundary) holds it by chance:
    # "ZK9" alone turned up, case-insensitively, in another customer's message in about one run in six.
    needles = ["zoe.kaur@example.com", "ZK9-OLVIDO", "Zoë Núñez"]
    assert any(n.lower() in c.lower() for c in _everything(db, tmp_path / "outbox") for n in needles)

    forgot = runner.invoke(app, ["customers", "forget", "ZK9-OLVIDO", "--yes", "--format", "json"])
    assert forgot.exit_code == 0, forgot.output
    assert json.loads(forgot.stdout)["outbox_files"] == 2  # the campaign message and the test message
    leftovers = [c for c in _everything(db, tmp_path / "outbox") for n in needles if n.lower() in c.lower()]
    assert leftovers == []
    with OpsStore(ops_path(db)) as ops:
        assert ops.scalar("SELECT count(*) FROM ledger WHERE email IS NULL") == 2  # anonymous counts remain
        assert ops.scalar("SELECT reason FROM suppressions WHERE email IS NULL") == "erased"
        erased_hash = ops.scalar("SELECT email_sha256 FROM suppressions WHERE email IS NULL")
        events = ops.rows("SELECT * FROM events ORDER BY event_id")
    assert len(events) == 4  # the counts stay; nothing left in them names the person
    theirs = [e for e in events if e["send_id"] == send_id]
    assert len(theirs) == 3 and all(e["raw"] is None and e["url"] is None for e in theirs)
    cells = [str(v).lower() for e in events for v in e.values() if v is not None]
    assert not any("zoe" in c or "kaur" in c or "zk9" in c or c == erased_hash for c in cells)
    assert [e["kind"] for e in events if e["send_id"] == other_send] == ["open"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 5

    # Re-imported, the customer is never mailed again (a new campaign too).
    (tmp_path / "customers.csv").write_text(
        "customer_id,email,first_name,email_consent\nZK9-OLVIDO,zoe.kaur@example.com,Zoë,true\n",
        encoding="utf-8",
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


def test_the_global_marketing_cap_holds_back_campaign_sends(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    db, campaign = shop
    make_shop(db, 2)
    config = write_config(tmp_path, None)
    config.write_text(config.read_text() + "marketing:\n  global_cap: 1/week\n", encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["campaign", "send", str(campaign), "--yes", "--format", "json", *NOW])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["sent"] == 2
    make_shop(db, 0, extra=[(customer_id(2), address(2), "Ana"), (customer_id(3), address(3), "Eva")])
    body = campaign.read_text(encoding="utf-8")
    other = write_campaign(tmp_path / "other", body=body.replace("Rebajas de otoño", "Navidad"))
    noon = ["--now", "2026-09-01T12:00"]
    dry = runner.invoke(app, ["campaign", "send", str(other), "--dry-run", "--format", "json", *noon])
    assert json.loads(dry.stdout)["capped"] == 2 and json.loads(dry.stdout)["would_send"] == 2
    second = runner.invoke(app, ["campaign", "send", str(other), "--yes", "--format", "json", *noon])
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert (summary["sent"], summary["capped"]) == (2, 2)
    with OpsStore(ops_path(db)) as ops:
        capped = ops.rows(
            "SELECT customer_id, error FROM ledger WHERE source = 'navidad' AND status = 'capped'"
        )
    assert {(r["customer_id"], r["error"]) for r in capped} == {
        (customer_id(0), "global marketing cap"),
        (customer_id(1), "global marketing cap"),
    }
    table = runner.invoke(app, ["campaign", "status", str(other), "--format", "json"])
    assert json.loads(table.stdout)["counts"]["capped"] == 2
    # A week later the window has passed: a third campaign goes to everyone.
    third = write_campaign(tmp_path / "third", body=body.replace("Rebajas de otoño", "Reyes"))
    later = runner.invoke(
        app, ["campaign", "send", str(third), "--yes", "--format", "json", "--now", "2026-09-08T11:00"]
    )
    assert (json.loads(later.stdout)["sent"], json.loads(later.stdout)["capped"]) == (4, 0)
    assert Counter(m.name for m in (tmp_path / "outbox").glob("*.eml")).total() == 8


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_tracked_send_names_each_message_by_its_send_id(tmp_path: Path, shop: tuple[Path, Path]) -> None:
    import html as html_lib
    import re
    from email import message_from_bytes, policy
    from urllib.parse import parse_qs, urlsplit

    from starlette.testclient import TestClient

    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.keys import signing_secret
    from pleasepoint_cli.tracking.server import create_app
    from pleasepoint_cli.tracking.settings import TrackingSettings

    db, _ = shop
    template = TEMPLATE.replace(
        '<mj-text><a href="{{ unsubscribe_url }}">',
        '<mj-text><a href="https://tienda.example/otono?x=1">Ver ofertas</a></mj-text>\n'
        '      <mj-text><a href="{{ unsubscribe_url }}">',
    )
    campaign = write_campaign(tmp_path, template=template)
    make_shop(db, 3)
    config = write_config(tmp_path, None)
    config.write_text(
        config.read_text() + "tracking:\n  base_url: https://tienda.example/t\n", encoding="utf-8"
    )
    sent = CliRunner().invoke(app, ["campaign", "send", str(campaign), "--yes", "--format", "json", *NOW])
    assert sent.exit_code == 0, sent.output
    with OpsStore(ops_path(db)) as ops:
        send_ids = {
            r["customer_id"]: r["send_id"] for r in ops.rows("SELECT customer_id, send_id FROM ledger")
        }
    eml = next(p for p in (tmp_path / "outbox").glob("*.eml") if address(1).encode() in p.read_bytes())
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    body = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    hrefs = [html_lib.unescape(h) for h in re.findall(r'href="([^"]+)"', body)]
    click = next(h for h in hrefs if h.startswith("https://tienda.example/t/"))
    query = parse_qs(urlsplit(click).query)
    assert query["s"] == [send_ids[customer_id(1)]] and query["u"] == ["https://tienda.example/otono?x=1"]
    pixel = next(html_lib.unescape(s) for s in re.findall(r'<img src="([^"]+)"', body) if "/t/" in s)
    assert parse_qs(urlsplit(pixel).query)["s"] == [send_ids[customer_id(1)]]

    # The tracking server checks the signature and records the click against that very message.
    settings = Settings(tracking=TrackingSettings(base_url="https://tienda.example/t"))
    with OpsStore(ops_path(db)) as server_ops:
        client = TestClient(create_app(server_ops, signing_secret(db), settings))
        local = click.replace("https://tienda.example/t", "http://testserver", 1)  # as the proxy passes it
        answer = client.get(local, follow_redirects=False)
        assert answer.status_code in (302, 303, 307) and answer.headers["location"] == query["u"][0]
        altered = client.get(local.replace("x%3D1", "x%3D2"), follow_redirects=False)
        assert altered.status_code == 400
        clicks = server_ops.rows("SELECT send_id, url FROM events WHERE kind = 'click'")
    assert clicks == [{"send_id": send_ids[customer_id(1)], "url": "https://tienda.example/otono?x=1"}]
