"""The heatmap reads right on every colour system (issue 13 item 15) and narrow headers say "<1%" (item 16)."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from pleasepoint_cli.cli.persona_view import SIXTEEN, cell_style, heatmap
from pleasepoint_cli.persona.render import share_label
from test_persona_render import _run

RISING = [0.05, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.6, 2.5, 4.0, 20.0]


def _printed(system: str, run: object) -> tuple[list[str], str]:
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=system, force_terminal=True, record=True)  # type: ignore[arg-type]
    console.print(heatmap(run, 80, console.color_system), no_wrap=True, overflow="ellipsis", crop=True)  # type: ignore[arg-type]
    return console.export_text(styles=False).splitlines(), out.getvalue()


@pytest.mark.parametrize("system", ["truecolor", "256", "standard"])
def test_every_cell_shows_its_value_on_every_colour_system(system: str) -> None:
    lines, raw = _printed(system, _run(k=3, variables=["Plantas", "Hogar"]))
    plantas = next(line for line in lines if line.startswith("Plantas"))
    assert plantas.split()[1:] == ["0.00", "0.05", "0.50"]
    if system == "256":
        assert "48;5;" in raw and "48;2;" not in raw
    if system == "standard":
        assert "48;5;" not in raw and "48;2;" not in raw


def test_sixteen_colours_are_monotone_blue_to_red_and_never_grey() -> None:
    names = [cell_style(p, "standard").split(" on ")[1] for p in RISING]
    positions = [SIXTEEN.index(n) for n in names]
    assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == len(SIXTEEN) - 1
    assert cell_style(1.3, "standard") == cell_style(1.3, "standard")
    assert not any("grey" in n or n == "black" for n in names)


def test_256_colours_stay_in_the_colour_cube_and_are_monotone() -> None:
    indices = [int(re.search(r"color\((\d+)\)", cell_style(p, "256")).group(1)) for p in RISING]  # type: ignore[union-attr]
    assert all(16 <= i < 232 for i in indices)  # never the grey ramp (232-255) Rich's downsampling picks
    cube = [((i - 16) // 36, (i - 16) // 6 % 6, (i - 16) % 6) for i in indices]
    blue_minus_red = [b - r for r, _, b in cube]
    assert blue_minus_red == sorted(blue_minus_red) and blue_minus_red[0] < 0 < blue_minus_red[-1]


def test_a_share_under_one_percent_shows_as_under_1() -> None:
    assert [share_label(s) for s in (0.0004, 0.004, 0.006, 0.25)] == ["<1%", "<1%", "1%", "25%"]
    run = _run(k=3, variables=["Plantas"])
    run = replace(run, clusters=[replace(c, share_customers=0.003) for c in run.clusters])
    lines, _ = _printed("truecolor", run)
    assert lines[2].split()[-3:] == ["<1%", "<1%", "<1%"]
