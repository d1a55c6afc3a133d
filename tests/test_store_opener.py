"""The opener: a long job holds the DuckDB file only during each step, and read-only commands are read-only."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaign_data import example_shop_with_personas
from pleasepoint_cli.campaign.model import load_campaign
from pleasepoint_cli.campaign.prepare import prepare_campaign
from pleasepoint_cli.cli import app
from pleasepoint_cli.config import Settings
from pleasepoint_cli.store.opener import StoreOpener

EXAMPLES = Path(__file__).parents[1] / "examples"
NEWSLETTER = EXAMPLES / "campaigns" / "newsletter_septiembre.yaml"
AS_OF = "2026-06-30"

WRITER = """
import sys
from pathlib import Path
from pleasepoint_cli.errors import StoreBusyError
from pleasepoint_cli.store import open_store
try:
    with open_store(Path(sys.argv[1]), lock_timeout=0) as store:
        store.execute("INSERT INTO stores (store_id, name) VALUES (?, 'between steps')", [sys.argv[2]])
except StoreBusyError:
    sys.exit(75)
"""

READER = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def personas_db(shop_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_shop_with_personas(shop_db, tmp_path_factory.mktemp("opener-personas"))


@pytest.fixture
def shop(personas_db: Path, db_path: Path) -> Path:
    shutil.copy(personas_db, db_path)
    return db_path


def _write_from_another_process(db: Path, store_id: str) -> int:
    return subprocess.run([sys.executable, "-c", WRITER, str(db), store_id], timeout=120).returncode


def test_a_job_through_the_opener_frees_the_file_between_its_steps(shop: Path) -> None:
    """Render a campaign's recipients in batches; between two batches another process writes and finishes."""
    from datetime import date

    opener = StoreOpener(shop, lock_timeout=5)
    campaign = load_campaign(NEWSLETTER)
    with opener.read() as store:
        prepared = prepare_campaign(store, campaign, Settings(), date.fromisoformat(AS_OF))
        recipients = prepared.assign(store)
        # Inside a step the file is held: a writer that does not wait is turned away (exit 75).
        assert _write_from_another_process(shop, "inside") == 75
    batches = [recipients[:50], recipients[50:100]]
    events: list[str] = []
    rendered = 0
    for number, batch in enumerate(batches, start=1):
        with opener.read() as store:
            rendered += len(list(prepared.render_batch(store, batch)))
        events.append(f"step {number} done")
        if number == 1:
            code = _write_from_another_process(shop, "between")
            events.append(f"writer exit {code}")
    assert events == ["step 1 done", "writer exit 0", "step 2 done"]
    assert rendered == sum(len(b) for b in batches) == 100
    with opener.read() as store:
        assert store.scalar("SELECT name FROM stores WHERE store_id = 'between'") == "between steps"
        assert store.scalar("SELECT count(*) FROM stores WHERE store_id = 'inside'") == 0


def test_validate_and_preview_work_beside_another_processes_read_only_connection(
    shop: Path, runner: CliRunner
) -> None:
    with StoreOpener(shop).read() as store:
        customer = str(
            store.scalar(
                "SELECT customer_id FROM customers WHERE email_consent AND email LIKE '%_@%.%' "
                "ORDER BY customer_id LIMIT 1"
            )
        )
    holder = subprocess.Popen(
        [sys.executable, "-c", READER, str(shop)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        validated = runner.invoke(app, ["campaign", "validate", str(NEWSLETTER), "--as-of", AS_OF])
        assert validated.exit_code == 0, validated.output
        shown = runner.invoke(
            app, ["campaign", "preview", str(NEWSLETTER), "--customer", customer, "--as-of", AS_OF]
        )
        assert shown.exit_code == 0, shown.output
        # A write command, by contrast, cannot open the file while the other process holds it.
        busy = runner.invoke(app, ["--lock-timeout", "0", "enrich", "cluster", "1", "1", "segmento=x"])
        assert busy.exit_code == 75, busy.output
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_corrupt_file_and_a_failing_query_exit_1_with_one_line(db_path: Path, runner: CliRunner) -> None:
    import random

    db_path.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(300_000)))
    corrupt = runner.invoke(app, ["persona", "list"])
    assert corrupt.exit_code == 1
    assert corrupt.output.startswith("error: ") and corrupt.output.count("\n") == 1, corrupt.output
    assert "Traceback" not in corrupt.output

    db_path.unlink()
    from pleasepoint_cli.store import open_store

    with open_store(db_path) as store:
        store.execute("DROP TABLE persona_clusters")
        store.execute(
            "INSERT INTO persona_runs (run_id, name, created_at, k, customers, manifest) "
            "VALUES (1, 'x', now(), 2, 0, '{}')"
        )
    failing = runner.invoke(app, ["persona", "show", "1"])
    assert failing.exit_code == 1, failing.output
    assert failing.output.startswith("error: ") and failing.output.count("\n") == 1, failing.output


def test_a_read_step_migrates_a_schema_that_is_behind_first(tmp_path: Path) -> None:
    """After an upgrade, cron's first `automate tick` reads through the opener: the new schema must be there
    (a read-only open of a file behind it failed on `purchase_lines`)."""
    from pleasepoint_cli.store import open_store
    from pleasepoint_cli.store.migrations import MIGRATIONS

    path = tmp_path / "old.duckdb"
    with open_store(path) as store:
        store.execute("DROP VIEW purchase_lines")
        store.execute("DROP TABLE purchase_statuses")
        store.execute("DELETE FROM schema_migrations WHERE name = ?", [MIGRATIONS[-1].name])
    with StoreOpener(path).read() as store:
        assert store.scalar("SELECT count(*) FROM purchase_lines") == 0
        assert store.scalar("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)
