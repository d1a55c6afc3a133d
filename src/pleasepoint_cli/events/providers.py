"""Provider event formats, parsed into one normalized `Event` (pure functions: no store, no network).

Formats (see docs/events.md for every field read):
- `pleasepoint`: this tool's own JSON, one object per event (`id`, `event`, `at`, `send_id`, ...).
- `sendgrid`: the Event Webhook's JSON array (`sg_event_id`, `smtp-id`, custom args such as `pp_send_id`
  at the top level of each event, `sg_machine_open`, bounce `type` and `bounce_classification`).
- `mailgun`: webhook payloads `{"signature": {...}, "event-data": {...}}` (`user-variables`, `severity`,
  `message.headers.message-id`); a bare event-data object (the Events API's items) is read too.
- `ses`: Amazon SES notifications inside SNS envelopes `{"Type": "Notification", "MessageId", "Message"}`
  (event publishing's `eventType` and identity feedback's `notificationType`); a bare SES record is read too.

A file is a JSON array, a single JSON object, or JSON Lines (one object, or one array of objects, per line).
Records a provider documents but that say nothing this tool counts (SendGrid `processed`, Mailgun `accepted`,
SES `Send`...) are skipped and counted; unknown or malformed records are problems, reported with their line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMATS = ("pleasepoint", "sendgrid", "mailgun", "ses")
KINDS = ("delivered", "open", "click", "bounce", "complaint", "unsubscribe", "deferred")

SEND_ID_ARG = "pp_send_id"
"""The custom argument (SendGrid unique_args, Mailgun user-variables, SES message tag) holding the send id."""
SEND_ID_HEADER = "X-Pleasepoint-Send-Id"

MACHINE_USER_AGENTS = ("Mozilla/5.0",)
"""User agents of privacy proxies that fetch every image on arrival (Apple Mail Privacy Protection sends the
bare `Mozilla/5.0`): their opens are machine opens, kept apart from human ones."""


@dataclass(frozen=True)
class Event:
    """One engagement or delivery event, whatever the provider said it in."""

    event_id: str
    """Unique per event: `<provider>:<provider's event id>` (a reload of the same event is recognised)."""
    provider: str
    kind: str
    """delivered | open | click | bounce | complaint | unsubscribe | deferred."""
    subkind: str
    """hard | soft for a bounce, machine for a machine open, '' otherwise."""
    occurred_at: datetime
    """Aware, UTC."""
    send_id: str | None = None
    message_id: str | None = None
    """The Message-ID without angle brackets."""
    email: str | None = None
    url: str | None = None
    raw: str = ""
    """The record as the provider sent it (JSON text)."""
    line: int = 0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        del data["raw"]
        return data


@dataclass(frozen=True)
class Problem:
    """A record that was not loaded: its line in the file and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class ParsedFile:
    """Every event of a file, the records skipped on purpose, and the problems (a file with any loads none)."""

    events: tuple[Event, ...]
    skipped: tuple[Problem, ...] = ()
    problems: tuple[Problem, ...] = ()


class _Bad(Exception):
    """A record does not fit its format (the message says which field and why)."""


class _Skip(Exception):
    """A documented record that carries nothing this tool counts."""


@dataclass
class _Record:
    line: int
    data: Any
    raw: str = field(default="")


# --- reading the file -------------------------------------------------------------------------------------


def read_records(text: str) -> tuple[list[_Record], list[Problem]]:
    """The JSON records of a file with their lines: a JSON array, one object, or JSON Lines."""
    text = text.removeprefix("\ufeff")
    stripped = text.strip()
    if not stripped:
        return [], [Problem(1, "the file holds no events")]
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
        is_document = False
    else:
        is_document = True
    if is_document and isinstance(whole, list):
        return list(_array_items(text)), []
    if is_document and isinstance(whole, dict):
        return [_Record(_first_line(text), whole, json.dumps(whole, ensure_ascii=False))], []
    records: list[_Record] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(Problem(number, f"not JSON ({e.msg} at column {e.colno})"))
            continue
        items = value if isinstance(value, list) else [value]
        records.extend(_Record(number, item, json.dumps(item, ensure_ascii=False)) for item in items)
    return records, problems


def _first_line(text: str) -> int:
    return text[: len(text) - len(text.lstrip())].count("\n") + 1


def _array_items(text: str) -> Iterator[_Record]:
    """The items of a top-level JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    length = len(text)
    while True:
        while index < length and text[index] in " \t\r\n,":
            index += 1
        if index >= length or text[index] == "]":
            return
        value, end = decoder.raw_decode(text, index)
        yield _Record(text.count("\n", 0, index) + 1, value, text[index:end])
        index = end


# --- helpers ----------------------------------------------------------------------------------------------


def clean_message_id(value: Any) -> str | None:
    """A Message-ID without angle brackets or spaces, or None."""
    if not isinstance(value, str):
        return None
    text = value.strip().removeprefix("<").removesuffix(">").strip()
    return text or None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _epoch(value: Any, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(f"`{what}` must be a Unix time in seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError) as e:
        raise _Bad(f"`{what}` must be a Unix time in seconds, got {value!r}") from e


def _iso(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise _Bad(f"`{what}` must be an ISO 8601 time, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise _Bad(f"`{what}` must be an ISO 8601 time, got {value!r}") from e
    if moment.tzinfo is None:
        raise _Bad(f"`{what}` {value!r} has no UTC offset; write it with Z or +hh:mm")
    return moment.astimezone(UTC)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"`{what}` must be an object")
    return value


def _sub(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _items(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def is_machine_user_agent(user_agent: Any) -> bool:
    """Whether an open came from a privacy proxy that loads every image on arrival (not a person)."""
    return isinstance(user_agent, str) and user_agent.strip() in MACHINE_USER_AGENTS


def _derived_id(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


# --- pleasepoint ------------------------------------------------------------------------------------------

_PLEASEPOINT_KEYS = {"id", "event", "at", "send_id", "message_id", "email", "url", "machine", "bounce"}


def _pleasepoint(record: _Record) -> list[Event]:
    data = _mapping(record.data, "event")
    unknown = sorted(set(data) - _PLEASEPOINT_KEYS)
    if unknown:
        raise _Bad(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_PLEASEPOINT_KEYS))})")
    event_id = _text(data.get("id"))
    if event_id is None:
        raise _Bad("`id` is required (a unique text per event)")
    kind = data.get("event")
    if kind not in KINDS:
        raise _Bad(f"`event` must be one of {', '.join(KINDS)}, got {kind!r}")
    subkind = ""
    if kind == "bounce":
        subkind = data.get("bounce", "")
        if subkind not in ("hard", "soft"):
            raise _Bad("a bounce needs `bounce: hard` or `bounce: soft`")
    elif "bounce" in data:
        raise _Bad("`bounce` is only for bounce events")
    machine = data.get("machine", False)
    if not isinstance(machine, bool):
        raise _Bad("`machine` must be true or false")
    if machine:
        if kind != "open":
            raise _Bad("`machine` is only for open events")
        subkind = "machine"
    url = _text(data.get("url"))
    if kind == "click" and url is None:
        raise _Bad("a click needs its `url`")
    send_id, message_id = _text(data.get("send_id")), clean_message_id(data.get("message_id"))
    email = _text(data.get("email"))
    if send_id is None and message_id is None and email is None:
        raise _Bad("give at least one of `send_id`, `message_id` or `email` to match the event by")
    return [
        Event(
            event_id=f"pleasepoint:{event_id}",
            provider="pleasepoint",
            kind=str(kind),
            subkind=subkind,
            occurred_at=_iso(data.get("at"), "at"),
            send_id=send_id,
            message_id=message_id,
            email=email,
            url=url,
            raw=record.raw,
            line=record.line,
        )
    ]


# --- SendGrid ---------------------------------------------------------------------------------------------

_SENDGRID_KINDS = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "deferred": "deferred",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
_SENDGRID_SKIPPED = {
    "processed": "accepted by SendGrid (not a delivery)",
    "dropped": "dropped by SendGrid before sending (no message left)",
    "group_resubscribe": "a resubscribe: suppressions are lifted with `suppress remove`",
}
_SENDGRID_SOFT_CLASSES = {
    "technical",
    "technical failure",
    "content",
    "reputation",
    "frequency or volume",
    "frequency or volume too high",
}
"""Bounce classifications about the sender or the message, not the address: soft."""


def _sendgrid_custom_arg(data: dict[str, Any]) -> str | None:
    if (value := _text(data.get(SEND_ID_ARG))) is not None:
        return value
    for key in ("unique_args", "custom_args"):
        nested = data.get(key)
        if isinstance(nested, dict) and (value := _text(nested.get(SEND_ID_ARG))) is not None:
            return value
    return None


def _sendgrid(record: _Record) -> list[Event]:
    data = _mapping(record.data, "event")
    name = data.get("event")
    if not isinstance(name, str):
        raise _Bad("`event` is missing: not a SendGrid event")
    if name in _SENDGRID_SKIPPED:
        raise _Skip(f"SendGrid {name}: {_SENDGRID_SKIPPED[name]}")
    kind = _SENDGRID_KINDS.get(name)
    if kind is None:
        raise _Bad(
            f"unknown SendGrid event {name!r} (known: {', '.join([*_SENDGRID_KINDS, *_SENDGRID_SKIPPED])})"
        )
    event_id = _text(data.get("sg_event_id"))
    if event_id is None:
        raise _Bad("`sg_event_id` is required (it makes a reload of the same event a no-op)")
    subkind = ""
    if kind == "bounce":
        bounce_type = str(data.get("type") or "bounce").lower()
        classification = str(data.get("bounce_classification") or "").strip().lower()
        soft = bounce_type == "blocked" or classification in _SENDGRID_SOFT_CLASSES
        subkind = "soft" if soft else "hard"
    elif kind == "open" and (
        data.get("sg_machine_open") is True or is_machine_user_agent(data.get("useragent"))
    ):
        subkind = "machine"
    url = _text(data.get("url"))
    if kind == "click" and url is None:
        raise _Bad("a SendGrid click needs its `url`")
    return [
        Event(
            event_id=f"sendgrid:{event_id}",
            provider="sendgrid",
            kind=kind,
            subkind=subkind,
            occurred_at=_epoch(data.get("timestamp"), "timestamp"),
            send_id=_sendgrid_custom_arg(data),
            message_id=clean_message_id(data.get("smtp-id")),
            email=_text(data.get("email")),
            url=url if kind == "click" else None,
            raw=record.raw,
            line=record.line,
        )
    ]


# --- Mailgun ----------------------------------------------------------------------------------------------

_MAILGUN_KINDS = {
    "delivered": "delivered",
    "opened": "open",
    "clicked": "click",
    "failed": "bounce",
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
}
_MAILGUN_SKIPPED = {
    "accepted": "accepted by Mailgun (not a delivery)",
    "rejected": "rejected by Mailgun before sending (no message left)",
    "stored": "an inbound message stored by Mailgun",
    "list_member_uploaded": "a mailing-list change",
    "list_member_upload_error": "a mailing-list change",
    "list_uploaded": "a mailing-list change",
}


def mailgun_event_data(payload: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(event-data, signature) of a webhook payload; a bare event-data object has no signature."""
    data = _mapping(payload, "payload")
    if "event-data" in data:
        signature = data.get("signature")
        return _mapping(data["event-data"], "event-data"), signature if isinstance(signature, dict) else None
    if "event" in data:
        return data, None
    raise _Bad("neither `event-data` nor `event`: not a Mailgun webhook payload")


def _mailgun(record: _Record) -> list[Event]:
    data, signature = mailgun_event_data(record.data)
    name = data.get("event")
    if not isinstance(name, str):
        raise _Bad("`event-data.event` is missing")
    if name in _MAILGUN_SKIPPED:
        raise _Skip(f"Mailgun {name}: {_MAILGUN_SKIPPED[name]}")
    kind = _MAILGUN_KINDS.get(name)
    if kind is None:
        raise _Bad(
            f"unknown Mailgun event {name!r} (known: {', '.join([*_MAILGUN_KINDS, *_MAILGUN_SKIPPED])})"
        )
    event_id = _text(data.get("id")) or (signature and _text(signature.get("token")))
    if not event_id:
        raise _Bad("`event-data.id` (or `signature.token`) is required to recognise a reload")
    subkind = ""
    if kind == "bounce":
        severity = data.get("severity")
        if severity not in ("permanent", "temporary"):
            raise _Bad(f"a failed event needs `severity` permanent or temporary, got {severity!r}")
        subkind = "hard" if severity == "permanent" else "soft"
    elif kind == "open":
        client = _sub(data, "client-info")
        bot = str(client.get("bot") or "").lower()
        if (bot and bot != "gmail") or is_machine_user_agent(client.get("user-agent")):
            subkind = "machine"
    url = _text(data.get("url"))
    if kind == "click" and url is None:
        raise _Bad("a Mailgun click needs its `url`")
    variables = data.get("user-variables")
    send_id = _text(variables.get(SEND_ID_ARG)) if isinstance(variables, dict) else None
    message = _sub(data, "message")
    headers = _sub(message, "headers")
    return [
        Event(
            event_id=f"mailgun:{event_id}",
            provider="mailgun",
            kind=kind,
            subkind=subkind,
            occurred_at=_epoch(data.get("timestamp"), "event-data.timestamp"),
            send_id=send_id,
            message_id=clean_message_id(headers.get("message-id")),
            email=_text(data.get("recipient")),
            url=url if kind == "click" else None,
            raw=record.raw,
            line=record.line,
        )
    ]


# --- Amazon SES through SNS -------------------------------------------------------------------------------

_SES_SKIPPED = {
    "Send": "accepted by SES (not a delivery)",
    "Reject": "rejected by SES before sending (no message left)",
    "Rendering Failure": "an SES template failed to render (no message left)",
    "Received": "an inbound message",
}


def ses_message(record: Any) -> tuple[dict[str, Any], str | None]:
    """(SES record, SNS MessageId) of an SNS envelope, or of a bare SES record (MessageId None).

    Raises _Skip for SNS subscription messages (confirm those from the AWS console or their SubscribeURL).
    """
    data = _mapping(record, "record")
    kind = data.get("Type")
    if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise _Skip(f"SNS {kind}: confirm the subscription with its SubscribeURL")
    if kind == "Notification":
        message_id = _text(data.get("MessageId"))
        if message_id is None:
            raise _Bad("an SNS notification needs its `MessageId`")
        body = data.get("Message")
        if isinstance(body, dict):
            return body, message_id
        if not isinstance(body, str):
            raise _Bad("an SNS notification needs its `Message` (JSON text)")
        try:
            inner = json.loads(body)
        except json.JSONDecodeError as e:
            raise _Bad(f"the SNS `Message` is not JSON ({e.msg})") from e
        return _mapping(inner, "Message"), message_id
    if kind is not None:
        raise _Bad(f"unknown SNS message type {kind!r}")
    if "eventType" in data or "notificationType" in data:
        return data, None
    raise _Bad("neither an SNS envelope (`Type: Notification`) nor an SES record (`eventType`)")


def _ses_header(mail: dict[str, Any], name: str) -> str | None:
    headers = mail.get("headers")
    if isinstance(headers, list):
        for header in headers:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == name.lower():
                return _text(header.get("value"))
    return None


def _ses(record: _Record) -> list[Event]:
    message, sns_id = ses_message(record.data)
    name = message.get("eventType") or message.get("notificationType")
    if not isinstance(name, str):
        raise _Bad("the SES record has no `eventType` or `notificationType`")
    if name in _SES_SKIPPED:
        raise _Skip(f"SES {name}: {_SES_SKIPPED[name]}")
    mail = _mapping(message.get("mail"), "mail")
    tags = _sub(mail, "tags")
    tag = tags.get(SEND_ID_ARG)
    send_id = _text(tag[0] if isinstance(tag, list) and tag else tag) or _ses_header(mail, SEND_ID_HEADER)
    common = _sub(mail, "commonHeaders")
    message_id = clean_message_id(common.get("messageId")) or clean_message_id(
        _ses_header(mail, "Message-ID")
    )
    destination = _items(mail, "destination")
    url: str | None = None
    subkind = ""

    def recipients(items: Any, key: str | None) -> list[str | None]:
        found = [
            _text(item.get(key)) if key and isinstance(item, dict) else _text(item)
            for item in (items if isinstance(items, list) else [])
        ]
        return found or [_text(d) for d in destination[:1]] or [None]

    if name == "Bounce":
        detail = _mapping(message.get("bounce"), "bounce")
        bounce_type = detail.get("bounceType")
        if bounce_type not in ("Permanent", "Transient", "Undetermined"):
            raise _Bad(
                f"`bounce.bounceType` must be Permanent, Transient or Undetermined, got {bounce_type!r}"
            )
        kind, subkind = "bounce", "hard" if bounce_type == "Permanent" else "soft"
        who = recipients(detail.get("bouncedRecipients"), "emailAddress")
    elif name == "Complaint":
        detail = _mapping(message.get("complaint"), "complaint")
        if detail.get("complaintFeedbackType") == "not-spam":
            raise _Skip("SES complaint with feedback type not-spam")
        kind, who = "complaint", recipients(detail.get("complainedRecipients"), "emailAddress")
    elif name == "Delivery":
        detail = _mapping(message.get("delivery"), "delivery")
        kind, who = "delivered", recipients(detail.get("recipients"), None)
    elif name == "DeliveryDelay":
        detail = _mapping(message.get("deliveryDelay"), "deliveryDelay")
        kind, who = "deferred", recipients(detail.get("delayedRecipients"), "emailAddress")
    elif name == "Open":
        detail = _mapping(message.get("open"), "open")
        kind, who = "open", recipients(None, None)
        subkind = "machine" if is_machine_user_agent(detail.get("userAgent")) else ""
    elif name == "Click":
        detail = _mapping(message.get("click"), "click")
        kind, who = "click", recipients(None, None)
        url = _text(detail.get("link"))
        if url is None:
            raise _Bad("an SES click needs `click.link`")
    elif name == "Subscription":
        detail = _mapping(message.get("subscription"), "subscription")
        new = _sub(detail, "newTopicPreferences")
        topics = new.get("topicSubscriptionStatus")
        opted_out = new.get("unsubscribeAll") is True or any(
            isinstance(t, dict) and str(t.get("subscriptionStatus", "")).lower() == "optout"
            for t in (topics if isinstance(topics, list) else [])
        )
        if not opted_out:
            raise _Skip("SES subscription change that opts in")
        kind, who = "unsubscribe", recipients(None, None)
    else:
        known = ", ".join(
            [
                "Bounce",
                "Complaint",
                "Delivery",
                "DeliveryDelay",
                "Open",
                "Click",
                "Subscription",
                *_SES_SKIPPED,
            ]
        )
        raise _Bad(f"unknown SES event type {name!r} (known: {known})")
    when = _iso(detail.get("timestamp") or mail.get("timestamp"), f"{name.lower()}.timestamp")
    base = sns_id or _derived_id(message)
    return [
        Event(
            event_id=f"ses:{base}" if len(who) == 1 else f"ses:{base}:{i}",
            provider="ses",
            kind=kind,
            subkind=subkind,
            occurred_at=when,
            send_id=send_id,
            message_id=message_id,
            email=email,
            url=url,
            raw=record.raw,
            line=record.line,
        )
        for i, email in enumerate(who)
    ]


_PARSERS: dict[str, Callable[[_Record], list[Event]]] = {
    "pleasepoint": _pleasepoint,
    "sendgrid": _sendgrid,
    "mailgun": _mailgun,
    "ses": _ses,
}


def parse_events(text: str, fmt: str) -> ParsedFile:
    """Every event of a file's text in the given format, with skipped records and problems by line."""
    if fmt not in _PARSERS:
        raise ValueError(f"unknown event format {fmt!r}; use one of {', '.join(FORMATS)}")
    records, problems = read_records(text)
    return parse_records(records, fmt, problems)


def parse_records(records: list[_Record], fmt: str, problems: list[Problem] | None = None) -> ParsedFile:
    parser = _PARSERS[fmt]
    events: list[Event] = []
    skipped: list[Problem] = []
    problems = list(problems or [])
    seen: set[str] = set()
    for record in records:
        try:
            parsed = parser(record)
        except _Skip as e:
            skipped.append(Problem(record.line, str(e)))
            continue
        except _Bad as e:
            problems.append(Problem(record.line, str(e)))
            continue
        for event in parsed:
            if event.event_id in seen:
                continue  # the same event twice in one file (a webhook retried into the dump): once is enough
            seen.add(event.event_id)
            events.append(event)
    problems.sort(key=lambda p: p.line)
    return ParsedFile(tuple(events), tuple(skipped), tuple(problems))


def parse_payload(data: Any, fmt: str) -> ParsedFile:
    """The events of one webhook request body already decoded from JSON (the tracking server's path)."""
    items = data if isinstance(data, list) else [data]
    records = [_Record(i + 1, item, json.dumps(item, ensure_ascii=False)) for i, item in enumerate(items)]
    return parse_records(records, fmt)
