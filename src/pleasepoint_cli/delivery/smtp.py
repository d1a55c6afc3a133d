"""The SMTP transport: smtplib over STARTTLS or TLS, connections kept open across messages, retries.

Per message: MAIL FROM, RCPT TO, DATA and the pre-serialised bytes (what `sendmail` does, step by step, so
that a dropped connection is known to have happened before or after the message was handed over).
- 2xx: sent. 5xx for the recipient or the content: bounced (that recipient only).
- 4xx, or a connection lost before the message was handed over: retried with exponential backoff, on a new
  connection if the old one dropped, up to `max_retries` times; then failed.
- A connection lost after the message was handed over, before the server's answer: failed and marked
  uncertain, never retried here (the server may have accepted it).
- Cannot connect, TLS or login refused, sender refused for good: TransportError (stop the send).
Credentials come only from the environment variables named in the settings; they are kept in memory for
the login and appear in no message, repr or log.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pleasepoint_cli.delivery.transport import Outcome, RateLimiter
from pleasepoint_cli.errors import ConfigError, HeaderInjectionError, TransportError

if TYPE_CHECKING:
    from pleasepoint_cli.delivery.settings import SmtpSettings

_DOT_LINE = re.compile(rb"(?m)^\.")
_MAX_BACKOFF = 60.0
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class _Dropped(Exception):
    """The connection was lost; `after_data` when the whole message had been handed over."""

    def __init__(self, detail: str, after_data: bool) -> None:
        super().__init__(detail)
        self.after_data = after_data


@dataclass(frozen=True)
class Credentials:
    """A login read from the environment; never shown."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(<from the environment>)"


def read_credentials(settings: SmtpSettings) -> Credentials | None:
    """The login named by `username_env` / `password_env`, or None when the settings name none."""
    if settings.username_env is None or settings.password_env is None:
        return None
    values: list[str] = []
    for key, name in (("username_env", settings.username_env), ("password_env", settings.password_env)):
        value = os.environ.get(name)
        if not value:
            raise ConfigError(
                f"delivery.smtp.{key} names the environment variable {name}, which is not set: "
                f"export {name}=... before sending (credentials are never read from the config file)."
            )
        values.append(value)
    if settings.security == "none" and settings.host not in _LOOPBACK:
        raise ConfigError(
            "delivery.smtp: a login over an unencrypted connection would send the password in clear text: "
            "use security: starttls or tls."
        )
    return Credentials(values[0], values[1])


def tls_context(settings: SmtpSettings, base_dir: Path) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs, or `ca_file` (a private CA) when given."""
    cafile: str | None = None
    if settings.ca_file:
        path = Path(settings.ca_file)
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise ConfigError(f"delivery.smtp.ca_file: no such file {path}.")
        cafile = str(path)
    try:
        context = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as e:
        raise ConfigError(f"delivery.smtp.ca_file {cafile}: not a PEM certificate file ({e}).") from e
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class SmtpTransport:
    """An SMTP server; `connect()` gives each worker thread its own SMTP session."""

    host: str
    port: int
    security: str
    timeout: float
    connections: int
    max_retries: int
    retry_backoff: float
    credentials: Credentials | None = None
    context: ssl.SSLContext | None = None
    limiter: RateLimiter | None = None
    local_hostname: str | None = None
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: SmtpSettings, base_dir: Path) -> SmtpTransport:
        return cls(
            host=settings.host,
            port=settings.effective_port,
            security=settings.security,
            timeout=settings.timeout,
            connections=settings.connections,
            max_retries=settings.max_retries,
            retry_backoff=settings.retry_backoff,
            credentials=read_credentials(settings),
            context=tls_context(settings, base_dir) if settings.security != "none" else None,
            limiter=RateLimiter(settings.rate_per_second) if settings.rate_per_second else None,
        )

    @property
    def name(self) -> str:
        return f"smtp {self.host}:{self.port} ({self.security})"

    def connect(self) -> SmtpConnection:
        return SmtpConnection(self)

    def close(self) -> None:
        pass

    def open_session(self) -> smtplib.SMTP:
        """A logged-in SMTP session (TransportError on TLS or login failure; OSError when unreachable)."""
        session: smtplib.SMTP
        if self.security == "tls":
            session = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self.context,
            )
        else:
            session = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            session.ehlo()
            if self.security == "starttls":
                if not session.has_extn("starttls"):
                    raise TransportError(
                        f"{self.name}: the server does not offer STARTTLS; refusing to send in clear text."
                    )
                session.starttls(context=self.context)
                session.ehlo()
            if self.credentials is not None:
                _login(session, self.credentials)
        except ssl.SSLError as e:
            _quietly_close(session)
            raise TransportError(f"{self.name}: TLS failed: {e.reason or e}.") from e
        except smtplib.SMTPAuthenticationError as e:
            _quietly_close(session)
            raise TransportError(f"{self.name}: login refused ({e.smtp_code}).") from e
        except smtplib.SMTPNotSupportedError as e:
            _quietly_close(session)
            raise TransportError(f"{self.name}: {e}.") from e
        except BaseException:
            _quietly_close(session)
            raise
        return session


def check_envelope(mail_from: str, rcpt: str) -> None:
    """Refuse an envelope address that could inject an SMTP command (CR, LF, controls, or spaces)."""
    for label, value in (("MAIL FROM", mail_from), ("RCPT TO", rcpt)):
        if not value or any(c in value for c in " <>") or not value.isprintable():
            raise HeaderInjectionError(f"{label} address {value[:80]!r} is not a plain address: refused.")


def _login(session: smtplib.SMTP, credentials: Credentials) -> None:
    """smtplib's login, or AUTH PLAIN in UTF-8 (RFC 4616) for a non-ASCII login, which smtplib cannot send."""
    if credentials.username.isascii() and credentials.password.isascii():
        session.login(credentials.username, credentials.password)
        return
    if "plain" not in session.esmtp_features.get("auth", "").lower().split():
        raise TransportError(
            "a login with non-ASCII characters needs AUTH PLAIN, which this server does not offer."
        )
    token = b"\0" + credentials.username.encode() + b"\0" + credentials.password.encode()
    code, reply = session.docmd("AUTH", "PLAIN " + base64.b64encode(token).decode("ascii"))
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _quietly_close(session: smtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        session.close()


def _data_block(data: bytes) -> bytes:
    """The message as sent after DATA: lines starting with a dot doubled (RFC 5321 4.5.2), ending with CRLF
    and the lone-dot line. The regular expression runs only when a line does start with a dot (a built
    message has none: base64 never holds a dot and quoted-printable lines rarely start with one)."""
    if data.startswith(b".") or b"\n." in data:
        data = _DOT_LINE.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


@dataclass
class SmtpConnection:
    """One SMTP session, reused message after message and reopened after a drop."""

    transport: SmtpTransport
    session: smtplib.SMTP | None = None
    opened: int = 0

    def close(self) -> None:
        if self.session is not None:
            try:
                self.session.quit()
            except Exception:
                _quietly_close(self.session)
            self.session = None

    def _drop(self) -> None:
        if self.session is not None:
            _quietly_close(self.session)
            self.session = None

    def _ensure(self) -> smtplib.SMTP:
        if self.session is None:
            self.session = self.transport.open_session()
            self.opened += 1
        return self.session

    def deliver(self, mail_from: str, rcpt: str, data: bytes, send_id: str) -> Outcome:
        """Hand one message to the server for one recipient (see the module docstring for the outcomes)."""
        transport = self.transport
        check_envelope(mail_from, rcpt)
        attempts = 0
        last = ""
        code: int | None = None
        while True:
            attempts += 1
            if transport.limiter is not None:
                transport.limiter.acquire()
            try:
                session = self._ensure()
            except (
                OSError
            ) as e:  # refused, unreachable, timed out (TLS and login errors raise TransportError)
                self._drop()
                if attempts > transport.max_retries:
                    raise TransportError(
                        f"{transport.name}: cannot connect after {attempts} attempts: {e}."
                    ) from e
                last, code = f"cannot connect: {e}", None
                self._backoff(attempts)
                continue
            try:
                stage, code, reply = self._transaction(session, mail_from, rcpt, data)
            except _Dropped as e:
                self._drop()
                if e.after_data:
                    return Outcome(
                        "failed",
                        None,
                        f"connection lost after the message was sent ({e}); it may have been delivered",
                        attempts,
                        uncertain=True,
                    )
                last, code = f"connection lost: {e}", None
            else:
                if 200 <= code < 300:
                    return Outcome("sent", code, reply, attempts)
                if code >= 500:
                    # Refused for good: the recipient (at RCPT) is a bounce; the message (at DATA) is not
                    # the address's fault, so it fails without suppressing anyone.
                    return Outcome("bounced" if stage == "rcpt" else "failed", code, reply, attempts)
                last = reply
            if attempts > transport.max_retries:
                return Outcome("failed", code, f"{last} (after {attempts} attempts)", attempts)
            self._backoff(attempts)

    def _backoff(self, attempts: int) -> None:
        delay = min(_MAX_BACKOFF, self.transport.retry_backoff * 2 ** (attempts - 1))
        if delay > 0:
            self.transport.sleep(delay)

    def _transaction(
        self, session: smtplib.SMTP, mail_from: str, rcpt: str, data: bytes
    ) -> tuple[str, int, str]:
        """One MAIL/RCPT/DATA exchange: (stage, code, reply) of the step that decided it, the stage being
        "rcpt" or "data". A refusal resets the session for the next message. Raises _Dropped when the
        connection is lost, TransportError when the server refuses the sender for good."""
        handed_over = False
        try:
            if session.has_extn("pipelining"):
                return self._pipelined(session, mail_from, rcpt, data)
            code, message = session.mail(mail_from)
            if code != 250:
                self._reset(session, code)
                if code >= 500:
                    raise TransportError(
                        f"{self.transport.name}: the server refuses the sender {mail_from}: {_reply(code, message)}"
                    )
                return "mail", code, _reply(code, message)
            code, message = session.rcpt(rcpt)
            if code not in (250, 251):
                self._reset(session, code)
                return "rcpt", code, _reply(code, message)
            session.putcmd("data")
            code, message = session.getreply()
            if code != 354:
                self._reset(session, code)
                return "data", code, _reply(code, message)
            session.send(_data_block(data))
            handed_over = True
            code, message = session.getreply()
            if code == 421:
                self._drop()
            return "data", code, _reply(code, message)
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            raise _Dropped(str(e) or type(e).__name__, after_data=handed_over) from e
        except (
            smtplib.SMTPException
        ) as e:  # nothing else is expected from these calls; never let it escape raw
            raise TransportError(f"{self.transport.name}: {type(e).__name__}: {e}") from e

    def _pipelined(
        self, session: smtplib.SMTP, mail_from: str, rcpt: str, data: bytes
    ) -> tuple[str, int, str]:
        """`_transaction` with MAIL, RCPT and DATA written at once (RFC 2920, when the server offers
        PIPELINING): two round trips per message instead of four, and the same outcomes, each reply read
        in order. The addresses were checked by `check_envelope` (no spaces, brackets or controls)."""
        session.send(f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
        mail_code, mail_message = session.getreply()
        rcpt_code, rcpt_message = session.getreply()
        data_code, data_message = session.getreply()
        accepted = mail_code == 250 and rcpt_code in (250, 251)
        if data_code == 354 and not accepted:
            # A server that opened DATA with no valid recipient (RFC 2920 says it must not): end it empty,
            # so it reaches nobody, before the refusal is handled as usual.
            session.send(b".\r\n")
            data_code, data_message = session.getreply()
        if mail_code != 250:
            self._reset(session, mail_code)
            if mail_code >= 500:
                raise TransportError(
                    f"{self.transport.name}: the server refuses the sender {mail_from}: "
                    f"{_reply(mail_code, mail_message)}"
                )
            return "mail", mail_code, _reply(mail_code, mail_message)
        if rcpt_code not in (250, 251):
            self._reset(session, rcpt_code)
            return "rcpt", rcpt_code, _reply(rcpt_code, rcpt_message)
        if data_code != 354:
            self._reset(session, data_code)
            return "data", data_code, _reply(data_code, data_message)
        session.send(_data_block(data))
        try:
            code, message = session.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            raise _Dropped(str(e) or type(e).__name__, after_data=True) from e
        if code == 421:
            self._drop()
        return "data", code, _reply(code, message)

    def _reset(self, session: smtplib.SMTP, code: int) -> None:
        """After a refusal: RSET for the next message, or drop the session when the server is closing it."""
        if code == 421:
            self._drop()
            return
        try:
            session.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
