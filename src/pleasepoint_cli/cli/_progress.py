"""A progress display on stderr for long store work: the current stage and DuckDB's own query progress."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store


@contextmanager
def stage_progress(store: Store | None, enabled: bool) -> Iterator[Callable[[str], None]]:
    """Yield a `stage(name)` callback; when enabled and stderr is a terminal, show a bar that follows
    the running query's progress, polled from a thread while DuckDB works."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _stage: None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pleasepoint_cli.cli._common import stderr_console

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    )
    task = progress.add_task("starting", total=100)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.2):
            if store is None:
                continue
            try:
                value = store.con.query_progress()
            except Exception:  # the connection is busy or closed: keep the last value
                continue
            if value >= 0:
                progress.update(task, completed=value)

    def stage(name: str) -> None:
        progress.update(task, description=name, completed=0)

    thread = threading.Thread(target=poll, daemon=True)
    with progress:
        thread.start()
        try:
            yield stage
        finally:
            done.set()
            thread.join()
