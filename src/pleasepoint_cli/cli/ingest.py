"""`pleasepoint ingest orders|customers|products|stores FILE...`: load shop exports."""

from __future__ import annotations

import threading
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


def _warm_imports(table: bool) -> None:
    """What the load imports later (NumPy for the keys of the lines; Rich for the report's table), imported
    while the store is opened: DuckDB creates and migrates the file with the GIL released, on one core."""
    from pleasepoint_cli.ingest.loader import import_for_keys

    import_for_keys()
    if table:
        import rich.console
        import rich.table  # noqa: F401


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
    from pleasepoint_cli.errors import UsageError
    from pleasepoint_cli.ingest.options import IngestFlags, ingest_limits, resolve_ingest, run_ingest

    app_state = state(ctx)
    flags = IngestFlags(
        files=list(files or []),
        mapping_file=mapping_file,
        maps=maps,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
        date_format=date_format,
        no_header=no_header,
        columns=columns,
        on_error=on_error.value,
        rejects=rejects,
        order_id_from=order_id_from.value if order_id_from is not None else None,
        dayfirst=dayfirst,
        sql=sql,
    )
    try:
        plan = resolve_ingest(entity, flags, app_state.settings.ingest)
    except UsageError as e:
        raise typer.BadParameter(str(e), param_hint="FILES") from e
    limits = ingest_limits(datetime.now(), app_state.settings.ingest)
    threading.Thread(
        target=_warm_imports, args=(fmt is OutputFormat.table,), name="pleasepoint-warm-imports", daemon=True
    ).start()
    with app_state.store() as store, stage_progress(not app_state.quiet) as bar:
        reports: list[IngestReport] = run_ingest(store, plan, limits, bar.stage, bar.percent)
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
