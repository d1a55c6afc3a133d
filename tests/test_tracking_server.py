"""The tracking server against a real uvicorn on 127.0.0.1 and a real HTTP client (httpx)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

import pleasepoint_cli
from events_data import FIXTURES, MAILGUN_KEY, RECIPIENTS, add_send
from pleasepoint_cli.config import EmailSettings, Settings
from pleasepoint_cli.content.unsubscribe import unsubscribe_url
from pleasepoint_cli.events.signatures import mailgun_signature, sign_sendgrid
from pleasepoint_cli.keys import signing_secret
from pleasepoint_cli.ops.store import OpsStore, open_ops
from pleasepoint_cli.ops.suppression import is_suppressed
from pleasepoint_cli.tracking.links import LinkRef, click_url, pixel_url
from pleasepoint_cli.tracking.server import create_app
from pleasepoint_cli.tracking.settings import SnsWebhook, TrackingSettings

SECRET = "a-test-signing-secret-of-forty-characters!"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:pleasepoint-ses-events"
SNS_AUTH = "sns-user:sns-password"
BASE = "https://tienda.example/t"
DESTINATION = "https://tienda.example/ofertas?utm_source=email"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    url: str
    db: Path
    ops: OpsStore
    secret: bytes
    sendgrid_key: object

    def count(self, table: str) -> int:
        return int(self.ops.scalar(f"SELECT count(*) FROM {table}"))


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("PLEASEPOINT_SECRET", SECRET)
    monkeypatch.setenv("PLEASEPOINT_SENDGRID_WEBHOOK_KEY", base64.b64encode(public_der).decode())
    monkeypatch.setenv("PLEASEPOINT_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    monkeypatch.setenv("PLEASEPOINT_SNS_BASIC_AUTH", SNS_AUTH)
    db = tmp_path / "shop.duckdb"
    ops = open_ops(db)
    for send_id, (customer, email) in RECIPIENTS.items():
        add_send(ops, send_id, customer, email)
    settings = Settings(
        email=EmailSettings(unsubscribe_base_url="https://tienda.example/baja"),
        tracking=TrackingSettings(base_url=BASE, sns=SnsWebhook(topic_arns=[TOPIC])),
    )
    server_ops = open_ops(db)  # the server's own connection, as in its own process
    app = create_app(server_ops, signing_secret(db), settings)
    port = free_port()
    uv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", db, ops, signing_secret(db), private)
    finally:
        uv.should_exit = True
        thread.join(10)
        server_ops.close()
        ops.close()


def local(url: str, running: Running) -> str:
    """A public link as the reverse proxy hands it to the server (same path and query)."""
    for public in ("https://tienda.example/t", "https://tienda.example"):
        if url.startswith(public):
            return running.url + url[len(public) :]
    raise AssertionError(url)


def unsubscribe_link(running: Running, customer: str) -> str:
    return local(
        unsubscribe_url("https://tienda.example/baja", running.secret, customer, "primavera"), running
    )


def test_one_click_post_in_both_encodings_suppresses_with_200_and_no_redirect(server: Running) -> None:
    with httpx.Client(follow_redirects=False) as client:
        form = client.post(unsubscribe_link(server, "C1"), data={"List-Unsubscribe": "One-Click"})
        multipart = client.post(
            unsubscribe_link(server, "C2"), files={"List-Unsubscribe": (None, "One-Click")}
        )
    for response in (form, multipart):
        assert response.status_code == 200
        assert "location" not in response.headers
    assert is_suppressed(server.ops, "ana@example.com") and is_suppressed(server.ops, "luis@example.com")
    assert not is_suppressed(server.ops, "eva@example.com")
    rows = server.ops.rows("SELECT send_id, kind FROM events ORDER BY send_id")
    assert rows == [{"send_id": "S1", "kind": "unsubscribe"}, {"send_id": "S2", "kind": "unsubscribe"}]


def test_get_shows_a_confirm_page_and_get_and_head_change_nothing(server: Running) -> None:
    link = unsubscribe_link(server, "C1")
    with httpx.Client(follow_redirects=False) as client:
        page = client.get(link)
        head = client.head(link)
        also = client.get(
            link.replace(server.url, server.url + "/unsubscribe", 1).replace(
                "/unsubscribe/baja", "/unsubscribe"
            )
        )
    assert page.status_code == 200 and head.status_code == 200 and also.status_code == 200
    assert 'method="post"' in page.text and "List-Unsubscribe" in page.text and "One-Click" in page.text
    assert server.count("suppressions") == 0 and server.count("events") == 0
    # The confirm page's own button: the same URL, POSTed, with its hidden field.
    with httpx.Client(follow_redirects=False) as client:
        confirmed = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert confirmed.status_code == 200 and is_suppressed(server.ops, "ana@example.com")


def test_a_forged_or_incomplete_unsubscribe_is_refused_and_stores_nothing(server: Running) -> None:
    link = unsubscribe_link(server, "C1")
    forged = link.replace("c=C1", "c=C3")
    with httpx.Client(follow_redirects=False) as client:
        responses = [
            client.post(forged, data={"List-Unsubscribe": "One-Click"}),
            client.post(link.split("&t=")[0], data={"List-Unsubscribe": "One-Click"}),
            client.post(link, data={"something": "else"}),
        ]
    assert [r.status_code for r in responses] == [403, 400, 400]
    assert server.count("suppressions") == 0 and server.count("events") == 0


def test_click_redirects_to_the_signed_url_and_an_altered_or_unsigned_one_gets_400(server: Running) -> None:
    link = local(click_url(BASE, server.secret, LinkRef(send_id="S1"), DESTINATION), server)
    altered = link.replace("ofertas", "evil.example%2F")
    other_customer = link.replace("s=S1", "s=S2")
    unsigned = link.split("&t=")[0]
    elsewhere = link.replace("u=https%3A%2F%2Ftienda.example", "u=https%3A%2F%2Fevil.example")
    with httpx.Client(follow_redirects=False) as client:
        ok = client.get(link)
        refused = [client.get(u) for u in (altered, other_customer, unsigned, elsewhere)]
    assert ok.status_code == 302 and ok.headers["location"] == DESTINATION
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    assert all("location" not in r.headers for r in refused)
    assert server.ops.rows("SELECT send_id, kind, url FROM events") == [
        {"send_id": "S1", "kind": "click", "url": DESTINATION}
    ]


def test_the_pixel_records_opens_and_keeps_privacy_proxy_loads_apart(server: Running) -> None:
    link = local(pixel_url(BASE, server.secret, LinkRef(source="primavera", customer_id="C2")), server)
    with httpx.Client() as client:
        person = client.get(
            link, headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/125.0"}
        )
        proxy = client.get(link, headers={"User-Agent": "Mozilla/5.0"})
        head = client.head(link)
        forged = client.get(link.replace("c=C2", "c=C1"))
    assert person.status_code == proxy.status_code == head.status_code == 200
    assert person.headers["content-type"] == "image/gif" and person.content.startswith(b"GIF89a")
    assert forged.status_code == 400
    rows = server.ops.rows("SELECT send_id, kind, subkind FROM events ORDER BY subkind")
    assert rows == [
        {"send_id": "S2", "kind": "open", "subkind": ""},
        {"send_id": "S2", "kind": "open", "subkind": "machine"},
    ]


def test_sendgrid_webhook_verifies_the_ecdsa_signature(server: Running) -> None:
    body = FIXTURES["sendgrid"].read_bytes()
    stamp = str(int(datetime.now(UTC).timestamp()))
    good = sign_sendgrid(server.sendgrid_key, body, stamp)
    headers = {"X-Twilio-Email-Event-Webhook-Timestamp": stamp, "Content-Type": "application/json"}
    with httpx.Client() as client:
        bad = [
            client.post(
                f"{server.url}/webhooks/sendgrid",
                content=body + b" ",
                headers={**headers, "X-Twilio-Email-Event-Webhook-Signature": good},
            ),
            client.post(f"{server.url}/webhooks/sendgrid", content=body, headers=headers),
            client.post(
                f"{server.url}/webhooks/sendgrid",
                content=body,
                headers={
                    **headers,
                    "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(
                        server.sendgrid_key, body, "1500000000"
                    ),
                    "X-Twilio-Email-Event-Webhook-Timestamp": "1500000000",
                },
            ),
        ]
        assert [r.status_code for r in bad] == [403, 403, 403]
        assert server.count("events") == 0
        ok = client.post(
            f"{server.url}/webhooks/sendgrid",
            content=body,
            headers={**headers, "X-Twilio-Email-Event-Webhook-Signature": good},
        )
    assert ok.status_code == 200
    assert server.count("events") == 12
    assert is_suppressed(server.ops, "eva@example.com") and not is_suppressed(server.ops, "ines@example.com")


def _mailgun_payload(stamp: int, token: str, key: str = MAILGUN_KEY) -> dict[str, object]:
    payload = json.loads(FIXTURES["mailgun"].read_text(encoding="utf-8").splitlines()[2])  # an open of S1
    payload["signature"] = {
        "timestamp": str(stamp),
        "token": token,
        "signature": mailgun_signature(key, str(stamp), token),
    }
    return payload


def test_mailgun_webhook_refuses_bad_stale_and_reused_signatures(server: Running) -> None:
    now = int(datetime.now(UTC).timestamp())
    url = f"{server.url}/webhooks/mailgun"
    with httpx.Client() as client:
        wrong_key = client.post(url, json=_mailgun_payload(now, "t" * 50, key="another-key"))
        stale = client.post(url, json=_mailgun_payload(now - 3600, "s" * 50))
        assert (wrong_key.status_code, stale.status_code) == (403, 403)
        assert server.count("events") == 0
        fresh = client.post(url, json=_mailgun_payload(now, "f" * 50))
        replay = client.post(url, json=_mailgun_payload(now, "f" * 50))
    assert (fresh.status_code, replay.status_code) == (200, 403)
    assert server.ops.rows("SELECT send_id, kind FROM events") == [{"send_id": "S1", "kind": "open"}]


def test_sns_webhook_needs_basic_auth_and_a_configured_topic(server: Running) -> None:
    envelopes = json.loads(FIXTURES["ses"].read_text(encoding="utf-8"))
    bounce = envelopes[6]  # S3's permanent bounce (a feedback notification)
    url = f"{server.url}/webhooks/ses"
    auth = httpx.BasicAuth(*SNS_AUTH.split(":"))
    with httpx.Client() as client:
        anonymous = client.post(url, content=json.dumps(bounce), headers={"Content-Type": "text/plain"})
        wrong = client.post(url, content=json.dumps(bounce), auth=httpx.BasicAuth("sns-user", "nope"))
        other_topic = client.post(
            url, content=json.dumps({**bounce, "TopicArn": TOPIC + "-other"}), auth=auth
        )
        assert (anonymous.status_code, wrong.status_code, other_topic.status_code) == (401, 401, 403)
        assert anonymous.headers["www-authenticate"].startswith("Basic")
        assert server.count("events") == 0
        ok = client.post(url, content=json.dumps(bounce), auth=auth)
    assert ok.status_code == 200
    assert is_suppressed(server.ops, "eva@example.com")


def test_while_an_analyst_holds_the_database_the_server_answers_and_stats_fold_the_hit_in_after(
    server: Running, tmp_path: Path
) -> None:
    import duckdb

    from pleasepoint_cli.store import open_store

    with open_store(server.db):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(server.db)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(server.db))  # the analyst really holds it
        link = local(click_url(BASE, server.secret, LinkRef(send_id="S5"), DESTINATION), server)
        with httpx.Client(follow_redirects=False, timeout=5) as client:
            assert client.get(link).status_code == 302
            assert (
                client.post(
                    unsubscribe_link(server, "C5"), data={"List-Unsubscribe": "One-Click"}
                ).status_code
                == 200
            )
    finally:
        holder.kill()
        holder.wait()
    stats = subprocess.run(
        [
            sys.executable,
            "-m",
            "pleasepoint_cli",
            "--db",
            str(server.db),
            "stats",
            "--campaign",
            "primavera",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(pleasepoint_cli.__file__).parents[1])},
    )
    counters = json.loads(stats.stdout)["counters"]
    assert (counters["clicks_unique"], counters["unsubscribes"]) == (1, 1)
    with open_store(server.db) as store:
        from pleasepoint_cli.ops.suppression import attach_suppressions

        attach_suppressions(store, server.ops)
        rows = store.con.execute("SELECT email FROM suppressions").fetchall()
    assert rows == [("pepe@example.com",)]
