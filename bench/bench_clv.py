"""`clv score` (targets < 3 s) and `clv predict` (target < 5 s for fit + a million predictions) on the benchmark
shop; predict beside the same summary and BG/NBD fit without grouping identical customers."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import PLEASEPOINT, Figure, loaded_db, python_snippet, timed

PENALIZER = "0"
"""None: the example shop buys by a BG/NBD process (issue 14), so the fit needs no penalty to stay finite (the
old shop's dropout was the same for everyone, which BG/NBD's beta mixture only approaches at infinite a, b)."""

_UNGROUPED_FIT = """
import numpy as np
from pathlib import Path
from pleasepoint_cli.clv.models import BetaGeoFitter
from pleasepoint_cli.clv.predict import build_summary
from pleasepoint_cli.clv.score import latest_order_day
from pleasepoint_cli.store import open_store

with open_store(Path({db!r})) as store:
    build_summary(store, latest_order_day(store))
    s = store.con.execute("SELECT x, t_x_days, T_days FROM clv_summary").fetchnumpy()
BetaGeoFitter(penalizer_coef={penalizer}).fit(np.asarray(s["x"], float), s["t_x_days"] / 7.0, s["T_days"] / 7.0)
"""


def _cli(db: Path, *args: str) -> tuple[float, float, str]:
    return timed([*PLEASEPOINT, "--db", str(db), "-q", *args])


def run() -> list[Figure]:
    db = loaded_db()
    figures = []
    for by in ("state", "rfm"):
        seconds, peak, _ = _cli(db, "clv", "score", "--by", by, "-f", "json")
        figures.append(Figure(f"clv score --by {by}", seconds, peak, target="< 3 s"))
    seconds, peak, out = _cli(
        db, "clv", "predict", "--unit", "weeks", "--penalizer", PENALIZER, "--top", "0", "-f", "json"
    )
    fit = json.loads(out)
    # One-time buyers all share x = t_x = 0, so the exact grid's groups are the repeaters' cells plus one cell
    # per first-purchase day: the figure says how many the fit saw.
    shape = (
        f"{fit['customers']:,} customers, {fit['repeaters'] / fit['customers']:.0%} repeat, "
        f"{fit['groups']:,} groups at {fit['grid_days']} d"
    )
    comparator, _, _ = timed(python_snippet(_UNGROUPED_FIT.format(db=str(db), penalizer=PENALIZER)))
    figures.append(
        Figure(
            f"clv predict (BG/NBD + Gamma-Gamma; {shape})",
            seconds,
            peak,
            "same summary + BG/NBD fit, ungrouped",
            comparator,
            "< 5 s",
        )
    )
    return figures
