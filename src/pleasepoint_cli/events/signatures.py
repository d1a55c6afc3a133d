"""Provider webhook signatures. Every check raises `SignatureError` (the server answers 4xx and stores nothing).

- SendGrid Signed Event Webhook: ECDSA P-256 with SHA-256 over `timestamp + raw body`, signature (base64
  DER) in `X-Twilio-Email-Event-Webhook-Signature`, timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`,
  verification key (base64 DER SubjectPublicKeyInfo, as the SendGrid console shows it, or PEM).
- Mailgun: hex HMAC-SHA256 of `timestamp + token` with the webhook signing key, inside the body's `signature`
  object. A stale timestamp is refused here; a reused token is refused by the store (`webhook_tokens`).
- SNS: the topic must be a configured one, HTTP basic auth must match, and optionally the message signature
  (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA over the canonical string SNS documents) verifies
  against the certificate at `SigningCertURL`, which must be served by sns.<region>.amazonaws.com.

`cryptography` is imported inside the functions that need it (the CLI root stays fast).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pleasepoint_cli.errors import ConfigError, SignatureError

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def secret_from_env(name: str, what: str) -> str:
    """A key or secret from the environment variable the settings name (never from the file itself)."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{what}: set the environment variable {name} (named in pleasepoint.yaml tracking:)."
        )
    return value


def _check_age(timestamp: str, now: datetime, max_age: float, what: str) -> None:
    try:
        seconds = float(timestamp)
    except (TypeError, ValueError) as e:
        raise SignatureError(f"{what}: the timestamp {timestamp!r} is not a Unix time.") from e
    age = now.timestamp() - seconds
    if abs(age) > max_age:
        raise SignatureError(
            f"{what}: the timestamp is {age:+.0f} s away from now (more than {max_age:g} s): stale or replayed."
        )


# --- SendGrid ---------------------------------------------------------------------------------------------


def load_sendgrid_key(text: str) -> Any:
    """The EC public key from SendGrid's verification key (base64 DER, or PEM)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error) as e:
        raise ConfigError(f"the SendGrid verification key is not a public key ({e}).") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("the SendGrid verification key is not an elliptic-curve (ECDSA) key.")
    return key


def verify_sendgrid(
    public_key: str,
    payload: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: datetime,
    max_age: float,
) -> None:
    """Check a SendGrid Signed Event Webhook request; raise SignatureError if it does not verify."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature or not timestamp:
        raise SignatureError(
            f"SendGrid webhook: the {SENDGRID_SIGNATURE_HEADER} and timestamp headers are required."
        )
    key = load_sendgrid_key(public_key)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as e:
        raise SignatureError("SendGrid webhook: the signature does not verify.") from e
    _check_age(timestamp, now, max_age, "SendGrid webhook")


def sign_sendgrid(private_key: Any, payload: bytes, timestamp: str) -> str:
    """The signature SendGrid would send (for tests and `make demo`)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(
        private_key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    ).decode()


# --- Mailgun ----------------------------------------------------------------------------------------------


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def verify_mailgun(signing_key: str, signature: Any, *, now: datetime, max_age: float) -> str:
    """Check a Mailgun payload's `signature` object; return its token (the caller refuses a reused one)."""
    if not isinstance(signature, Mapping):
        raise SignatureError("Mailgun webhook: the payload has no `signature` object.")
    timestamp, token, given = (str(signature.get(k) or "") for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise SignatureError("Mailgun webhook: `signature` needs timestamp, token and signature.")
    if not hmac.compare_digest(mailgun_signature(signing_key, timestamp, token), given.lower()):
        raise SignatureError("Mailgun webhook: the signature does not verify.")
    _check_age(timestamp, now, max_age, "Mailgun webhook")
    return token


# --- SNS --------------------------------------------------------------------------------------------------


def check_basic_auth(authorization: str | None, expected: str) -> None:
    """HTTP basic auth (`user:password`), compared in constant time."""
    if not authorization or not authorization.lower().startswith("basic "):
        raise SignatureError("SNS webhook: basic authentication is required.")
    try:
        given = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise SignatureError("SNS webhook: malformed basic authentication.") from e
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureError("SNS webhook: wrong basic authentication.")


def check_topic(envelope: Mapping[str, Any], topics: list[str]) -> None:
    if not topics:
        raise ConfigError("SNS webhook: list the accepted topics in tracking.sns.topic_arns.")
    if envelope.get("TopicArn") not in topics:
        raise SignatureError(
            f"SNS webhook: topic {envelope.get('TopicArn')!r} is not one of tracking.sns.topic_arns."
        )


_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SNS_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def sns_string_to_sign(envelope: Mapping[str, Any]) -> bytes:
    """The canonical text SNS signs: `name\\nvalue\\n` for each present field, in SNS's documented order."""
    fields = _SNS_FIELDS.get(str(envelope.get("Type")))
    if fields is None:
        raise SignatureError(f"SNS webhook: unknown message type {envelope.get('Type')!r}.")
    parts = []
    for name in fields:
        value = envelope.get(name)
        if value is not None:
            parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def check_cert_url(url: Any) -> str:
    """The signing certificate URL, which must be https on sns.<region>.amazonaws.com and end in .pem."""
    parts = urlsplit(str(url or ""))
    if (
        parts.scheme != "https"
        or not _SNS_CERT_HOST.match(parts.hostname or "")
        or not parts.path.endswith(".pem")
    ):
        raise SignatureError(f"SNS webhook: the signing certificate URL {url!r} is not an SNS one.")
    return str(url)


def verify_sns_signature(envelope: Mapping[str, Any], certificate_pem: bytes) -> None:
    """Check SNS's own RSA signature of a message against its signing certificate."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(envelope.get("SignatureVersion"))
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise SignatureError(f"SNS webhook: unknown SignatureVersion {version!r}.")
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("SNS webhook: the signing certificate does not hold an RSA key.")
        signature = base64.b64decode(str(envelope.get("Signature") or ""), validate=True)
        key.verify(signature, sns_string_to_sign(envelope), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, binascii.Error) as e:
        raise SignatureError("SNS webhook: the message signature does not verify.") from e
