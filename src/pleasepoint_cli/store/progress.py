"""A long query's progress, as a callback: DuckDB offers no progress hook, only `query_progress()` to poll.

The core takes `percent: Callable[[float], None] | None` (0 to 100, the running query's share done) and
wraps its long work in `reporting_progress(store, percent)`; the polling thread lives here, so callers
(the CLI's bar) only receive numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

Percent = Callable[[float], None]
"""Called with the running query's progress, 0 to 100 (from another thread)."""

POLL_SECONDS = 0.2


@contextmanager
def reporting_progress(
    store: Store, percent: Percent | None, interval: float = POLL_SECONDS
) -> Iterator[None]:
    """While the block runs, call `percent` with DuckDB's progress of the query under way, polled from a
    thread every `interval` seconds. Nothing runs when `percent` is None."""
    if percent is None:
        yield
        return
    # DuckDB tracks a query's progress only with its progress bar on (else query_progress() is -1); it is
    # turned on without its own printing, for this block only.
    _set_tracking(store, on=True)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(interval):
            try:
                value = float(store.con.query_progress())
            except Exception:  # the connection is busy or closed: skip this reading
                continue
            if value >= 0:  # -1: no query is running
                percent(value)

    thread = threading.Thread(target=poll, name="pleasepoint-query-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        _set_tracking(store, on=False)


def _set_tracking(store: Store, *, on: bool) -> None:
    try:
        if on:
            store.con.execute("SET enable_progress_bar = true")
            store.con.execute("SET enable_progress_bar_print = false")
        else:
            store.con.execute("SET enable_progress_bar = false")
            store.con.execute("RESET enable_progress_bar_print")
    except Exception:  # an aborted transaction refuses even SET: progress is only a display
        pass
