"""A shop for the automation tests: consenting customers, orders, a template; a file transport that keeps one
`.eml` per message and a second file for any duplicate, so a test counts exactly what was delivered."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pleasepoint_cli.config import Settings
from pleasepoint_cli.store import open_store

TEMPLATE = """\
<mjml>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>Hola {{ first_name }}: te echamos de menos en {{ shop.name }}.</mj-text>
      <mj-text><a href="{{ unsubscribe_url }}">Darse de baja</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""


def customer_id(i: int) -> str:
    return f"C{i:04d}"


def make_customers(db_path: Path, n: int, *, birth_dates: dict[int, str] | None = None) -> None:
    rows = [
        (customer_id(i), f"cliente{i:04d}@example.com", f"Nombre{i}", "Núñez", (birth_dates or {}).get(i))
        for i in range(n)
    ]
    with open_store(db_path) as store:
        store.con.executemany(
            "INSERT INTO customers (customer_id, email, first_name, last_name, birth_date, language, "
            "email_consent) VALUES (?, ?, ?, ?, CAST(? AS DATE), 'es', TRUE)",
            rows,
        )


def add_orders(db_path: Path, orders: list[tuple[str, str, str]]) -> None:
    """(order_id, customer_id, ordered_at local 'YYYY-MM-DD HH:MM') rows, one line each."""
    with open_store(db_path) as store:
        store.con.executemany(
            "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount) "
            "VALUES (?, ?, CAST(? AS TIMESTAMP), 'P1', 1, 10, 10)",
            orders,
        )


def set_attribute(db_path: Path, key: str, values: dict[str, str]) -> None:
    with open_store(db_path) as store:
        store.con.executemany(
            "INSERT INTO customer_attributes (customer_id, key, value, source, set_at) "
            "VALUES (?, ?, ?, 'test', TIMESTAMP '2026-01-01')",
            [(c, key, v) for c, v in values.items()],
        )


def write_template(directory: Path) -> None:
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "templates" / "email.mjml").write_text(TEMPLATE, encoding="utf-8")


def write_automation(directory: Path, name: str, body: str) -> Path:
    """An automation file in `directory/automations/` (templates in `directory/templates/`)."""
    write_template(directory)
    path = directory / "automations" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def schedule_automation(name: str, cron: str, *, timezone: str = "Europe/Madrid", extra: str = "") -> str:
    return f"""\
name: {name}
subject: "{{{{ first_name }}}}, vuelve"
template: ../templates/email.mjml
trigger:
  type: schedule
  cron: "{cron}"
  timezone: {timezone}
{extra}"""


@dataclass
class FileOutcome:
    status: str = "sent"
    code: int | None = 250
    detail: str = ""


class FileConnection:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def deliver(self, mail_from: str, rcpt: str, data: bytes, send_id: str) -> FileOutcome:
        if delay := float(os.environ.get("AUTOMATE_TEST_SLOW", "0")):
            time.sleep(delay)  # a slow server, so a test can kill the tick mid-send
        path = self.directory / f"{send_id}.eml"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = os.open(self.directory / f"{send_id}.dup.{os.getpid()}.{id(data)}", os.O_WRONLY | os.O_CREAT)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return FileOutcome()

    def close(self) -> None:
        pass


class FileTransport:
    """One `.eml` per send id; a second delivery of the same send id leaves a `.dup.*` file beside it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def connect(self) -> FileConnection:
        return FileConnection(self.directory)


def build(email: Any, send_id: str, date: datetime) -> bytes:
    return (
        f"Message-ID: <{send_id}@test>\r\nX-Send-Id: {send_id}\r\nTo: {email.to}\r\n"
        f"Subject: {email.subject}\r\nDate: {date.isoformat()}\r\n\r\n{email.text}\r\n"
    ).encode()


def delivered(directory: Path) -> tuple[int, int]:
    """(messages, duplicates) in the transport's folder."""
    names = [p.name for p in directory.iterdir()] if directory.exists() else []
    return sum(1 for n in names if n.endswith(".eml")), sum(1 for n in names if ".dup." in n)


def tick(db: Path, base: Path, now: datetime, settings: Settings | None = None, **kwargs: Any) -> Any:
    from pleasepoint_cli.automate.tick import run_tick

    return run_tick(
        db,
        settings or Settings(),
        base / "automations",
        now=now,
        transport=FileTransport(base / "sent"),
        build=build,
        **kwargs,
    )


def ledger_rows(db: Path, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    from pleasepoint_cli.ops.store import OpsStore, ops_path

    with OpsStore(ops_path(db)) as ops:
        return ops.rows(f"SELECT * FROM ledger WHERE {where} ORDER BY period, customer_id", params)


if __name__ == "__main__":  # a tick in its own process: python automate_data.py DB BASE NOW
    from datetime import datetime as _dt

    report = tick(Path(sys.argv[1]), Path(sys.argv[2]), _dt.fromisoformat(sys.argv[3]))
    print(report.summary())
