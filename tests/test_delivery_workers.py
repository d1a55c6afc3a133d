"""Rendering and MIME building in worker processes (delivery/workers.py): the bytes are the ones the sending
process would have built, sends through the workers keep every guarantee of the engine (each address once,
injection refused, suppression at send time), the tick uses them too, and a worker never outlives a killed
sending process."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from automate_data import FileTransport, delivered, make_customers, schedule_automation, write_automation
from pleasepoint_cli.campaign.model import load_campaign
from pleasepoint_cli.campaign.prepare import prepare_campaign
from pleasepoint_cli.config import Settings
from pleasepoint_cli.delivery.dkim import load_key
from pleasepoint_cli.delivery.message import MessageBuilder
from pleasepoint_cli.delivery.send import CampaignSend, SendSummary
from pleasepoint_cli.delivery.workers import WORKERS_ENV, worker_count
from pleasepoint_cli.ops import OpsStore, ops_path
from pleasepoint_cli.ops.suppression import add_suppression
from pleasepoint_cli.store import open_store
from send_data import NOW, address, customer_id, make_shop, smtp_settings, write_campaign
from smtp_server import running_server

TRACKED = Settings.model_validate(
    {
        "tracking": {"base_url": "https://t.tienda.example"},
        "delivery": {"unsubscribe_mailto": "baja@tienda.example", "provider": "sendgrid"},
    }
)


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force worker processes even for a send of a few messages."""
    monkeypatch.setenv(WORKERS_ENV, "2")


def test_a_pickled_renderer_and_builder_make_byte_identical_messages(db_path: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    make_shop(db_path, 3)
    campaign = load_campaign(write_campaign(tmp_path))
    with open_store(db_path) as store:
        prepared = prepare_campaign(store, campaign, TRACKED, NOW.date())
        contexts = prepared.contexts(store, [customer_id(i) for i in range(3)])
        rows = prepared.context_rows(store, [customer_id(i) for i in range(3)])
    context_builder, rows = pickle.loads(pickle.dumps((prepared.builder, rows)))
    assert {c: context_builder.context_of(part) for c, part in rows.parts.items()} == contexts
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    algorithm, key = load_key(pem, "test key")
    from pleasepoint_cli.delivery.dkim import DkimSigner

    builder = MessageBuilder(TRACKED, DkimSigner("tienda.example", "s1", algorithm, key))
    renderer, builder_copy = pickle.loads(pickle.dumps((prepared.renderer, builder)))
    for i in range(3):
        context = contexts[customer_id(i)]
        email = prepared.render(context, 0, f"id{i}")
        assert email == renderer.render(context, 0, f"id{i}")
        assert "https://t.tienda.example/" in email.html  # links tracked
        here = builder.build(email, send_id=f"id{i}", date=NOW)
        assert here.startswith(b"DKIM-Signature:")
        assert here == builder_copy.build(email, send_id=f"id{i}", date=NOW)


def send(db: Path, campaign: Path, settings: Settings) -> SendSummary:
    with CampaignSend(db, campaign, settings, now=NOW, lock_timeout=5, base_dir=db.parent) as run:
        run.queue(run.plan())
        with OpsStore(ops_path(db)) as ops:  # suppressed after planning: caught by the claim
            add_suppression(ops, address(4), "complained", source="test", now=NOW)
        return run.run()


def test_a_send_through_worker_processes_mails_each_address_once_and_refuses_injection(
    two_workers: None, db_path: Path, tmp_path: Path
) -> None:
    make_shop(
        db_path,
        30,
        extra=[
            ("X1", "x1@example.com", "Eve\r\nBcc: victim@evil.test"),
            ("X2", "x2@example.com", "=?UTF-8?Q?Eve=0D=0ABcc:_victim@evil.test?="),
        ],
    )
    campaign = write_campaign(tmp_path)
    with running_server(tmp_path / "smtp", tls=True) as server:
        server.handler.pipelining = True  # as Postfix announces it
        server.handler.reject.add(address(7))
        summary = send(db_path, campaign, smtp_settings(server, connections=3))
        received = list(server.messages)
    assert (summary.run.sent, summary.run.bounced, summary.run.failed, summary.run.suppressed) == (
        28,
        1,
        2,
        1,
    )
    assert Counter(r for m in received for r in m.rcpt_tos) == Counter(
        {address(i): 1 for i in range(30) if i not in (4, 7)}
    )
    everything = b"".join(m.data for m in received).lower()
    assert b"victim@evil.test" not in everything
    with OpsStore(ops_path(db_path)) as ops:
        rows = {r["send_id"]: r for r in ops.rows("SELECT * FROM ledger")}
    assert Counter(r["status"] for r in rows.values()) == {
        "sent": 28,
        "bounced": 1,
        "failed": 2,
        "suppressed": 1,
    }
    for m in received:
        message = message_from_bytes(m.data, policy=policy.default)
        row = rows[message["X-Pleasepoint-Send-Id"]]
        assert row["message_id"] == message["Message-ID"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "las rebajas de otoño" in message["Subject"]


def test_an_automation_tick_renders_in_worker_processes_too(two_workers: None, tmp_path: Path) -> None:
    from pleasepoint_cli.automate.tick import run_tick

    db = tmp_path / "shop.duckdb"
    make_customers(db, 12)
    write_automation(tmp_path, "bienvenida", schedule_automation("bienvenida", "0 9 * * *"))
    now = datetime(2026, 10, 15, 7, 0, tzinfo=UTC) + timedelta(minutes=1)  # 09:01 in Madrid
    report = run_tick(
        db, Settings(), tmp_path / "automations", now=now, transport=FileTransport(tmp_path / "sent")
    )
    assert report.ok, report.as_json()
    assert report.total("sent") == 12
    assert delivered(tmp_path / "sent") == (12, 0)
    first = next((tmp_path / "sent").glob("*.eml")).read_bytes()
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in first  # the real builder, not a stub


def test_the_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert worker_count(10) == 0  # a small send renders in its own process
    assert 1 <= worker_count(50_000) <= 2
    monkeypatch.setenv(WORKERS_ENV, "0")
    assert worker_count(50_000) == 0
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert worker_count(1) == 3


KILLED_PARENT = """
import sys, time
from pleasepoint_cli.campaign.prepare import Renderer
from pleasepoint_cli.config import Settings
from pleasepoint_cli.content.context import ContextBuilder
from pleasepoint_cli.delivery.message import MessageBuilder
from pleasepoint_cli.delivery.workers import MessageWorkers
from datetime import date, datetime, UTC

if __name__ == "__main__":
    workers = MessageWorkers(2, MessageBuilder(Settings()))
    contexts = ContextBuilder(Settings(), date(2026, 1, 1), "c", "C", "", b"k")
    workers.start(Renderer("c", "a@b.example", None, Settings(), b"k", ()), contexts)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    futures = [workers.submit([(f"s{i}", f"C{i}", 0, None)], when) for i in range(4)]
    assert all(f.result()[0].skipped == "no longer in the database" for f in futures)
    print(" ".join(str(pid) for pid in workers._executor._processes), flush=True)
    time.sleep(600)
"""


def test_worker_processes_exit_when_the_sending_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30  # each worker checks its parent twice a second
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
