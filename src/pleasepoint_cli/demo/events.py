"""Provider event files for the demo's sends: what SendGrid, Mailgun and Amazon SES (through SNS) would post
back about the messages in the send ledger, in each one's documented webhook shape, so `make demo` can show
`events ingest` and `stats` without a real provider.

Deterministic from the seed: the sent rows are read in send-id order, each given to one provider in turn, and
its fate drawn from a seeded generator (delivered or bounced; opened, some by a privacy proxy; clicked;
a few unsubscribes and complaints), with times after the row's `sent_at`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.events.providers import SEND_ID_ARG

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore

PROVIDERS = ("sendgrid", "mailgun", "ses")
PROXY_AGENT = "Mozilla/5.0"
"""What Apple's privacy proxy sends: a machine open."""
READER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@dataclass(frozen=True)
class Happening:
    """One thing that happened to one message."""

    kind: str  # delivered | open | click | bounce | complaint | unsubscribe
    at: datetime
    send_id: str
    message_id: str
    email: str
    subkind: str = ""  # hard | soft | machine
    url: str = ""


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _fates(rng: random.Random, row: dict[str, Any], shop_url: str) -> list[Happening]:
    sent = _parse(str(row["sent_at"]))
    base = {"send_id": str(row["send_id"]), "message_id": str(row["message_id"] or "").strip("<>"),
            "email": str(row["email"])}  # fmt: skip

    def later(low: float, high: float) -> datetime:
        return (sent + timedelta(minutes=rng.uniform(low, high))).replace(microsecond=0)

    draw = rng.random()
    if draw < 0.01:
        return [Happening("bounce", later(0.1, 2), subkind="hard", **base)]
    if draw < 0.02:
        return [Happening("bounce", later(1, 60), subkind="soft", **base)]
    out = [Happening("delivered", later(0.05, 1), **base)]
    if rng.random() < 0.12:
        out.append(Happening("open", later(1, 3), subkind="machine", **base))
    if rng.random() < 0.38:
        opened = later(5, 36 * 60)
        out.append(Happening("open", opened, **base))
        if rng.random() < 0.3:
            clicked = opened + timedelta(seconds=rng.randint(5, 300))
            url = f"{shop_url.rstrip('/')}/ofertas?utm_source=pleasepoint&utm_medium=email"
            out.append(Happening("click", clicked, url=url, **base))
        if rng.random() < 0.02:
            out.append(Happening("unsubscribe", opened + timedelta(minutes=2), **base))
    if rng.random() < 0.003:
        out.append(Happening("complaint", later(60, 48 * 60), **base))
    return out


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _sendgrid(h: Happening, n: int) -> dict[str, Any]:
    name = {"complaint": "spamreport"}.get(h.kind, h.kind)
    record: dict[str, Any] = {
        "email": h.email,
        "timestamp": _epoch(h.at),
        "event": name,
        "sg_event_id": f"demo-sg-{n:07d}",
        "sg_message_id": f"demo{n:07d}.filter0001.sendgrid.net",
        "smtp-id": f"<{h.message_id}>",
        "unique_args": {SEND_ID_ARG: h.send_id},
    }
    if h.kind == "open":
        record["useragent"] = PROXY_AGENT if h.subkind == "machine" else READER_AGENT
        record["sg_machine_open"] = h.subkind == "machine"
    elif h.kind == "click":
        record["url"] = h.url
        record["useragent"] = READER_AGENT
    elif h.kind == "bounce":
        record["type"] = "bounce" if h.subkind == "hard" else "blocked"
        record["reason"] = "550 5.1.1 user unknown" if h.subkind == "hard" else "421 4.7.0 try again later"
        record["bounce_classification"] = "Invalid Address" if h.subkind == "hard" else "Reputation"
    return record


def _mailgun(h: Happening, n: int) -> dict[str, Any]:
    name = {"open": "opened", "click": "clicked", "bounce": "failed", "complaint": "complained",
            "unsubscribe": "unsubscribed"}.get(h.kind, h.kind)  # fmt: skip
    data: dict[str, Any] = {
        "id": f"demo-mg-{n:07d}",
        "event": name,
        "timestamp": float(_epoch(h.at)),
        "recipient": h.email,
        "user-variables": {SEND_ID_ARG: h.send_id},
        "message": {"headers": {"message-id": h.message_id}},
    }
    if h.kind == "open":
        agent = PROXY_AGENT if h.subkind == "machine" else READER_AGENT
        data["client-info"] = {"client-type": "mobile browser", "user-agent": agent}
    elif h.kind == "click":
        data["url"] = h.url
    elif h.kind == "bounce":
        data["severity"] = "permanent" if h.subkind == "hard" else "temporary"
        data["delivery-status"] = {"code": 550 if h.subkind == "hard" else 421}
    token = f"demo{n:046d}"
    return {
        "signature": {"timestamp": str(_epoch(h.at)), "token": token, "signature": "0" * 64},
        "event-data": data,
    }


def _ses(h: Happening, n: int) -> dict[str, Any]:
    stamp = h.at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    mail = {
        "timestamp": stamp,
        "messageId": f"0100018f-demo-{n:07d}-000000",
        "destination": [h.email],
        "tags": {SEND_ID_ARG: [h.send_id]},
        "commonHeaders": {"messageId": f"<{h.message_id}>"},
    }
    message: dict[str, Any] = {"mail": mail}
    if h.kind == "delivered":
        message |= {"eventType": "Delivery", "delivery": {"timestamp": stamp, "recipients": [h.email]}}
    elif h.kind == "open":
        agent = PROXY_AGENT if h.subkind == "machine" else READER_AGENT
        message |= {"eventType": "Open", "open": {"timestamp": stamp, "userAgent": agent}}
    elif h.kind == "click":
        message |= {"eventType": "Click", "click": {"timestamp": stamp, "link": h.url}}
    elif h.kind == "bounce":
        bounce_type = "Permanent" if h.subkind == "hard" else "Transient"
        message |= {"eventType": "Bounce", "bounce": {"timestamp": stamp, "bounceType": bounce_type,
                                                      "bouncedRecipients": [{"emailAddress": h.email}]}}  # fmt: skip
    elif h.kind == "complaint":
        message |= {"eventType": "Complaint", "complaint": {"timestamp": stamp, "complaintFeedbackType": "abuse",
                                                            "complainedRecipients": [{"emailAddress": h.email}]}}  # fmt: skip
    else:
        message |= {"eventType": "Subscription", "subscription": {"timestamp": stamp,
                                                                  "newTopicPreferences": {"unsubscribeAll": True}}}  # fmt: skip
    return {
        "Type": "Notification",
        "MessageId": f"5d1e2f3a-demo-{n:07d}",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:pleasepoint-demo",
        "Message": json.dumps(message, ensure_ascii=False),
        "Timestamp": stamp,
    }


def write_demo_events(ops: OpsStore, directory: Path, *, seed: int, shop_url: str) -> dict[str, Path]:
    """Write `events-sendgrid.json` (an event array), `events-mailgun.jsonl` (one webhook payload a line) and
    `events-ses.json` (SNS notifications) for the ledger's sent messages; returns provider -> file."""
    rows = ops.rows(
        "SELECT send_id, email, message_id, sent_at FROM ledger WHERE status = 'sent' AND kind <> 'test' "
        "AND email IS NOT NULL AND sent_at IS NOT NULL ORDER BY send_id"
    )
    rng = random.Random(seed)
    per_provider: dict[str, list[Happening]] = {p: [] for p in PROVIDERS}
    for index, row in enumerate(rows):
        per_provider[PROVIDERS[index % len(PROVIDERS)]].extend(_fates(rng, row, shop_url))
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "sendgrid": directory / "events-sendgrid.json",
        "mailgun": directory / "events-mailgun.jsonl",
        "ses": directory / "events-ses.json",
    }
    counter = 0

    def numbered(provider: str) -> list[tuple[Happening, int]]:
        nonlocal counter
        out = []
        for happening in sorted(per_provider[provider], key=lambda h: (h.at, h.send_id, h.kind)):
            counter += 1
            out.append((happening, counter))
        return out

    sendgrid = [_sendgrid(h, n) for h, n in numbered("sendgrid")]
    files["sendgrid"].write_text(json.dumps(sendgrid, ensure_ascii=False, indent=1), encoding="utf-8")
    mailgun = [_mailgun(h, n) for h, n in numbered("mailgun")]
    files["mailgun"].write_text(
        "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in mailgun), encoding="utf-8"
    )
    ses = [_ses(h, n) for h, n in numbered("ses")]
    files["ses"].write_text(json.dumps(ses, ensure_ascii=False, indent=1), encoding="utf-8")
    return files
