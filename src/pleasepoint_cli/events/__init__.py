"""Engagement events: provider webhook formats parsed into one `Event` shape (providers), webhook signatures
(signatures), and loading them into the operational store, matched to the send ledger (ingest, store).

Nothing here opens DuckDB: events live in the operational SQLite store; analysis copies them through Arrow
(`pleasepoint_cli.events.views.register_ops_views`).
"""

from __future__ import annotations

from pleasepoint_cli.events.providers import FORMATS, Event, ParsedFile, parse_events

__all__ = ["FORMATS", "Event", "ParsedFile", "parse_events"]
