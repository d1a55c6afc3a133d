"""`pleasepoint stats`: the guide's statistics page in the terminal (and as a self-contained HTML report)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_json, emit_rows, say, state


class By(str, Enum):
    hour = "hour"
    day = "day"
    week = "week"


class Metric(str, Enum):
    sends = "sends"
    opens = "opens"
    clicks = "clicks"


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def stats(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign (its slug).")] = None,
    automation: Annotated[
        str | None, typer.Option("--automation", help="Only this automation (its name).")
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day YYYY-MM-DD (shop time zone).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last day YYYY-MM-DD, included (shop time zone).")
    ] = None,
    by: Annotated[
        By | None, typer.Option("--by", help="hour, day or week (default: hour under 7 days, else day).")
    ] = None,
    metric: Annotated[
        Metric | None, typer.Option("--metric", help="Chart only sends, opens or clicks.")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Counters (sent, delivered, unique opens with and without machine opens, unique clicks, open, click
    and click-to-open rates, hard and soft bounces, complaints, unsubscribes), a chart of sends, opens and
    clicks over time and the daily table. Reads the operational store only: it never waits for the database.
    `--format json` prints everything (rates over zero are null); csv prints the series.

    Example: pleasepoint stats --campaign primavera --from 2026-04-20 --to 2026-04-26 --by day
    """
    from datetime import timedelta

    from pleasepoint_cli.clock import parse_day, start_of_day
    from pleasepoint_cli.ops.store import open_ops
    from pleasepoint_cli.stats.compute import compute_stats

    if campaign is not None and automation is not None:
        raise typer.BadParameter("give --campaign or --automation, not both.", param_hint="--campaign")
    app_state = state(ctx)
    tz = app_state.settings.shop.timezone
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if first and last and last < first:
        raise typer.BadParameter("--to is before --from.", param_hint="--to")
    start = start_of_day(first, tz) if first else None
    end = start_of_day(last + timedelta(days=1), tz) if last else None
    with open_ops(app_state.db_path, app_state.lock_timeout) as ops:
        report = compute_stats(
            ops,
            campaign=campaign,
            automation=automation,
            start=start,
            end=end,
            by=by.value if by else None,
            timezone=tz,
        )
    title = f"campaign {campaign}" if campaign else f"automation {automation}" if automation else "all sends"
    if html is not None:
        from pleasepoint_cli.outfiles import write_text
        from pleasepoint_cli.stats.chart import render_html

        write_text(html, render_html(report, f"pleasepoint · {title}"), "--html")
        say(ctx, f"wrote {html}")
    if fmt is OutputFormat.json:
        emit_json(report.as_json())
        return
    series = [b.as_json() for b in report.series]
    if fmt is OutputFormat.csv:
        emit_rows(series, fmt, columns=list(series[0]) if series else ["start"])
        return
    _print_table(report, title, [metric.value] if metric else ["sends", "opens", "clicks"])


def _print_table(report: object, title: str, metrics: list[str]) -> None:
    from rich.markup import escape

    from pleasepoint_cli.cli._common import stdout_console
    from pleasepoint_cli.stats.chart import chart_lines
    from pleasepoint_cli.stats.compute import StatsReport

    assert isinstance(report, StatsReport)
    console = stdout_console()
    c = report.counters

    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %"

    period = (
        f"{report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} ({report.timezone})"
        if report.start and report.end
        else "no sends or events"
    )
    console.print(f"[bold]{escape(title)}[/]: {escape(period)}")
    rows = [
        ("sent", f"{c.sent:,}", "delivered", f"{c.delivered:,}"),
        ("unique opens", f"{c.opens_unique:,}", "with machine opens", f"{c.opens_unique_with_machine:,}"),
        ("total opens", f"{c.opens_total:,}", "machine opens", f"{c.machine_opens:,}"),
        ("unique clicks", f"{c.clicks_unique:,}", "total clicks", f"{c.clicks_total:,}"),
        ("open rate", rate(c.open_rate), "click rate", rate(c.click_rate)),
        ("click-to-open", rate(c.click_to_open_rate), "rates over", f"{c.rate_base:,} {c.rate_base_kind}"),
        ("hard bounces", f"{c.bounces_hard:,}", "soft bounces", f"{c.bounces_soft:,}"),
        ("complaints", f"{c.complaints:,}", "unsubscribes", f"{c.unsubscribes:,}"),
    ]
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    for _ in range(4):
        table.add_column()
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if report.series:
        console.print()
        for line in chart_lines(report, metrics, width=min(console.width, 80)):
            console.print(escape(line), highlight=False, overflow="crop", no_wrap=True)
    daily = Table(title="daily", title_justify="left")
    daily.add_column("day", no_wrap=True)
    for name in ("sent", "deliv.", "opens", "clicks", "bounces", "compl.", "unsub."):
        daily.add_column(name, justify="right")
    for b in report.daily:
        daily.add_row(
            b.start.date().isoformat(),
            *(
                f"{v:,}"
                for v in (b.sent, b.delivered, b.opens, b.clicks, b.bounces, b.complaints, b.unsubscribes)
            ),
        )
    console.print(daily)
