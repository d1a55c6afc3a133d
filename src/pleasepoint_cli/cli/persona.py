"""`pleasepoint persona run|list|show|export|diff|verify`: the customer-persona analysis.

JSON documents (`--format json`), also listed in docs/persona.md:
- run, show: {run_id, name, created_at, k, customers, as_of, fingerprint, manifest, clusters: [{cluster, label,
  customers, share_customers, share_revenue, orders_per_customer, avg_ticket, mean_recency_days, centroid}],
  profile: [{cluster, variable, position, cluster_value, population_value, propensity, level}]}; run adds auto_k.
- list: {page, pages, total, runs: [{run_id, name, created_at, k, customers, attributes, unit, transform,
  as_of, fingerprint}]}.
- export: {run_id, name, file, format, rows}.
- diff: {a, b, matched, reason, matches: [{a, b, distance}], migrations: [{a, b, customers}], common, stayed,
  moved, only_a, only_b}.
- verify: {run_id, name, identical, customers_stored, customers_now, changed_cluster, only_stored, only_now,
  fingerprint_stored, fingerprint_now, fingerprint_matches, labels_changed, versions_changed}.
"""

from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pleasepoint_cli.cli._common import (
    FormatOption,
    OutputFormat,
    emit_json,
    emit_rows,
    say,
    state,
    stderr_console,
)

if TYPE_CHECKING:
    from pleasepoint_cli.persona.clustering import KScore
    from pleasepoint_cli.persona.diff import RunDiff
    from pleasepoint_cli.persona.runs import RunRecord, StoredRun
    from pleasepoint_cli.persona.verify import VerifyResult

app = typer.Typer(
    help="Customer-persona analysis: cluster customers by what they buy, read the heatmap, compare runs.",
    no_args_is_help=True,
)


class View(str, Enum):
    table = "table"
    heatmap = "heatmap"


CLUSTER_KEYS = (
    "cluster",
    "label",
    "customers",
    "share_customers",
    "share_revenue",
    "orders_per_customer",
    "avg_ticket",
    "mean_recency_days",
    "centroid",
)
PROFILE_KEYS = ("cluster", "variable", "position", "cluster_value", "population_value", "propensity", "level")


def _audience_data(path: Path | None) -> dict[str, Any] | None:
    """The `audience:` rule of a YAML file, checked (file:line errors) and kept as data for the manifest."""
    if path is None:
        return None
    from pleasepoint_cli.audience import load_audience, rule_to_data

    data = rule_to_data(load_audience(path))
    return data if isinstance(data, dict) else {"all": [data]}


def run_document(run: StoredRun) -> dict[str, Any]:
    """The JSON of a stored run (keys documented in the module docstring and docs/persona.md)."""
    record = run.record
    return {
        "run_id": record.run_id,
        "name": record.name,
        "created_at": record.created_at,
        "k": record.k,
        "customers": record.customers,
        "as_of": record.manifest["resolved"]["as_of"],
        "fingerprint": record.manifest["fingerprint"],
        "manifest": record.manifest,
        "clusters": [{**asdict(c), "centroid": list(c.centroid)} for c in run.clusters],
        "profile": [{k: v for k, v in asdict(c).items() if k != "support"} for c in run.cells],
    }


def _cluster_rows(run: StoredRun) -> list[dict[str, Any]]:
    return [{**asdict(c), "centroid": " ".join(f"{x:.6g}" for x in c.centroid)} for c in run.clusters]


def _print(renderable: Any) -> None:
    from pleasepoint_cli.cli._common import stdout_console

    stdout_console().print(renderable, no_wrap=True, overflow="ellipsis", crop=True)


def _auto_k_table(ctx: typer.Context, scores: list[KScore], chosen: int) -> None:
    if state(ctx).quiet:
        return
    from rich.table import Table

    table = Table(title="--auto-k: silhouette (sample) and inertia per k", title_justify="left")
    for column in ("k", "silhouette", "inertia", ""):
        table.add_column(column, justify="right")
    for s in scores:
        silhouette = "n/a" if s.silhouette != s.silhouette else f"{s.silhouette:.4f}"
        table.add_row(str(s.k), silhouette, f"{s.inertia:,.1f}", "<- chosen" if s.k == chosen else "")
    stderr_console().print(table)


@app.command("run")
def persona_run(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="A name for the run (default: ATTRIBUTES-UNIT).")
    ] = None,
    clusters: Annotated[
        int | None,
        typer.Option(
            "--clusters",
            "-k",
            help="Number of clusters, 2 to 20 (3 to 9 recommended). Default 5.",
            show_default=False,
        ),
    ] = None,
    attributes: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            "-a",
            metavar="ATTRIBUTE",
            help="Product attribute to analyse: category "
            "(default) or any product attribute key (brand...). Repeatable.",
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            "-u",
            metavar="UNIT",
            help="freq (share of the customer's orders with the "
            "value; default), count, spend (share of spend) or binary.",
        ),
    ] = None,
    transform: Annotated[
        str | None,
        typer.Option(
            "--transform",
            "-t",
            metavar="TRANSFORM",
            help="none, log, standardize, minmax or "
            "sqrt. Default: none for one attribute, standardize for several.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="First order day analysed (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="DATE", help="Last order day analysed (YYYY-MM-DD).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="DATE",
            help="Day recency is measured at; no later order is read. "
            "Default: the day of the latest order in the store (up to --until).",
        ),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            metavar="KEY=VALUE",
            help="KEY=VALUE: only customers whose customers column "
            "(city, gender, country...) or customer attribute equals VALUE. Repeatable.",
        ),
    ] = None,
    audience_file: Annotated[
        Path | None,
        typer.Option(
            "--audience",
            metavar="FILE",
            help="Only customers an audience rule selects: a YAML file with an `audience:` key "
            "(docs/audiences.md). Marketing guards (consent...) are not added to an analysis.",
        ),
    ] = None,
    rfm: Annotated[
        bool | None,
        typer.Option(
            "--rfm/--no-rfm",
            help="Add recency, frequency and monetary dimensions (standardised).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed of k-means (default 42).", show_default=False)
    ] = None,
    auto_k: Annotated[
        str | None,
        typer.Option(
            "--auto-k",
            metavar="LOW-HIGH",
            help="LOW-HIGH, e.g. 3-9: fit each k, keep the best "
            "silhouette (sample of 10,000) and print the scores.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="persona.yaml with any of these options "
            "(name, clusters, attributes, unit, transform, since, until, as_of, where, "
            "audience, rfm, seed, auto_k); flags override it.",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Cluster the customers by what they buy and store the run (manifest, clusters, profile, assignments).

    JSON keys: those of `persona show` (run_id, name, created_at, k, customers, as_of, fingerprint, manifest,
    clusters, profile) plus auto_k ([{k, silhouette, inertia}] or null). See docs/persona.md.

    Example: pleasepoint persona run --name categorias -k 5 --unit freq --since 2025-01-01 --where city=Madrid
    """
    from pleasepoint_cli.cli._common import parse_as_of
    from pleasepoint_cli.cli._progress import stage_progress
    from pleasepoint_cli.persona.options import parse_where, resolve_options
    from pleasepoint_cli.persona.runs import load_run, run_persona

    flags: dict[str, Any] = {
        "name": name,
        "clusters": clusters,
        "attributes": attributes or [],
        "unit": unit,
        "transform": transform,
        "since": parse_as_of(since, "--since"),
        "until": parse_as_of(until, "--until"),
        "as_of": parse_as_of(as_of, "--as-of"),
        "where": parse_where(where or []),
        "audience": _audience_data(audience_file),
        "rfm": rfm,
        "seed": seed,
        "auto_k": auto_k,
    }
    options = resolve_options(config, flags)
    app_state = state(ctx)
    levels = app_state.settings.levels
    with app_state.store() as store:
        if options.until is None:  # with --until the as-of is the window's latest order (persona/runs.py)
            from pleasepoint_cli.cli._common import use_clock
            from pleasepoint_cli.clock import ANALYSIS, latest_purchase_day

            use_clock(ctx, ANALYSIS, latest_purchase_day(store), as_of=as_of)
    with app_state.store() as store, stage_progress(not app_state.quiet) as bar:
        run_id, computed = run_persona(store, options, levels, bar.stage, bar.percent)
        stored = load_run(store, run_id)
    if computed.auto_k is not None and fmt is not OutputFormat.json:
        _auto_k_table(ctx, computed.auto_k, computed.k)
    if not app_state.quiet:
        from pleasepoint_cli.cli._common import stderr_console

        for warning in computed.profile.warnings:
            stderr_console().print(f"warning: {warning}", markup=False)
    if fmt is OutputFormat.json:
        document = run_document(stored)
        document["auto_k"] = [asdict(s) for s in computed.auto_k] if computed.auto_k is not None else None
        document["warnings"] = computed.profile.warnings
        emit_json(document)
    elif fmt is OutputFormat.csv:
        emit_rows(_cluster_rows(stored), fmt, columns=CLUSTER_KEYS)
    else:
        from pleasepoint_cli.cli.persona_view import clusters_table

        _print(clusters_table(stored))
        say(ctx, f"stored as run {run_id}: see it with `pleasepoint persona show {run_id} --view heatmap`")


def _list_row(record: RunRecord) -> dict[str, Any]:
    manifest = record.manifest
    return {
        "run_id": record.run_id,
        "name": record.name,
        "created_at": record.created_at,
        "k": record.k,
        "customers": record.customers,
        "attributes": ",".join(manifest["options"]["attributes"]),
        "unit": manifest["options"]["unit"],
        "transform": manifest["resolved"]["transform"],
        "as_of": manifest["resolved"]["as_of"],
        "fingerprint": manifest["fingerprint"],
    }


@app.command("list")
def persona_list(
    ctx: typer.Context,
    page: Annotated[int, typer.Option("--page", "-p", help="Page number; 10 runs a page, newest first.")] = 1,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List the stored runs, newest first, 10 a page.

    JSON keys: page, pages, total, runs ([{run_id, name, created_at, k, customers, attributes, unit, transform,
    as_of, fingerprint}]).

    Example: pleasepoint persona list --page 2
    """
    from pleasepoint_cli.persona.runs import list_runs

    with state(ctx).reader() as store:
        result = list_runs(store, page)
    rows = [_list_row(r) for r in result.runs]
    if fmt is OutputFormat.json:
        emit_json({"page": result.page, "pages": result.pages, "total": result.total, "runs": rows})
        return
    if fmt is OutputFormat.csv:
        emit_rows(rows, fmt)
        return
    from pleasepoint_cli.cli._common import stdout_console
    from pleasepoint_cli.cli.persona_view import fitted_table

    if not rows:
        say(ctx, "no persona runs yet: make one with `pleasepoint persona run`.")
        return
    cells = [
        (
            str(r["run_id"]),
            r["name"],
            r["created_at"].strftime("%Y-%m-%d %H:%M"),
            str(r["k"]),
            f"{r['customers']:,}",
            r["unit"],
            r["as_of"],
        )
        for r in rows
    ]
    headers = ("run", "name", "created", "k", "customers", "unit", "as of")
    title = f"persona runs, newest first (page {result.page} of {result.pages}, {result.total} runs)"
    _print(fitted_table(headers, cells, flexible=1, width=stdout_console().width, title=title))


@app.command("show")
def persona_show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, run name (its newest run) or `latest`.")],
    view: Annotated[
        View,
        typer.Option(
            "--view",
            help="table: one row per cluster; heatmap: variables x clusters, coloured by propensity index.",
        ),
    ] = View.table,
    html_out: Annotated[
        Path | None,
        typer.Option(
            "--html", help="Also write a self-contained HTML report (heatmap and table) to this file."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show a run: its clusters, or the heatmap of propensity (blue = high, red = low), or write an HTML report.

    JSON keys: run_id, name, created_at, k, customers, as_of, fingerprint, manifest, clusters ([{cluster, label,
    customers, share_customers, share_revenue, orders_per_customer, avg_ticket, mean_recency_days, centroid}]),
    profile ([{cluster, variable, position, cluster_value, population_value, propensity, level}]).
    CSV: the clusters (--view table) or the profile cells (--view heatmap).

    Example: pleasepoint persona show latest --view heatmap --html informe.html
    """
    from pleasepoint_cli.persona.runs import load_run

    with state(ctx).reader() as store:
        stored = load_run(store, run)
    if html_out is not None:
        from pleasepoint_cli.outfiles import write_text
        from pleasepoint_cli.persona.render import html_report

        write_text(html_out, html_report(stored), "--html")
        say(ctx, f"wrote {html_out}")
    if fmt is OutputFormat.json:
        emit_json(run_document(stored))
    elif fmt is OutputFormat.csv:
        if view is View.table:
            emit_rows(_cluster_rows(stored), fmt, columns=CLUSTER_KEYS)
        else:
            emit_rows([asdict(c) for c in stored.cells], fmt, columns=PROFILE_KEYS)
    else:
        from pleasepoint_cli.cli._common import stdout_console
        from pleasepoint_cli.cli.persona_view import clusters_table, heatmap

        console = stdout_console()
        width = console.width
        _print(
            heatmap(stored, width, console.color_system)
            if view is View.heatmap
            else clusters_table(stored, width)
        )


@app.command("export")
def persona_export(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, run name or `latest`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write: .csv or .parquet.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write every customer's assignment (customer_id, cluster, label) of a run to a CSV or Parquet file.

    JSON keys (the summary): run_id, name, file, format, rows.

    Example: pleasepoint persona export latest --out asignaciones.parquet
    """
    from pleasepoint_cli.persona.runs import export_assignments

    with state(ctx).reader() as store:
        record, rows = export_assignments(store, run, out)
    summary = {
        "run_id": record.run_id,
        "name": record.name,
        "file": str(out),
        "format": out.suffix.lower().lstrip("."),
        "rows": rows,
    }
    if fmt is OutputFormat.table:
        say(ctx, f"wrote {rows:,} assignments of run {record.run_id} ({record.name}) to {out}")
    else:
        emit_rows([summary], fmt, json_data=summary)


@app.command("diff")
def persona_diff(
    ctx: typer.Context,
    run_a: Annotated[str, typer.Argument(metavar="A", help="The earlier run: id, name or `latest`.")],
    run_b: Annotated[str, typer.Argument(metavar="B", help="The later run: id, name or `latest`.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """How many customers moved from each cluster of A to each cluster of B, clusters matched by centroid.

    JSON keys: a, b, matched, reason, matches ([{a, b, distance}]), migrations ([{a, b, customers}]), common,
    stayed, moved, only_a, only_b.

    Example: pleasepoint persona diff 3 latest
    """
    from pleasepoint_cli.persona.diff import diff_runs

    with state(ctx).reader() as store:
        result = diff_runs(store, run_a, run_b)
    if fmt is OutputFormat.json:
        emit_json(
            {
                "a": _list_row(result.a),
                "b": _list_row(result.b),
                "matched": result.matched,
                "reason": result.reason,
                "matches": [asdict(m) for m in result.matches],
                "migrations": [asdict(m) for m in result.migrations],
                "common": result.common,
                "stayed": result.stayed,
                "moved": result.moved,
                "only_a": result.only_a,
                "only_b": result.only_b,
            }
        )
        return
    if fmt is OutputFormat.csv:
        emit_rows([asdict(m) for m in result.migrations], fmt, columns=("a", "b", "customers"))
        return
    _print_diff(ctx, result)


def _print_diff(ctx: typer.Context, result: RunDiff) -> None:
    from rich.table import Table

    from pleasepoint_cli.cli._common import stdout_console

    a_ids = sorted({m.a for m in result.migrations if m.a is not None})
    b_ids = sorted({m.b for m in result.migrations if m.b is not None})
    counts = {(m.a, m.b): m.customers for m in result.migrations}
    match_of = {m.a: m.b for m in result.matches}
    table = Table(
        title=f"customers from run {result.a.run_id} (rows) to run {result.b.run_id} (columns)",
        title_justify="left",
    )
    table.add_column("A \\ B", no_wrap=True)
    for b in b_ids:
        table.add_column(str(b), justify="right", no_wrap=True)
    table.add_column("gone", justify="right", no_wrap=True)
    for a in a_ids:
        cells = []
        for b in b_ids:
            value = f"{counts.get((a, b), 0):,}"
            cells.append(f"[bold]{value}[/]" if match_of.get(a) == b else value)
        table.add_row(
            f"{a}" + (f" -> {match_of[a]}" if a in match_of else ""), *cells, f"{counts.get((a, None), 0):,}"
        )
    table.add_row("new", *(f"{counts.get((None, b), 0):,}" for b in b_ids), "")
    stdout_console().print(table)
    moved = result.moved
    if moved is not None:
        moved_share = moved / result.common if result.common else 0.0
        say(
            ctx,
            f"{moved:,} of {result.common:,} customers in both runs ({moved_share:.1%}) moved to a "
            "cluster other than the match of their old one.",
        )
    else:
        say(ctx, f"[yellow]{result.reason}[/]")


@app.command("verify")
def persona_verify(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, run name or `latest`.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Recompute a run from its stored manifest and compare: exit 0 when identical, 1 when not (for CI).

    JSON keys: run_id, name, identical, customers_stored, customers_now, changed_cluster, only_stored, only_now,
    fingerprint_stored, fingerprint_now, fingerprint_matches, labels_changed, versions_changed.

    Example: pleasepoint persona verify latest --format json
    """
    from pleasepoint_cli.cli._progress import stage_progress
    from pleasepoint_cli.persona.verify import verify_run

    app_state = state(ctx)
    with app_state.store() as store, stage_progress(not app_state.quiet) as bar:
        result = verify_run(store, run, bar.stage, bar.percent)
    document = {**asdict(result), "fingerprint_matches": result.fingerprint_matches}
    if fmt is OutputFormat.json:
        emit_json(document)
    elif fmt is OutputFormat.csv:
        emit_rows([{k: v for k, v in document.items() if not isinstance(v, list | dict)}], fmt)
    else:
        _print_verify(result)
    if not result.identical:
        raise typer.Exit(1)


def _print_verify(result: VerifyResult) -> None:
    from pleasepoint_cli.cli._common import stdout_console

    console = stdout_console()
    if result.identical:
        console.print(
            f"run {result.run_id} ({result.name}): identical: {result.customers_now:,} customers, "
            f"the same clusters, fingerprint {result.fingerprint_now}.",
            markup=False,
            soft_wrap=True,
        )
        return
    lines = [f"run {result.run_id} ({result.name}): NOT identical."]
    lines.append(
        f"  customers that changed cluster: {result.changed_cluster:,} of {result.customers_stored:,}"
    )
    if result.only_stored or result.only_now:
        lines.append(
            f"  customers only in the stored run: {result.only_stored:,}; only now: {result.only_now:,}"
        )
    if result.fingerprint_matches:
        lines.append(f"  input fingerprint: unchanged ({result.fingerprint_now})")
    else:
        lines.append(
            f"  input fingerprint: stored {result.fingerprint_stored}, now {result.fingerprint_now}: "
            "the orders or products in the window changed"
        )
    if result.labels_changed:
        lines.append(f"  clusters whose label changed: {', '.join(map(str, result.labels_changed))}")
    for library, (old, new) in result.versions_changed.items():
        lines.append(f"  {library}: stored with {old}, now {new}")
    console.print("\n".join(lines), markup=False, soft_wrap=True)
