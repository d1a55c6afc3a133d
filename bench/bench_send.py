"""Sending throughput into a local sink (Postfix's `smtp-sink`, a C server the sender cannot outrun; else
aiosmtpd in another process): pre-rendered emails of the example newsletter built into MIME bytes and sent
over N parallel SMTP connections, beside the floor (raw `smtplib.sendmail` of the same pre-serialised bytes
over the same connections) and one connection per message. Apart: how fast messages are built (beside the
standard library's `EmailMessage`) and signed with DKIM (RSA through `cryptography`, Ed25519, beside dkimpy's
pure-Python RSA).

Rendering, contexts and the ledger are not in these figures (bench_campaign_send has them, end to end).
Each side runs in its own interpreter and reports the time of its loop only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Figure, python_snippet, timed

MESSAGES = int(os.environ.get("PLEASEPOINT_BENCH_SEND", "50000"))
CONNECTIONS = int(os.environ.get("PLEASEPOINT_BENCH_SEND_CONNECTIONS", "4"))
PER_MESSAGE = int(os.environ.get("PLEASEPOINT_BENCH_SEND_PER_MESSAGE", "2000"))
BUILDS = int(os.environ.get("PLEASEPOINT_BENCH_BUILDS", "10000"))
COMPARATOR_BUILDS = int(os.environ.get("PLEASEPOINT_BENCH_COMPARATOR_BUILDS", "2000"))
SIGNATURES = int(os.environ.get("PLEASEPOINT_BENCH_DKIM", "3000"))
DKIMPY_SIGNATURES = int(os.environ.get("PLEASEPOINT_BENCH_DKIMPY", "200"))
DISTINCT = 1000  # distinct rendered emails, cycled with a new recipient and send id per message
SENDER = "hola@tienda.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the sink did not listen on port {port}")


_AIOSMTPD_SINK = """
import signal, threading, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
stop.wait()
c.stop()
"""


def start_sink() -> tuple[subprocess.Popen[bytes], int, str]:
    """A sink in its own process: (process, port, what it is)."""
    port = _free_port()
    sink = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if sink:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        process = subprocess.Popen([sink, *user, f"127.0.0.1:{port}", "1000"])
        kind = "Postfix smtp-sink"
    else:
        process = subprocess.Popen([sys.executable, "-c", _AIOSMTPD_SINK, str(port)])
        kind = "aiosmtpd (other process)"
    _wait_listening(port)
    return process, port, kind


def _emails(count: int) -> list[Any]:
    """`count` distinct rendered emails of the example newsletter (bench_render's synthetic recipients)."""
    from bench.bench_render import _contexts, _prepared

    prepared = _prepared()
    variants = len(prepared.variants)
    return [prepared.render(context, i % variants) for i, context in enumerate(_contexts(prepared, count))]


def _recipients(emails: list[Any], count: int) -> Iterator[tuple[str, Any]]:
    """(send_id, email) for `count` messages: the distinct emails cycled, each with its own address."""
    from dataclasses import replace

    for i in range(count):
        email = emails[i % len(emails)]
        yield f"bench{i:07d}", replace(email, to=f"cliente{i}@example.com")


def _builder(dkim: str | None = None) -> Any:
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.delivery.dkim import DkimSigner, load_key
    from pleasepoint_cli.delivery.message import MessageBuilder

    signer = None
    if dkim is not None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if dkim == "rsa"
            else ed25519.Ed25519PrivateKey.generate()
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        algorithm, loaded = load_key(pem, "bench")
        signer = DkimSigner("tienda.example", "bench", algorithm, loaded)
    settings = Settings.model_validate({"delivery": {"unsubscribe_mailto": "baja@tienda.example"}})
    return MessageBuilder(settings, signer, boundary_seed="bench")


def _transport(port: int) -> Any:
    from pleasepoint_cli.delivery.settings import DeliverySettings
    from pleasepoint_cli.delivery.transport import make_transport

    settings = DeliverySettings.model_validate(
        {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "connections": CONNECTIONS},
        }
    )
    return make_transport(settings, Path())


def _in_threads(work: Any, items: Iterator[Any], threads: int) -> None:
    """Run `work(connection_state, item)` over items from `threads` threads sharing one iterator."""
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        state: dict[str, Any] = {}
        try:
            while True:
                with lock:
                    item = next(items, None)
                if item is None:
                    break
                work(state, item)
        except BaseException as e:  # reported after join
            errors.append(e)
        finally:
            if closer := state.get("close"):
                closer()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]


def pipeline_loop(port: int, count: int) -> float:
    """Seconds to build and send `count` messages over CONNECTIONS connections (our builder and transport)."""
    emails = _emails(DISTINCT)
    builder = _builder()
    transport = _transport(port)
    from datetime import UTC, datetime

    date = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    sent = [0]

    def work(state: dict[str, Any], item: tuple[str, Any]) -> None:
        connection = state.get("connection")
        if connection is None:
            connection = state["connection"] = transport.connect()
            state["close"] = connection.close
        send_id, email = item
        data = builder.build(email, send_id=send_id, date=date)
        outcome = connection.deliver(builder.envelope_from(email), email.to, data, send_id)
        assert outcome.status == "sent", outcome
        sent[0] += 1

    started = time.perf_counter()
    _in_threads(work, _recipients(emails, count), CONNECTIONS)
    seconds = time.perf_counter() - started
    assert sent[0] == count
    return seconds


def _serialised(count: int) -> list[bytes]:
    from datetime import UTC, datetime

    builder = _builder()
    date = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    return [builder.build(email, send_id=sid, date=date) for sid, email in _recipients(_emails(count), count)]


def floor_loop(port: int, count: int) -> float:
    """Seconds for raw `smtplib.sendmail` of pre-serialised bytes, CONNECTIONS connections kept open."""
    import smtplib

    messages = _serialised(DISTINCT)

    def work(state: dict[str, Any], i: int) -> None:
        session = state.get("session")
        if session is None:
            session = state["session"] = smtplib.SMTP("127.0.0.1", port)
            state["close"] = session.quit
        session.sendmail(SENDER, [f"cliente{i}@example.com"], messages[i % len(messages)])

    started = time.perf_counter()
    _in_threads(work, iter(range(count)), CONNECTIONS)
    return time.perf_counter() - started


def per_message_loop(port: int, count: int) -> float:
    """Seconds for the same bytes with a new SMTP connection (connect, EHLO, send, QUIT) per message."""
    import smtplib

    messages = _serialised(DISTINCT)

    def work(state: dict[str, Any], i: int) -> None:
        with smtplib.SMTP("127.0.0.1", port) as session:
            session.sendmail(SENDER, [f"cliente{i}@example.com"], messages[i % len(messages)])

    started = time.perf_counter()
    _in_threads(work, iter(range(count)), CONNECTIONS)
    return time.perf_counter() - started


def build_loop(count: int) -> float:
    """Seconds to build `count` messages with MessageBuilder (one thread)."""
    from datetime import UTC, datetime

    emails = _emails(DISTINCT)
    builder = _builder()
    date = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    builder.build(emails[0], send_id="warm", date=date)
    started = time.perf_counter()
    for send_id, email in _recipients(emails, count):
        assert builder.build(email, send_id=send_id, date=date)
    return time.perf_counter() - started


def email_package_loop(count: int) -> float:
    """Seconds to build the same messages with the standard library: EmailMessage, then as_bytes()."""
    from datetime import UTC, datetime
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.utils import format_datetime

    emails = _emails(DISTINCT)
    date = format_datetime(datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
    started = time.perf_counter()
    for send_id, email in _recipients(emails, count):
        message = EmailMessage()
        message["From"] = email.from_address
        message["To"] = Address(email.to_name, addr_spec=email.to)
        message["Subject"] = email.subject
        message["Date"] = date
        message["Message-ID"] = f"<{send_id}@tienda.example>"
        message["List-Id"] = "Mi tienda <mi-tienda.tienda.example>"
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>, <mailto:baja@tienda.example>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["X-Pleasepoint-Send-Id"] = send_id
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        assert message.as_bytes()
    return time.perf_counter() - started


def dkim_loop(kind: str, count: int) -> float:
    """Seconds to build and sign `count` messages (RSA-2048 or Ed25519 through `cryptography`)."""
    from datetime import UTC, datetime

    emails = _emails(DISTINCT)
    builder = _builder(kind)
    date = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    builder.build(emails[0], send_id="warm", date=date)  # imports dkimpy (and dnspython) before the clock
    started = time.perf_counter()
    for send_id, email in _recipients(emails, count):
        assert builder.build(email, send_id=send_id, date=date).startswith(b"DKIM-Signature")
    return time.perf_counter() - started


def dkimpy_loop(count: int) -> float:
    """Seconds for dkimpy's own `dkim.sign` (pure-Python RSA-2048) of `count` pre-built messages."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    messages = _serialised(min(count, DISTINCT))
    headers = [
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    ]
    started = time.perf_counter()
    for i in range(count):
        assert dkim.sign(
            messages[i % len(messages)], b"bench", b"tienda.example", key, include_headers=headers
        )
    return time.perf_counter() - started


def _child(function: str, *args: object) -> tuple[float, float]:
    """Run one loop in a fresh interpreter; its loop seconds and the process's peak memory in MB."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r}); "
        f"from bench.bench_send import {function}; print({function}(*{args!r}))"
    )
    _, peak, out = timed(python_snippet(code))
    return float(out.strip().splitlines()[-1]), peak


def run() -> list[Figure]:
    process, port, sink = start_sink()
    try:
        seconds, peak = _child("pipeline_loop", port, MESSAGES)
        floor, _ = _child("floor_loop", port, MESSAGES)
        per_message, per_message_peak = _child("per_message_loop", port, PER_MESSAGE)
    finally:
        process.terminate()
        process.wait()
    rate, floor_rate, per_message_rate = MESSAGES / seconds, MESSAGES / floor, PER_MESSAGE / per_message
    figures = [
        Figure(
            f"build+send {MESSAGES:,} over {CONNECTIONS} conn: {rate:,.0f}/s",
            seconds,
            peak,
            f"floor, raw sendmail of the bytes: {floor_rate:,.0f}/s ({sink})",
            floor,
            ">= 500 msgs/s end to end",
        ),
        Figure(
            f"one connection per message: {per_message_rate:,.0f}/s",
            MESSAGES / per_message_rate,
            per_message_peak,
            f"kept connections (above): {rate:,.0f}/s; {MESSAGES:,} at that rate",
            seconds,
            "connections reused",
        ),
    ]
    build, build_peak = _child("build_loop", BUILDS)
    stdlib, _ = _child("email_package_loop", COMPARATOR_BUILDS)
    build_rate, stdlib_rate = BUILDS / build, COMPARATOR_BUILDS / stdlib
    figures.append(
        Figure(
            f"build {BUILDS:,} messages: {build_rate:,.0f}/s (1 thread)",
            build,
            build_peak,
            f"EmailMessage + as_bytes: {stdlib_rate:,.0f}/s",
            BUILDS / stdlib_rate,
            "not the bottleneck",
        )
    )
    dkimpy, _ = _child("dkimpy_loop", DKIMPY_SIGNATURES)
    dkimpy_rate = DKIMPY_SIGNATURES / dkimpy
    for kind, label in (("rsa", "RSA-2048"), ("ed25519", "Ed25519")):
        signed, signed_peak = _child("dkim_loop", kind, SIGNATURES)
        signed_rate = SIGNATURES / signed
        figures.append(
            Figure(
                f"build+DKIM {label} {SIGNATURES:,}: {signed_rate:,.0f}/s",
                signed,
                signed_peak,
                f"dkimpy dkim.sign (pure-Python RSA): {dkimpy_rate:,.0f}/s",
                SIGNATURES / dkimpy_rate,
                ">= 500 msgs/s",
            )
        )
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure, file=sys.stderr)
