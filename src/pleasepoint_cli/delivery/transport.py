"""Transports: where a built message goes. `make_transport` picks the outbox folder or an SMTP server.

A sender makes one Transport per send, one Connection per worker thread (`transport.connect()`), and calls
`connection.deliver(...)` per message; the transport's rate limit is shared by all its connections.
`deliver` returns an Outcome for this one message (sent, bounced, failed) and raises TransportError only
when no message could get through (server unreachable after retries, login or sender refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from pleasepoint_cli.delivery.settings import DeliverySettings

Status = Literal["sent", "bounced", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What became of one message.

    `sent`: the server accepted it (or the outbox holds its file). `bounced`: the server refused this
    recipient for good (5xx): suppress the address. `failed`: not delivered (a 4xx that outlived the
    retries, or the connection lost): the row may be tried again later. `uncertain` is true when the
    connection was lost after the whole message was handed over, before the server's answer: it may
    have been delivered, so sending it again risks a duplicate.
    """

    status: Status
    code: int | None
    detail: str
    attempts: int
    uncertain: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "attempts": self.attempts,
            "uncertain": self.uncertain,
        }


class Connection(Protocol):
    """One worker's channel to the transport (not shared between threads)."""

    def deliver(self, mail_from: str, rcpt: str, data: bytes, send_id: str) -> Outcome: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """A way out for messages; `connect()` once per worker thread."""

    @property
    def name(self) -> str:
        """Where messages go, for reports (never a credential)."""
        ...

    @property
    def connections(self) -> int:
        """How many connections a sender should open in parallel."""
        ...

    def connect(self) -> Connection: ...

    def close(self) -> None: ...


@dataclass
class RateLimiter:
    """At most `rate` grants a second across every thread: grant i is scheduled at start + i / rate, so
    consecutive grants are at least 1/rate apart (no bursts). Thread-safe; the clock and sleep can be
    replaced in tests, and `record=True` keeps every grant's scheduled time (`granted`)."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    record: bool = False
    granted: list[float] = field(default_factory=list)
    _next: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the slot's scheduled time."""
        interval = 1.0 / self.rate
        with self._lock:
            now = self.clock()
            slot = now if self._next is None or self._next < now else self._next
            self._next = slot + interval
            if self.record:
                self.granted.append(slot)
        delay = slot - self.clock()
        if delay > 0:
            self.sleep(delay)
        return slot


def make_transport(settings: DeliverySettings, base_dir: Path) -> Transport:
    """The transport of `delivery:` (paths relative to `base_dir`, the config file's folder). For SMTP the
    credentials are read now from the named environment variables (ConfigError if one is missing)."""
    if settings.transport == "outbox":
        from pleasepoint_cli.delivery.outbox import OutboxTransport

        directory = Path(settings.outbox_dir)
        return OutboxTransport(directory if directory.is_absolute() else base_dir / directory)
    from pleasepoint_cli.delivery.smtp import SmtpTransport

    return SmtpTransport.from_settings(settings.smtp, base_dir)
