"""The terminal views of a persona run (Rich): the heatmap (variables x clusters) and the cluster table, sized
for an 80-column terminal. Colours are chosen per colour system (truecolor, 256, 16) so the scale stays
monotone blue-to-red everywhere, and every cell shows its value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pleasepoint_cli.persona.render import (
    CELL_WIDTH,
    MIN_NAME_WIDTH,
    SCALE_LIMIT,
    format_index,
    propensity_color,
    run_title,
    share_label,
    shorten,
    text_color,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from pleasepoint_cli.persona.profile import ProfileCell
    from pleasepoint_cli.persona.runs import StoredRun

STEPS = 4
"""Colour steps each side of white on 256- and 16-colour terminals: log2(index) is rounded to 1/STEPS of
SCALE_LIMIT, so equal indices always get one colour and the scale cannot turn back."""
SIXTEEN = ("red", "bright_red", "bright_white", "bright_cyan", "blue")
"""The 16-colour scale, low to high: red, light red, white, light blue, blue (never grey)."""


def _step(propensity: float | None) -> int | None:
    """log2(index) on the scale, rounded to -STEPS..STEPS; None when undefined."""
    if propensity is None:
        return None
    if propensity <= 0:
        return -STEPS
    t = max(-1.0, min(1.0, math.log2(propensity) / SCALE_LIMIT))
    return round(t * STEPS)


def cell_style(propensity: float | None, color_system: str | None) -> str:
    """The Rich style of a heatmap cell for the terminal's colour system."""
    if color_system in (None, "truecolor", "windows"):
        rgb = propensity_color(propensity)
        return f"{text_color(rgb)} on rgb({rgb[0]},{rgb[1]},{rgb[2]})"
    step = _step(propensity)
    if step is None:
        return "black on white" if color_system == "standard" else "black on color(250)"
    if color_system == "standard":
        index = round(step / STEPS * 2) + 2  # -2..2 -> 0..4
        name = SIXTEEN[index]
        return f"{'white' if name in ('red', 'blue') else 'black'} on {name}"
    # 256 colours: the truecolor scale at the step, snapped to the 6x6x6 colour cube (never the grey ramp).
    rgb = propensity_color(2 ** (step / STEPS * SCALE_LIMIT))
    r, g, b = (min(5, round(v / 51)) for v in rgb)
    return f"{text_color(rgb)} on color({16 + 36 * r + 6 * g + b})"


def _cell(propensity: float | None, color_system: str | None = "truecolor") -> Text:
    from rich.text import Text

    style = cell_style(propensity, color_system)
    return Text(format_index(propensity).rjust(CELL_WIDTH), style=style, no_wrap=True)


def _line(text: str | Text) -> Text:
    """One line that is cut with an ellipsis, never wrapped."""
    from rich.text import Text

    line = Text(text) if isinstance(text, str) else text
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


def heatmap(run: StoredRun, width: int = 80, color_system: str | None = "truecolor") -> RenderableType:
    """Rows = variables, columns = clusters, each cell the propensity index on a diverging colour scale."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    k = len(run.clusters)
    name_width = max(MIN_NAME_WIDTH, width - k * (CELL_WIDTH + 1) - 1)
    table = Table(box=None, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False, expand=False)
    table.add_column("variable", no_wrap=True, overflow="ellipsis", max_width=name_width)
    for cluster in run.clusters:
        header = Text(f"{cluster.cluster}\n{share_label(cluster.share_customers)}", justify="right")
        table.add_column(header, justify="right", no_wrap=True, width=CELL_WIDTH)
    by_position: dict[int, dict[int, ProfileCell]] = {}
    for cell in run.cells:
        by_position.setdefault(cell.position, {})[cell.cluster] = cell
    for position in sorted(by_position):
        row = by_position[position]
        name = next(iter(row.values())).variable
        table.add_row(
            shorten(name, name_width),
            *(
                _cell(row[c.cluster].propensity if c.cluster in row else None, color_system)
                for c in run.clusters
            ),
        )
    return Group(_line(run_title(run)), table, *legend(run, width, color_system))


def legend(run: StoredRun, width: int = 80, color_system: str | None = "truecolor") -> list[Text]:
    """The colour scale, the level thresholds and the cluster labels, one short line each."""
    from rich.text import Text

    levels = run.record.manifest.get("levels", {"high": 1.25, "medium": 0.75})
    scale = Text("propensity index:")
    for value in (0.25, 0.5, 1.0, 2.0, 4.0):
        scale.append_text(_cell(value, color_system))
        scale.append(" ")
    scale.append(" red = low, blue = high")
    lines = [
        _line(scale),
        _line(
            f"levels: high >= {levels['high']:g}, medium >= {levels['medium']:g}, low below, "
            "zero = never bought"
        ),
    ]
    for cluster in run.clusters:
        lines.append(_line(f"{cluster.cluster:>2} {cluster.label} ({cluster.customers:,} customers)"))
    return lines


def fitted_table(
    headers: tuple[str, ...],
    rows: Sequence[tuple[str, ...]],
    flexible: int,
    width: int = 80,
    title: str | None = None,
) -> RenderableType:
    """A borderless table that fits `width`: every column keeps its width except `flexible`, which is cut with
    an ellipsis. Column 0 and the flexible one are left-aligned, the others (numbers) right-aligned."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    gaps = 3 * (len(headers) - 1)  # one padding space each side and the box's blank divider
    room = width - (sum(widths) - widths[flexible]) - gaps
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    for i, header in enumerate(headers):
        if i == flexible:
            table.add_column(header, no_wrap=True, overflow="ellipsis", width=max(5, min(widths[i], room)))
        else:
            table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True, width=widths[i])
    for row in rows:
        table.add_row(*row)
    return Group(_line(title), table) if title else table


def clusters_table(run: StoredRun, width: int = 80) -> RenderableType:
    """One row per cluster: label, size, revenue share, orders per customer, ticket, recency."""
    rows = [
        (
            str(c.cluster),
            c.label,
            f"{c.customers:,}",
            f"{c.share_customers:.1%}",
            f"{c.share_revenue:.1%}",
            f"{c.orders_per_customer:.2f}",
            f"{c.avg_ticket:,.2f}",
            f"{c.mean_recency_days:.0f}",
        )
        for c in run.clusters
    ]
    headers = ("#", "label", "customers", "cust%", "rev%", "ord/c", "ticket", "rec.d")
    return fitted_table(headers, rows, flexible=1, width=width, title=run_title(run))
