"""Outputs that cannot be written (issue 8, item 15): a full disk, /dev/full, a closed or full stdout, a
folder given as a file. One-line errors, exit 1, no traceback and no partial file left behind."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src"
HEADER = "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n"


def _command(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pleasepoint_cli", "--db", str(db), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}


def _one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.duckdb"
    orders = tmp_path / "seed.csv"
    orders.write_text(HEADER + "O1,C1,2024-01-05,P1,1,10.5\n", encoding="utf-8")
    subprocess.run(_command(path, "-q", "ingest", "orders", str(orders)), env=_env(), check=True)
    return path


def test_a_full_stdout_is_a_one_line_error(db: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            _command(db, "persona", "list", "--format", "json"),
            stdout=full,
            stderr=subprocess.PIPE,
            env=_env(),
        )
    assert done.returncode == 1
    _one_line_error(done.stderr.decode())
    assert "No space left on device" in done.stderr.decode()


def test_a_closed_stdout_is_a_one_line_error(db: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: as `| head -c 10` after it exits
    try:
        done = subprocess.run(
            _command(db, "persona", "list", "--format", "json"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=_env(),
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    _one_line_error(done.stderr.decode())
    assert "Broken pipe" in done.stderr.decode()


def test_rejects_to_dev_full_is_a_one_line_error_and_loads_nothing(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "O2,C1,2024-01-05,P1,muchos,10.5\n", encoding="utf-8")
    done = subprocess.run(
        _command(db, "ingest", "orders", str(bad), "--rejects", "/dev/full"),
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 1
    _one_line_error(done.stderr)
    assert "--rejects /dev/full: cannot write it (No space left on device)" in done.stderr
    counted = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import duckdb; print(duckdb.connect({str(db)!r}).execute('SELECT count(*) FROM ingests').fetchall()[0][0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert counted.stdout.strip() == "1"  # the seed only


def _small_files() -> None:
    """In the child: files may not grow past 2 MB (EFBIG instead of SIGXFSZ), like a disk that fills up."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))


def test_a_disk_that_fills_up_leaves_no_partial_rejects_file(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(40_000):
            f.write(f"X{i},C{i},2024-01-05,P1,muchos,10.5 {'x' * 40}\n")
    rejects = tmp_path / "out" / "rejects.csv"
    rejects.parent.mkdir()
    done = subprocess.run(
        _command(db, "ingest", "orders", str(bad), "--rejects", str(rejects)),
        capture_output=True,
        text=True,
        env=_env(),
        preexec_fn=_small_files,
    )
    assert done.returncode == 1, done.stderr
    _one_line_error(done.stderr)
    assert f"--rejects {rejects}: cannot write it (File too large)" in done.stderr
    assert list(rejects.parent.iterdir()) == []


def test_out_to_a_folder_is_refused(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "O2,C1,2024-01-05,P1,muchos,10.5\n", encoding="utf-8")
    done = subprocess.run(
        _command(db, "ingest", "orders", str(bad), "--rejects", str(tmp_path)),
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 1
    _one_line_error(done.stderr)
    assert "is a folder; give a file name" in done.stderr


def test_out_on_a_full_disk_or_dev_full_leaves_nothing(shop_path: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pleasepoint_cli.cli import app

    made = CliRunner().invoke(app, ["--db", str(shop_path), "persona", "run", "-k", "3", "--format", "json"])
    assert made.exit_code == 0, made.output
    target = tmp_path / "exports" / "assignments.csv"
    target.parent.mkdir()
    done = subprocess.run(
        _command(shop_path, "persona", "export", "latest", "--out", str(target)),
        capture_output=True,
        text=True,
        env=_env(),
        preexec_fn=lambda: (
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
            resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 10, 16 << 10)),
        ),
    )
    assert done.returncode == 1, done.stderr
    _one_line_error(done.stderr)
    assert f"--out {target}: cannot write it" in done.stderr
    assert list(target.parent.iterdir()) == []
    shown = subprocess.run(
        _command(shop_path, "persona", "show", "latest", "--html", "/dev/full", "--format", "json"),
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert shown.returncode == 1
    _one_line_error(shown.stderr)
    assert "--html /dev/full: cannot write it (No space left on device)" in shown.stderr


def test_customers_export_to_dev_full_is_a_one_line_error(db: Path, tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,email\nC1,ana@example.com\n", encoding="utf-8")
    subprocess.run(_command(db, "-q", "ingest", "customers", str(customers)), env=_env(), check=True)
    done = subprocess.run(
        _command(db, "customers", "export", "C1", "--out", "/dev/full"),
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 1
    _one_line_error(done.stderr)
    assert "--out /dev/full: cannot write it (No space left on device)" in done.stderr
