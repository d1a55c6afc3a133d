"""Signed unsubscribe links: an HMAC-SHA256 of (customer, campaign) so a link cannot be forged or altered.

The key comes from $PLEASEPOINT_SECRET; without it, from a random key file beside the database (see
`pleasepoint_cli.keys`). It is never printed, logged or exported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from pleasepoint_cli.errors import ConfigError
from pleasepoint_cli.keys import SECRET_ENV

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

__all__ = ["SECRET_ENV", "signing_secret"]


def signing_secret(store: Store) -> bytes:
    """The signing key of the database this connection is open on: $PLEASEPOINT_SECRET, else its key file.

    Reads nothing from and writes nothing to the database, so it works on a read-only connection.
    """
    from pleasepoint_cli import keys

    if from_env := os.environ.get(SECRET_ENV):
        return from_env.encode("utf-8")
    rows = store.tuples("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
    if not rows or not rows[0][0]:
        raise ConfigError(f"an in-memory database has no key file: set ${SECRET_ENV} to sign links.")
    return keys.signing_secret(Path(str(rows[0][0])))


def unsubscribe_token(secret: bytes, customer_id: str, campaign: str) -> str:
    """The URL-safe signature of one customer's unsubscribe link for one campaign."""
    message = f"unsubscribe\x00{customer_id}\x00{campaign}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_unsubscribe(secret: bytes, customer_id: str, campaign: str, token: str) -> bool:
    """Whether a token from an unsubscribe link is genuine (constant-time comparison)."""
    return hmac.compare_digest(unsubscribe_token(secret, customer_id, campaign), token)


def check_base_url(base_url: str) -> str:
    """The unsubscribe base URL, which must be absolute https (mail clients and RFC 8058 require it)."""
    if not base_url.startswith("https://") or len(base_url) <= len("https://"):
        raise ConfigError(
            f"email.unsubscribe_base_url {base_url!r} must be an absolute https URL "
            "(set it in pleasepoint.yaml, e.g. https://tienda.example/baja)."
        )
    return base_url


def unsubscribe_url(base_url: str, secret: bytes, customer_id: str, campaign: str) -> str:
    """`<base>?c=<customer>&m=<campaign>&t=<signature>`."""
    query = urlencode(
        {"c": customer_id, "m": campaign, "t": unsubscribe_token(secret, customer_id, campaign)}
    )
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"
