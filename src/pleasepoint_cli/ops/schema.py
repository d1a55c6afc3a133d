"""The operational store's schema as ordered, named migrations, recorded in `ops_migrations`.

Never edit a migration that has shipped: add a new one. Each owner appends to its own tuple (names are prefixed
by owner, so two branches never pick the same name); `MIGRATIONS` applies them in the order listed below, and a
migration is applied once per file whatever order the branches landed in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: a unique name and the SQL statements that make it."""

    name: str
    sql: str


# Send ledger and suppression list (helper "delivery").
DELIVERY_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "delivery_0001_ledger",
        """
        -- One row per message that was planned: a campaign's customer, an automation slot's customer, a test.
        -- status: queued|sending|sent|failed|bounced|suppressed|skipped|capped|deferred|uncertain.
        -- Times are ISO-8601 UTC text.
        CREATE TABLE ledger (
            send_id     TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,          -- 'campaign' | 'automation' | 'test'
            source      TEXT NOT NULL,          -- campaign slug or automation name
            period      TEXT NOT NULL DEFAULT '',  -- '' for a campaign, the slot's UTC instant for an automation
            customer_id TEXT NOT NULL,
            email       TEXT,
            variant     TEXT,
            status      TEXT NOT NULL,
            not_before  TEXT,
            created_at  TEXT NOT NULL,
            claimed_at  TEXT,
            sent_at     TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,
            message_id  TEXT,
            error       TEXT,
            worker      TEXT,
            UNIQUE (kind, source, period, customer_id)
        );
        CREATE INDEX ledger_by_status ON ledger (kind, source, period, status);
        CREATE INDEX ledger_by_customer ON ledger (customer_id);
        CREATE INDEX ledger_by_message_id ON ledger (message_id);
        """,
    ),
    Migration(
        "delivery_0002_suppressions",
        """
        -- Addresses never to mail. The address is normalised (strip, lower-case) before hashing; an erased
        -- person keeps only the hash (email NULL, reason 'erased').
        CREATE TABLE suppressions (
            email_sha256 TEXT PRIMARY KEY,
            email        TEXT,
            reason       TEXT NOT NULL,         -- unsubscribed|bounced|complained|manual|erased
            source       TEXT,
            created_at   TEXT NOT NULL
        );
        """,
    ),
    Migration(
        "delivery_0003_meta",
        """
        -- One-off facts about this store (e.g. that the old DuckDB suppression list was copied in).
        CREATE TABLE ops_meta (
            key   TEXT PRIMARY KEY,
            value TEXT
        );
        """,
    ),
)

# Provider events and tracking hits (helper "events").
EVENTS_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "events_0001_events",
        """
        -- Every delivery and engagement event: provider webhooks and files (`events ingest`) and the tracking
        -- server's own hits (open pixel, click, one-click unsubscribe). kind: delivered|open|click|bounce|
        -- complaint|unsubscribe|deferred; subkind: hard|soft (bounce), machine (open), '' otherwise.
        -- send_id is the ledger row the event was matched to (NULL: unmatched). Times are ISO-8601 UTC text.
        CREATE TABLE events (
            event_id     TEXT PRIMARY KEY,      -- '<provider>:<provider event id>', or 'track:<uuid>'
            provider     TEXT NOT NULL,         -- pleasepoint|sendgrid|mailgun|ses|track
            kind         TEXT NOT NULL,
            subkind      TEXT NOT NULL DEFAULT '',
            send_id      TEXT,
            message_id   TEXT,
            email_sha256 TEXT,
            url          TEXT,
            occurred_at  TEXT NOT NULL,
            received_at  TEXT NOT NULL,
            raw          TEXT
        );
        CREATE INDEX events_by_send ON events (send_id, kind);
        CREATE INDEX events_by_time ON events (occurred_at);
        CREATE INDEX events_by_email ON events (email_sha256);
        -- Mailgun webhook tokens already seen: a reused token is a replay and is refused.
        CREATE TABLE webhook_tokens (
            token    TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            seen_at  TEXT NOT NULL
        );
        """,
    ),
)

# Automation state and log (helper "automate").
AUTOMATE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "automate_0001_state",
        """
        -- One row per automation that ever ticked or was toggled: the instant of its last completed tick
        -- (due slots are those after it) and the Active/Inactive toggle (NULL: the YAML's `active:` decides).
        CREATE TABLE automation_state (
            name            TEXT PRIMARY KEY,
            last_tick       TEXT,
            active_override INTEGER
        );
        -- What each tick did per automation: slots run, slots missed (too late, coalesced...), sends, errors.
        CREATE TABLE automation_log (
            log_id     INTEGER PRIMARY KEY AUTOINCREMENT,
            name       TEXT NOT NULL,
            tick_at    TEXT NOT NULL,           -- the tick's now (ISO-8601 UTC)
            event      TEXT NOT NULL,           -- run | missed | error | toggled
            detail     TEXT NOT NULL            -- JSON
        );
        CREATE INDEX automation_log_by_name ON automation_log (name, tick_at);
        """,
    ),
)

MIGRATIONS: tuple[Migration, ...] = DELIVERY_MIGRATIONS + EVENTS_MIGRATIONS + AUTOMATE_MIGRATIONS
