"""The send engine against a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS with a private CA) and the
real outbox: each address once, retries, bounces, suppression at send time, header injection, resume."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from pleasepoint_cli.config import Settings
from pleasepoint_cli.delivery.send import CampaignSend, SendSummary, send_test
from pleasepoint_cli.delivery.unsubscribe import record_unsubscribe
from pleasepoint_cli.errors import InputDataError
from pleasepoint_cli.keys import signing_secret
from pleasepoint_cli.ops import OpsStore, ops_path
from pleasepoint_cli.ops.suppression import add_suppression, is_suppressed
from send_data import NOW, address, customer_id, make_shop, smtp_settings, write_campaign
from smtp_server import LocalServer, running_server


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_server(tmp_path / "smtp", tls=True) as local:
        yield local


def send(db: Path, campaign: Path, settings: Settings, **options: object) -> SendSummary:
    limit = options.pop("limit", None)
    retry = bool(options.pop("retry_uncertain", False))
    with CampaignSend(db, campaign, settings, now=NOW, lock_timeout=5, base_dir=db.parent, **options) as run:  # type: ignore[arg-type]
        plan = run.plan()
        run.queue(plan, retry_uncertain=retry)
        return run.run(limit=limit)  # type: ignore[arg-type]


def recipients(server: LocalServer) -> Counter[str]:
    return Counter(r for m in server.messages for r in m.rcpt_tos)


def ledger_status(db: Path) -> dict[str, str]:
    with OpsStore(ops_path(db)) as ops:
        return {r["customer_id"]: r["status"] for r in ops.rows("SELECT customer_id, status FROM ledger")}


def test_a_send_over_starttls_mails_each_address_once_with_every_header(
    server: LocalServer, db_path: Path, tmp_path: Path
) -> None:
    make_shop(db_path, 12)
    campaign = write_campaign(tmp_path)
    summary = send(db_path, campaign, smtp_settings(server))
    assert (summary.run.sent, summary.run.failed, summary.uncertain) == (12, 0, 0)
    assert recipients(server) == Counter({address(i): 1 for i in range(12)})
    secret = signing_secret(db_path)
    with OpsStore(ops_path(db_path)) as ops:
        rows = {r["send_id"]: r for r in ops.rows("SELECT * FROM ledger")}
        for received in server.messages:
            message = message_from_bytes(received.data, policy=policy.default)
            for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
                assert message[header], header
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert message.get_content_type() == "multipart/alternative"
            assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
            row = rows[message["X-Pleasepoint-Send-Id"]]
            assert (row["status"], row["email"], row["message_id"]) == (
                "sent",
                message["To"].addresses[0].addr_spec,
                message["Message-ID"],
            )
            assert "las rebajas de otoño" in message["Subject"]
            https = next(u.strip("<> ") for u in message["List-Unsubscribe"].split(",") if "https://" in u)
            forged = https.replace(
                f"c={row['customer_id']}", "c=C0000" if row["customer_id"] != "C0000" else "c=C0001"
            )
            with pytest.raises(InputDataError, match="forged or altered"):
                record_unsubscribe(ops, secret, forged, now=NOW)
        # The first message's one-click link really unsubscribes its recipient.
        first = message_from_bytes(server.messages[0].data, policy=policy.default)
        link = next(u.strip("<> ") for u in first["List-Unsubscribe"].split(",") if "https://" in u)
        result = record_unsubscribe(ops, secret, link, now=NOW)
        assert result.added and is_suppressed(ops, first["To"].addresses[0].addr_spec)
    # A rerun sends nothing: every row is settled.
    again = send(db_path, campaign, smtp_settings(server))
    assert again.run.sent == 0 and len(server.messages) == 12


def test_451_is_retried_and_550_bounces_one_row_and_suppresses_it_while_the_rest_go(
    server: LocalServer, db_path: Path, tmp_path: Path
) -> None:
    make_shop(db_path, 8)
    campaign = write_campaign(tmp_path)
    server.handler.tempfail[address(2)] = 1
    server.handler.reject.add(address(5))
    summary = send(db_path, campaign, smtp_settings(server))
    assert (summary.run.sent, summary.run.bounced, summary.run.failed) == (7, 1, 0)
    assert server.handler.rcpt_attempts[address(2)] == 2
    assert recipients(server) == Counter({address(i): 1 for i in range(8) if i != 5})
    statuses = ledger_status(db_path)
    assert statuses[customer_id(5)] == "bounced" and statuses[customer_id(2)] == "sent"
    with OpsStore(ops_path(db_path)) as ops:
        assert is_suppressed(ops, address(5))
        (error,) = ops.execute("SELECT error FROM ledger WHERE customer_id = ?", [customer_id(5)]).fetchone()
        assert error.startswith("550")
    # Mautic 7226: the rejected recipient does not make the next run resend the batch.
    server.handler.reject.clear()
    assert send(db_path, campaign, smtp_settings(server)).run.sent == 0
    assert len(server.messages) == 7


def test_an_address_suppressed_after_planning_is_skipped_at_send_time(
    server: LocalServer, db_path: Path, tmp_path: Path
) -> None:
    make_shop(db_path, 6)
    campaign = write_campaign(tmp_path)
    with CampaignSend(db_path, campaign, smtp_settings(server), now=NOW, base_dir=tmp_path) as run:
        run.queue(run.plan())
        with OpsStore(ops_path(db_path)) as ops:
            add_suppression(ops, address(3).upper(), "complained", source="test", now=NOW)
        summary = run.run()
    assert (summary.run.sent, summary.run.suppressed) == (5, 1)
    assert address(3) not in recipients(server)
    assert ledger_status(db_path)[customer_id(3)] == "suppressed"


def test_header_injection_from_customer_data_fails_that_row_and_never_reaches_the_server(
    server: LocalServer, db_path: Path, tmp_path: Path
) -> None:
    make_shop(
        db_path,
        4,
        extra=[
            ("X1", "x1@example.com", "Eve\r\nBcc: victim@evil.test"),
            ("X2", "x2@example.com", "=?UTF-8?Q?Eve=0D=0ABcc:_victim@evil.test?="),
            ("X3", "x3@example.com", "Eve\nX-Injected: yes"),
        ],
    )
    campaign = write_campaign(tmp_path)
    summary = send(db_path, campaign, smtp_settings(server))
    assert summary.run.sent == 4
    assert summary.run.failed == 3
    assert {e["customer_id"] for e in summary.run.errors} == {"X1", "X2", "X3"}
    statuses = ledger_status(db_path)
    assert [statuses[c] for c in ("X1", "X2", "X3")] == ["failed"] * 3
    everything = b"".join(m.data for m in server.messages).lower()
    assert b"victim@evil.test" not in everything and b"x-injected" not in everything
    assert all(r.endswith("@example.com") and not r.startswith("x") for r in recipients(server))


def test_a_limited_run_then_a_rerun_continue_where_it_stopped(
    server: LocalServer, db_path: Path, tmp_path: Path
) -> None:
    make_shop(db_path, 10)
    campaign = write_campaign(tmp_path)
    assert send(db_path, campaign, smtp_settings(server), limit=4).run.sent == 4
    assert Counter(ledger_status(db_path).values()) == {"sent": 4, "queued": 6}
    assert send(db_path, campaign, smtp_settings(server)).run.sent == 6
    assert recipients(server) == Counter({address(i): 1 for i in range(10)})


def test_the_outbox_holds_one_file_per_row_and_a_rerun_writes_none(db_path: Path, tmp_path: Path) -> None:
    make_shop(db_path, 5)
    campaign = write_campaign(tmp_path)
    settings = Settings()
    assert send(db_path, campaign, settings).run.sent == 5
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 5
    with OpsStore(ops_path(db_path)) as ops:
        send_ids = {r[0] for r in ops.execute("SELECT send_id FROM ledger").fetchall()}
    assert {f.stem for f in files} == send_ids
    before = {f: f.stat().st_mtime_ns for f in files}
    # Even a row forced back to the queue (as --retry-uncertain does) never writes a second file.
    with OpsStore(ops_path(db_path)) as ops:
        ops.execute("UPDATE ledger SET status = 'uncertain'")
    assert send(db_path, campaign, settings, retry_uncertain=True).run.sent == 5
    assert {f: f.stat().st_mtime_ns for f in sorted((tmp_path / "outbox").glob("*.eml"))} == before


def test_a_test_send_goes_to_the_csv_addresses_apart_from_the_campaigns_ledger(
    server: LocalServer, db_path: Path, tmp_path: Path
) -> None:
    make_shop(db_path, 5)
    campaign = write_campaign(tmp_path)
    settings = smtp_settings(server)
    summary = send_test(
        db_path, campaign, settings, ["qa@tienda.example", "jefa@tienda.example"], now=NOW, base_dir=tmp_path
    )
    assert summary.run.sent == 2
    assert recipients(server) == Counter({"qa@tienda.example": 1, "jefa@tienda.example": 1})
    subjects = {str(message_from_bytes(m.data, policy=policy.default)["Subject"]) for m in server.messages}
    assert subjects == {"[TEST] Nombre0, las rebajas de otoño"}
    # The real send is neither counted nor blocked by it: all five customers get theirs.
    assert send(db_path, campaign, settings).run.sent == 5
    again = send_test(
        db_path, campaign, settings, ["qa@tienda.example"], now=NOW, customer="C0003", base_dir=tmp_path
    )
    assert again.run.sent == 1
    last = message_from_bytes(server.messages[-1].data, policy=policy.default)
    assert str(last["Subject"]) == "[TEST] Nombre3, las rebajas de otoño"
