"""`delivery:` of pleasepoint.yaml: which transport, the SMTP server, the relay, DKIM and the list headers.

Credentials are never part of the file: `username_env` / `password_env` name environment variables, read when
the transport is made (see `transport.make_transport`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The send id goes into a Message-ID, a file name and SES message tags (letters, digits, '-' and '_' only).
SEND_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})")
_LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")


class _Strict(BaseModel):
    """Unknown keys are errors (config.Strict, restated here: config.py imports this module)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # as config.Strict: YAML gives native types


def _no_line_breaks(value: str | None) -> str | None:
    if value is not None and any(c in value for c in "\r\n\x00"):
        raise ValueError("must be one line (no CR, LF or NUL)")
    return value


class SmtpSettings(_Strict):
    """The SMTP server (a relay such as SendGrid, Mailgun or SES, or the shop's own)."""

    host: str = "localhost"
    port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    security: Literal["none", "starttls", "tls"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    timeout: Annotated[float, Field(gt=0)] = 30.0
    connections: Annotated[int, Field(ge=1, le=64)] = 4
    rate_per_second: Annotated[float, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=20)] = 5
    retry_backoff: Annotated[float, Field(ge=0)] = 1.0

    @field_validator("host", "ca_file")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _no_line_breaks(value)

    @field_validator("username_env", "password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            # The value is not repeated: someone may have pasted the secret itself here.
            raise ValueError(
                "not an environment variable name: give the variable's NAME (e.g. SMTP_PASSWORD), "
                "never the secret itself"
            )
        return value

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> SmtpSettings:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        return self

    @property
    def effective_port(self) -> int:
        """The port, defaulting by security: 465 for implicit TLS, 587 for STARTTLS, 25 for none."""
        if self.port is not None:
            return self.port
        return {"tls": 465, "starttls": 587, "none": 25}[self.security]


class DkimSettings(_Strict):
    """DKIM signing: the d= domain, the s= selector and the private key file (RSA or Ed25519, PEM)."""

    domain: str
    selector: str
    key_file: str

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _DOMAIN.fullmatch(value):
            raise ValueError(f"{value!r} is not a domain name")
        return value.lower()

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if not _SELECTOR.fullmatch(value):
            raise ValueError(f"{value!r} is not a DKIM selector (letters, digits, '.', '-', '_')")
        return value


class DeliverySettings(_Strict):
    """How messages leave: the outbox folder (default, nothing leaves the machine) or an SMTP server."""

    transport: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: str = "outbox"
    smtp: SmtpSettings = SmtpSettings()
    provider: Literal["none", "sendgrid", "mailgun", "ses"] = "none"
    ses_configuration_set: str | None = None
    dkim: DkimSettings | None = None
    list_id: str | None = None
    unsubscribe_mailto: str | None = None

    @field_validator("outbox_dir", "ses_configuration_set")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _no_line_breaks(value)

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _no_line_breaks(value)
        label = value.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in value else value.strip()
        if not _LIST_ID.fullmatch(label):
            raise ValueError(
                f"{value!r} is not a List-Id (RFC 2919): give `label.domain`, e.g. novedades.tienda.example, "
                "optionally after a name: 'Novedades <novedades.tienda.example>'"
            )
        return value.strip()

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = value.removeprefix("mailto:").strip()
        if not re.fullmatch(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+", address):
            raise ValueError(f"{value!r} is not a plain address such as baja@tienda.example")
        return address

    @model_validator(mode="after")
    def _ses_only(self) -> DeliverySettings:
        if self.ses_configuration_set is not None and self.provider != "ses":
            raise ValueError("ses_configuration_set applies only with provider: ses")
        if self.ses_configuration_set is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,64}", self.ses_configuration_set
        ):
            raise ValueError("ses_configuration_set: letters, digits, '-' and '_' only")
        return self
