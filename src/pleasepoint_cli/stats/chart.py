"""The terminal chart (plain text lines that fit the width, colour added by the caller) and the self-contained
HTML report with an inline SVG chart (no script or style from the network)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime

from pleasepoint_cli.stats.compute import Bucket, StatsReport

SERIES = {"sends": ("sent", "Sends"), "opens": ("opens", "Opens"), "clicks": ("clicks", "Clicks")}
COLOURS = {"sends": "#4c78a8", "opens": "#f58518", "clicks": "#54a24b"}
BLOCKS = " ▁▂▃▄▅▆▇█"


def _label(moment: datetime, unit: str) -> str:
    return moment.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d")


def _columns(values: Sequence[int], width: int) -> list[int]:
    """Values grouped into at most `width` columns (sums of consecutive buckets)."""
    if len(values) <= width:
        return list(values)
    per = -(-len(values) // width)
    return [sum(values[i : i + per]) for i in range(0, len(values), per)]


def chart_lines(
    report: StatsReport, metrics: Sequence[str], *, width: int = 80, height: int = 6
) -> list[str]:
    """One small bar chart per metric, each line at most `width` characters."""
    axis = 8
    plot_width = max(width - axis - 1, 10)
    lines: list[str] = []
    buckets = report.series
    for metric in metrics:
        field, title = SERIES[metric]
        values = _columns([getattr(b, field) for b in buckets], plot_width)
        per = -(-len(buckets) // plot_width) if len(buckets) > plot_width else 1
        top = max(values, default=0)
        unit = report.by if per == 1 else f"{per} {report.by}s"
        lines.append(f"{title} per {unit} (max {top:,})"[:width])
        for level in range(height, 0, -1):
            row = []
            for value in values:
                filled = value * height * 8 / top if top else 0
                eighths = int(min(max(filled - (level - 1) * 8, 0), 8))
                row.append(BLOCKS[eighths] if value or level > 1 else "·")
            scale = f"{top:,}" if level == height else ("0" if level == 1 else "")
            lines.append(f"{scale:>{axis}}│{''.join(row)}"[:width])
        if buckets:
            first, last = _label(buckets[0].start, report.by), _label(buckets[-1].start, report.by)
            gap = max(len(values) - len(first) - len(last), 1)
            footer = (
                f"{'':>{axis}} {first}{' ' * gap}{last}"
                if len(values) >= len(first) + len(last) + 1
                else (f"{'':>{axis}} {first} … {last}")
            )
            lines.append(footer[:width])
        lines.append("")
    return lines


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def render_html(report: StatsReport, title: str) -> str:
    """A self-contained page: counters, the chart (inline SVG, click a legend entry to show one series) and
    the daily table. Nothing is loaded from the network."""
    c = report.counters
    counters = [
        ("Sent", f"{c.sent:,}"),
        ("Delivered", f"{c.delivered:,}"),
        ("Unique opens", f"{c.opens_unique:,}"),
        ("Unique opens incl. machine", f"{c.opens_unique_with_machine:,}"),
        ("Machine opens", f"{c.machine_opens:,}"),
        ("Unique clicks", f"{c.clicks_unique:,}"),
        ("Open rate", _rate(c.open_rate)),
        ("Click rate", _rate(c.click_rate)),
        ("Click-to-open", _rate(c.click_to_open_rate)),
        ("Hard bounces", f"{c.bounces_hard:,}"),
        ("Soft bounces", f"{c.bounces_soft:,}"),
        ("Complaints", f"{c.complaints:,}"),
        ("Unsubscribes", f"{c.unsubscribes:,}"),
    ]
    cards = "".join(
        f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
        for k, v in counters
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(x))}</td>"
            for x in (
                b.start.date().isoformat(),
                b.sent,
                b.delivered,
                b.opens,
                b.clicks,
                b.bounces,
                b.complaints,
                b.unsubscribes,
            )
        )
        + "</tr>"
        for b in report.daily
    )
    period = (
        f"{report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} ({html.escape(report.timezone)})"
        if report.start and report.end
        else "no data"
    )
    return f"""<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222}}
.cards{{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}}
.card{{border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem;min-width:8rem}}
.v{{font-size:1.3rem;font-weight:600}} .k{{color:#666;font-size:.85rem}}
table{{border-collapse:collapse;margin-top:1rem}} td,th{{border-bottom:1px solid #eee;padding:.25rem .6rem;text-align:right}}
th{{background:#f6f6f6}} td:first-child,th:first-child{{text-align:left}}
.legend span{{cursor:pointer;margin-right:1rem;user-select:none}} .legend span.off{{opacity:.35}}
</style></head><body>
<h1>{html.escape(title)}</h1><p>{period}</p>
<div class="cards">{cards}</div>
<div class="legend" id="legend">{_legend()}</div>
{_svg(report)}
<h2>Daily</h2>
<table><thead><tr><th>Day</th><th>Sent</th><th>Delivered</th><th>Opens</th><th>Clicks</th><th>Bounces</th>
<th>Complaints</th><th>Unsubscribes</th></tr></thead><tbody>{rows}</tbody></table>
<script>
document.querySelectorAll('#legend span').forEach(function (item) {{
  item.addEventListener('click', function () {{
    item.classList.toggle('off');
    var line = document.getElementById('series-' + item.dataset.series);
    if (line) line.style.display = item.classList.contains('off') ? 'none' : '';
  }});
}});
</script>
</body></html>
"""


def _legend() -> str:
    return "".join(
        f'<span data-series="{key}"><svg width="14" height="4"><rect width="14" height="4" '
        f'fill="{COLOURS[key]}"/></svg> {title}</span>'
        for key, (_, title) in SERIES.items()
    )


def _svg(report: StatsReport, width: int = 900, height: int = 320) -> str:
    left, right, top, bottom = 50, 10, 10, 40
    buckets: list[Bucket] = report.series
    inner_w, inner_h = width - left - right, height - top - bottom
    peak = max((max(b.sent, b.opens, b.clicks) for b in buckets), default=0) or 1
    n = max(len(buckets), 1)

    def x(i: int) -> float:
        return left + (inner_w * (i + 0.5) / n)

    def y(v: int) -> float:
        return top + inner_h - inner_h * v / peak

    parts = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Sends, opens and clicks over time">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - right}" y2="{top + inner_h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + inner_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + inner_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for key, (field, _) in SERIES.items():
        points = " ".join(f"{x(i):.1f},{y(getattr(b, field)):.1f}" for i, b in enumerate(buckets))
        parts.append(
            f'<polyline id="series-{key}" fill="none" stroke="{COLOURS[key]}" stroke-width="2" points="{points}"/>'
        )
    if buckets:
        ticks = sorted({0, len(buckets) // 2, len(buckets) - 1})
        for i in ticks:
            label = _label(buckets[i].start, report.by)
            anchor = "start" if i == 0 else "end" if i == len(buckets) - 1 else "middle"
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 15}" text-anchor="{anchor}" font-size="11">'
                f"{html.escape(label)}</text>"
            )
    parts.append("</svg>")
    # The data behind the chart, for whoever opens the page's source.
    data = json.dumps([b.as_json() for b in buckets], ensure_ascii=False).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="series-data">{data}</script>')
    return "\n".join(parts)
