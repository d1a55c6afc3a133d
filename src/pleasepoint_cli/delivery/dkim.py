"""DKIM signing (RFC 6376, relaxed/relaxed), RSA-SHA256 or Ed25519-SHA256 (RFC 8463), signed by `cryptography`.

dkimpy signs RSA in pure Python (about 5 ms a message here) and needs PyNaCl for Ed25519, so the signature
is computed here: the header and body canonicalisation are dkimpy's own functions, the signature is
OpenSSL's through `cryptography`. The message builder knows every header it wrote, so nothing is parsed back.
Tests check every signature with `dkim.verify`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    from pleasepoint_cli.delivery.settings import DkimSettings

# RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post to be signed; the rest identify the message.
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
_SIGNED = frozenset(h.lower() for h in SIGNED_HEADERS)


@dataclass(frozen=True)
class DkimSigner:
    """Signs messages for one domain and selector with one private key (RSA or Ed25519)."""

    domain: str
    selector: str
    algorithm: str  # "rsa-sha256" | "ed25519-sha256"
    _key: Any

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its key as unencrypted PKCS#8 PEM, for the send's worker processes (a pipe to a child
        of this process, never a file)."""
        from cryptography.hazmat.primitives import serialization

        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return (_restore_signer, (self.domain, self.selector, bytes(pem)))

    def signature_header(
        self, headers: Sequence[tuple[str, str]], body: bytes | Sequence[bytes], timestamp: int
    ) -> tuple[str, str]:
        """("DKIM-Signature", value) for a message whose headers (name, value as written, folded) and body
        (the bytes after the blank line, or its pieces, each ending at a line end) are given. Headers not in
        SIGNED_HEADERS are left unsigned (relays such as SendGrid and SES strip their own headers)."""
        from dkim.canonicalization import Relaxed

        signed = [(name, value) for name, value in headers if name.lower() in _SIGNED]
        canonical = Relaxed.canonicalize_headers(
            [(name.encode("ascii"), value.encode("ascii")) for name, value in signed]
        )
        pieces = (body,) if isinstance(body, bytes) else body
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(pieces)).digest()).decode()
        names = ":".join(name for name, _ in signed)
        value = (
            f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector};\r\n"
            f" t={timestamp}; h={names};\r\n bh={body_hash};\r\n b="
        )
        ((_, sig_canonical),) = Relaxed.canonicalize_headers([(b"DKIM-Signature", value.encode("ascii"))])
        data = b"".join(name + b":" + v for name, v in canonical)
        data += b"dkim-signature:" + sig_canonical.rstrip(b"\r\n")
        signature = base64.b64encode(self._sign(data)).decode("ascii")
        folded = "\r\n ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return "DKIM-Signature", value + folded

    def _sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if self.algorithm == "ed25519-sha256":
            # RFC 8463: Ed25519 (PureEdDSA) over the SHA-256 hash of the canonicalised data.
            return bytes(self._key.sign(hashlib.sha256(data).digest()))
        return bytes(self._key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    def dns_record(self) -> str:
        """The TXT record to publish at `<selector>._domainkey.<domain>`."""
        from cryptography.hazmat.primitives import serialization

        public = self._key.public_key()
        if self.algorithm == "ed25519-sha256":
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _restore_signer(domain: str, selector: str, pem: bytes) -> DkimSigner:
    algorithm, key = load_key(pem, f"the DKIM key of {selector}._domainkey.{domain}")
    return DkimSigner(domain, selector, algorithm, key)


def relaxed_body(pieces: Sequence[bytes]) -> bytes:
    """dkimpy's relaxed body canonicalisation of the pieces joined, when each piece ends at a line end.

    dkimpy's regular expressions cost about 2 ms on a 30 KB message; they are line-local, so they run
    only on the pieces that hold a tab, two spaces or a space before a line end (in practice the small
    quoted-printable text part; base64 and the MIME skeleton never do)."""
    from dkim.canonicalization import (
        compress_whitespace,
        correct_empty_body,
        strip_trailing_lines,
        strip_trailing_whitespace,
    )

    canonical = [
        compress_whitespace(strip_trailing_whitespace(piece))
        if b"\t" in piece or b"  " in piece or b" \r\n" in piece
        else piece
        for piece in pieces
    ]
    return bytes(correct_empty_body(strip_trailing_lines(b"".join(canonical))))


def load_key(data: bytes, where: str) -> tuple[str, Any]:
    """(algorithm, private key) from PEM (PKCS#1 or PKCS#8, RSA or Ed25519) or dkimpy's Ed25519 format
    (the 32-byte seed in base64, as `dknewkey --ktype ed25519` writes it)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if b"-----BEGIN" in data:
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{where}: not a readable unencrypted PEM private key ({e}).") from e
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 1024:
                raise ConfigError(f"{where}: an RSA key of {key.key_size} bits is too short (use 2048).")
            return "rsa-sha256", key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "ed25519-sha256", key
        raise ConfigError(f"{where}: DKIM needs an RSA or Ed25519 key, not {type(key).__name__}.")
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(f"{where}: not a PEM private key nor a base64 Ed25519 seed.")
    return "ed25519-sha256", ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def load_signer(settings: DkimSettings | None, base_dir: Path) -> DkimSigner | None:
    """The signer of `delivery.dkim` (key_file relative to the config file's folder), or None when unset."""
    if settings is None:
        return None
    path = Path(settings.key_file)
    if not path.is_absolute():
        path = base_dir / path
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"delivery.dkim.key_file: cannot read {path}: {e.strerror}.") from e
    algorithm, key = load_key(data, f"delivery.dkim.key_file {path}")
    return DkimSigner(settings.domain, settings.selector, algorithm, key)
