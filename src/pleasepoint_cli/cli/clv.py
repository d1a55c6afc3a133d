"""`pleasepoint clv ...`: the CLV score table, value and loyalty segments as attributes, predictive CLV."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pleasepoint_cli.cli._common import (
    FormatOption,
    OutputFormat,
    emit_json,
    emit_rows,
    parse_as_of,
    say,
    state,
    use_clock,
)

if TYPE_CHECKING:
    from pleasepoint_cli.clv.predict import PredictResult
    from pleasepoint_cli.clv.score import ScoreTable

app = typer.Typer(
    help="Customer value: the guide's CLV score table by recency state, RFM segment or cluster; segments as "
    "attributes; predictive CLV (BG/NBD or Pareto/NBD with Gamma-Gamma).",
    no_args_is_help=True,
)


class ScoreBy(str, Enum):
    state = "state"
    rfm = "rfm"
    cluster = "cluster"


class SegmentBy(str, Enum):
    state = "state"
    rfm = "rfm"


class Model(str, Enum):
    bgnbd = "bgnbd"
    pareto = "pareto"


class Unit(str, Enum):
    weeks = "weeks"
    days = "days"


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Reference date YYYY-MM-DD; orders on or before it count (default: the day of the latest order).",
    ),
]

_SHORT = {
    "avg_ticket": "avg ticket",
    "mean_recency_days": "recency",
    "total_spend": "spend",
    "tickets_per_customer": "tick/cust",
    "spend_per_customer": "spend/cust",
    "pct_customers": "%cust",
    "pct_revenue": "%rev",
}


@app.command("score")
def clv_score_command(
    ctx: typer.Context,
    run: Annotated[
        str | None,
        typer.Argument(help="With --by cluster: the persona run (id, name or latest; default latest)."),
    ] = None,
    by: Annotated[
        ScoreBy, typer.Option("--by", help="state (recency), rfm (11 segments) or cluster.")
    ] = ScoreBy.state,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The guide's CLV table: per segment customers, tickets, average ticket, mean recency, spend, tickets and
    spend per customer, % of customers and % of revenue, with a total row.

    Example: pleasepoint clv score --by cluster latest --as-of 2026-11-30
    """
    from pleasepoint_cli.clock import ANALYSIS
    from pleasepoint_cli.clv.score import clv_score, latest_order_day

    app_state = state(ctx)
    with app_state.reader() as store:
        day = use_clock(ctx, ANALYSIS, latest_order_day(store), as_of=as_of).as_of
        table = clv_score(store, by.value, day, app_state.settings.states, run)
    json_data = {
        "by": table.by,
        "as_of": table.as_of,
        "run": table.run_id,
        "segments": [r.as_dict() for r in table.rows],
        "total": table.total.as_dict(),
    }
    title = f"CLV score by {table.by}" + (f" (run {table.run_id})" if table.run_id else "") + f", as of {day}"
    if fmt is OutputFormat.table:
        _print_score(table, title)
    else:
        emit_rows([r.as_dict() for r in [*table.rows, table.total]], fmt, json_data=json_data)


# (header, field, format) of the score table's terminal view; JSON and CSV keep every figure unrounded to cents.
_SCORE_COLUMNS = (
    ("cust.", "customers", "count"),
    ("tickets", "tickets", "count"),
    ("avg\nticket", "avg_ticket", "money"),
    ("rec.\ndays", "mean_recency_days", "days"),
    ("spend", "total_spend", "total"),
    ("tick.\n/cust", "tickets_per_customer", "ratio"),
    ("spend\n/cust", "spend_per_customer", "money"),
    ("%\ncust", "pct_customers", "pct"),
    ("%\nrev", "pct_revenue", "pct"),
)


def _compact(value: float | None, kind: str) -> str:
    """A figure short enough for nine columns in 80: big counts and totals as K / M."""
    if value is None:
        return ""
    if kind in ("count", "total") and abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M"
    if kind in ("count", "total") and abs(value) >= 1e5:
        return f"{value / 1e3:.0f}K"
    if kind == "pct":
        return f"{value:.1f}"
    if kind in ("count", "days") or (kind in ("total", "money") and abs(value) >= 1e3):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _print_score(table: ScoreTable, title: str) -> None:
    from rich import box
    from rich.table import Table

    from pleasepoint_cli.cli._common import stdout_console

    rows = [*table.rows, table.total]
    figures = [[_compact(row.as_dict()[field], kind) for _, field, kind in _SCORE_COLUMNS] for row in rows]
    widths = [
        max([*(len(part) for part in header.split("\n")), *(len(f[i]) for f in figures)])
        for i, (header, _, _) in enumerate(_SCORE_COLUMNS)
    ]
    console = stdout_console()
    # Figures are never cut; the segment name gives way with an ellipsis (never a mid-word wrap).
    room = max(8, console.width - sum(widths) - 2 * len(widths) - 2)
    view = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    view.add_column("segment", overflow="ellipsis", no_wrap=True, min_width=8, max_width=room)
    for (header, _, _), width in zip(_SCORE_COLUMNS, widths, strict=True):
        view.add_column(header, justify="right", no_wrap=True, min_width=width)
    for i, (row, cells) in enumerate(zip(rows, figures, strict=True)):
        name = f"{row.segment} {row.label}" if row.label else row.segment
        view.add_row(name, *cells, end_section=i == len(table.rows) - 1)
    console.print(view)


@app.command("enrich")
def clv_enrich_command(
    ctx: typer.Context,
    by: Annotated[SegmentBy, typer.Option("--by", help="state or rfm.")] = SegmentBy.state,
    key: Annotated[
        str | None, typer.Option("--key", help="Attribute key (default clv_state or rfm_segment).")
    ] = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write each customer's recency state or RFM segment as an attribute, so audience rules can use it.

    Example: pleasepoint clv enrich --by state --key hibernation --as-of 2026-11-30
    """
    from pleasepoint_cli.clock import ANALYSIS
    from pleasepoint_cli.clv.score import clv_enrich, latest_order_day

    app_state = state(ctx)
    with app_state.store() as store:
        day = use_clock(ctx, ANALYSIS, latest_order_day(store), as_of=as_of).as_of
        change, counts = clv_enrich(store, by.value, day, app_state.settings.states, key)
    rows = [{"segment": segment, "customers": n} for segment, n in counts]
    json_data = {
        "change_id": change.change_id,
        "key": change.keys[0] if change.keys else key,
        "by": by.value,
        "as_of": day,
        "values_changed": change.changed,
        "customers_changed": change.customers,
        "segments": rows,
    }
    emit_rows(
        rows, fmt, title=f"{by.value} written as attribute {', '.join(change.keys)}", json_data=json_data
    )
    say(
        ctx,
        f"change {change.change_id}: {change.changed:,} values changed on {change.customers:,} customers.",
    )


@app.command("predict")
def clv_predict_command(
    ctx: typer.Context,
    model: Annotated[Model, typer.Option("--model", help="Purchase model: bgnbd or pareto.")] = Model.bgnbd,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Prediction horizon in days.")] = 365,
    holdout: Annotated[
        str | None,
        typer.Option(
            "--holdout",
            help="Compare predictions with the actual purchases from the calibration end to this date.",
        ),
    ] = None,
    calibration_end: Annotated[
        str | None,
        typer.Option(
            "--calibration-end",
            help="Last day of the calibration period (default: --as-of, else the latest order day).",
        ),
    ] = None,
    unit: Annotated[
        Unit, typer.Option("--unit", help="Model time unit (the papers use weeks).")
    ] = Unit.weeks,
    discount: Annotated[
        float, typer.Option("--discount", help="Annual discount rate for CLV (0.01 = 1%).")
    ] = 0.01,
    penalizer: Annotated[
        float,
        typer.Option(
            "--penalizer",
            min=0,
            help="L2 penalty on the log-parameters; a small value (0.001) keeps fits finite on data that do not identify the model.",
        ),
    ] = 0.0,
    grid: Annotated[
        str,
        typer.Option(
            "--grid",
            help="Time grid of t_x and T: exact (days), a number of days, or auto (exact up to 25,000 distinct "
            "customers' (x, t_x, T), else the finest of 7/14/28 days that stays under).",
        ),
    ] = "auto",
    write_tier: Annotated[
        str | None,
        typer.Option(
            "--write-tier", help="Store each customer's CLV quintile (very_high..very_low) as this attribute."
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=0, help="Table output: show the n customers of highest CLV.")
    ] = 10,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write every customer's predictions to a .csv or .parquet file."),
    ] = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Predictive CLV: fit BG/NBD (or Pareto/NBD) and Gamma-Gamma, then each customer's expected purchases,
    P(alive), spend and discounted CLV over the horizon.

    Example: pleasepoint clv predict --calibration-end 1997-09-30 --holdout 1998-06-30 --unit weeks
    """
    from pleasepoint_cli.clock import ANALYSIS
    from pleasepoint_cli.clv.predict import PredictRequest, run_predict
    from pleasepoint_cli.clv.score import latest_order_day

    request = PredictRequest(
        as_of=parse_as_of(as_of),
        calibration_end=parse_as_of(calibration_end, "--calibration-end"),
        holdout_end=parse_as_of(holdout, "--holdout"),
        model=model.value,
        horizon_days=horizon,
        unit=unit.value,
        annual_discount=discount,
        penalizer=penalizer,
        grid_days=_grid(grid),
        top=top,
        out=out,
        write_tier=write_tier,
    )
    app_state = state(ctx)
    with app_state.store() as store:
        clock = use_clock(ctx, ANALYSIS, latest_order_day(store), as_of=calibration_end or as_of)
        run = run_predict(store, request, clock.as_of)
    result = run.result
    for warning in result.warnings:
        say(ctx, f"[yellow]warning:[/] {warning}")
    if fmt is OutputFormat.json:
        emit_json(run.as_json())
    elif fmt is OutputFormat.csv:
        emit_rows(_fit_rows(result), fmt)
    else:
        _print_prediction(result, run.tiers, run.leaders)
    if run.exported is not None:
        say(ctx, f"wrote {run.exported:,} customers' predictions to {out}")
    if run.change is not None:
        say(
            ctx,
            f"change {run.change.change_id}: CLV tier `{run.tier_key}` set, {run.change.changed:,} "
            "values changed.",
        )


def _grid(value: str) -> int | None:
    """--grid: auto (None), exact (1 day) or a whole number of days."""
    if value == "auto":
        return None
    if value == "exact":
        return 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise typer.BadParameter(
        f"{value!r}: use auto, exact or a number of days such as 7.", param_hint="--grid"
    )


def _fit_rows(result: PredictResult) -> list[dict[str, Any]]:
    """The fitted parameters and log-likelihoods, one row each."""
    name = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD"}[result.options.model]
    rows = [{"model": name, "parameter": k, "value": round(v, 4)} for k, v in result.params.items()]
    rows.append({"model": name, "parameter": "log-likelihood", "value": round(result.log_likelihood, 2)})
    rows += [
        {"model": "Gamma-Gamma", "parameter": k, "value": round(v, 4)} for k, v in result.spend_params.items()
    ]
    rows.append(
        {
            "model": "Gamma-Gamma",
            "parameter": "log-likelihood",
            "value": round(result.spend_log_likelihood, 2),
        }
    )
    return rows


def _print_prediction(
    result: PredictResult, tiers: list[dict[str, Any]], leaders: list[dict[str, Any]]
) -> None:
    o = result.options
    emit_rows(
        _fit_rows(result),
        OutputFormat.table,
        title=f"fit at {o.calibration_end}: {result.customers:,} customers in {result.groups:,} groups, "
        f"{result.repeaters:,} repeaters, unit {o.unit}",
    )
    totals = [
        {"figure": "expected purchases", "value": result.totals["expected_purchases"]},
        {"figure": "expected spend", "value": result.totals["expected_spend"]},
        {"figure": f"CLV ({o.annual_discount:.1%}/year)", "value": result.totals["clv"]},
        {"figure": "mean P(alive)", "value": result.totals["mean_p_alive"]},
        {"figure": "mean spend per purchase", "value": result.population_mean_spend},
    ]
    emit_rows(totals, OutputFormat.table, title=f"next {o.horizon_days} days, all customers")
    if result.holdout is not None:
        h = result.holdout
        emit_rows(
            [
                {
                    "x (calibration)": r["x"],
                    "customers": r["customers"],
                    "actual": round(r["mean_actual"], 3),
                    "predicted": round(r["mean_predicted"], 3),
                }
                for r in h.by_frequency
            ],
            OutputFormat.table,
            title=f"holdout to {h.holdout_end} ({h.length:.2f} {o.unit}): mean purchases per customer; "
            f"total actual {h.actual_total:,} vs predicted {h.predicted_total:,.1f}; correlation "
            f"{h.correlation if h.correlation is None else round(h.correlation, 3)}",
        )
    emit_rows(tiers, OutputFormat.table, title="CLV tiers (quintiles of CLV)")
    if leaders:
        short = {
            "customer_id": "customer",
            "x": "x",
            "p_alive": "P(alive)",
            "expected_purchases": "purchases",
            "expected_avg_spend": "per purchase",
            "clv": "CLV",
        }
        emit_rows(
            [{v: r[k] for k, v in short.items()} for r in leaders],
            OutputFormat.table,
            title=f"top {len(leaders)} customers by CLV (expected over {o.horizon_days} days)",
        )
