"""The message builder: every header, both parts, accents, no header injection, DKIM that verifies.

Every message is parsed back with the standard library (policy.default) and DKIM is checked by dkimpy."""

from __future__ import annotations

import base64
import email
import json
import types
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pleasepoint_cli.campaign.prepare import RenderedEmail
from pleasepoint_cli.config import Settings
from pleasepoint_cli.delivery.dkim import SIGNED_HEADERS, DkimSigner, load_key, load_signer
from pleasepoint_cli.delivery.headers import check_header_template, check_header_value
from pleasepoint_cli.delivery.message import MessageBuilder, default_list_id
from pleasepoint_cli.delivery.settings import DeliverySettings, DkimSettings
from pleasepoint_cli.errors import ConfigError, DeliveryError, HeaderInjectionError, MessageError

DATE = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)
UNSUBSCRIBE = "https://tienda.example/baja?c=C0000001&m=newsletter&t=Zm9vYmFy-_x"
HTML = (
    "<!doctype html><html><body><p>Hola María José, ¿qué tal?</p>"
    + "<p style='color:#333'>Aceite de oliva virgen extra — 8,49 €</p>" * 80  # one line of ~5 KB
    + "\n<p>.linea que empieza con punto</p>\n<p>Adiós  </p>\n</body></html>\n"
)
TEXT = "Hola María José,\n\n¿Qué tal? Ñandú, pingüino, 8,49 €.\n.una línea con punto\nfin con espacio   \n"


def rendered(**changes: Any) -> RenderedEmail:
    values: dict[str, Any] = {
        "campaign": "newsletter",
        "variant": "a",
        "customer_id": "C0000001",
        "to": "maria.jose@example.com",
        "to_name": "María José Núñez",
        "from_address": "Mercado Verde Málaga <hola@tienda.example>",
        "reply_to": "Atención al cliente <ayuda@tienda.example>",
        "subject": "¡Hola María José! Ofertas de septiembre",
        "preheader": "",
        "html": HTML,
        "text": TEXT,
        "unsubscribe_url": UNSUBSCRIBE,
    }
    values.update(changes)
    return RenderedEmail(**values)


def make_settings(**delivery: Any) -> Settings:
    return Settings.model_validate({"delivery": delivery})


def parse(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def raw_header(data: bytes, name: str) -> str:
    """A header's value as written, unfolded (not decoded)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in head.replace("\r\n ", " ").split("\r\n"):
        key, _, value = field.partition(": ")
        if key.lower() == name.lower():
            return value
    raise KeyError(name)


def legacy_decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


# --- every message ---------------------------------------------------------------------------------------


def test_every_header_and_both_parts_with_accents() -> None:
    builder = MessageBuilder(
        make_settings(unsubscribe_mailto="baja@tienda.example"), boundary_seed="newsletter"
    )
    data = builder.build(rendered(), send_id="S-0001_abc", date=DATE)
    message = parse(data)

    assert message["From"].addresses[0].display_name == "Mercado Verde Málaga"
    assert message["From"].addresses[0].addr_spec == "hola@tienda.example"
    assert message["To"].addresses[0].display_name == "María José Núñez"
    assert message["To"].addresses[0].addr_spec == "maria.jose@example.com"
    assert message["Reply-To"].addresses[0].addr_spec == "ayuda@tienda.example"
    assert str(message["Subject"]) == "¡Hola María José! Ofertas de septiembre"
    assert message["Date"].datetime == DATE
    assert message["Message-ID"] == "<S-0001_abc@tienda.example>"
    assert message["List-Id"] == "Mi tienda <mi-tienda.tienda.example>"
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE}>, <mailto:baja@tienda.example?subject=unsubscribe%20S-0001_abc>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Pleasepoint-Send-Id"] == "S-0001_abc"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert all(message.get_all(name) is not None and len(message.get_all(name)) == 1 for name in message)

    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in parts)
    assert text.replace("\r\n", "\n") == TEXT
    assert html.replace("\r\n", "\n") == HTML
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert message.defects == [] and all(p.defects == [] for p in parts)


def test_bytes_are_7bit_crlf_and_lines_within_limits() -> None:
    data = MessageBuilder(make_settings()).build(rendered(), send_id="abc", date=DATE)
    data.decode("ascii")  # 7-bit: nothing to negotiate with the server
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    # 78 everywhere (RFC 5322's SHOULD) but on the line of the unsubscribe URL, which cannot be folded.
    assert max(len(line) for line in lines if not line.startswith(b"List-Unsubscribe: <https")) <= 78
    assert max(len(line) for line in lines) <= 998


def test_message_id_is_deterministic_per_send_id() -> None:
    builder = MessageBuilder(make_settings())
    first = parse(builder.build(rendered(), send_id="row-42", date=DATE))
    again = parse(builder.build(rendered(subject="Otro"), send_id="row-42", date=DATE))
    other = parse(builder.build(rendered(), send_id="row-43", date=DATE))
    assert first["Message-ID"] == again["Message-ID"] == "<row-42@tienda.example>"
    assert other["Message-ID"] == "<row-43@tienda.example>"


def test_send_id_must_be_a_token() -> None:
    builder = MessageBuilder(make_settings())
    for bad in ("", "a b", "a@b", "x" * 129, "a\r\nBcc: x"):
        with pytest.raises(DeliveryError):
            builder.build(rendered(), send_id=bad, date=DATE)


@pytest.mark.parametrize(
    ("provider", "header", "expected"),
    [
        ("sendgrid", "X-SMTPAPI", {"unique_args": {"pp_send_id": "id_7"}}),
        ("mailgun", "X-Mailgun-Variables", {"pp_send_id": "id_7"}),
        ("ses", "X-SES-MESSAGE-TAGS", "pp_send_id=id_7"),
    ],
)
def test_provider_carries_the_send_id(provider: str, header: str, expected: Any) -> None:
    data = MessageBuilder(make_settings(provider=provider)).build(rendered(), send_id="id_7", date=DATE)
    value = parse(data)[header]
    assert (json.loads(value) if isinstance(expected, dict) else value) == expected
    others = {"X-SMTPAPI", "X-Mailgun-Variables", "X-SES-MESSAGE-TAGS"} - {header}
    assert all(parse(data)[name] is None for name in others)


def test_no_provider_header_by_default_and_ses_configuration_set() -> None:
    plain = parse(MessageBuilder(make_settings()).build(rendered(), send_id="a", date=DATE))
    assert plain["X-SMTPAPI"] is None and plain["X-SES-MESSAGE-TAGS"] is None
    ses = make_settings(provider="ses", ses_configuration_set="pleasepoint-events")
    message = parse(MessageBuilder(ses).build(rendered(), send_id="a", date=DATE))
    assert message["X-SES-CONFIGURATION-SET"] == "pleasepoint-events"


def test_optional_headers_and_list_id() -> None:
    settings = Settings.model_validate(
        {"shop": {"name": "Mercado Verde Málaga", "url": "https://www.mercado.example/"}}
    )
    assert default_list_id(settings) == "Mercado Verde Málaga <mercado-verde-malaga.www.mercado.example>"
    message = parse(MessageBuilder(settings).build(rendered(reply_to=None), send_id="a", date=DATE))
    assert message["Reply-To"] is None
    assert message["List-Id"] == "Mercado Verde Málaga <mercado-verde-malaga.www.mercado.example>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"  # no mailto unless configured
    configured = make_settings(list_id="novedades.tienda.example")
    message = parse(MessageBuilder(configured).build(rendered(), send_id="a", date=DATE))
    assert message["List-Id"] == "<novedades.tienda.example>"


def test_display_names_that_need_quoting_or_no_name() -> None:
    builder = MessageBuilder(make_settings())
    for name in ('Smith, John "Jr."', "O'Brien", "back\\slash", "=?utf-8?q?literal?="):
        message = parse(builder.build(rendered(to_name=name), send_id="a", date=DATE))
        assert message["To"].addresses[0].display_name == name
        assert message["To"].addresses[0].addr_spec == "maria.jose@example.com"
    message = parse(builder.build(rendered(to_name=""), send_id="a", date=DATE))
    assert str(message["To"]) == "maria.jose@example.com"


def test_an_internationalised_domain_becomes_its_a_label() -> None:
    message = parse(
        MessageBuilder(make_settings()).build(rendered(to="ana@correo.españa.es"), send_id="a", date=DATE)
    )
    assert message["To"].addresses[0].addr_spec == "ana@correo.xn--espaa-rta.es"


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=200),
    name=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120),
)
def test_any_subject_and_name_round_trip(subject: str, name: str) -> None:
    subject = " ".join(subject.split()) or "x"  # what LineTemplate makes of a rendered subject
    data = MessageBuilder(make_settings()).build(
        rendered(subject=subject, to_name=name), send_id="a", date=DATE
    )
    assert legacy_decoded(raw_header(data, "Subject")) == subject
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    shown = parse(data)["To"].addresses[0]
    assert shown.addr_spec == "maria.jose@example.com"
    # Python's address parser keeps the space between adjacent encoded words (RFC 2047 says drop it).
    assert "".join(shown.display_name.split()) == "".join(name.split())


# --- header injection ------------------------------------------------------------------------------------

ENCODED_CRLF = "=?UTF-8?Q?Hi=0D=0ABcc:_victim@evil.test?="


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hola\r\nBcc: victim@evil.test"},
        {"subject": "Hola\nBcc: victim@evil.test"},
        {"subject": ENCODED_CRLF},
        {"subject": f"Ofertas {ENCODED_CRLF} para ti"},
        {"subject": "=?utf-8?b?SGkNCkJjYzogdmljdGltQGV2aWwudGVzdA==?="},
        {"to_name": "María\r\nBcc: victim@evil.test"},
        {"to_name": ENCODED_CRLF},
        {"to_name": "Ana\x00"},
        {"to": "ana@example.com\r\nBcc: victim@evil.test"},
        {"to": "ana@example.com>\r\nBcc: <victim@evil.test"},
        {"unsubscribe_url": UNSUBSCRIBE + "\r\nBcc: victim@evil.test"},
    ],
)
def test_header_injection_is_refused_per_message(changes: dict[str, str]) -> None:
    builder = MessageBuilder(make_settings())
    with pytest.raises(HeaderInjectionError):
        builder.build(rendered(**changes), send_id="a", date=DATE)
    # The builder goes on with the next recipient.
    assert parse(builder.build(rendered(), send_id="b", date=DATE))["Bcc"] is None


def test_an_unusable_address_fails_the_one_message() -> None:
    builder = MessageBuilder(make_settings())
    for bad in ("not-an-address", "a b@example.com", "ñandú@example.com", "a@b", ""):
        with pytest.raises(MessageError):
            builder.build(rendered(to=bad), send_id="a", date=DATE)


def test_a_forged_sender_fails_the_whole_campaign() -> None:
    builder = MessageBuilder(make_settings())
    with pytest.raises(DeliveryError) as info:
        builder.build(rendered(from_address=f"{ENCODED_CRLF} <hola@tienda.example>"), send_id="a", date=DATE)
    assert not isinstance(info.value, MessageError)  # not a per-row problem: stop the send


def test_a_literal_encoded_word_without_crlf_is_shown_as_written() -> None:
    literal = "=?utf-8?q?Hola?= amigo"
    data = MessageBuilder(make_settings()).build(rendered(subject=literal), send_id="a", date=DATE)
    assert str(parse(data)["Subject"]) == literal


def test_check_header_value_and_template() -> None:
    assert check_header_value("Subject", "Hola ñ") == "Hola ñ"
    with pytest.raises(HeaderInjectionError):
        check_header_value("Subject", ENCODED_CRLF)
    assert check_header_template("subject", "¡Hola {{ first_name }}! Ofertas") is None
    assert check_header_template("from", "Mercado Verde <hola@tienda.example>") is None
    for bad in (
        "=?utf-8?q?{{ first_name }}?=",
        "Hola {{ '=?utf-8?q?x=0D=0A?=' }}",
        "Hola\r\nBcc: x",
        "Hola {{ first_name }}\x0b",
        ENCODED_CRLF,
    ):
        problem = check_header_template("subject", bad)
        assert problem is not None and problem.startswith("subject ")


# --- settings -------------------------------------------------------------------------------------------


def test_delivery_settings_defaults_and_strictness() -> None:
    default = Settings().delivery
    assert (default.transport, default.outbox_dir, default.provider, default.dkim) == (
        "outbox",
        "outbox",
        "none",
        None,
    )
    assert default.smtp.connections == 4 and default.smtp.effective_port == 587
    with pytest.raises(ValueError, match="extra"):
        DeliverySettings.model_validate({"smtp": {"password": "hunter2"}})
    with pytest.raises(ValueError, match="variable's NAME") as info:
        DeliverySettings.model_validate({"smtp": {"username_env": "P4ss-w0rd!", "password_env": "P"}})
    assert "P4ss-w0rd!" not in info.value.errors()[0]["msg"]  # what the config loader reports
    with pytest.raises(ValueError, match="both"):
        DeliverySettings.model_validate({"smtp": {"password_env": "SMTP_PASSWORD"}})
    with pytest.raises(ValueError, match="List-Id"):
        DeliverySettings.model_validate({"list_id": "no spaces allowed"})
    assert DeliverySettings.model_validate({"smtp": {"security": "tls"}}).smtp.effective_port == 465


def test_delivery_section_from_yaml_reports_file_and_line(tmp_path: Path) -> None:
    from pleasepoint_cli.config import load_settings

    config = tmp_path / "pleasepoint.yaml"
    config.write_text(
        "shop:\n  name: Tienda\ndelivery:\n  transport: smtp\n  smtp:\n    hots: mail.example\n"
    )
    with pytest.raises(ConfigError, match=r"pleasepoint.yaml:6"):
        load_settings(config)
    config.write_text(
        "delivery:\n  transport: smtp\n  smtp:\n    host: mail.example\n    rate_per_second: 20\n"
    )
    loaded = load_settings(config).delivery
    assert (
        loaded.transport == "smtp"
        and loaded.smtp.host == "mail.example"
        and loaded.smtp.rate_per_second == 20
    )


# --- DKIM -------------------------------------------------------------------------------------------------


def _rsa_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _ed25519_seed() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


@pytest.fixture
def nacl_for_dkimpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """dkimpy verifies Ed25519 through PyNaCl, which is not installed: give it the same calls backed by
    `cryptography` (only the primitive; dkimpy's own parsing, canonicalisation and hashing are used)."""
    import dkim
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    class BadSignatureError(Exception):
        pass

    class VerifyKey:
        def __init__(self, key: bytes, encoder: Any = None) -> None:
            self._key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key))

        def verify(self, message: bytes, signature: bytes) -> bytes:
            try:
                self._key.verify(signature, message)
            except InvalidSignature as e:
                raise BadSignatureError() from e
            return message

    nacl = types.SimpleNamespace(
        signing=types.SimpleNamespace(VerifyKey=VerifyKey),
        encoding=types.SimpleNamespace(Base64Encoder=object()),
        exceptions=types.SimpleNamespace(ValueError=ValueError, BadSignatureError=BadSignatureError),
    )
    monkeypatch.setattr(dkim, "nacl", nacl, raising=False)


def _verify(data: bytes, signer: DkimSigner) -> bool:
    import dkim

    record = signer.dns_record().encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{signer.selector}._domainkey.{signer.domain}.".encode()
        return record

    return bool(dkim.verify(data, dnsfunc=dnsfunc))


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_dkim_signature_verifies_and_covers_the_list_headers(
    kind: str, tmp_path: Path, nacl_for_dkimpy: None
) -> None:
    key_file = tmp_path / "dkim.key"
    key_file.write_bytes(_rsa_pem() if kind == "rsa" else _ed25519_seed())
    signer = load_signer(
        DkimSettings(domain="tienda.example", selector="pp2026", key_file="dkim.key"), tmp_path
    )
    assert signer is not None and signer.algorithm == ("rsa-sha256" if kind == "rsa" else "ed25519-sha256")
    builder = MessageBuilder(
        make_settings(provider="sendgrid", unsubscribe_mailto="baja@tienda.example"), signer
    )
    data = builder.build(rendered(), send_id="dk-1", date=DATE)
    assert data.startswith(b"DKIM-Signature: ")
    assert _verify(data, signer)

    signature = parse(data)["DKIM-Signature"]
    tags = dict(
        part.strip().split("=", 1) for part in str(signature).replace(" ", "").split(";") if part.strip()
    )
    signed = tags["h"].lower().split(":")
    for required in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ):
        assert required in signed
    assert "x-smtpapi" not in signed  # the relay strips it: signing it would break the signature
    assert set(signed) <= {h.lower() for h in SIGNED_HEADERS}
    assert (tags["d"], tags["s"], tags["c"]) == ("tienda.example", "pp2026", "relaxed/relaxed")

    # A changed subject, unsubscribe link or body no longer verifies.
    tampered_subject = data.replace(b"Ofertas_de", b"Ofertas_da", 1)
    assert tampered_subject != data and not _verify(tampered_subject, signer)
    tampered_link = data.replace(b"t=Zm9vYmFy", b"t=Zm9vYmFz", 1)
    assert tampered_link != data and not _verify(tampered_link, signer)
    tampered_body = data.replace(b"Ofertas", b"Offertas").replace(b"8,49", b"0,49", 1)
    assert not _verify(tampered_body, signer)
    # A relay folding the headers differently (relaxed canonicalisation) does not break it.
    assert _verify(data.replace(b"Message-ID: <", b"Message-ID:   <", 1), signer)


def test_dkim_keys_in_every_format(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs8 = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert load_key(pkcs8, "k")[0] == "rsa-sha256"
    assert load_key(_rsa_pem(), "k")[0] == "rsa-sha256"
    assert load_key(ed_pem, "k")[0] == "ed25519-sha256"
    assert load_key(_ed25519_seed(), "k")[0] == "ed25519-sha256"
    for bad in (b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"):
        with pytest.raises(ConfigError):
            load_key(bad, "k")
    with pytest.raises(ConfigError, match="cannot read"):
        load_signer(DkimSettings(domain="tienda.example", selector="s", key_file="missing.key"), tmp_path)
    assert load_signer(None, tmp_path) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", " ", "\t", "=", "\r\n", "ñ"]), max_size=30).map("".join), max_size=8
    )
)
def test_relaxed_body_by_pieces_equals_dkimpy(lines: list[str]) -> None:
    from dkim.canonicalization import Relaxed

    from pleasepoint_cli.delivery.dkim import relaxed_body

    # Pieces that each end at a line end, as the builder passes them.
    pieces = [(text + "\r\n").encode() for text in lines]
    whole = b"".join(pieces)
    assert relaxed_body(pieces) == Relaxed.canonicalize_body(whole)
    assert relaxed_body([whole]) == Relaxed.canonicalize_body(whole)
