"""The transports against a real aiosmtpd server on 127.0.0.1 (STARTTLS with a trustme CA): retries,
bounces, drops, the shared rate limit, credentials from the environment; and the outbox folder."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pleasepoint_cli.campaign.prepare import RenderedEmail
from pleasepoint_cli.config import Settings
from pleasepoint_cli.delivery.message import MessageBuilder
from pleasepoint_cli.delivery.outbox import OutboxTransport, write_once
from pleasepoint_cli.delivery.settings import DeliverySettings
from pleasepoint_cli.delivery.smtp import SmtpTransport
from pleasepoint_cli.delivery.transport import RateLimiter, make_transport
from pleasepoint_cli.errors import ConfigError, HeaderInjectionError, TransportError
from smtp_server import LocalServer, free_port, running_server, spawn_server

SENDER = "hola@tienda.example"
DATA = b"From: hola@tienda.example\r\nSubject: prueba\r\n\r\nHola\r\n.una linea con punto\r\n"


@pytest.fixture(params=["one command at a time", "pipelining"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    with running_server(tmp_path) as running:
        running.handler.pipelining = request.param == "pipelining"
        yield running


def smtp_settings(server: LocalServer, **smtp: Any) -> DeliverySettings:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "ca_file": str(server.ca_file) if server.certificates else None,
        "security": "starttls" if server.certificates else "none",
        "retry_backoff": 0,
        "max_retries": 3,
    }
    values.update(smtp)
    return DeliverySettings.model_validate({"transport": "smtp", "smtp": values})


def smtp_transport(server: LocalServer, tmp_path: Path, **smtp: Any) -> SmtpTransport:
    transport = make_transport(smtp_settings(server, **smtp), tmp_path)
    assert isinstance(transport, SmtpTransport)
    return transport


# --- SMTP ------------------------------------------------------------------------------------------------


def test_starttls_with_a_private_ca_and_one_connection_reused(server: LocalServer, tmp_path: Path) -> None:
    transport = smtp_transport(server, tmp_path)
    connection = transport.connect()
    outcomes = [connection.deliver(SENDER, f"c{i}@example.com", DATA, f"s{i}") for i in range(5)]
    assert connection.session is not None
    assert connection.session.has_extn("pipelining") == server.handler.pipelining  # both paths are tested
    connection.close()
    assert [o.status for o in outcomes] == ["sent"] * 5 and all(o.attempts == 1 for o in outcomes)
    assert [m.rcpt_tos for m in server.messages] == [(f"c{i}@example.com",) for i in range(5)]
    assert all(m.tls for m in server.messages)
    assert all(m.mail_from == SENDER for m in server.messages)
    assert server.messages[0].data.replace(b"\r\n", b"\n") == DATA.replace(b"\r\n", b"\n")  # dots unstuffed
    assert connection.opened == 1  # one session for the five messages


def test_a_server_certificate_from_an_unknown_ca_is_refused(server: LocalServer, tmp_path: Path) -> None:
    transport = smtp_transport(server, tmp_path, ca_file=None)  # the system's CAs do not know trustme's
    with pytest.raises(TransportError, match="TLS"):
        transport.connect().deliver(SENDER, "a@example.com", DATA, "s")
    assert server.messages == []


def test_starttls_required_but_not_offered(tmp_path: Path) -> None:
    with running_server(tmp_path, tls=False) as plain:
        transport = smtp_transport(plain, tmp_path, security="starttls")
        with pytest.raises(TransportError, match="STARTTLS"):
            transport.connect().deliver(SENDER, "a@example.com", DATA, "s")
        assert plain.messages == []


def test_implicit_tls(tmp_path: Path) -> None:
    with running_server(tmp_path, implicit_tls=True) as server:
        transport = smtp_transport(server, tmp_path, security="tls")
        outcome = transport.connect().deliver(SENDER, "a@example.com", DATA, "s")
        assert outcome.status == "sent"
        assert len(server.messages) == 1


def test_451_is_retried_with_backoff_then_sent(server: LocalServer, tmp_path: Path) -> None:
    server.handler.tempfail["slow@example.com"] = 2
    transport = smtp_transport(server, tmp_path, retry_backoff=0.5)
    waits: list[float] = []
    transport.sleep = waits.append
    outcome = transport.connect().deliver(SENDER, "slow@example.com", DATA, "s")
    assert (outcome.status, outcome.code, outcome.attempts) == ("sent", 250, 3)
    assert waits == [0.5, 1.0]  # exponential
    assert server.handler.rcpt_attempts["slow@example.com"] == 3
    assert len(server.messages) == 1


def test_4xx_past_the_retries_fails_the_message(server: LocalServer, tmp_path: Path) -> None:
    server.handler.tempfail["busy@example.com"] = 10
    transport = smtp_transport(server, tmp_path, max_retries=2)
    connection = transport.connect()
    outcome = connection.deliver(SENDER, "busy@example.com", DATA, "s")
    assert (outcome.status, outcome.code, outcome.attempts, outcome.uncertain) == ("failed", 451, 3, False)
    assert connection.deliver(SENDER, "ok@example.com", DATA, "t").status == "sent"
    assert [m.rcpt_tos for m in server.messages] == [("ok@example.com",)]


def test_550_bounces_that_recipient_only(server: LocalServer, tmp_path: Path) -> None:
    server.handler.reject.add("gone@example.com")
    connection = smtp_transport(server, tmp_path).connect()
    batch = ["a@example.com", "gone@example.com", "b@example.com"]
    outcomes = {rcpt: connection.deliver(SENDER, rcpt, DATA, rcpt.split("@")[0]) for rcpt in batch}
    assert outcomes["gone@example.com"].status == "bounced"
    assert outcomes["gone@example.com"].code == 550
    assert "no such mailbox" in outcomes["gone@example.com"].detail
    assert outcomes["gone@example.com"].attempts == 1  # a 5xx is never retried
    assert [outcomes[r].status for r in ("a@example.com", "b@example.com")] == ["sent", "sent"]
    assert [m.rcpt_tos for m in server.messages] == [("a@example.com",), ("b@example.com",)]


def test_a_refused_message_fails_without_bouncing_the_address(server: LocalServer, tmp_path: Path) -> None:
    server.handler.reject_data.add("spam@example.com")
    connection = smtp_transport(server, tmp_path).connect()
    outcome = connection.deliver(SENDER, "spam@example.com", DATA, "s")
    assert (outcome.status, outcome.code, outcome.attempts) == ("failed", 554, 1)
    assert connection.deliver(SENDER, "ok@example.com", DATA, "t").status == "sent"
    assert [m.rcpt_tos for m in server.messages] == [("ok@example.com",)]


def test_an_envelope_address_cannot_inject_a_command(server: LocalServer, tmp_path: Path) -> None:
    connection = smtp_transport(server, tmp_path).connect()
    for rcpt in ("a@example.com\r\nRCPT TO:<victim@evil.test>", "a@example.com> <victim@evil.test", ""):
        with pytest.raises(HeaderInjectionError):
            connection.deliver(SENDER, rcpt, DATA, "s")
    assert server.handler.rcpt_attempts == {} and server.messages == []


def test_a_dropped_connection_is_reopened_and_the_message_sent_once(
    server: LocalServer, tmp_path: Path
) -> None:
    server.handler.drop["b@example.com"] = 1
    connection = smtp_transport(server, tmp_path).connect()
    first = connection.deliver(SENDER, "a@example.com", DATA, "a")
    second = connection.deliver(SENDER, "b@example.com", DATA, "b")
    third = connection.deliver(SENDER, "c@example.com", DATA, "c")
    assert (first.status, second.status, third.status) == ("sent", "sent", "sent")
    assert second.attempts == 2
    assert connection.opened == 2
    assert [m.rcpt_tos for m in server.messages] == [
        ("a@example.com",),
        ("b@example.com",),
        ("c@example.com",),
    ]


def test_a_drop_after_the_message_was_handed_over_is_uncertain_not_resent(
    server: LocalServer, tmp_path: Path
) -> None:
    server.handler.drop_after_data["b@example.com"] = 1
    connection = smtp_transport(server, tmp_path).connect()
    outcome = connection.deliver(SENDER, "b@example.com", DATA, "b")
    assert (outcome.status, outcome.uncertain, outcome.attempts) == ("failed", True, 1)
    assert "may have been delivered" in outcome.detail
    assert server.handler.rcpt_attempts["b@example.com"] == 1  # not sent a second time
    assert connection.deliver(SENDER, "c@example.com", DATA, "c").status == "sent"  # a new session


def test_an_unreachable_server_stops_the_send(tmp_path: Path) -> None:
    settings = DeliverySettings.model_validate(
        {
            "transport": "smtp",
            "smtp": {
                "host": "127.0.0.1",
                "port": free_port(),
                "security": "none",
                "max_retries": 2,
                "retry_backoff": 0,
            },
        }
    )
    transport = make_transport(settings, tmp_path)
    with pytest.raises(TransportError, match="cannot connect after 3 attempts"):
        transport.connect().deliver(SENDER, "a@example.com", DATA, "s")


def test_credentials_come_only_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_server(tmp_path, credentials=("tienda", "s3cr3t-Ñ")) as server:
        named = {"username_env": "PP_TEST_SMTP_USER", "password_env": "PP_TEST_SMTP_PASSWORD"}
        monkeypatch.delenv("PP_TEST_SMTP_USER", raising=False)
        monkeypatch.delenv("PP_TEST_SMTP_PASSWORD", raising=False)
        with pytest.raises(ConfigError, match="PP_TEST_SMTP_USER, which is not set"):
            smtp_transport(server, tmp_path, **named)

        monkeypatch.setenv("PP_TEST_SMTP_USER", "tienda")
        monkeypatch.setenv("PP_TEST_SMTP_PASSWORD", "wrong")
        with pytest.raises(TransportError, match="login refused") as refused:
            smtp_transport(server, tmp_path, **named).connect().deliver(SENDER, "a@example.com", DATA, "s")
        assert "wrong" not in str(refused.value)

        monkeypatch.setenv("PP_TEST_SMTP_PASSWORD", "s3cr3t-Ñ")
        transport = smtp_transport(server, tmp_path, **named)
        assert transport.connect().deliver(SENDER, "a@example.com", DATA, "s").status == "sent"
        assert "s3cr3t" not in repr(transport) and "s3cr3t" not in transport.name
        assert len(server.messages) == 1

        # Without a login the server refuses the sender: the whole send stops.
        anonymous = smtp_transport(server, tmp_path)
        with pytest.raises(TransportError, match="refuses the sender"):
            anonymous.connect().deliver(SENDER, "b@example.com", DATA, "t")


def test_no_password_over_an_unencrypted_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("U", "u")
    monkeypatch.setenv("P", "p")
    settings = DeliverySettings.model_validate(
        {
            "transport": "smtp",
            "smtp": {"host": "mail.example", "security": "none", "username_env": "U", "password_env": "P"},
        }
    )
    with pytest.raises(ConfigError, match="clear text"):
        make_transport(settings, tmp_path)


# --- the rate limit --------------------------------------------------------------------------------------


def test_rate_limiter_schedule_with_a_fake_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep, record=True)
    for _ in range(3):
        limiter.acquire()
    assert limiter.granted == [100.0, 100.25, 100.5]
    assert slept == [0.25, 0.5]
    now[0] = 200.0  # idle for a while: no burst of saved-up slots, the next grant is now
    limiter.acquire()
    limiter.acquire()
    assert limiter.granted[-2:] == [200.0, 200.25]


def test_rate_limit_holds_across_parallel_connections(server: LocalServer, tmp_path: Path) -> None:
    rate = 50.0
    transport = smtp_transport(server, tmp_path, rate_per_second=rate, connections=3)
    assert transport.limiter is not None
    transport.limiter.record = True
    per_thread = 6

    def worker(index: int) -> None:
        connection = transport.connect()
        for i in range(per_thread):
            assert (
                connection.deliver(SENDER, f"w{index}-{i}@example.com", DATA, f"w{index}_{i}").status
                == "sent"
            )
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = sorted(transport.limiter.granted)
    assert len(granted) == len(server.messages) == 3 * per_thread
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert min(gaps) >= 1 / rate - 1e-9  # one shared schedule, never two slots closer than 1/rate


# --- header injection never reaches the server ----------------------------------------------------------


def test_header_injection_never_reaches_the_server(server: LocalServer, tmp_path: Path) -> None:
    builder = MessageBuilder(Settings())
    connection = smtp_transport(server, tmp_path).connect()
    base = {
        "campaign": "c",
        "variant": "a",
        "customer_id": "C1",
        "from_address": "Tienda <hola@tienda.example>",
        "reply_to": None,
        "preheader": "",
        "html": "<p>Hola</p>",
        "text": "Hola",
        "unsubscribe_url": "https://tienda.example/baja?t=x",
    }
    recipients = [
        {"to": "a@example.com", "to_name": "Ana", "subject": "Hola"},
        {"to": "b@example.com", "to_name": "Bea\r\nBcc: victim@evil.test", "subject": "Hola"},
        {"to": "c@example.com", "to_name": "Carla", "subject": "=?UTF-8?Q?Hi=0D=0ABcc:_victim@evil.test?="},
        {"to": "d@example.com", "to_name": "=?utf-8?q?D=0ABcc:_victim@evil.test?=", "subject": "Hola"},
        {"to": "e@example.com", "to_name": "Eva", "subject": "Hola\nBcc: victim@evil.test"},
        {"to": "f@example.com", "to_name": "Flor", "subject": "Hola"},
    ]
    refused = []
    for i, values in enumerate(recipients):
        email = RenderedEmail(**base, **values)
        try:
            data = builder.build(email, send_id=f"m{i}", date=datetime(2026, 9, 1, tzinfo=UTC))
        except HeaderInjectionError:
            refused.append(values["to"])
            continue
        assert connection.deliver(builder.envelope_from(email), email.to, data, f"m{i}").status == "sent"
    assert refused == ["b@example.com", "c@example.com", "d@example.com", "e@example.com"]
    assert [m.rcpt_tos for m in server.messages] == [("a@example.com",), ("f@example.com",)]
    assert all(b"victim" not in m.data and b"Bcc" not in m.data for m in server.messages)


# --- a server in another process -------------------------------------------------------------------------


def test_a_server_in_another_process_spools_what_it_accepts(tmp_path: Path) -> None:
    with spawn_server(tmp_path, tls=True, reject=("gone@example.com",)) as process:
        settings = DeliverySettings.model_validate(
            {
                "transport": "smtp",
                "smtp": {"host": process.host, "port": process.port, "ca_file": str(process.ca_file)},
            }
        )
        connection = make_transport(settings, tmp_path).connect()
        statuses = [
            connection.deliver(SENDER, r, DATA, "x").status for r in ("a@example.com", "gone@example.com")
        ]
        connection.close()
        assert statuses == ["sent", "bounced"]
        assert process.count() == 1
        (received,) = process.received()
        assert received.rcpt_tos == ("a@example.com",) and b"prueba" in received.data


# --- the outbox ------------------------------------------------------------------------------------------


def test_outbox_writes_one_file_per_send_id_and_never_a_second(tmp_path: Path) -> None:
    transport = make_transport(DeliverySettings(), tmp_path)
    assert isinstance(transport, OutboxTransport) and transport.directory == tmp_path / "outbox"
    connection = transport.connect()
    first = connection.deliver(SENDER, "a@example.com", DATA, "row_1")
    assert first.status == "sent"
    path = tmp_path / "outbox" / "row_1.eml"
    assert path.read_bytes() == DATA
    rerun = connection.deliver(SENDER, "a@example.com", DATA + b"changed", "row_1")
    assert rerun.status == "sent" and "already" in rerun.detail
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["row_1.eml"]  # no temp file left


def test_outbox_racing_writers_make_one_file(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    directory.mkdir()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        results.append(write_once(directory / "same.eml", b"copy %d" % i))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert [p.name for p in directory.iterdir()] == ["same.eml"]


def test_outbox_crash_while_writing_leaves_no_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    directory = tmp_path / "outbox"
    directory.mkdir()

    def crash(fd: int) -> None:
        raise OSError(5, "disk failure")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        write_once(directory / "row_2.eml", DATA)
    assert list(directory.iterdir()) == []  # neither a partial .eml nor the temporary file
    monkeypatch.undo()
    assert write_once(directory / "row_2.eml", DATA)
    assert (directory / "row_2.eml").read_bytes() == DATA


def test_outbox_dir_relative_to_the_config_folder(tmp_path: Path) -> None:
    settings = DeliverySettings.model_validate({"outbox_dir": "salida/correo"})
    transport = make_transport(settings, tmp_path / "shop")
    assert isinstance(transport, OutboxTransport)
    assert transport.directory == tmp_path / "shop" / "salida" / "correo"
    absolute = make_transport(
        DeliverySettings.model_validate({"outbox_dir": str(tmp_path / "abs")}), tmp_path / "x"
    )
    assert isinstance(absolute, OutboxTransport) and absolute.directory == tmp_path / "abs"
