"""Ingest of the ~10M-line order history (Parquet and CSV) beside DuckDB's own CREATE TABLE AS of the same file;
and `pleasepoint --help` beside a bare interpreter start."""

from __future__ import annotations

from pathlib import Path

from bench.common import CACHE, PLEASEPOINT, Figure, ensure_shop, measured, python_snippet, timed


def _orders_csv(shop: Path) -> Path:
    """The same order history as CSV (written once from the Parquet file)."""
    target = shop / "orders.csv"
    if not target.exists():
        timed(
            python_snippet(
                f"import duckdb; duckdb.execute(\"COPY (SELECT * FROM read_parquet('{shop / 'orders.parquet'}')) "
                f"TO '{target}' (HEADER)\")"
            )
        )
    return target


def _fresh(name: str) -> Path:
    db = CACHE / name
    db.unlink(missing_ok=True)
    Path(f"{db}.wal").unlink(missing_ok=True)
    return db


ROUNDS = 5


def _ingest_figure(label: str, source: Path, reader: str) -> Figure:
    """Best of five rounds, each the ingest then DuckDB's own load of the same file. A single round measured
    the ingest against a cold page cache and the comparator against a warm one, and moved 10% from run to
    run on this shared machine (best of three still moved 1.35x-1.50x); the best of each side is its cost
    without the machine's noise."""
    ours, theirs = [], []
    for _ in range(ROUNDS):
        db = _fresh("ingest-bench.duckdb")
        ours.append(measured([*PLEASEPOINT, "--db", str(db), "-q", "ingest", "orders", str(source)]))
        comparator_db = _fresh("ingest-comparator.duckdb")
        theirs.append(
            measured(
                python_snippet(
                    f"import duckdb; con = duckdb.connect('{comparator_db}'); "
                    f"con.execute(\"CREATE TABLE t AS SELECT * FROM {reader}('{source}')\"); con.close()"
                )
            )
        )
    return Figure(
        f"ingest orders ({label}, best of {ROUNDS})",
        min(m.seconds for m in ours),
        max(m.peak_mb for m in ours),
        f"CREATE TABLE AS SELECT * FROM {reader}",
        min(m.seconds for m in theirs),
        "<= 1.5x",
        cpu_ratio=min(m.cpu_seconds for m in ours) / min(m.cpu_seconds for m in theirs),
    )


def run() -> list[Figure]:
    shop = ensure_shop()
    figures = [
        _ingest_figure("Parquet", shop / "orders.parquet", "read_parquet"),
        _ingest_figure("CSV", _orders_csv(shop), "read_csv"),
    ]
    help_seconds = min(timed([*PLEASEPOINT, "--help"])[0] for _ in range(5))
    bare = min(timed(python_snippet("pass"))[0] for _ in range(5))
    figures.append(
        Figure(
            "pleasepoint --help (best of 5)",
            help_seconds,
            timed([*PLEASEPOINT, "--help"])[1],
            "python -c pass",
            bare,
            "< 0.3 s",
        )
    )
    return figures
