"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with STARTTLS (trustme certificates), recording
every message, with fault knobs. In the test process (`running_server`) or as a separate process that
outlives a killed sender (`spawn_server`, or `python tests/smtp_server.py --port P --spool DIR`), which
writes every accepted message to the spool folder before answering 250, so a test counts what arrived.

Knobs (in-process: attributes of `server.handler`; separate process: command-line options):
- `tempfail[address] = N`: answer 451 to RCPT TO for that address the first N times.
- `reject`: addresses answered 550 at RCPT TO.
- `delay`: seconds to wait before answering each message's DATA.
- `drop[address] = N`: close the connection instead of answering RCPT TO for that address (N times).
- `reject_data`: addresses whose messages are answered 554 after DATA (the content refused).
- `drop_after_data[address] = N`: close the connection after the message arrived, without an answer
  (the message is NOT recorded: the sender cannot know whether it was accepted).
- `credentials = (user, password)`: require AUTH (over TLS) with these.
- `pipelining`: announce PIPELINING (RFC 2920) in the EHLO answer; aiosmtpd reads pipelined commands one
  after the other anyway, it only does not announce it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port free on 127.0.0.1 now (aiosmtpd's Controller cannot take port 0: its issue 276)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the bytes as the server got them."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool = False


@dataclass
class RecordingHandler:
    """aiosmtpd handler: records accepted messages (and spools them when `spool` is set); fault knobs."""

    spool: Path | None = None
    tempfail: dict[str, int] = field(default_factory=dict)
    reject: set[str] = field(default_factory=set)
    delay: float = 0.0
    drop: dict[str, int] = field(default_factory=dict)
    drop_after_data: dict[str, int] = field(default_factory=dict)
    reject_data: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    pipelining: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
            if self.drop.get(address, 0) > 0:
                self.drop[address] -= 1
                server.transport.close()
                return "421 4.3.0 closing (test drop)"
            if address in self.reject:
                return "550 5.1.1 no such mailbox (test)"
            if self.tempfail.get(address, 0) > 0:
                self.tempfail[address] -= 1
                return "451 4.3.0 try again later (test)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            for address in envelope.rcpt_tos:
                if address in self.reject_data:
                    return "554 5.7.1 message refused as spam (test)"
                if self.drop_after_data.get(address, 0) > 0:
                    self.drop_after_data[address] -= 1
                    server.transport.close()
                    return "421 4.3.0 closing (test drop after data)"
            received = Received(
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                bytes(envelope.original_content),
                tls=server.transport.get_extra_info("ssl_object") is not None,
            )
            if self.spool is not None:
                _spool(self.spool, len(self.messages), received)
            self.messages.append(received)
        return "250 2.0.0 OK queued"


def _spool(directory: Path, index: int, received: Received) -> None:
    """Write one message atomically: `<n>.eml` (the bytes) beside `<n>.json` (the envelope)."""
    name = f"{index:07d}"
    envelope = json.dumps({"mail_from": received.mail_from, "rcpt_tos": list(received.rcpt_tos)})
    for suffix, content in ((".json", envelope.encode()), (".eml", received.data)):
        temp = directory / f".{name}{suffix}.tmp"
        with open(temp, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, directory / f"{name}{suffix}")


def read_spool(directory: Path) -> list[Received]:
    """Every message a separate-process server accepted, in order."""
    messages = []
    for eml in sorted(directory.glob("*.eml")):
        envelope = json.loads(eml.with_suffix(".json").read_text())
        messages.append(Received(envelope["mail_from"], tuple(envelope["rcpt_tos"]), eml.read_bytes()))
    return messages


@dataclass
class Certificates:
    """A private CA (trustme) and a server certificate for 127.0.0.1 / localhost, as files."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path) -> Certificates:
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    with open(files.cert_file, "wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return files


@dataclass
class LocalServer:
    """A running in-process server: where it listens, its handler (knobs and `messages`), its CA file."""

    host: str
    port: int
    handler: RecordingHandler
    certificates: Certificates | None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def ca_file(self) -> Path:
        assert self.certificates is not None
        return self.certificates.ca_file


def _authenticator(credentials: tuple[str, str]) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            )
            == credentials
        )
        return AuthResult(success=ok, handled=False)

    return check


def _controller(
    handler: RecordingHandler,
    port: int,
    certificates: Certificates | None,
    implicit_tls: bool,
    credentials: tuple[str, str] | None,
) -> Any:
    from aiosmtpd.controller import Controller

    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": port, "decode_data": False}
    if certificates is not None:
        if implicit_tls:
            kwargs["ssl_context"] = certificates.server_context()
        else:
            kwargs["tls_context"] = certificates.server_context()
    if credentials is not None:
        kwargs["authenticator"] = _authenticator(credentials)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = certificates is not None
    return Controller(handler, **kwargs)


@contextlib.contextmanager
def running_server(
    directory: Path,
    *,
    tls: bool = True,
    implicit_tls: bool = False,
    credentials: tuple[str, str] | None = None,
    spool: Path | None = None,
) -> Iterator[LocalServer]:
    """An aiosmtpd server on 127.0.0.1 in this process (STARTTLS offered when `tls`), stopped on exit."""
    certificates = make_certificates(directory / "certs") if tls or implicit_tls else None
    handler = RecordingHandler(spool=spool)
    controller = _controller(handler, free_port(), certificates, implicit_tls, credentials)
    controller.start()
    try:
        yield LocalServer("127.0.0.1", controller.port, handler, certificates)
    finally:
        controller.stop()


@dataclass
class ServerProcess:
    """A server in its own process, spooling to `spool`; it outlives a killed sender."""

    process: subprocess.Popen[str]
    host: str
    port: int
    spool: Path
    ca_file: Path | None

    def received(self) -> list[Received]:
        return read_spool(self.spool)

    def count(self) -> int:
        return len(list(self.spool.glob("*.eml")))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def spawn_server(
    directory: Path,
    *,
    tls: bool = False,
    delay: float = 0.0,
    reject: tuple[str, ...] = (),
    tempfail: dict[str, int] | None = None,
) -> Iterator[ServerProcess]:
    """Start `python tests/smtp_server.py` in another process and wait until it listens."""
    spool = directory / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, str(Path(__file__)), "--port", str(port), "--spool", str(spool)]
    ca_file = None
    if tls:
        command += ["--certs", str(directory / "certs")]
        ca_file = directory / "certs" / "ca.pem"
    if delay:
        command += ["--delay", str(delay)]
    for address in reject:
        command += ["--reject", address]
    for address, times in (tempfail or {}).items():
        command += ["--tempfail", f"{address}={times}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    server = ServerProcess(process, "127.0.0.1", port, spool, ca_file)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"the test SMTP server did not start: {line!r}")
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A recording SMTP server for tests (aiosmtpd).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--certs", type=Path, help="make a trustme CA here and offer STARTTLS")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--tempfail", action="append", default=[], help="ADDRESS=N")
    args = parser.parse_args(argv)
    handler = RecordingHandler(
        spool=args.spool,
        delay=args.delay,
        reject=set(args.reject),
        tempfail={a: int(n) for a, n in (item.rsplit("=", 1) for item in args.tempfail)},
    )
    certificates = make_certificates(args.certs) if args.certs else None
    controller = _controller(handler, args.port, certificates, False, None)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"ready {args.port}", flush=True)
    while not stopped.wait(0.2):
        pass
    controller.stop()
    time.sleep(0)


if __name__ == "__main__":
    main()
