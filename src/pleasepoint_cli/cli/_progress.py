"""A progress display on stderr for long store work: the current stage and the running query's progress.

The core reports both through callbacks (`stage(name)`, `percent(value)`; see store/progress.py): this module
only draws them with Rich.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressBar:
    """The callbacks a core function takes: `stage` names the step, `percent` (None: no bar) moves the bar."""

    stage: Callable[[str], None]
    percent: Callable[[float], None] | None


@contextmanager
def stage_progress(enabled: bool) -> Iterator[ProgressBar]:
    """A bar on stderr when enabled and stderr is a terminal; otherwise callbacks that do nothing (and
    `percent` None, so the core does not even poll the query's progress)."""
    if not enabled or not sys.stderr.isatty():
        yield ProgressBar(lambda _stage: None, None)
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

    def stage(name: str) -> None:
        progress.update(task, description=name, completed=0)

    def percent(value: float) -> None:
        progress.update(task, completed=value)

    with progress:
        yield ProgressBar(stage, percent)
