"""A small shop for the send tests: customers with consent and addresses, a one-template campaign."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pleasepoint_cli.config import Settings
from pleasepoint_cli.delivery.settings import DeliverySettings, SmtpSettings
from pleasepoint_cli.store import open_store

if TYPE_CHECKING:
    from smtp_server import LocalServer

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)

TEMPLATE = """\
<mjml>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>Hola {{ salutation }} {{ first_name }}: ofertas de {{ shop.name }}.</mj-text>
      <mj-text><a href="{{ unsubscribe_url }}">Darse de baja</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""

CAMPAIGN = """\
name: Rebajas de otoño
subject: "{{ first_name }}, las rebajas de otoño"
template: ../templates/email.mjml
audience:
  consent: true
"""


def customer_id(i: int) -> str:
    return f"C{i:04d}"


def address(i: int) -> str:
    return f"cliente{i:04d}@example.com"


def make_shop(db_path: Path, customers: int, *, extra: list[tuple[str, str, str]] = ()) -> None:  # type: ignore[assignment]
    """`customers` consenting customers C0000.. with addresses cliente0000@example.com..., plus `extra`
    (customer_id, email, first_name) rows."""
    rows = [(customer_id(i), address(i), f"Nombre{i}", "Pérez", "F") for i in range(customers)]
    rows += [(c, e, n, "Núñez", "M") for c, e, n in extra]
    with open_store(db_path) as store:
        store.con.executemany(
            "INSERT INTO customers (customer_id, email, first_name, last_name, gender, language, email_consent) "
            "VALUES (?, ?, ?, ?, ?, 'es', TRUE)",
            rows,
        )


def write_campaign(directory: Path, body: str = CAMPAIGN, template: str = TEMPLATE) -> Path:
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "templates" / "email.mjml").write_text(template, encoding="utf-8")
    path = directory / "campaigns" / "rebajas.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def smtp_settings(server: LocalServer, connections: int = 2, **smtp: object) -> Settings:
    """Settings that send through the test's STARTTLS server with `connections` connections."""
    return Settings(
        delivery=DeliverySettings(
            transport="smtp",
            smtp=SmtpSettings(
                host=server.host,
                port=server.port,
                security="starttls",
                ca_file=str(server.ca_file),
                connections=connections,
                retry_backoff=0.01,
                **smtp,  # type: ignore[arg-type]
            ),
        )
    )
