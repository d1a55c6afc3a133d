"""Shared bench plumbing: the cached million-customer shop, timing a subprocess with its peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("PLEASEPOINT_BENCH_CACHE", Path(__file__).parent / ".cache"))
CUSTOMERS = int(os.environ.get("PLEASEPOINT_BENCH_CUSTOMERS", "1000000"))
SEED = 7
GENERATION = 2
"""Bumped when the example shop's generator changes what it makes, so a cache of an older shop is not reused:
1 was the steady-buyer shop, 2 the buy-till-you-die shop with the dirt of real exports (issue 14)."""
TAG = f"{CUSTOMERS}-{SEED}-g{GENERATION}"
PLEASEPOINT = [sys.executable, "-m", "pleasepoint_cli"]


@dataclass
class Figure:
    """One measured step beside its comparator from the same run."""

    step: str
    seconds: float
    peak_mb: float
    comparator: str = ""
    comparator_seconds: float | None = None
    target: str = ""
    cpu_ratio: float | None = None  # CPU seconds over the comparator's, where both were measured

    @property
    def ratio(self) -> float | None:
        if not self.comparator_seconds:
            return None
        return self.seconds / self.comparator_seconds


@dataclass
class Measured:
    """One child process: wall seconds, peak resident MB, CPU seconds (user + system, every thread) and stdout."""

    seconds: float
    peak_mb: float
    cpu_seconds: float
    stdout: str


def measured(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run a command and measure it. On a shared machine its CPU seconds move less with the load than its wall
    time, so a ratio of CPU seconds beside the wall ratio says whether a gap is work or waiting."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout = process.stdout.read() if process.stdout else ""
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-2000:]}")
    return Measured(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, stdout)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command; return wall seconds, its peak resident memory in MB, and its stdout."""
    result = measured(command, env)
    return result.seconds, result.peak_mb, result.stdout


def python_snippet(code: str) -> list[str]:
    """A command that runs a Python snippet in a fresh interpreter (for comparators)."""
    return [sys.executable, "-c", code]


def shop_dir() -> Path:
    return CACHE / f"shop-{TAG}"


def ensure_shop() -> Path:
    """Generate the benchmark shop once (cached outside git); return its folder."""
    directory = shop_dir()
    marker = directory / ".complete"
    if not marker.exists():
        directory.mkdir(parents=True, exist_ok=True)
        print(f"generating the {CUSTOMERS:,}-customer shop in {directory} (once)...", file=sys.stderr)
        # In a child process: the bench process stays small, so the children it forks report their own peak.
        seconds, peak, _ = timed(
            python_snippet(
                "from pathlib import Path; from pleasepoint_cli.demo.generator import generate_shop; "
                f"generate_shop(Path({str(directory)!r}), customers={CUSTOMERS}, seed={SEED}, orders_format='parquet')"
            )
        )
        print(f"  done in {seconds:.1f} s, peak {peak:.0f} MB", file=sys.stderr)
        marker.touch()
    return directory


def loaded_db() -> Path:
    """A database with the benchmark shop loaded (made once, reused by the analysis benches)."""
    directory = ensure_shop()
    db = CACHE / f"bench-{TAG}.duckdb"
    marker = CACHE / f"bench-{TAG}.loaded"
    if not marker.exists():
        db.unlink(missing_ok=True)
        for entity, name in (
            ("stores", "stores.csv"),
            ("products", "products.csv"),
            ("customers", "customers.csv"),
            ("orders", "orders.parquet"),
        ):
            timed([*PLEASEPOINT, "--db", str(db), "-q", "ingest", entity, str(directory / name)])
        marker.touch()
    return db


def enriched_db() -> Path:
    """The loaded shop made ready for sending (made once, cached beside it): a persona run (k=7, the seed of
    bench_persona), its propensity levels (`enrich levels latest`) and the recency states as the
    `hibernation` attribute (`clv enrich --by state`), as the guide's win-back and the newsletter need."""
    source = loaded_db()
    db = CACHE / f"bench-{TAG}-enriched.duckdb"
    marker = CACHE / f"bench-{TAG}-enriched.done"
    if not marker.exists():
        import shutil

        db.unlink(missing_ok=True)
        Path(f"{db}.wal").unlink(missing_ok=True)
        shutil.copy(source, db)
        for step in (
            ["persona", "run", "-k", "7", "--seed", "1"],
            ["enrich", "levels", "latest"],
            ["clv", "enrich", "--by", "state", "--key", "hibernation"],
        ):
            timed([*PLEASEPOINT, "--db", str(db), "-q", *step])
        marker.touch()
    return db


def private_copy(source: Path, folder: Path, name: str = "pleasepoint.duckdb") -> Path:
    """A copy of a cached database in `folder` (its ops store, key and locks are then made there too)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copy(source, target)
    return target
