"""`pleasepoint ingest orders|customers|products|stores FILE...`: load shop exports."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_rows, say, state

if TYPE_CHECKING:
    from pleasepoint_cli.ingest.loader import IngestReport

app = typer.Typer(
    help="Load shop exports (CSV/TSV, Parquet, JSON/JSONL): atomic, idempotent, with a summary.",
    no_args_is_help=True,
)


class OrderIdFrom(str, Enum):
    customer_day = "customer-day"


class OnError(str, Enum):
    abort = "abort"
    skip = "skip"


def _load(
    ctx: typer.Context,
    entity: str,
    files: list[Path] | None,
    mapping_file: Path | None,
    maps: list[str],
    delimiter: str | None,
    encoding: str | None,
    decimal: str | None,
    date_format: str | None,
    no_header: bool,
    columns: str | None,
    on_error: OnError,
    rejects: Path | None,
    order_id_from: OrderIdFrom | None,
    fmt: OutputFormat,
    dayfirst: bool | None = None,
    sql: str | None = None,
) -> None:
    from pleasepoint_cli.cli._progress import stage_progress
    from pleasepoint_cli.errors import ConfigError
    from pleasepoint_cli.ingest.loader import Limits, ingest_file
    from pleasepoint_cli.ingest.mapping import EntitySection, MappingFile, load_mapping, parse_map_flags
    from pleasepoint_cli.ingest.source import ReadOptions

    files = list(files or [])
    mapping = load_mapping(mapping_file) if mapping_file else MappingFile()
    section = getattr(mapping, entity) or EntitySection()
    if order_id_from is not None:
        if entity != "orders":
            raise ConfigError("--order-id-from applies to `ingest orders` only.")
        section = section.model_copy(update={"order_id_from": order_id_from.value.replace("-", "_")})
    if mapping_file and getattr(mapping, entity) is None:
        raise ConfigError(f"{mapping_file}: has no `{entity}:` section. Add one with its columns.")
    sql_base: Path | None = None
    if sql is None and section.sql is not None:
        sql = section.sql
        assert mapping_file is not None
        sql_base = mapping_file.resolve().parent
    if sql is not None and files:
        raise ConfigError("give files or a query (--sql, or sql: in the mapping), not both.")
    if sql is None and not files:
        raise typer.BadParameter(
            "give one or more files, or a query with --sql (or sql: in the mapping YAML).", param_hint="FILES"
        )
    if sql is not None and rejects is not None:
        raise ConfigError("--rejects applies to files; a query's bad rows are named in the error.")
    if decimal not in (None, ".", ","):
        raise ConfigError(f"--decimal {decimal!r}: use '.' or ','.")
    if rejects is not None and on_error is OnError.abort:
        on_error = OnError.skip
    if rejects is not None and len(files) > 1:
        raise ConfigError("--rejects takes one file at a time; run ingest once per file.")
    if rejects is not None and files and _same_file(rejects, files[0]):
        raise ConfigError(
            f"--rejects {rejects}: is the input file itself; writing the rejects there would overwrite "
            "the export. Give another path, e.g. --rejects rejects.csv."
        )
    fmt_section = mapping.format
    app_state = state(ctx)
    date_order = (
        (("dmy" if dayfirst else "mdy") if dayfirst is not None else None)
        or fmt_section.date_order
        or app_state.settings.ingest.date_order
    )
    options = ReadOptions(
        date_order=date_order,
        delimiter=delimiter or fmt_section.delimiter,
        encoding=encoding or fmt_section.encoding,
        decimal=decimal or fmt_section.decimal,
        date_format=date_format or fmt_section.date_format,
        header=fmt_section.header and not no_header,
        names=tuple(c.strip() for c in columns.split(",")) if columns else tuple(fmt_section.names),
    )
    explicit = parse_map_flags(maps)
    ingest_settings = app_state.settings.ingest
    limits = Limits.around(datetime.now(), ingest_settings.earliest_date, ingest_settings.future_days)
    reports: list[IngestReport] = []
    with (
        app_state.store() as store,
        stage_progress(store, not app_state.quiet) as stage,
        store.transaction(),
    ):
        sources: list[tuple[Path, str | None]] = (
            [(mapping_file or Path("--sql"), sql)] if sql is not None else [(f, None) for f in files]
        )
        for file, query in sources:
            reports.append(
                ingest_file(
                    store,
                    entity,
                    file,
                    sql=query,
                    sql_base=sql_base,
                    section=section,
                    explicit=explicit,
                    options=options,
                    on_error=on_error.value,
                    rejects=rejects,
                    progress=stage,
                    limits=limits,
                    purchase_statuses=ingest_settings.purchase_statuses,
                )
            )
    rows = [
        {
            "file": Path(r.file).name,
            "read": r.rows_read,
            "inserted": r.inserted,
            "updated": r.updated,
            "rejected": r.rejected,
            "seconds": round(r.seconds, 2),
        }
        for r in reports
    ]
    json_data = [
        {
            "entity": r.entity,
            "file": r.file,
            "format": r.format,
            "encoding": r.encoding,
            "read": r.rows_read,
            "inserted": r.inserted,
            "updated": r.updated,
            "rejected": r.rejected,
            "rejected_reasons": r.rejected_reasons,
            "problems": r.problems,
            "warnings": r.warnings,
            "attributes": r.attributes,
            "rejects_file": r.rejects_file,
            "not_purchases": r.not_purchases,
            "seconds": round(r.seconds, 3),
        }
        for r in reports
    ]
    emit_rows(rows, fmt, title=f"ingest {entity}", json_data=json_data)
    if fmt is OutputFormat.table:
        for r in reports:
            for problem in r.problems:
                say(ctx, f"[yellow]skipped:[/] {problem}")
            for warning in r.warnings:
                say(ctx, f"[yellow]warning:[/] {warning}")
            if r.rejects_file:
                say(ctx, f"rejected rows and their reasons: {r.rejects_file}")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (also through a symbolic or hard link)."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet): they cannot be the same file
        return False


def _command(entity: str, example: str) -> None:
    def command(
        ctx: typer.Context,
        files: Annotated[
            list[Path] | None,
            typer.Argument(
                help="One or more export files, loaded together, all or nothing (or --sql).",
                show_default=False,
            ),
        ] = None,
        mapping_file: Annotated[
            Path | None, typer.Option("--mapping", "-m", help="Mapping YAML (columns, format).")
        ] = None,
        maps: Annotated[
            list[str] | None,
            typer.Option("--map", help="canonical=SOURCE_COLUMN; repeatable; overrides --mapping."),
        ] = None,
        delimiter: Annotated[
            str | None,
            typer.Option(
                "--delimiter",
                help="Field separator (default: sniffed); 'tab', or 'whitespace' for space-aligned files.",
            ),
        ] = None,
        encoding: Annotated[
            str | None, typer.Option("--encoding", help="utf-8, latin-1, cp1252... (default: detected).")
        ] = None,
        decimal: Annotated[
            str | None, typer.Option("--decimal", help="Decimal separator of numbers: '.' or ','.")
        ] = None,
        date_format: Annotated[
            str | None,
            typer.Option(
                "--date-format", help="strptime format, e.g. %d/%m/%Y (default: ISO or dd/mm/yyyy)."
            ),
        ] = None,
        no_header: Annotated[
            bool, typer.Option("--no-header", help="The CSV has no header row (see --columns).")
        ] = False,
        columns: Annotated[
            str | None,
            typer.Option("--columns", help="Comma-separated column names for a file without a header."),
        ] = None,
        on_error: Annotated[
            OnError,
            typer.Option("--on-error", help="abort: any bad row loads nothing; skip: load the good rows."),
        ] = OnError.abort,
        rejects: Annotated[
            Path | None,
            typer.Option(
                "--rejects", help="Write skipped rows with their reasons here (implies --on-error skip)."
            ),
        ] = None,
        order_id_from: Annotated[
            OrderIdFrom | None,
            typer.Option(
                "--order-id-from",
                help="Orders only, for files without an order id: customer-day makes "
                "one order per customer and day.",
            ),
        ] = None,
        dayfirst: Annotated[
            bool | None,
            typer.Option(
                "--dayfirst/--monthfirst",
                help="Read dates such as 3/2/2017 day first (3 February) or month first (2 March); "
                "default: ingest.date_order, else refuse a file where it cannot be told.",
            ),
        ] = None,
        sql: Annotated[
            str | None,
            typer.Option(
                "--sql",
                help="A DuckDB SELECT over files as the source, e.g. \"SELECT * FROM read_csv('items.csv') i "
                "JOIN read_csv('orders.csv') o USING (order_id)\" (reading functions only).",
            ),
        ] = None,
        fmt: FormatOption = OutputFormat.table,
    ) -> None:
        _load(
            ctx,
            entity,
            files,
            mapping_file,
            maps or [],
            delimiter,
            encoding,
            decimal,
            date_format,
            no_header,
            columns,
            on_error,
            rejects,
            order_id_from,
            fmt,
            dayfirst,
            sql,
        )

    command.__doc__ = (
        f"Load {entity} from CSV/TSV, Parquet or JSON. Extra columns are kept as attributes.\n\n"
        f"Example: {example}"
    )
    app.command(entity)(command)


_command("orders", "pleasepoint ingest orders ventas.csv --delimiter ';' --decimal , --encoding latin-1")
_command("customers", "pleasepoint ingest customers clientes.csv --map customer_id=id_cliente")
_command("products", "pleasepoint ingest products productos.parquet")
_command("stores", "pleasepoint ingest stores tiendas.csv")
