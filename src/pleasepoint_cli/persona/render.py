"""How a persona run looks, without Rich: the heatmap's colour scale (blue = high propensity, red = low) and
cell text, names shortened for 80 columns, and the self-contained HTML report for the marketing team. The
terminal views (Rich) are in cli/persona_view.py.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.persona.profile import ProfileCell
    from pleasepoint_cli.persona.runs import StoredRun

BLUE = (33, 102, 172)
WHITE = (247, 247, 247)
RED = (178, 24, 43)
GREY = (190, 190, 190)
SCALE_LIMIT = 2.0
"""Colours saturate at 2**2 = 4 times (deep blue) and 1/4 of (deep red) the population's value."""
CELL_WIDTH = 5
MIN_NAME_WIDTH = 12


def propensity_color(propensity: float | None) -> tuple[int, int, int]:
    """A diverging colour on log2(index): red below 1, white at 1, blue above; grey when undefined."""
    if propensity is None:
        return GREY
    if propensity <= 0:
        return RED
    t = max(-1.0, min(1.0, math.log2(propensity) / SCALE_LIMIT))
    end = BLUE if t > 0 else RED
    return (
        round(WHITE[0] + (end[0] - WHITE[0]) * abs(t)),
        round(WHITE[1] + (end[1] - WHITE[1]) * abs(t)),
        round(WHITE[2] + (end[2] - WHITE[2]) * abs(t)),
    )


def text_color(rgb: tuple[int, int, int]) -> str:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return "black" if luminance > 150 else "white"


def share_label(share: float) -> str:
    """A cluster's share of customers for a narrow header: whole percent, and "<1%" below one percent."""
    if 0 < share < 0.005:
        return "<1%"
    return f"{share:.0%}"


def format_index(propensity: float | None) -> str:
    """The index in at most four characters: 0.87, 12.4, 123, >999; '-' when the population never bought."""
    if propensity is None:
        return "-"
    if propensity < 9.995:
        return f"{propensity:.2f}"
    if propensity < 99.95:
        return f"{propensity:.1f}"
    if propensity < 999.5:
        return f"{propensity:.0f}"
    return ">999"


def run_title(run: StoredRun) -> str:
    record = run.record
    manifest = record.manifest
    return (
        f"run {record.run_id} {record.name}: k={record.k}, {record.customers:,} customers, "
        f"{manifest['options']['unit']}, as of {manifest['resolved']['as_of']}"
    )


def shorten(name: str, width: int) -> str:
    """Fit a variable name in `width`: first abbreviate its attribute (`category: X` -> `cat.: X`), then cut
    the middle, so the end of the value, which tells variables apart, stays readable."""
    if len(name) <= width:
        return name
    attribute, sep, value = name.partition(": ")
    if sep and len(attribute) > 4:
        name = f"{attribute[:3]}.: {value}"
        if len(name) <= width:
            return name
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]


def html_report(run: StoredRun) -> str:
    """A self-contained page (inline CSS, no scripts or links): the heatmap, then the cluster table."""
    e = html.escape
    record = run.record
    levels = record.manifest.get("levels", {"high": 1.25, "medium": 0.75})
    head_cells = "".join(
        f'<th title="{e(c.label)}">{c.cluster}<br><small>{c.share_customers:.0%}</small></th>'
        for c in run.clusters
    )
    by_position: dict[int, dict[int, ProfileCell]] = {}
    for cell in run.cells:
        by_position.setdefault(cell.position, {})[cell.cluster] = cell
    body_rows = []
    for position in sorted(by_position):
        row = by_position[position]
        name = next(iter(row.values())).variable
        cells = []
        for c in run.clusters:
            found = row.get(c.cluster)
            propensity = found.propensity if found else None
            rgb = propensity_color(propensity)
            tip = (
                f"{found.level}: cluster {found.cluster_value:.4g}, population {found.population_value:.4g}"
                if found
                else ""
            )
            cells.append(
                f'<td style="background:rgb{rgb};color:{text_color(rgb)}" title="{e(tip)}">'
                f"{e(format_index(propensity))}</td>"
            )
        body_rows.append(f'<tr><th class="var">{e(name)}</th>{"".join(cells)}</tr>')
    cluster_rows = "".join(
        f"<tr><td>{c.cluster}</td><td>{e(c.label)}</td><td>{c.customers:,}</td><td>{c.share_customers:.1%}</td>"
        f"<td>{c.share_revenue:.1%}</td><td>{c.orders_per_customer:.2f}</td><td>{c.avg_ticket:,.2f}</td>"
        f"<td>{c.mean_recency_days:.0f}</td></tr>"
        for c in run.clusters
    )
    swatches = "".join(
        f'<span class="sw" style="background:rgb{propensity_color(v)};color:{text_color(propensity_color(v))}">'
        f"{format_index(v)}</span>"
        for v in (0.25, 0.5, 1.0, 2.0, 4.0)
    )
    return f"""<!DOCTYPE html>
<html lang="es">
<head>
<meta charset="utf-8">
<title>{e(record.name)}: customer personas</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
h1 {{ font-size: 1.4rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ padding: .3rem .6rem; text-align: right; font-variant-numeric: tabular-nums; }}
th.var {{ text-align: left; font-weight: normal; }}
.heat td {{ min-width: 3rem; border: 1px solid #fff; }}
.clusters td:nth-child(2), .clusters th:nth-child(2) {{ text-align: left; }}
.clusters tr:nth-child(even) {{ background: #f4f4f4; }}
.sw {{ display: inline-block; padding: .2rem .5rem; margin-right: .2rem; }}
.meta {{ color: #555; }}
</style>
</head>
<body>
<h1>{e(record.name)}</h1>
<p class="meta">{e(run_title(run))}</p>
<h2>Heatmap: propensity index</h2>
<p>Each cell is the cluster's value divided by the population's: blue = high propensity, red = low.
{swatches}</p>
<p class="meta">Levels: high &ge; {levels["high"]:g}, medium &ge; {levels["medium"]:g}, low below, zero = never bought.</p>
<table class="heat">
<thead><tr><th class="var">variable</th>{head_cells}</tr></thead>
<tbody>
{chr(10).join(body_rows)}
</tbody>
</table>
<h2>Clusters</h2>
<table class="clusters">
<thead><tr><th>#</th><th>label</th><th>customers</th><th>% customers</th><th>% revenue</th><th>orders/customer</th>
<th>average ticket</th><th>mean recency (days)</th></tr></thead>
<tbody>{cluster_rows}</tbody>
</table>
</body>
</html>
"""
