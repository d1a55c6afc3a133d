"""Signed unsubscribe links: an HMAC-SHA256 of (customer, campaign) so a link cannot be forged or altered.

The key comes from $PLEASEPOINT_SECRET; without it, from a random key made once per database and kept in the
`secrets` table. It is never printed, logged or exported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

SECRET_ENV = "PLEASEPOINT_SECRET"
_SECRET_NAME = "unsubscribe_hmac"


def signing_secret(con: duckdb.DuckDBPyConnection) -> bytes:
    """The signing key: $PLEASEPOINT_SECRET, else this database's own random key (made on first use)."""
    if from_env := os.environ.get(SECRET_ENV):
        return from_env.encode("utf-8")
    con.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        [_SECRET_NAME, secrets.token_hex(32), datetime.now()],
    )
    row = con.execute("SELECT value FROM secrets WHERE name = ?", [_SECRET_NAME]).fetchone()
    assert row is not None
    return str(row[0]).encode("utf-8")


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
