"""The schema as ordered, named migrations, recorded in `schema_migrations` and applied when the store opens.

Never edit a migration that has shipped: add a new one at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pleasepoint_cli.errors import StoreError

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store


def _purchase_lines(store: Store) -> None:
    """Statuses stored canonical (completed, cancelled, returned, pending), the statuses that count as
    purchases (`ingest.purchase_statuses`, recorded by each ingest), and the one view of the order lines every
    analysis reads: purchases, and returns (negative quantity), which net the spend."""
    from pleasepoint_cli.ingest.statuses import PURCHASE_LINES_VIEW, canonical_status_sql

    store.con.execute(
        f"UPDATE order_lines SET status = {canonical_status_sql('status')} WHERE status IS NOT NULL"
    )
    store.con.execute("CREATE TABLE purchase_statuses (status VARCHAR PRIMARY KEY)")
    store.con.execute("INSERT INTO purchase_statuses VALUES ('completed')")
    store.con.execute(PURCHASE_LINES_VIEW)


@dataclass(frozen=True)
class Migration:
    """One schema step: a unique name, the SQL statements that make it, and an optional Python step after them
    (for what SQL alone cannot do, such as starting a sequence at a value read from the data)."""

    name: str
    sql: str
    step: Callable[[Store], None] | None = None


def _start_run_ids_from_a_sequence(store: Store) -> None:
    # `max(run_id) + 1` reused the id of a run whose header row a crash had lost; a sequence never goes back.
    start = int(store.scalar("SELECT coalesce(max(run_id), 0) + 1 FROM persona_runs"))
    store.execute(f"CREATE SEQUENCE run_id_seq START {start}")


def _move_signing_key_to_a_file(store: Store) -> None:
    # The key that signs unsubscribe links moves beside the database, so a process that cannot open DuckDB
    # (the tracking server while an analyst holds the file) can verify links; links already sent keep working.
    from pleasepoint_cli.keys import key_path, write_key_file

    value = store.scalar("SELECT value FROM secrets WHERE name = 'unsubscribe_hmac'")
    if value is None:
        return
    if not write_key_file(store.path, str(value)):
        existing = key_path(store.path).read_text(encoding="ascii").strip()
        if existing != str(value):
            raise StoreError(
                f"{key_path(store.path)} holds another signing key than the one this database signed its "
                "links with. Move that file away and open the database again."
            )
    store.execute("DELETE FROM secrets WHERE name = 'unsubscribe_hmac'")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_shop",
        """
        CREATE TABLE customers (
            customer_id   VARCHAR PRIMARY KEY,
            email         VARCHAR,
            first_name    VARCHAR,
            last_name     VARCHAR,
            gender        VARCHAR,
            birth_date    DATE,
            phone         VARCHAR,
            postal_code   VARCHAR,
            city          VARCHAR,
            country       VARCHAR,
            lat           DOUBLE,
            lon           DOUBLE,
            email_consent BOOLEAN,
            consent_at    TIMESTAMP,
            created_at    TIMESTAMP,
            language      VARCHAR,
            erased_at     TIMESTAMP,
            updated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE products (
            product_id  VARCHAR PRIMARY KEY,
            name        VARCHAR,
            category    VARCHAR,
            price       DOUBLE,
            url         VARCHAR,
            image_url   VARCHAR,
            offer_price DOUBLE,
            offer_from  DATE,
            offer_to    DATE,
            updated_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        -- Descriptive product columns beyond the canonical ones (brand, family...): analysis attributes.
        CREATE TABLE product_attributes (
            product_id VARCHAR NOT NULL,
            key        VARCHAR NOT NULL,
            value      VARCHAR,
            PRIMARY KEY (product_id, key)
        );
        CREATE TABLE stores (
            store_id    VARCHAR PRIMARY KEY,
            name        VARCHAR,
            address     VARCHAR,
            city        VARCHAR,
            postal_code VARCHAR,
            lat         DOUBLE,
            lon         DOUBLE
        );
        -- Order lines carry no key of their own: an order is replaced whole, by order_id, on re-ingest.
        CREATE TABLE order_lines (
            order_id    VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            ordered_at  TIMESTAMP NOT NULL,
            product_id  VARCHAR NOT NULL,
            quantity    DOUBLE NOT NULL,
            unit_price  DOUBLE NOT NULL,
            amount      DOUBLE NOT NULL,
            store_id    VARCHAR,
            status      VARCHAR,
            ingest_id   BIGINT
        );
        CREATE SEQUENCE ingest_id_seq START 1;
        CREATE TABLE ingests (
            ingest_id   BIGINT PRIMARY KEY,
            entity      VARCHAR NOT NULL,
            file        VARCHAR NOT NULL,
            file_sha256 VARCHAR,
            started_at  TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            rows_read   BIGINT NOT NULL,
            inserted    BIGINT NOT NULL,
            updated     BIGINT NOT NULL,
            rejected    BIGINT NOT NULL,
            warnings    JSON
        );
        """,
    ),
    Migration(
        "0002_customer_attributes",
        """
        -- A customer's current attributes: key -> value, with where each came from and when.
        CREATE TABLE customer_attributes (
            customer_id VARCHAR NOT NULL,
            key         VARCHAR NOT NULL,
            value       VARCHAR,
            source      VARCHAR NOT NULL,
            set_at      TIMESTAMP NOT NULL,
            change_id   BIGINT,
            PRIMARY KEY (customer_id, key)
        );
        -- One row per batch of attribute changes (an ingest, an enrichment, a CLV write, a manual edit).
        CREATE SEQUENCE change_id_seq START 1;
        CREATE TABLE attribute_changes (
            change_id   BIGINT PRIMARY KEY,
            kind        VARCHAR NOT NULL,
            source      VARCHAR NOT NULL,
            description VARCHAR,
            spec        JSON,
            made_at     TIMESTAMP NOT NULL,
            undone_at   TIMESTAMP,
            undone_by   BIGINT
        );
        -- Every value a key has had: old -> new per customer, so any change can be listed and undone.
        CREATE TABLE attribute_history (
            change_id   BIGINT NOT NULL,
            customer_id VARCHAR NOT NULL,
            key         VARCHAR NOT NULL,
            old_value   VARCHAR,
            old_source  VARCHAR,
            new_value   VARCHAR,
            changed_at  TIMESTAMP NOT NULL
        );
        """,
    ),
    Migration(
        "0003_persona_runs",
        """
        CREATE TABLE persona_runs (
            run_id     INTEGER PRIMARY KEY,
            name       VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            k          INTEGER NOT NULL,
            customers  BIGINT NOT NULL,
            manifest   JSON NOT NULL
        );
        CREATE TABLE persona_clusters (
            run_id              INTEGER NOT NULL,
            cluster             INTEGER NOT NULL,
            label               VARCHAR NOT NULL,
            customers           BIGINT NOT NULL,
            share_customers     DOUBLE NOT NULL,
            share_revenue       DOUBLE NOT NULL,
            orders_per_customer DOUBLE NOT NULL,
            avg_ticket          DOUBLE NOT NULL,
            mean_recency_days   DOUBLE NOT NULL,
            centroid            DOUBLE[] NOT NULL,
            PRIMARY KEY (run_id, cluster)
        );
        CREATE TABLE persona_profile (
            run_id           INTEGER NOT NULL,
            cluster          INTEGER NOT NULL,
            variable         VARCHAR NOT NULL,
            position         INTEGER NOT NULL,
            cluster_value    DOUBLE NOT NULL,
            population_value DOUBLE NOT NULL,
            propensity       DOUBLE,
            level            VARCHAR NOT NULL,
            PRIMARY KEY (run_id, cluster, variable)
        );
        CREATE TABLE persona_assignments (
            run_id      INTEGER NOT NULL,
            customer_id VARCHAR NOT NULL,
            cluster     INTEGER NOT NULL
        );
        """,
    ),
    Migration(
        "0004_suppressions",
        """
        -- Addresses never to mail: unsubscribed, bounced, complained, manual, or erased (hash only).
        CREATE TABLE suppressions (
            email_sha256 VARCHAR PRIMARY KEY,
            email        VARCHAR,
            reason       VARCHAR NOT NULL,
            source       VARCHAR,
            created_at   TIMESTAMP NOT NULL
        );
        """,
    ),
    Migration(
        "0005_secrets",
        """
        -- Per-database secrets (the key that signs unsubscribe links when $PLEASEPOINT_SECRET is unset).
        -- Never exported, printed or logged.
        CREATE TABLE secrets (
            name       VARCHAR PRIMARY KEY,
            value      VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        """,
    ),
    Migration(
        "0006_order_lines_checked_by_ingest",
        """
        -- Ingest inserts an order file in one pass and checks the inserted lines before it commits (a line
        -- with an empty field is deleted, or the load rolls back), so the table-level NOT NULLs would only
        -- turn that check into an aborted transaction.
        ALTER TABLE order_lines ALTER COLUMN order_id DROP NOT NULL;
        ALTER TABLE order_lines ALTER COLUMN customer_id DROP NOT NULL;
        ALTER TABLE order_lines ALTER COLUMN ordered_at DROP NOT NULL;
        ALTER TABLE order_lines ALTER COLUMN product_id DROP NOT NULL;
        ALTER TABLE order_lines ALTER COLUMN quantity DROP NOT NULL;
        ALTER TABLE order_lines ALTER COLUMN unit_price DROP NOT NULL;
        ALTER TABLE order_lines ALTER COLUMN amount DROP NOT NULL;
        """,
    ),
    Migration("0007_run_id_sequence", "SELECT 1", _start_run_ids_from_a_sequence),
    Migration("0008_signing_key_in_a_file", "SELECT 1", _move_signing_key_to_a_file),
    Migration("0009_purchase_lines", "SELECT 1", _purchase_lines),
)


def check_is_pleasepoint(store: Store) -> None:
    """Refuse a DuckDB file written by another application before anything is written to it."""
    names = {
        str(row["table_name"])
        for row in store.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database()"
        )
    }
    if names and "schema_migrations" not in names:
        raise StoreError(
            f"{store.path} is a DuckDB file of another application (tables: {', '.join(sorted(names)[:5])}), "
            "not a pleasepoint database. Pass another --db, or run `pleasepoint init` in a new folder."
        )


def pending_migrations(store: Store) -> list[str]:
    """The migrations this file has not seen yet (all of them for a file without the table)."""
    exists = store.scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database() AND table_name = 'schema_migrations'"
    )
    done = {str(r["name"]) for r in store.rows("SELECT name FROM schema_migrations")} if exists else set()
    return [m.name for m in MIGRATIONS if m.name not in done]


def apply_migrations(store: Store) -> list[str]:
    """Apply, in order and each in its own transaction, every migration the file has not seen yet."""
    import duckdb

    con = store.con
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
        )
        done = {row[0] for row in con.execute("SELECT name FROM schema_migrations").fetchall()}
    except duckdb.Error as e:
        raise StoreError(f"{store.path}: cannot read the schema version: {e}") from e
    known = {m.name for m in MIGRATIONS}
    if unknown := sorted(done - known):
        raise StoreError(
            f"{store.path}: the database was written by a newer pleasepoint (migrations {', '.join(unknown)}). "
            "Upgrade pleasepoint to open it."
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.name in done:
            continue
        try:
            with store.transaction():
                con.execute(migration.sql)
                if migration.step is not None:
                    migration.step(store)
                con.execute("INSERT INTO schema_migrations (name) VALUES (?)", [migration.name])
        except duckdb.Error as e:
            raise StoreError(f"{store.path}: migration {migration.name} failed: {e}") from e
        applied.append(migration.name)
    return applied
