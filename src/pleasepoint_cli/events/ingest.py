"""`events ingest FILE --format F`: a provider's event file into the operational store, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import InputDataError
from pleasepoint_cli.events.providers import FORMATS, parse_events
from pleasepoint_cli.events.store import store_events

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore

MAX_LISTED = 20
"""Problems listed in an error message (the count says how many more)."""


@dataclass
class IngestReport:
    """What one file did: records read, events stored, repeats ignored, matches, suppressions, settlements."""

    file: str
    format: str
    events: int
    inserted: int
    duplicates: int
    matched: int
    unmatched: int
    suppressed: int
    settled: int
    skipped: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    unmatched_lines: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "events": self.events,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "suppressed": self.suppressed,
            "settled": self.settled,
            "skipped": self.skipped,
            "by_kind": self.by_kind,
            "unmatched_lines": self.unmatched_lines,
        }


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise InputDataError(f"{path}: no such file.") from e
    except UnicodeDecodeError as e:
        raise InputDataError(f"{path}: not UTF-8 text ({e}).") from e
    except OSError as e:
        raise InputDataError(f"{path}: cannot read the file: {e}") from e


def ingest_events_file(ops: OpsStore, path: Path, fmt: str, *, now: datetime) -> IngestReport:
    """Parse the whole file first; if any record is unknown or malformed, raise listing them and load nothing.
    Otherwise store every event in one transaction (loading the same file again changes nothing)."""
    if fmt not in FORMATS:
        raise InputDataError(f"unknown event format {fmt!r}: use one of {', '.join(FORMATS)}.")
    parsed = parse_events(read_text(path), fmt)
    if parsed.problems:
        listed = "\n".join(f"{path}:{p.line}: {p.message}" for p in parsed.problems[:MAX_LISTED])
        more = len(parsed.problems) - MAX_LISTED
        tail = f"\n... and {more} more" if more > 0 else ""
        raise InputDataError(
            f"{path}: {len(parsed.problems)} record(s) are not {fmt} events; nothing was loaded "
            f"(fix them or remove them, then load the file again):\n{listed}{tail}"
        )
    result = store_events(ops, parsed.events, now=now)
    return IngestReport(
        file=str(path),
        format=fmt,
        events=len(parsed.events),
        inserted=result.inserted,
        duplicates=result.duplicates,
        matched=result.matched,
        unmatched=result.unmatched,
        suppressed=result.suppressed,
        settled=result.settled,
        skipped=[str(s) for s in parsed.skipped],
        by_kind=result.by_kind,
        unmatched_lines=result.unmatched_lines,
    )
