"""`pleasepoint enrich ...`: persona clusters onto the CRM as customer attributes, with history and undo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_rows, say, state

if TYPE_CHECKING:
    from pleasepoint_cli.attributes import AttributeChange
    from pleasepoint_cli.enrich.cluster import EnrichResult

app = typer.Typer(
    help="Enrich the CRM: attributes on the members of persona clusters (labels, propensity levels, your own "
    "key=value pairs), every change kept and undoable.",
    no_args_is_help=True,
)

RunArgument = Annotated[str, typer.Argument(help="Persona run: its id, its name, or `latest`.")]


def _change_row(change: AttributeChange) -> dict[str, Any]:
    return {
        "change_id": change.change_id,
        "values_changed": change.changed,
        "customers_changed": change.customers,
        "keys": ", ".join(change.keys),
    }


def _headed(rows: list[dict[str, Any]], headers: dict[str, str]) -> list[dict[str, Any]]:
    """Rows re-keyed by short headers (the terminal table), keeping only the columns named."""
    return [{header: row.get(key) for key, header in headers.items()} for row in rows]


_RESULT_HEADERS = {
    "run": "run",
    "clusters": "clusters",
    "members": "members",
    "change_id": "change",
    "values_changed": "changed",
    "customers_changed": "customers",
    "keys": "keys",
}


def _emit_result(ctx: typer.Context, result: EnrichResult, fmt: OutputFormat, title: str) -> None:
    row = {
        "run": result.run_id,
        "clusters": ", ".join(map(str, result.clusters)),
        "members": result.members,
        **_change_row(result.change),
    }
    json_data = {**row, "clusters": list(result.clusters), "keys": list(result.change.keys)}
    table = _headed([row], _RESULT_HEADERS) if fmt is OutputFormat.table else [row]
    emit_rows(table, fmt, title=title, json_data=json_data)
    say(
        ctx,
        f"change {result.change.change_id}: {result.change.changed:,} values changed on "
        f"{result.change.customers:,} customers (undo: `pleasepoint enrich undo {result.change.change_id}`).",
    )


@app.command("cluster")
def enrich_cluster_command(
    ctx: typer.Context,
    run: RunArgument,
    cluster: Annotated[int, typer.Argument(help="Cluster number within the run (1 = largest).")],
    pairs: Annotated[
        list[str],
        typer.Argument(
            help="key=value pairs; keys become slugs (`Bebé y niño` -> bebe_y_nino), values keep their accents."
        ),
    ],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Set key=value attributes on every member of one cluster, and nobody else.

    Example: pleasepoint enrich cluster latest 1 segmento='Supermercado + Huerto' 'Huerto ECO=medium'
    """
    from pleasepoint_cli.enrich.cluster import enrich_cluster, parse_pairs

    values = parse_pairs(pairs)
    with state(ctx).store() as store:
        result = enrich_cluster(store, run, cluster, values)
    _emit_result(ctx, result, fmt, f"enrich run {result.run_id} cluster {cluster}")


@app.command("clear")
def enrich_clear_command(
    ctx: typer.Context,
    run: RunArgument,
    cluster: Annotated[int, typer.Argument(help="Cluster number within the run.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Remove every attribute that this cluster's enrichments set and that still holds their value.

    Example: pleasepoint enrich clear latest 3
    """
    from pleasepoint_cli.enrich.cluster import clear_cluster

    with state(ctx).store() as store:
        result = clear_cluster(store, run, cluster)
    _emit_result(ctx, result, fmt, f"clear run {result.run_id} cluster {cluster}")


@app.command("apply")
def enrich_apply_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Enrichment YAML: run, and per cluster a segment and levels.")],
    run: Annotated[str | None, typer.Option("--run", help="Overrides the file's `run:`.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write a whole enrichment table (the guide's section 3) from a YAML file, in one change.

    Example: pleasepoint enrich apply examples/enrichment.yaml --run latest
    """
    from pleasepoint_cli.enrich.table import apply_enrichment

    with state(ctx).store() as store:
        result = apply_enrichment(store, file, run)
    _emit_result(ctx, result, fmt, f"enrich apply {file.name}")


@app.command("levels")
def enrich_levels_command(
    ctx: typer.Context,
    run: RunArgument,
    key: Annotated[
        str, typer.Option("--key", help="Attribute that receives each cluster's label.")
    ] = "segment",
    prefix: Annotated[
        str, typer.Option("--prefix", help="Prefix of the propensity level keys.")
    ] = "propensity_",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write every cluster's label and its level (high/medium/low/zero) per profile variable on its members.

    Example: pleasepoint enrich levels latest   (sets segment and propensity_bebe_y_nino, ...)
    """
    from pleasepoint_cli.enrich.levels import enrich_levels

    with state(ctx).store() as store:
        result = enrich_levels(store, run, segment_key=key, prefix=prefix)
    _emit_result(ctx, result, fmt, f"enrich levels run {result.run_id}")


@app.command("top")
def enrich_top_command(
    ctx: typer.Context,
    run: RunArgument,
    n: Annotated[int, typer.Option("--n", min=1, help="How many variables per cluster.")] = 3,
    write: Annotated[
        bool, typer.Option("--write", help="Also store them on the members as top_1..top_n.")
    ] = False,
    prefix: Annotated[str, typer.Option("--prefix", help="Key prefix used with --write.")] = "top_",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show each cluster's n variables of highest propensity (the guide's section 6); --write stores them.

    Example: pleasepoint enrich top latest --n 3 --write
    """
    from pleasepoint_cli.enrich.levels import top_variables, write_top

    with state(ctx).store() as store:
        run_id, top = top_variables(store, run, n)
        change = write_top(store, run_id, n, prefix=prefix).change if write else None
    rows = [
        {
            "cluster": t.cluster,
            "label": t.label,
            "rank": t.rank,
            "variable": t.variable,
            "propensity": round(t.propensity, 3),
            "level": t.level,
        }
        for t in top
    ]
    json_data: Any = rows
    if change is not None:
        json_data = {"run": run_id, "top": rows, "change": _change_row(change)}
    emit_rows(
        rows,
        fmt,
        title=f"top {n} variables per cluster, run {run_id}",
        columns=["cluster", "label", "rank", "variable", "propensity", "level"],
        json_data=json_data,
    )
    if change is not None:
        say(
            ctx,
            f"change {change.change_id}: {change.changed:,} values changed, {change.customers:,} customers.",
        )


@app.command("history")
def enrich_history_command(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Every change of one customer's attributes, newest first.

    Example: pleasepoint enrich history C000123
    """
    from pleasepoint_cli.enrich.history import customer_history

    with state(ctx).reader() as store:
        rows = customer_history(store, customer)
    if not rows and fmt is OutputFormat.table:
        say(ctx, f"customer {customer} has no attribute changes.")
    columns = ["change_id", "changed_at", "key", "old_value", "new_value", "kind", "source", "undone_by"]
    if (
        fmt is OutputFormat.table
    ):  # 80 columns: the batch's kind says enough, its source is in `enrich changes`
        rows = [
            {
                **r,
                "changed_at": f"{r['changed_at']:%Y-%m-%d %H:%M}",
                "kind": r["kind"].removeprefix("enrich_"),
            }
            for r in rows
        ]
        headers = {
            "change_id": "id",
            "changed_at": "when",
            "key": "key",
            "old_value": "old",
            "new_value": "new",
            "kind": "by",
            "undone_by": "undone",
        }
        rows, columns = _headed(rows, headers), list(headers.values())
    emit_rows(rows, fmt, title=f"attribute history of {customer}", columns=columns)


@app.command("changes")
def enrich_changes_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest changes.")] = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List attribute change batches, newest first, with what they changed and whether they were undone.

    Example: pleasepoint enrich changes --limit 5
    """
    from pleasepoint_cli.enrich.history import list_changes

    with state(ctx).reader() as store:
        rows = list_changes(store, limit)
    columns = ["change_id", "made_at", "kind", "description", "changed", "customers", "undone_by"]
    if fmt is OutputFormat.table:
        rows = [{**r, "made_at": f"{r['made_at']:%Y-%m-%d %H:%M}"} for r in rows]
        headers = {
            "change_id": "id",
            "made_at": "when",
            "description": "what",
            "changed": "values",
            "customers": "customers",
            "undone_by": "undone",
        }
        rows, columns = _headed(rows, headers), list(headers.values())
    emit_rows(rows, fmt, title="attribute changes", columns=columns)


@app.command("undo")
def enrich_undo_command(
    ctx: typer.Context,
    change_id: Annotated[int, typer.Argument(help="Change id (see `enrich changes` or `enrich history`).")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Restore the values a change replaced, where its values are still current; recorded as a new change.

    Example: pleasepoint enrich undo 12
    """
    from pleasepoint_cli.enrich.history import undo_change

    with state(ctx).store() as store:
        change = undo_change(store, change_id)
    row = {"undone": change_id, **_change_row(change)}
    headers = {"undone": "undone", **{k: v for k, v in _RESULT_HEADERS.items() if k in row}}
    emit_rows(
        _headed([row], headers) if fmt is OutputFormat.table else [row], fmt, title=f"undo change {change_id}"
    )
    say(
        ctx,
        f"change {change.change_id} restored {change.changed:,} values on {change.customers:,} customers.",
    )
