"""Signed tracking links: the open pixel and click redirects the renderer writes when `tracking.base_url` is
set, and their verification by the tracking server.

A link names the message it was in either by its send id (`s=`) or, when the renderer does not know the send
id yet, by campaign and customer (`m=` and `c=`, like the unsubscribe link). The HMAC-SHA256 covers that
reference and, for a click, the destination URL, so a link cannot be pointed anywhere else (no open redirect)
and a reference cannot be changed to another customer's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from pleasepoint_cli.config import Settings

OPEN_PATH = "/o"
CLICK_PATH = "/c"


@dataclass(frozen=True)
class LinkRef:
    """Which message a tracking link belongs to: a send id, or a campaign (or automation) and a customer."""

    send_id: str | None = None
    source: str | None = None
    customer_id: str | None = None

    def canonical(self) -> str:
        if self.send_id:
            return f"s\x00{self.send_id}"
        return f"m\x00{self.source or ''}\x00{self.customer_id or ''}"

    def params(self) -> dict[str, str]:
        if self.send_id:
            return {"s": self.send_id}
        return {"m": self.source or "", "c": self.customer_id or ""}

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> LinkRef | None:
        if params.get("s"):
            return cls(send_id=params["s"])
        if params.get("m") and params.get("c"):
            return cls(source=params["m"], customer_id=params["c"])
        return None


def _sign(secret: bytes, *parts: str) -> str:
    digest = hmac.new(secret, "\x00".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def open_token(secret: bytes, ref: LinkRef) -> str:
    return _sign(secret, "open", ref.canonical())


def click_token(secret: bytes, ref: LinkRef, url: str) -> str:
    return _sign(secret, "click", ref.canonical(), url)


def verify_open(secret: bytes, ref: LinkRef, token: str) -> bool:
    return hmac.compare_digest(open_token(secret, ref), token)


def verify_click(secret: bytes, ref: LinkRef, url: str, token: str) -> bool:
    return hmac.compare_digest(click_token(secret, ref, url), token)


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def pixel_url(base_url: str, secret: bytes, ref: LinkRef) -> str:
    return f"{_base(base_url)}{OPEN_PATH}?{urlencode({**ref.params(), 't': open_token(secret, ref)})}"


def click_url(base_url: str, secret: bytes, ref: LinkRef, url: str) -> str:
    query = urlencode({**ref.params(), "u": url, "t": click_token(secret, ref, url)})
    return f"{_base(base_url)}{CLICK_PATH}?{query}"


def is_trackable(url: str) -> bool:
    """An absolute http(s) URL (mailto:, tel:, anchors and template leftovers are left alone)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_ANCHOR_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def rewrite_html(
    document: str, *, base_url: str, secret: bytes, ref: LinkRef, keep: tuple[str, ...] = ()
) -> str:
    """Every http(s) link of the HTML through the click redirect, and the open pixel before `</body>`.

    Links that start with one of `keep` (the unsubscribe URL) stay direct: an unsubscribe must never depend
    on the tracking server, and a tracked unsubscribe link would count as a click.
    """

    def replace(match: re.Match[str]) -> str:
        prefix, quote, value = match.groups()
        url = html.unescape(value).strip()
        if not is_trackable(url) or any(url.startswith(k) for k in keep if k):
            return match.group(0)
        tracked = html.escape(click_url(base_url, secret, ref, url), quote=True)
        return f"{prefix}{quote}{tracked}{quote}"

    rewritten = _ANCHOR_HREF.sub(replace, document)
    pixel = (
        f'<img src="{html.escape(pixel_url(base_url, secret, ref), quote=True)}" width="1" height="1" '
        'alt="" style="display:block;width:1px;height:1px;border:0" />'
    )
    ends = list(_BODY_END.finditer(rewritten))
    if not ends:
        return rewritten + pixel
    at = ends[-1].start()
    return rewritten[:at] + pixel + rewritten[at:]


def check_tracking_url(base_url: str) -> str:
    """`tracking.base_url` must be an absolute https URL (mail clients block or warn on plain http)."""
    from pleasepoint_cli.errors import ConfigError

    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"tracking.base_url {base_url!r} must be an absolute https URL without query, "
            "e.g. https://tienda.example/t (the public address of `pleasepoint track serve`)."
        )
    return base_url


def track_rendered(
    document: str, settings: Settings, secret: bytes, source: str, customer_id: str, send_id: str | None
) -> str:
    """A rendered email's HTML with tracked links and the pixel (the renderer's one call into tracking)."""
    assert settings.tracking.base_url
    ref = LinkRef(send_id=send_id) if send_id else LinkRef(source=source, customer_id=customer_id)
    return rewrite_html(
        document,
        base_url=settings.tracking.base_url,
        secret=secret,
        ref=ref,
        keep=(settings.email.unsubscribe_base_url,),
    )
