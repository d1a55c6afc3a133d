"""The running query's progress reaches the core's callback; the polling stays inside store/."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

from pleasepoint_cli.store.connection import Store, memory_store
from pleasepoint_cli.store.progress import reporting_progress

THREAD = "pleasepoint-query-progress"


class _Connection:
    """A connection whose query progress is scripted: a busy error, no query, then 42% for good."""

    def __init__(self) -> None:
        self.readings: list[Any] = [RuntimeError("busy"), -1.0]
        self.calls = 0
        self.reached = threading.Event()

    def query_progress(self) -> float:
        self.calls += 1
        if self.readings:
            reading = self.readings.pop(0)
            if isinstance(reading, Exception):
                raise reading
            return float(reading)
        self.reached.set()
        return 42.0


class _Store:
    def __init__(self) -> None:
        self.con = _Connection()


def test_the_callback_gets_the_query_progress_and_polling_stops_with_the_block() -> None:
    store = _Store()
    reported: list[float] = []
    with reporting_progress(cast(Store, store), reported.append, interval=0.001):
        assert store.con.reached.wait(60), "the poller never read the progress"
    calls = store.con.calls
    assert reported and set(reported) == {42.0}, "errors and 'no query' (-1) are not reported"
    assert not any(t.name == THREAD for t in threading.enumerate()), "the poller ends with the block"
    assert store.con.calls == calls


def test_no_callback_no_polling() -> None:
    store = _Store()
    with reporting_progress(cast(Store, store), None, interval=0.001):
        assert not any(t.name == THREAD for t in threading.enumerate())
    assert store.con.calls == 0


def test_a_real_query_runs_to_its_end_under_the_poller(tmp_path: Path) -> None:
    """DuckDB tracks progress (silently) only inside the block: without it query_progress() is always -1."""
    reported: list[float] = []
    setting = "SELECT current_setting('enable_progress_bar'), current_setting('enable_progress_bar_print')"
    with memory_store() as store:
        before = store.first(setting)
        with reporting_progress(store, reported.append, interval=0.001):
            assert store.first(setting) == (True, False)
            total = store.scalar("SELECT sum(i) FROM range(3000000) t(i)")
        assert store.first(setting) == before == (False, True)
    assert total == 3000000 * 2999999 // 2
    assert all(0 <= value <= 100 for value in reported)
