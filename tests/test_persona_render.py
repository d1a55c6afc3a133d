"""The heatmap and the cluster table fit 80 columns without wrapping; colours diverge; the HTML escapes names."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from rich.console import Console

from pleasepoint_cli.cli.persona_view import clusters_table, heatmap
from pleasepoint_cli.persona.profile import ClusterSummary, ProfileCell
from pleasepoint_cli.persona.render import (
    BLUE,
    RED,
    WHITE,
    format_index,
    html_report,
    propensity_color,
    shorten,
)
from pleasepoint_cli.persona.runs import RunRecord, StoredRun

K = 9
VARIABLES = [f"category: Una categoría de nombre larguísimo número {i:02d}" for i in range(30)]


def _run(
    k: int = K, variables: list[str] = VARIABLES, label: str = "Supermercado ECO + Huerto ECO"
) -> StoredRun:
    manifest = {
        "options": {"unit": "freq", "attributes": ["category"]},
        "resolved": {"as_of": "2026-06-30", "transform": "none", "k": k},
        "levels": {"high": 1.25, "medium": 0.75},
        "fingerprint": "0" * 16,
    }
    record = RunRecord(7, "análisis categorías", datetime(2026, 7, 1, 9, 30), k, 1_234_567, manifest)
    clusters = [
        ClusterSummary(c, f"{label} {c}", 1_234_567 // k, 1 / k, 1 / k, 5.25, 1234.56, 123.0, (0.1,) * 3)
        for c in range(1, k + 1)
    ]
    propensities = [None, 0.0, 0.05, 0.5, 0.99, 1.0, 1.3, 4.0, 12.345, 250.0, 12345.0]
    cells = [
        ProfileCell(c, v, j, 0.1, 0.2, propensities[(c + j) % len(propensities)], "low")
        for c in range(1, k + 1)
        for j, v in enumerate(variables)
    ]
    return StoredRun(record, clusters, cells)


def _render(renderable: object, width: int = 80) -> tuple[list[str], str]:
    """What an 80-column colour terminal shows: the plain lines, and the raw output with its colour codes."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system="truecolor", force_terminal=True, record=True)
    console.print(renderable, no_wrap=True, overflow="ellipsis", crop=True)
    return console.export_text(styles=False).splitlines(), out.getvalue()


def test_heatmap_9_clusters_30_variables_fits_80_columns() -> None:
    lines, raw = _render(heatmap(_run()))
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    # One line per variable: a wrapped name would take two lines, or split the row.
    rows = [line for line in lines if line.startswith("cat.: Una")]
    assert len(rows) == 30
    # Long names are cut in the middle, not wrapped, and stay distinct.
    names = [row.split("  ")[0] for row in rows]
    assert all("…" in name for name in names) and len(set(names)) == 30
    assert names[17].endswith("número 17")
    assert len(lines) == 1 + 2 + 30 + 2 + K  # title, two header lines, rows, scale and levels, cluster labels
    assert rows[0].split()[-K:] == ["0.00", "0.05", "0.50", "0.99", "1.00", "1.30", "4.00", "12.3", "250"]
    assert rows[1].split()[-K:] == ["0.05", "0.50", "0.99", "1.00", "1.30", "4.00", "12.3", "250", ">999"]
    assert "48;2;33;102;172" in raw and "48;2;178;24;43" in raw  # deep blue and deep red backgrounds
    header = lines[1].split()
    assert header[-K:] == [str(c) for c in range(1, K + 1)]
    assert any("red = low, blue = high" in line for line in lines)
    assert any(line.startswith("levels: high >= 1.25, medium >= 0.75") for line in lines)


def test_heatmap_cells_show_the_index() -> None:
    lines, _ = _render(heatmap(_run(k=3, variables=["Plantas", "Hogar"])))
    plantas = next(line for line in lines if line.startswith("Plantas"))
    assert plantas.split()[1:] == ["0.00", "0.05", "0.50"]
    hogar = next(line for line in lines if line.startswith("Hogar"))
    assert hogar.split()[1:] == ["0.05", "0.50", "0.99"]


def test_cluster_table_fits_80_columns() -> None:
    lines, _ = _render(clusters_table(_run()))
    assert all(len(line) <= 80 for line in lines)
    body = [line for line in lines if "Supermercado" in line]
    assert len(body) == K
    assert all(line.rstrip().endswith("123") for line in body)  # the last column (recency) is never cut
    assert "1,234.56" in body[0] and "137,174" in body[0]


def test_shorten() -> None:
    assert shorten("Plantas", 10) == "Plantas"
    assert shorten("category: Jardín y exterior", 27) == "category: Jardín y exterior"
    assert shorten("category: Jardín y exterior", 25) == "cat.: Jardín y exterior"
    assert shorten("category: Jardín y exterior", 15) == "cat.: J…xterior"
    assert shorten("Un nombre larguísimo sin atributo", 15) == "Un nomb…tributo"
    assert len(shorten("x" * 100, 15)) == 15


def test_diverging_colours() -> None:
    assert propensity_color(1.0) == WHITE
    assert propensity_color(4.0) == BLUE and propensity_color(100.0) == BLUE
    assert propensity_color(0.25) == RED and propensity_color(0.0) == RED
    half_blue, half_red = propensity_color(2.0), propensity_color(0.5)
    assert half_blue[2] > half_blue[0] and half_red[0] > half_red[2]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0.0, "0.00"),
        (1.2549, "1.25"),
        (9.999, "10.0"),
        (12.34, "12.3"),
        (123.4, "123"),
        (5000, ">999"),
    ],
)
def test_format_index(value: float | None, text: str) -> None:
    assert format_index(value) == text
    assert len(format_index(value)) <= 4


def test_html_report_is_self_contained_and_escaped() -> None:
    page = html_report(
        _run(k=2, variables=["<script>alert(1)</script>", "Bebé y niño"], label="A & <b>B</b>")
    )
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "A &amp; &lt;b&gt;B&lt;/b&gt; 1" in page
    assert "Bebé y niño" in page
    assert "<style>" in page and "<link" not in page and "src=" not in page
    assert "background:rgb(" in page
