"""One-click unsubscribe: verify a signed link and put the person's address on the suppression list.

`unsubscribe_customer` is the one way an unsubscribe is recorded: `pleasepoint unsubscribe` (through
`record_unsubscribe`, which checks the link first) and the tracking server's RFC 8058 POST (which checks the
signature itself) both call it. The address is found in the send ledger (the message the link came in; test
sends never, they went to a tester), so no DuckDB access is needed; a link from a preview (no ledger row)
falls back to a lookup the caller supplies. It stores an `unsubscribe` event and suppresses the address
(reason `unsubscribed`) in one transaction, so statistics count it whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pleasepoint_cli.errors import InputDataError, NotFoundError

if TYPE_CHECKING:
    from pleasepoint_cli.ops.store import OpsStore


@dataclass(frozen=True)
class UnsubscribeResult:
    customer_id: str
    campaign: str
    email_sha256: str | None
    """None when no address is known for the customer (the event is stored, unmatched)."""
    added: bool
    """False when the address was already suppressed (an unsubscribe is idempotent)."""
    send_id: str | None = None
    """The ledger row the unsubscribe is attributed to, when one is found."""

    @property
    def known(self) -> bool:
        return self.email_sha256 is not None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_link(link: str) -> tuple[str, str, str]:
    """(customer, campaign, token) from an unsubscribe URL or its query string (`c=..&m=..&t=..`)."""
    text = link.strip()
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    values = parse_qs(query, keep_blank_values=True)
    try:
        (customer,), (campaign,), (token,) = values["c"], values["m"], values["t"]
    except (KeyError, ValueError):
        raise InputDataError(
            "not an unsubscribe link: expected the URL from an email (…?c=CUSTOMER&m=CAMPAIGN&t=SIGNATURE) "
            "or its query string."
        ) from None
    return customer, campaign, token


def unsubscribe_customer(
    ops: OpsStore,
    customer: str,
    campaign: str,
    *,
    now: datetime,
    via: str,
    lookup_email: Callable[[str], str | None] | None = None,
    require_address: bool = False,
) -> UnsubscribeResult:
    """Record that `customer` unsubscribed from a message of `campaign` (the link already verified): an
    `unsubscribe` event (provider `via`: `track` for the server, `cli` for the command) tied to the ledger
    row, and the address suppressed, in one transaction. With no address known, the event is still stored
    (unmatched), unless `require_address`: then nothing is recorded and NotFoundError is raised."""
    import json
    import uuid

    from pleasepoint_cli.events.providers import Event
    from pleasepoint_cli.events.store import store_events
    from pleasepoint_cli.ops.suppression import email_hash

    def attributed() -> tuple[str | None, str | None]:
        row = ops.execute(
            "SELECT send_id, email FROM ledger WHERE customer_id = ? AND kind <> 'test' AND email IS NOT NULL "
            "ORDER BY source = ? DESC, sent_at IS NULL, sent_at DESC, created_at DESC LIMIT 1",
            [customer, campaign],
        ).fetchall()
        return (str(row[0][0]), str(row[0][1])) if row else (None, None)

    send_id, email = attributed()
    if email is None and lookup_email is not None:
        email = lookup_email(customer) or None  # DuckDB is read before the SQLite write lock is taken
    if email is None and require_address:
        raise NotFoundError(f"no address known for customer {customer!r}: nothing to unsubscribe.")
    event = Event(
        event_id=f"{via}:{uuid.uuid4().hex}",
        provider=via,
        kind="unsubscribe",
        subkind="",
        occurred_at=now,
        send_id=send_id,
        email=email,
        raw=json.dumps({"c": customer, "m": campaign, "via": via}, ensure_ascii=False),
    )
    with ops.transaction() as con:
        result = store_events(ops, [event], now=now, con=con)
    return UnsubscribeResult(
        customer, campaign, email_hash(email) if email else None, result.suppressed > 0, send_id
    )


def record_unsubscribe(
    ops: OpsStore,
    secret: bytes,
    link: str,
    *,
    now: datetime,
    lookup_email: Callable[[str], str | None] | None = None,
) -> UnsubscribeResult:
    """What `pleasepoint unsubscribe` runs: verify the link's signature (a forged or altered one is refused,
    nothing recorded), then `unsubscribe_customer`; a customer with no address known is refused."""
    from pleasepoint_cli.content.unsubscribe import verify_unsubscribe

    customer, campaign, token = parse_link(link)
    if not verify_unsubscribe(secret, customer, campaign, token):
        raise InputDataError(
            "the unsubscribe link's signature does not match: it was forged or altered. Nothing recorded."
        )
    return unsubscribe_customer(
        ops, customer, campaign, now=now, via="cli", lookup_email=lookup_email, require_address=True
    )
