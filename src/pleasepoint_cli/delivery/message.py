"""Every message of a send as RFC 5322 bytes, built without the `email` package's object model.

The MIME skeleton (boundary, part headers, the campaign's From, Reply-To, List-Id) is made once per campaign;
per recipient only the To, Subject, Date, Message-ID, the unsubscribe link and the two bodies are encoded
(the text quoted-printable, the HTML base64, both through `binascii`), then everything is joined once. Every header value is checked for
CR, LF and control characters, raw and once its encoded words are decoded (CVE-2024-6923), and a value that
fails makes that one message fail with HeaderInjectionError. `tests/test_delivery_message.py` parses the
bytes back with the standard library to prove the result.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from pleasepoint_cli.delivery import headers as h
from pleasepoint_cli.delivery.settings import SEND_ID_PATTERN
from pleasepoint_cli.errors import DeliveryError, MessageError

if TYPE_CHECKING:
    from pleasepoint_cli.campaign.prepare import RenderedEmail
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.delivery.dkim import DkimSigner
    from pleasepoint_cli.delivery.settings import DeliverySettings

SEND_ID_HEADER = "X-Pleasepoint-Send-Id"
PROVIDER_VARIABLE = "pp_send_id"
_URL = re.compile(r"https://[\x21-\x7e]+")
_URL_FORBIDDEN = re.compile(r'[<>"\s\\]')


def default_list_id(settings: Settings) -> str:
    """`Shop name <shop-name.shop-host>` (RFC 2919), from `shop.name` and `shop.url`."""
    import unicodedata
    from urllib.parse import urlsplit

    ascii_name = unicodedata.normalize("NFKD", settings.shop.name).encode("ascii", "ignore").decode()
    label = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "newsletter"
    host = (urlsplit(settings.shop.url).hostname or "pleasepoint.invalid").lower()
    return f"{settings.shop.name} <{label}.{host}>"


def _list_id_value(value: str) -> str:
    """The List-Id header value: the phrase encoded as needed, then `<label.domain>`."""
    if "<" not in value:
        return f"<{value}>"
    name, _, label = value.rpartition("<")
    name = name.strip()
    label = "<" + label.strip()
    if not name:
        return label
    return f"{h.phrase('List-Id', name, h.LINE - len('List-Id: '))} {label}"


def _normalised(text: str) -> bytes:
    """UTF-8 with CRLF line ends and a final line end (so binascii's soft breaks are CRLF too)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", "\r\n").encode("utf-8")


def quoted_printable(text: str) -> bytes:
    """Quoted-printable UTF-8 lines of at most 76 characters, CRLF line ends, ending with CRLF."""
    return binascii.b2a_qp(_normalised(text), quotetabs=False, istext=True, header=False)


def base64_lines(text: str) -> bytes:
    """Base64 of the UTF-8 text (CRLF line ends) in lines of 76 characters, ending with CRLF.

    Used for the HTML part: three times faster than binascii's quoted-printable on a 20 KB newsletter
    (whose `=` in every attribute quoted-printable must escape anyway)."""
    raw = binascii.b2a_base64(_normalised(text), newline=False)
    return b"\r\n".join([raw[i : i + 76] for i in range(0, len(raw), 76)]) + b"\r\n"


@dataclass
class MessageBuilder:
    """Builds the messages of one campaign. `build` is all a sender calls per recipient.

    `settings` is the whole pleasepoint.yaml (its `delivery:` section, and `shop:` for the default
    List-Id); `signer` signs every message when given (see `dkim.load_signer`).
    """

    settings: Settings
    signer: DkimSigner | None = None
    boundary_seed: str = ""
    _boundary: str = field(init=False)
    _mime_headers: bytes = field(init=False)
    _skeleton: tuple[bytes, bytes, bytes] = field(init=False)
    _from_cache: dict[tuple[str, str], tuple[str, str]] = field(init=False, default_factory=dict)
    _reply_cache: dict[str, str] = field(init=False, default_factory=dict)
    _list_id: str = field(init=False)
    _date_cache: tuple[datetime, str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        delivery = self.delivery
        # "=_" never occurs in quoted-printable text ("=" is always written "=3D") nor in base64, so the
        # boundary cannot collide with a body; the seed only makes it differ between campaigns.
        digest = hashlib.sha256(f"pleasepoint\x00{self.boundary_seed}".encode()).hexdigest()[:24]
        self._boundary = f"=_pp_{digest}"
        b = self._boundary.encode("ascii")
        self._mime_headers = (
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="' + b + b'"\r\n\r\n'
        )
        self._skeleton = (
            b"--" + b + b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            # Each body ends with CRLF; the CRLF before a boundary belongs to the boundary (RFC 2046), so
            # one more keeps the part's own final line end.
            b"\r\n--" + b + b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            b"\r\n--" + b + b"--\r\n",
        )
        raw_list_id = delivery.list_id or default_list_id(self.settings)
        self._list_id = _list_id_value(raw_list_id)
        h.check_emitted("List-Id", self._list_id)

    @property
    def delivery(self) -> DeliverySettings:
        return self.settings.delivery

    @property
    def boundary(self) -> str:
        return self._boundary

    def envelope_from(self, email: RenderedEmail) -> str:
        """The SMTP envelope sender (MAIL FROM) of a message: the From address."""
        return self._from(email.from_address)[1]

    def _from(self, value: str) -> tuple[str, str]:
        """(From header value, address) of the campaign's sender, encoded once."""
        key = ("From", value)
        cached = self._from_cache.get(key)
        if cached is None:
            try:
                name, addr = h.parse_mailbox("From", value)
            except MessageError as e:
                raise DeliveryError(f"the sender address is unusable: {e}") from e
            cached = (h.mailbox("From", name, addr), addr)
            h.check_emitted("From", cached[0])
            self._from_cache[key] = cached
        return cached

    def _reply_to(self, value: str) -> str:
        cached = self._reply_cache.get(value)
        if cached is None:
            try:
                name, addr = h.parse_mailbox("Reply-To", value)
            except MessageError as e:
                raise DeliveryError(f"the Reply-To address is unusable: {e}") from e
            cached = h.mailbox("Reply-To", name, addr)
            h.check_emitted("Reply-To", cached)
            self._reply_cache[value] = cached
        return cached

    def _date(self, date: datetime) -> str:
        cached = self._date_cache
        if cached is not None and cached[0] == date:
            return cached[1]
        if date.tzinfo is None:
            raise DeliveryError("a message date must be timezone-aware (UTC).")
        value = format_datetime(date.replace(microsecond=0))
        self._date_cache = (date, value)
        return value

    def message_id(self, send_id: str, from_address: str) -> str:
        """`<send_id@domain>`: the DKIM domain, else the From address's domain. Deterministic per ledger row."""
        domain = (
            self.signer.domain if self.signer is not None else self._from(from_address)[1].rpartition("@")[2]
        )
        return f"<{send_id}@{domain}>"

    def _unsubscribe(self, url: str, send_id: str) -> str:
        if not _URL.fullmatch(url) or _URL_FORBIDDEN.search(url):
            h.check_header_value("List-Unsubscribe", url)
            raise MessageError(
                f"the unsubscribe URL {url[:80]!r} is not an absolute https URL without spaces."
            )
        value = f"<{url}>"
        if mailto := self.delivery.unsubscribe_mailto:
            value += f",\r\n <mailto:{mailto}?subject=unsubscribe%20{send_id}>"
        return value

    def _provider_headers(self, send_id: str) -> list[tuple[str, str]]:
        provider = self.delivery.provider
        if provider == "sendgrid":
            return [("X-SMTPAPI", f'{{"unique_args": {{"{PROVIDER_VARIABLE}": "{send_id}"}}}}')]
        if provider == "mailgun":
            return [("X-Mailgun-Variables", f'{{"{PROVIDER_VARIABLE}": "{send_id}"}}')]
        if provider == "ses":
            extra = [("X-SES-MESSAGE-TAGS", f"{PROVIDER_VARIABLE}={send_id}")]
            if self.delivery.ses_configuration_set:
                extra.append(("X-SES-CONFIGURATION-SET", self.delivery.ses_configuration_set))
            return extra
        return []

    def headers(self, email: RenderedEmail, *, send_id: str, date: datetime) -> list[tuple[str, str]]:
        """The top-level headers of one message, encoded and checked, in the order they are written."""
        if not SEND_ID_PATTERN.fullmatch(send_id):
            raise DeliveryError(f"send id {send_id!r}: letters, digits, '-' and '_' only (1-128).")
        # Values made per message are checked here as written; the campaign's own (From, Reply-To, List-Id)
        # and each distinct subject were checked once, when first encoded.
        per_message = [
            ("To", h.mailbox("To", email.to_name, email.to)),
            ("Date", self._date(date)),
            ("Message-ID", self.message_id(send_id, email.from_address)),
            ("List-Unsubscribe", self._unsubscribe(email.unsubscribe_url, send_id)),
        ]
        for name, value in per_message:
            h.check_emitted(name, value)
        to, date_value, message_id, unsubscribe = (value for _, value in per_message)
        fields = [
            ("From", self._from(email.from_address)[0]),
            ("To", to),
            ("Subject", h.unstructured("Subject", email.subject)),
            ("Date", date_value),
            ("Message-ID", message_id),
        ]
        if email.reply_to:
            fields.append(("Reply-To", self._reply_to(email.reply_to)))
        fields += [
            ("List-Id", self._list_id),
            ("List-Unsubscribe", unsubscribe),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            (SEND_ID_HEADER, send_id),  # a checked token (SEND_ID_PATTERN)
            *self._provider_headers(send_id),
        ]
        return fields

    def build(self, email: RenderedEmail, *, send_id: str, date: datetime) -> bytes:
        """The whole message (CRLF line ends, 7-bit) ready for `sendmail` or an `.eml` file.

        Raises HeaderInjectionError / MessageError for this recipient's data (fail the row, go on), and
        DeliveryError for a problem that every message of the campaign shares.
        """
        fields = self.headers(email, send_id=send_id, date=date)
        start, middle, end = self._skeleton
        pieces = (start, quoted_printable(email.text), middle, base64_lines(email.html), end)
        body = b"".join(pieces)
        block = "".join(f"{name}: {value}\r\n" for name, value in fields)
        if self.signer is not None:
            all_fields = [*fields, ("MIME-Version", "1.0"), ("Content-Type", self._content_type)]
            name, value = self.signer.signature_header(all_fields, pieces, int(date.timestamp()))
            block = f"{name}: {value}\r\n" + block
        return block.encode("ascii") + self._mime_headers + body

    @property
    def _content_type(self) -> str:
        return f'multipart/alternative;\r\n boundary="{self._boundary}"'
