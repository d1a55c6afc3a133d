"""Rows that point to a missing header row: what an interrupted write would leave, found and repaired.

DuckDB 2.0.1 commits all or nothing (tests/test_crash_at_commit.py), so these should never appear; this is
defence in depth against the 1.5.6 behaviour of pitfalls.md and against files written by such a version.
The quick check runs when a command opens the file for writing (a max per table: milliseconds at ten million
lines); `pleasepoint doctor` runs the full one and `--repair` deletes the orphans in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store


@dataclass(frozen=True)
class Link:
    """Rows of `table` whose `column` must name a row of `header`."""

    table: str
    column: str
    header: str


LINKS: tuple[Link, ...] = (
    Link("order_lines", "ingest_id", "ingests"),
    Link("persona_clusters", "run_id", "persona_runs"),
    Link("persona_profile", "run_id", "persona_runs"),
    Link("persona_assignments", "run_id", "persona_runs"),
    Link("attribute_history", "change_id", "attribute_changes"),
    Link("customer_attributes", "change_id", "attribute_changes"),
)


@dataclass(frozen=True)
class Orphans:
    """How many rows of a table point to ids its header table does not hold."""

    link: Link
    rows: int
    ids: tuple[int, ...]

    def describe(self) -> str:
        shown = ", ".join(str(i) for i in self.ids[:5]) + (" ..." if len(self.ids) > 5 else "")
        return (
            f"{self.rows:,} rows of {self.link.table} point to {self.link.column} {shown}, "
            f"which {self.link.header} does not hold"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.link.table,
            "column": self.link.column,
            "header": self.link.header,
            "rows": self.rows,
            "ids": list(self.ids),
        }


def quick_check(store: Store) -> list[str]:
    """Links whose highest id is missing from the header table (cheap: one max per table)."""
    suspicious = []
    for link in LINKS:
        top = store.scalar(f"SELECT max({link.column}) FROM {link.table}")
        if top is None:
            continue
        if not store.scalar(f"SELECT count(*) FROM {link.header} WHERE {link.column} = ?", [top]):
            suspicious.append(
                f"{link.table} holds rows of {link.column} {top}, which {link.header} does not hold: "
                "an interrupted write. Run `pleasepoint doctor --repair`."
            )
    return suspicious


def find_orphans(store: Store) -> list[Orphans]:
    """Every link's orphan rows (a full anti join per link)."""
    found = []
    for link in LINKS:
        rows = store.rows(
            f"""
            SELECT t.{link.column} AS id, count(*) AS n FROM {link.table} AS t
            WHERE t.{link.column} IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM {link.header} AS h WHERE h.{link.column} = t.{link.column})
            GROUP BY ALL ORDER BY id
            """
        )
        if rows:
            found.append(Orphans(link, sum(int(r["n"]) for r in rows), tuple(int(r["id"]) for r in rows)))
    return found


def repair(store: Store) -> list[Orphans]:
    """Delete every orphan row, all in one transaction; returns what was deleted."""
    with store.transaction():
        found = find_orphans(store)
        for orphans in found:
            link = orphans.link
            store.execute(
                f"DELETE FROM {link.table} WHERE {link.column} IS NOT NULL AND {link.column} NOT IN "
                f"(SELECT {link.column} FROM {link.header})"
            )
    return found
