"""The options of an ingest: the mapping file, its `format:` block, the settings and the flags, merged once.

Flags override the mapping file, which overrides `ingest:` in pleasepoint.yaml; the result says exactly what
is read and how, so `ingest orders|customers|products|stores` only parses flags and calls `resolve_ingest`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pleasepoint_cli.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from pleasepoint_cli.config import IngestSettings
    from pleasepoint_cli.ingest.loader import IngestReport, Limits
    from pleasepoint_cli.ingest.mapping import EntitySection
    from pleasepoint_cli.ingest.source import ReadOptions
    from pleasepoint_cli.store.connection import Store
    from pleasepoint_cli.store.progress import Percent

OnError = Literal["abort", "skip"]
ORDER_ID_FROM = ("customer-day",)
"""The values of --order-id-from (customer-day: one order per customer and day)."""


@dataclass(frozen=True)
class IngestFlags:
    """What the command line gave (None or empty: not given)."""

    files: Sequence[Path] = ()
    mapping_file: Path | None = None
    maps: Sequence[str] = ()
    delimiter: str | None = None
    encoding: str | None = None
    decimal: str | None = None
    date_format: str | None = None
    no_header: bool = False
    columns: str | None = None
    on_error: OnError = "abort"
    rejects: Path | None = None
    order_id_from: str | None = None
    dayfirst: bool | None = None
    sql: str | None = None


@dataclass(frozen=True)
class IngestPlan:
    """One ingest, resolved: the sources in order (a file, or a query labelled by its mapping file) and how
    every one of them is read and mapped."""

    entity: str
    sources: list[tuple[Path, str | None]]
    section: EntitySection
    explicit: dict[str, str]
    options: ReadOptions
    on_error: OnError
    rejects: Path | None
    sql_base: Path | None = None
    purchase_statuses: list[str] = field(default_factory=lambda: ["completed"])


def resolve_ingest(entity: str, flags: IngestFlags, settings: IngestSettings) -> IngestPlan:
    """Merge the flags, the mapping file (if any) and the settings into one plan; refuse what cannot go
    together (ConfigError), and a command with neither files nor a query (UsageError)."""
    from pleasepoint_cli.ingest.mapping import EntitySection, MappingFile, load_mapping, parse_map_flags
    from pleasepoint_cli.ingest.source import ReadOptions

    files = list(flags.files)
    mapping_file = flags.mapping_file
    mapping = load_mapping(mapping_file) if mapping_file else MappingFile()
    section = getattr(mapping, entity) or EntitySection()
    if flags.order_id_from is not None:
        if entity != "orders":
            raise ConfigError("--order-id-from applies to `ingest orders` only.")
        if flags.order_id_from not in ORDER_ID_FROM:
            raise ConfigError(f"--order-id-from {flags.order_id_from!r}: use {', '.join(ORDER_ID_FROM)}.")
        section = section.model_copy(update={"order_id_from": flags.order_id_from.replace("-", "_")})
    if mapping_file and getattr(mapping, entity) is None:
        raise ConfigError(f"{mapping_file}: has no `{entity}:` section. Add one with its columns.")
    sql, sql_base = flags.sql, None
    if sql is None and section.sql is not None:
        sql = section.sql
        assert mapping_file is not None
        sql_base = mapping_file.resolve().parent
    if sql is not None and files:
        raise ConfigError("give files or a query (--sql, or sql: in the mapping), not both.")
    if sql is None and not files:
        raise UsageError("give one or more files, or a query with --sql (or sql: in the mapping YAML).")
    rejects, on_error = flags.rejects, flags.on_error
    if sql is not None and rejects is not None:
        raise ConfigError("--rejects applies to files; a query's bad rows are named in the error.")
    if flags.decimal not in (None, ".", ","):
        raise ConfigError(f"--decimal {flags.decimal!r}: use '.' or ','.")
    if rejects is not None and on_error == "abort":
        on_error = "skip"
    if rejects is not None and len(files) > 1:
        raise ConfigError("--rejects takes one file at a time; run ingest once per file.")
    if rejects is not None and files and _same_file(rejects, files[0]):
        raise ConfigError(
            f"--rejects {rejects}: is the input file itself; writing the rejects there would overwrite "
            "the export. Give another path, e.g. --rejects rejects.csv."
        )
    fmt = mapping.format
    dayfirst = flags.dayfirst
    options = ReadOptions(
        date_order=(("dmy" if dayfirst else "mdy") if dayfirst is not None else None)
        or fmt.date_order
        or settings.date_order,
        delimiter=flags.delimiter or fmt.delimiter,
        encoding=flags.encoding or fmt.encoding,
        decimal=flags.decimal or fmt.decimal,
        date_format=flags.date_format or fmt.date_format,
        header=fmt.header and not flags.no_header,
        names=tuple(c.strip() for c in flags.columns.split(",")) if flags.columns else tuple(fmt.names),
    )
    sources: list[tuple[Path, str | None]] = (
        [(mapping_file or Path("--sql"), sql)] if sql is not None else [(f, None) for f in files]
    )
    return IngestPlan(
        entity=entity,
        sources=sources,
        section=section,
        explicit=parse_map_flags(list(flags.maps)),
        options=options,
        on_error=on_error,
        rejects=rejects,
        sql_base=sql_base,
        purchase_statuses=list(settings.purchase_statuses),
    )


def run_ingest(
    store: Store,
    plan: IngestPlan,
    limits: Limits,
    stage: Callable[[str], None] | None = None,
    percent: Percent | None = None,
) -> list[IngestReport]:
    """Load every source of the plan in one transaction: all of them, or (on any error) none.

    `stage` is told each step's name ("reading", "writing"...); `percent` the running query's progress."""
    from pleasepoint_cli.ingest.loader import ingest_file
    from pleasepoint_cli.store.progress import reporting_progress

    reports: list[IngestReport] = []
    with reporting_progress(store, percent), store.transaction():
        for path, query in plan.sources:
            reports.append(
                ingest_file(
                    store,
                    plan.entity,
                    path,
                    sql=query,
                    sql_base=plan.sql_base,
                    section=plan.section,
                    explicit=plan.explicit,
                    options=plan.options,
                    on_error=plan.on_error,
                    rejects=plan.rejects,
                    progress=stage,
                    limits=limits,
                    purchase_statuses=plan.purchase_statuses,
                )
            )
    return reports


def ingest_limits(now: datetime, settings: IngestSettings) -> Limits:
    """The dates and numbers an export may hold, around `now` (docs/ingest.md)."""
    from pleasepoint_cli.ingest.loader import Limits

    return Limits.around(now, settings.earliest_date, settings.future_days)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (also through a symbolic or hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet): they cannot be the same file
        return False
