"""All or nothing when the process is killed during COMMIT (issue 8, item 1; pitfalls.md).

DuckDB 1.5.6 recovered the big insert of a transaction and lost its small rows when killed at the first fsync
of the commit, once a full row group (122,880 rows) had been written. Each writer below is killed with
SIGKILL at its n-th fsync (n = 1, 2, 3) by strace's fault injection, on data that does not compress (random
strings), and the database must then hold exactly what it held before, or exactly what an uninterrupted run
leaves: never a mix. Without `-f` and `fdatasync` the kill would land after the commit and prove nothing.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pleasepoint_cli.store import open_store

ROW_GROUP = 122_880
CUSTOMERS = ROW_GROUP + 10_000
CATEGORIES = ("Supermercado ECO", "Huerto ECO", "Bebé y niño", "Hogar", "Plantas")

STRACE = shutil.which("strace")
if STRACE is None:
    if os.environ.get("CI") == "true":
        pytest.fail("strace is required for the crash-at-commit tests under CI=true (apt-get install strace)")
    pytest.skip("strace is not installed: the crash-at-commit tests need it", allow_module_level=True)


def _random_id(rng: random.Random, n: int = 16) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=n))


def _write_orders(path: Path, rng: random.Random, customers: Sequence[str], products: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("order_id,customer_id,ordered_at,product_id,quantity,unit_price\n")
        for customer in customers:
            for _ in range(rng.randint(1, 2)):
                day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                product = rng.choice(products)
                price = f"{rng.uniform(1, 80):.2f}"
                f.write(f"{_random_id(rng)},{customer},{day},{product},{rng.randint(1, 3)},{price}\n")


def _pleasepoint(db: Path, *args: str, kill_at_fsync: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pleasepoint_cli", "--db", str(db), "--quiet", *args]
    if kill_at_fsync is not None:
        assert STRACE is not None
        inject = f"inject=fsync,fdatasync:signal=SIGKILL:when={kill_at_fsync}"
        command = [
            STRACE,
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=fsync,fdatasync",
            "-e",
            inject,
            "--",
            *command,
        ]
    env = {**os.environ, "PLEASEPOINT_SECRET": "crash-tests"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=db.parent, timeout=600)


def _snapshot(db: Path) -> dict[str, int]:
    """Row counts of every table (opening the file replays its WAL, as the next command would)."""
    with open_store(db, migrate=False) as store:
        tables = [
            str(r["table_name"])
            for r in store.rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            )
        ]
        return {t: int(store.scalar(f'SELECT count(*) FROM "{t}"')) for t in sorted(tables)}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A database with 132,880 customers of random ids and a persona run, plus a second orders file."""
    root = tmp_path_factory.mktemp("crash")
    rng = random.Random(8)
    products = [f"P{i:03d}" for i in range(40)]
    (root / "products.csv").write_text(
        "product_id,name,category\n"
        + "".join(f"{p},Producto {p},{CATEGORIES[i % len(CATEGORIES)]}\n" for i, p in enumerate(products)),
        encoding="utf-8",
    )
    customers = [_random_id(rng, 12) for _ in range(CUSTOMERS)]
    _write_orders(root / "orders.csv", rng, customers, products)
    _write_orders(root / "more_orders.csv", rng, customers, products)
    db = root / "base.duckdb"
    for args in (
        ("ingest", "products", str(root / "products.csv")),
        ("ingest", "orders", str(root / "orders.csv")),
    ):
        done = _pleasepoint(db, *args)
        assert done.returncode == 0, done.stderr
    with_run = root / "with_run.duckdb"
    shutil.copy(db, with_run)
    done = _pleasepoint(with_run, "persona", "run", "-k", "3", "--seed", "1")
    assert done.returncode == 0, done.stderr
    return {"base": db, "with_run": with_run, "root": root}


WRITERS = {
    "ingest orders": ("base", ("ingest", "orders", "{root}/more_orders.csv")),
    "persona run": ("base", ("persona", "run", "-k", "3", "--seed", "2")),
    "enrich levels": ("with_run", ("enrich", "levels", "1")),
    "clv enrich": (
        "base",
        ("clv", "enrich", "--by", "state", "--key", "hibernation", "--as-of", "2025-01-01"),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_kill_during_commit_leaves_all_or_nothing(
    writer: str, prepared: dict[str, Path], tmp_path: Path
) -> None:
    source, template = WRITERS[writer]
    args = [a.format(root=prepared["root"]) for a in template]
    before = _snapshot(prepared[source])

    finished = tmp_path / "finished.duckdb"
    shutil.copy(prepared[source], finished)
    done = _pleasepoint(finished, *args)
    assert done.returncode == 0, done.stderr
    after = _snapshot(finished)
    changed = {t for t in after if after[t] != before.get(t)}
    assert changed, f"{writer} changed no table: the test would prove nothing"
    assert max(after[t] - before.get(t, 0) for t in changed) >= ROW_GROUP, "no full row group was written"

    killed_inside = 0
    for n in (1, 2, 3):
        db = tmp_path / f"killed_{n}.duckdb"
        shutil.copy(prepared[source], db)
        crashed = _pleasepoint(db, *args, kill_at_fsync=n)
        killed_inside += crashed.returncode != 0
        state = _snapshot(db)
        assert state in (before, after), (
            f"{writer} killed at fsync {n} left half a transaction: "
            f"{ {t: (before.get(t), state.get(t), after[t]) for t in after if state.get(t) != after[t]} }"
        )
    assert killed_inside, f"{writer} was never killed: strace injected nothing"
