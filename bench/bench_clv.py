"""`clv score` (targets < 3 s) and `clv predict` (target < 5 s for fit + a million predictions) on the benchmark
shop; predict beside the same summary and BG/NBD fit without grouping identical customers."""

from __future__ import annotations

from pathlib import Path

from bench.common import PLEASEPOINT, Figure, loaded_db, python_snippet, timed

PENALIZER = "0.001"

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


def _cli(db: Path, *args: str) -> tuple[float, float]:
    seconds, peak, _ = timed([*PLEASEPOINT, "--db", str(db), "-q", *args])
    return seconds, peak


def run() -> list[Figure]:
    db = loaded_db()
    figures = []
    for by in ("state", "rfm"):
        seconds, peak = _cli(db, "clv", "score", "--by", by, "-f", "json")
        figures.append(Figure(f"clv score --by {by}", seconds, peak, target="< 3 s"))
    # The example shop's dropout is the same for everyone, which BG/NBD's beta mixture can only approach at
    # infinite a and b: a small penalizer keeps the fit finite (docs/clv.md), in both runs alike.
    seconds, peak = _cli(
        db, "clv", "predict", "--unit", "weeks", "--penalizer", PENALIZER, "--top", "0", "-f", "json"
    )
    comparator, _, _ = timed(python_snippet(_UNGROUPED_FIT.format(db=str(db), penalizer=PENALIZER)))
    figures.append(
        Figure(
            "clv predict (BG/NBD + Gamma-Gamma, all customers)",
            seconds,
            peak,
            "same summary + BG/NBD fit, ungrouped",
            comparator,
            "< 5 s",
        )
    )
    return figures
