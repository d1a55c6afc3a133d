"""One sender per campaign: an OS file lock (flock) that the kernel releases when the process dies.

A lock judged "stale" by its age or by a PID check can be taken while its owner is still sending (Mautic's
double sends); a kernel lock cannot: it is held exactly as long as the process that took it lives.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pleasepoint_cli.errors import StoreBusyError


def lock_path(db_path: Path, name: str) -> Path:
    """`shop/pleasepoint.duckdb`, `campaign-rebajas` -> `shop/pleasepoint.locks/campaign-rebajas.lock`."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return Path(db_path).with_name(f"{Path(db_path).stem}.locks") / f"{safe}.lock"


@contextmanager
def held_lock(path: Path, timeout: float) -> Iterator[str | None]:
    """Hold the lock file for the block, waiting up to `timeout` seconds (0: do not wait).

    Yields None when the lock is held, else who holds it ("PID n", as the holder wrote it) without holding it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
                    return
                time.sleep(min(delay, max(deadline - time.monotonic(), 0.005)))
                delay = min(delay * 2, 0.25)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()}".encode("ascii"), 0)
        try:
            yield None
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def send_lock(db_path: Path, name: str, timeout: float, what: str | None = None) -> Iterator[Path]:
    """Hold the named lock for the block, waiting up to `timeout` seconds; StoreBusyError (exit 75) after."""
    path = lock_path(db_path, name)
    with held_lock(path, timeout) as holder:
        if holder is not None:
            raise StoreBusyError(
                f"{what or name} is already being sent by {holder}; still busy after waiting "
                f"{timeout:g} s. Wait for it to finish (it sends nobody twice), or raise --lock-timeout."
            )
        yield path
