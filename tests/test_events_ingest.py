"""Provider fixtures (hand-written from each provider's documented webhook examples) into a real operational
store: every event kind, matching by send id or Message-ID, idempotent reloads, suppression, settlement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events_data import FIXTURES, NOW, RECIPIENTS, add_send, primavera_store
from pleasepoint_cli.errors import InputDataError
from pleasepoint_cli.events.ingest import ingest_events_file
from pleasepoint_cli.events.providers import parse_events
from pleasepoint_cli.ops.suppression import is_suppressed

KINDS = {"delivered", "open", "click", "bounce", "complaint", "unsubscribe"}


@pytest.mark.parametrize("fmt", list(FIXTURES))
def test_each_fixture_holds_every_event_kind_and_keeps_machine_opens_apart(fmt: str) -> None:
    parsed = parse_events(FIXTURES[fmt].read_text(encoding="utf-8"), fmt)
    assert not parsed.problems
    kinds = {e.kind for e in parsed.events}
    assert kinds >= KINDS
    opens = {e.send_id or e.message_id: e.subkind for e in parsed.events if e.kind == "open"}
    assert opens == {"S1": "", "S2": "machine"}
    bounces = {e.email or e.message_id: e.subkind for e in parsed.events if e.kind == "bounce"}
    assert sorted(bounces.values()) == ["hard", "soft"]
    clicks = [e.url for e in parsed.events if e.kind == "click"]
    assert clicks == ["https://tienda.example/ofertas?utm_source=email"]
    assert all(e.occurred_at.tzinfo is not None for e in parsed.events)


@pytest.mark.parametrize("fmt", list(FIXTURES))
def test_a_fixture_loads_matched_to_the_ledger_and_a_second_load_changes_nothing(
    tmp_path: Path, fmt: str
) -> None:
    _, ops = primavera_store(tmp_path, {"S1": "uncertain"})
    first = ingest_events_file(ops, FIXTURES[fmt], fmt, now=NOW)
    assert first.inserted == first.events > 0
    assert first.unmatched == 0 and first.matched == first.inserted
    # The hard bounce of S3 carries no send id in SendGrid and SES feedback: matched by Message-ID.
    assert ops.scalar("SELECT count(*) FROM events WHERE send_id = 'S3' AND kind = 'bounce'") == 1
    assert first.suppressed == 3
    assert first.settled == 1
    snapshot = [
        ops.rows(f"SELECT * FROM {table} ORDER BY 1") for table in ("events", "suppressions", "ledger")
    ]
    second = ingest_events_file(ops, FIXTURES[fmt], fmt, now=NOW.replace(hour=18))
    assert (second.inserted, second.duplicates, second.suppressed, second.settled) == (0, first.events, 0, 0)
    assert [
        ops.rows(f"SELECT * FROM {t} ORDER BY 1") for t in ("events", "suppressions", "ledger")
    ] == snapshot


@pytest.mark.parametrize("fmt", list(FIXTURES))
def test_hard_bounce_complaint_and_unsubscribe_suppress_a_soft_bounce_does_not(
    tmp_path: Path, fmt: str
) -> None:
    _, ops = primavera_store(tmp_path)
    ingest_events_file(ops, FIXTURES[fmt], fmt, now=NOW)
    suppressed = {sid for sid, (_, email) in RECIPIENTS.items() if is_suppressed(ops, email)}
    assert suppressed == {"S3", "S5", "S6"}  # hard bounce, complaint, unsubscribe; S4's soft bounce is not
    reasons = {r["email"]: r["reason"] for r in ops.rows("SELECT email, reason FROM suppressions")}
    assert reasons == {
        "eva@example.com": "bounced",
        "pepe@example.com": "complained",
        "rosa@example.com": "unsubscribed",
    }


def test_an_uncertain_send_is_settled_sent_by_its_delivery_event(tmp_path: Path) -> None:
    _, ops = primavera_store(tmp_path, {"S2": "uncertain"})
    add_send(ops, "S9", "C9", "nadie@example.com", status="uncertain")
    ingest_events_file(ops, FIXTURES["sendgrid"], "sendgrid", now=NOW)
    statuses = {r["send_id"]: r["status"] for r in ops.rows("SELECT send_id, status FROM ledger")}
    assert statuses["S2"] == "sent"
    assert statuses["S9"] == "uncertain"  # no event about it


def test_a_bad_file_loads_nothing_and_names_each_bad_line(tmp_path: Path) -> None:
    _, ops = primavera_store(tmp_path)
    lines = FIXTURES["pleasepoint"].read_text(encoding="utf-8").splitlines()
    lines.insert(3, '{"id": "x1", "event": "bounced", "at": "2026-04-24T08:00:00Z", "send_id": "S1"}')
    lines.insert(6, "{not json")
    lines.append('{"id": "x2", "event": "open", "at": "2026-04-24T08:00:00", "send_id": "S1"}')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputDataError) as error:
        ingest_events_file(ops, bad, "pleasepoint", now=NOW)
    message = str(error.value)
    assert f"{bad}:4: `event` must be one of" in message
    assert f"{bad}:7: not JSON" in message
    assert f"{bad}:{len(lines)}: `at`" in message and "no UTC offset" in message
    assert ops.scalar("SELECT count(*) FROM events") == 0
    assert ops.scalar("SELECT count(*) FROM suppressions") == 0


def test_an_unknown_provider_event_is_a_problem_a_documented_uninteresting_one_is_skipped(
    tmp_path: Path,
) -> None:
    _, ops = primavera_store(tmp_path)
    events = json.loads(FIXTURES["sendgrid"].read_text(encoding="utf-8"))
    path = tmp_path / "sg.json"
    path.write_text(
        json.dumps([*events, {**events[1], "event": "teleported", "sg_event_id": "zz"}]), encoding="utf-8"
    )
    with pytest.raises(InputDataError, match="unknown SendGrid event 'teleported'"):
        ingest_events_file(ops, path, "sendgrid", now=NOW)
    report = ingest_events_file(ops, FIXTURES["sendgrid"], "sendgrid", now=NOW)
    assert [s.split(":")[0] for s in report.skipped] == ["line 2", "line 15"]  # processed, dropped


def test_a_sendgrid_webhook_body_per_line_and_a_retried_event_in_one_file(tmp_path: Path) -> None:
    _, ops = primavera_store(tmp_path)
    events = json.loads(FIXTURES["sendgrid"].read_text(encoding="utf-8"))
    path = tmp_path / "bodies.jsonl"
    path.write_text(json.dumps(events[:7]) + "\n" + json.dumps(events[5:]) + "\n", encoding="utf-8")
    report = ingest_events_file(ops, path, "sendgrid", now=NOW)
    assert report.inserted == 12


def test_an_event_matched_to_nothing_is_kept_and_still_suppresses_its_address(tmp_path: Path) -> None:
    _, ops = primavera_store(tmp_path)
    path = tmp_path / "pp.jsonl"
    path.write_text(
        '{"id": "u1", "event": "complaint", "at": "2026-04-24T08:00:00Z", "email": " Otro@Example.com "}\n',
        encoding="utf-8",
    )
    report = ingest_events_file(ops, path, "pleasepoint", now=NOW)
    assert (report.unmatched, report.unmatched_lines, report.suppressed) == (1, [1], 1)
    assert is_suppressed(ops, "otro@example.com")
