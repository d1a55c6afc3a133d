"""One-click unsubscribe: verify a signed link and put the person's address on the suppression list.

What `pleasepoint unsubscribe` runs, and what the tracking server calls on the RFC 8058 POST. The address is
found in the send ledger (the message the link came in), so no DuckDB access is needed; a link from a
preview (no ledger row) falls back to a lookup the caller supplies.
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
    email_sha256: str
    added: bool
    """False when the address was already suppressed (an unsubscribe is idempotent)."""

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


def record_unsubscribe(
    ops: OpsStore,
    secret: bytes,
    link: str,
    *,
    now: datetime,
    lookup_email: Callable[[str], str | None] | None = None,
) -> UnsubscribeResult:
    """Verify the link's signature (a forged or altered one is refused, nothing recorded) and suppress the
    address it was sent to, reason `unsubscribed`."""
    from pleasepoint_cli.content.unsubscribe import verify_unsubscribe
    from pleasepoint_cli.ops.suppression import email_hash, iso

    customer, campaign, token = parse_link(link)
    if not verify_unsubscribe(secret, customer, campaign, token):
        raise InputDataError(
            "the unsubscribe link's signature does not match: it was forged or altered. Nothing recorded."
        )
    email = ops.scalar(
        "SELECT email FROM ledger WHERE customer_id = ? AND source = ? AND kind <> 'test' AND email IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        [customer, campaign],
    )
    if email is None and lookup_email is not None:
        email = lookup_email(customer)
    if not email:
        raise NotFoundError(f"no address known for customer {customer!r}: nothing to unsubscribe.")
    sha = email_hash(str(email))
    with ops.transaction() as con:
        cursor = con.execute(
            "INSERT INTO suppressions (email_sha256, email, reason, source, created_at) VALUES (?, ?, 'unsubscribed', ?, ?) "
            "ON CONFLICT (email_sha256) DO NOTHING",
            [sha, str(email).strip().lower(), f"unsubscribe:{campaign}", iso(now)],
        )
    return UnsubscribeResult(customer, campaign, sha, cursor.rowcount > 0)
