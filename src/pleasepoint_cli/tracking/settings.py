"""The `tracking:` block of pleasepoint.yaml: the public base URL of the tracking server, where it listens,
and where the providers' webhook keys are found (names of environment variables, never the keys)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # as config.Strict: YAML gives native types


class SendgridWebhook(_Strict):
    """SendGrid's Signed Event Webhook: the verification key (base64 DER or PEM) from an environment variable."""

    public_key_env: str = "PLEASEPOINT_SENDGRID_WEBHOOK_KEY"


class MailgunWebhook(_Strict):
    """Mailgun: the HTTP webhook signing key from an environment variable."""

    signing_key_env: str = "PLEASEPOINT_MAILGUN_SIGNING_KEY"


class SnsWebhook(_Strict):
    """Amazon SES through SNS: the topics accepted, HTTP basic auth (`user:password` in an environment
    variable, put in the subscription URL as https://user:password@host/...), and optionally SNS's own
    message signature (the signing certificate is fetched from sns.<region>.amazonaws.com)."""

    topic_arns: list[str] = []
    basic_auth_env: str = "PLEASEPOINT_SNS_BASIC_AUTH"
    verify_signature: bool = False


class TrackingSettings(_Strict):
    base_url: str | None = None
    """Public https URL of the tracking server (behind the shop's reverse proxy), e.g.
    https://tienda.example/t. Unset: no open pixel and no click rewriting."""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8787
    max_age_seconds: Annotated[int, Field(gt=0)] = 300
    """How old a signed webhook's timestamp may be (replays of older requests are refused)."""
    attribution_days: Annotated[int, Field(ge=0)] = 7
    """An order within this many days after a click counts as a conversion (`last_conversion_days`)."""
    machine_user_agents: list[str] = ["Mozilla/5.0"]
    """User agents whose pixel loads are machine opens (Apple Mail Privacy Protection sends a bare one)."""
    sendgrid: SendgridWebhook = SendgridWebhook()
    mailgun: MailgunWebhook = MailgunWebhook()
    sns: SnsWebhook = SnsWebhook()
