"""The outbox transport: one `<send_id>.eml` per message in a folder, nothing leaves the machine.

Each file is written whole or not at all: a temporary file in the same folder, flushed to disk, then linked
under its final name, which fails if the name exists. So a crash never leaves a partial `.eml`, and a rerun
(or a second process) never writes a second file for the same send id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pleasepoint_cli.delivery.settings import SEND_ID_PATTERN
from pleasepoint_cli.delivery.transport import Outcome
from pleasepoint_cli.errors import DeliveryError

TEMP_PREFIX = ".tmp-"


def eml_path(directory: Path, send_id: str) -> Path:
    """Where the message of a send id lives in the outbox."""
    if not SEND_ID_PATTERN.fullmatch(send_id):
        raise DeliveryError(f"send id {send_id!r}: letters, digits, '-' and '_' only (1-128).")
    return directory / f"{send_id}.eml"


def write_once(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless `path` exists; True when this call wrote it."""
    if path.exists():
        return False
    temp = path.with_name(f"{TEMP_PREFIX}{path.stem}-{os.urandom(6).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)  # atomic, and refuses to replace an existing file
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: replace (same bytes for the same send id)
            if path.exists():
                return False
            os.replace(temp, path)
            return True
        return True
    finally:
        temp.unlink(missing_ok=True)


@dataclass
class OutboxConnection:
    directory: Path

    def deliver(self, mail_from: str, rcpt: str, data: bytes, send_id: str) -> Outcome:
        path = eml_path(self.directory, send_id)
        try:
            wrote = write_once(path, data)
        except OSError as e:
            raise DeliveryError(f"cannot write to the outbox {self.directory}: {e.strerror}.") from e
        return Outcome(
            "sent", None, f"written to {path.name}" if wrote else f"already in the outbox ({path.name})", 1
        )

    def close(self) -> None:
        pass


@dataclass
class OutboxTransport:
    """Writes messages to `directory` (made on first connect)."""

    directory: Path
    connections: int = 1

    @property
    def name(self) -> str:
        return f"outbox {self.directory}"

    def connect(self) -> OutboxConnection:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DeliveryError(f"cannot create the outbox {self.directory}: {e.strerror}.") from e
        return OutboxConnection(self.directory)

    def close(self) -> None:
        pass
