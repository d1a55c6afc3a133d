"""Shared fixtures: a fresh database in tmp_path for every test, a fixed terminal, the example shop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.store import Store, open_store

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder, with its own database and an 80-column terminal."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLEASEPOINT_DB", str(tmp_path / "test.duckdb"))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """An open, migrated, empty store."""
    with open_store(db_path) as s:
        yield s


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def shop_files(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The example shop at a small seeded size (2,000 customers), generated once per test session."""
    from pleasepoint_cli.demo.generator import generate_shop

    return generate_shop(tmp_path_factory.mktemp("shop"), customers=2000, seed=42)


@pytest.fixture(scope="session")
def shop_db(tmp_path_factory: pytest.TempPathFactory, shop_files) -> Path:  # type: ignore[no-untyped-def]
    """A database with the small example shop loaded (copy it before writing to it)."""
    from pleasepoint_cli.ingest.loader import ingest_file

    path = tmp_path_factory.mktemp("shopdb") / "shop.duckdb"
    with open_store(path) as s:
        for entity, file in (
            ("stores", shop_files.stores),
            ("products", shop_files.products),
            ("customers", shop_files.customers),
            ("orders", shop_files.orders),
        ):
            ingest_file(s, entity, file)
    return path


@pytest.fixture
def shop_store(shop_db: Path, db_path: Path) -> Iterator[Store]:
    """A private, writable copy of the loaded example shop (also the test's $PLEASEPOINT_DB)."""
    import shutil

    shutil.copy(shop_db, db_path)
    with open_store(db_path) as s:
        yield s


@pytest.fixture
def shop_path(shop_db: Path, db_path: Path) -> Path:
    """A private copy of the loaded example shop at the test's $PLEASEPOINT_DB, closed (for CLI tests)."""
    import shutil

    shutil.copy(shop_db, db_path)
    return db_path
