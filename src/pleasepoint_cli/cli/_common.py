"""What every command shares: the app state from global options, opening the store, and output formats."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from pleasepoint_cli.clock import Clock
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store import Store


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="table, json or csv (data on stdout).")
]


@dataclass
class AppState:
    """The global options, resolved once per invocation."""

    db: Path | None
    config: Path | None
    lock_timeout: float
    quiet: bool
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from pleasepoint_cli.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    @property
    def db_path(self) -> Path:
        from pleasepoint_cli.config import resolve_db

        return resolve_db(self.db, self.settings, self.config)

    @contextmanager
    def store(self) -> Iterator[Store]:
        """Open the database for the length of the block, waiting for the lock up to --lock-timeout."""
        from pleasepoint_cli.store import open_store

        store = open_store(self.db_path, self.lock_timeout)
        if not self.quiet:
            for warning in store.warnings:
                stderr_console().print(f"warning: {warning}", markup=False)
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def reader(self) -> Iterator[Store]:
        """Open the database read-only for the block: never created, never written (but migrated first when its
        schema is behind), and it works beside another process's read-only connection."""
        from pleasepoint_cli.store.opener import StoreOpener

        with StoreOpener(self.db_path, self.lock_timeout).read() as store:
            yield store


def state(ctx: typer.Context) -> AppState:
    """The AppState set by the root callback (a default one when a command is invoked alone in tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(db=None, config=None, lock_timeout=30.0, quiet=False)
    return root.obj


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def say(ctx: typer.Context, message: str) -> None:
    """A message for the person at the terminal: stderr, silent with --quiet."""
    if not state(ctx).quiet:
        stderr_console().print(message)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity: no JSON for them
        return None
    return value


def _finite(data: Any) -> Any:
    """`data` with every non-finite float (NaN, +-Infinity, numpy's too) replaced by None, at any depth."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def to_json(data: Any) -> str:
    """JSON text for stdout: accents kept, dates as ISO strings, never NaN or Infinity (they become null),
    and strict: `allow_nan=False` refuses any that slipped through rather than print invalid JSON."""
    return json.dumps(_finite(data), ensure_ascii=False, indent=2, default=_plain, allow_nan=False)


def emit_json(data: Any) -> None:
    sys.stdout.write(to_json(data) + "\n")


def emit_rows(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    json_data: Any = None,
) -> None:
    """Print rows as a Rich table, a JSON document (json_data if given, else the rows) or CSV."""
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt is OutputFormat.json:
        emit_json(
            json_data if json_data is not None else [{c: _plain(r.get(c)) for c in columns} for r in rows]
        )
        return
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_plain(row.get(c)) for c in columns])
        sys.stdout.write(buffer.getvalue())
        return
    from rich.markup import escape
    from rich.table import Table

    # Cells, headers and the title are data, not Rich markup: "in [inactive, hibernating]" must print as is.
    table = Table(title=None if title is None else escape(title), title_justify="left")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    for i, column in enumerate(columns):
        numeric = bool(rows) and isinstance(rows[0].get(column), int | float)
        if numeric:  # figures are never cut; text columns give way with an ellipsis, never a mid-word wrap
            widest = max([len(column), *(len(r[i]) for r in cells)])
            table.add_column(escape(column), justify="right", no_wrap=True, min_width=widest)
        else:
            table.add_column(escape(column), justify="left", no_wrap=True, overflow="ellipsis")
    for row_cells in cells:
        table.add_row(*row_cells)
    stdout_console().print(table)


def _cell(value: Any) -> str:
    """A table cell's text, with Rich markup escaped."""
    from rich.markup import escape

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(_plain(value)))


def parse_as_of(value: str | None, option: str = "--as-of") -> date | None:
    """A YYYY-MM-DD date from an option (clock.parse_day), a usage error (exit 2) when it is not one."""
    from pleasepoint_cli.clock import parse_day
    from pleasepoint_cli.errors import ConfigError

    try:
        return parse_day(value, option)
    except ConfigError as e:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD.", param_hint=option) from e


def use_clock(
    ctx: typer.Context,
    kind: str,
    latest_purchase: date | None,
    *,
    as_of: str | None = None,
    now: str | None = None,
    option: str = "--as-of",
) -> Clock:
    """Resolve as-of/now by the one rule of `clock.resolve_clock`, and say on stderr which as-of is used and,
    when the data end more than 30 days before it, that they are stale (both silent with --quiet)."""
    from pleasepoint_cli.clock import resolve_clock

    app_state = state(ctx)
    parse_as_of(as_of, option)
    clock = resolve_clock(
        kind,
        shop_tz=app_state.settings.shop.timezone,
        latest_purchase=latest_purchase,
        as_of=as_of,
        now=now,
        option=option,
    )
    if not app_state.quiet:
        console = stderr_console()
        console.print(clock.describe(), markup=False)
        warning = clock.warning()
        if warning is not None:
            console.print(f"warning: {warning}", markup=False)
    return clock


def sending_clock(ctx: typer.Context, now: str | None) -> datetime:
    """The instant of a sending command (`campaign send`, `automate tick`): --now, else the real clock, by
    `clock.resolve_clock`; the data's latest purchase is read (briefly, read-only) for the stale warning."""
    from pleasepoint_cli.clock import SENDING, latest_purchase_day

    app_state = state(ctx)
    latest = None
    if app_state.db_path.exists():
        with app_state.reader() as store:
            latest = latest_purchase_day(store)
    return use_clock(ctx, SENDING, latest, now=now).now
