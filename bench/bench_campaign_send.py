"""A campaign of the benchmark shop sent end to end through `pleasepoint campaign send` (one fresh process):
audience planning, the ledger rows in the SQLite ops store, contexts read from DuckDB in batches through the
opener, rendering, MIME building and SMTP over the configured connections into a local sink (Postfix's
`smtp-sink`, else several aiosmtpd processes on one port). Beside it, in the same run and against the same
sink: the floor (raw `smtplib.sendmail` of pre-serialised bytes over as many kept connections) and one
connection per message. Also the planning alone (`--dry-run`). DKIM signing is benched apart (bench_send).

The campaign is the blog's newsletter (three versions, three product slots per customer) narrowed to about
63,000 customers of the million: the newsletter's rules (without the distance to the store) plus a spend
threshold, sent with `--limit`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PLEASEPOINT, Figure, enriched_db, private_copy, python_snippet, timed

RECIPIENTS = int(os.environ.get("PLEASEPOINT_BENCH_CAMPAIGN", "50000"))
CONNECTIONS = int(os.environ.get("PLEASEPOINT_BENCH_SEND_CONNECTIONS", "4"))
PER_MESSAGE = int(os.environ.get("PLEASEPOINT_BENCH_SEND_PER_MESSAGE", "2000"))
EXAMPLES = Path(__file__).parents[1] / "examples"
NOW = "2026-07-01T10:00"  # shop time; the shop's orders end on 2026-06-30

CAMPAIGN = """\
name: "Newsletter bench"
subject: "{{{{ first_name }}}}, las ofertas de la quincena en {{{{ shop.name }}}}"
preheader: "Tres ofertas elegidas para ti"
run: latest
audience:
  all:
    - consent: true
    - contactable: true
    - not: {{state: [lost]}}
{narrowing}
variants:
  - name: familias con hijos
    template: {templates}/newsletter_familias.mjml
    subject: "{{{{ first_name }}}}, ofertas para toda la familia"
    audience:
      bought: {{category: ["Bebé y niño"], within_days: 365}}
  - name: mayores
    template: {templates}/newsletter_mayores.mjml
    preheader: "Sus ofertas de la quincena, con entrega en {{{{ store.name or 'su tienda' }}}}"
    audience:
      age: {{gte: 65}}
  - name: parejas jóvenes
    template: {templates}/newsletter_parejas.mjml
products:
  candidates:
    on_offer: true
  slots: 3
  exclude_bought_within_days: 30
  regular: {{by: product, min_orders: 2, min_share: 0.25}}
  habitual: {{level: high, min_propensity: 1.0}}
signature: "Marta Giménez, directora de marketing"
salutations:
  es: {{male: "Estimado Sr.", female: "Estimada Sra.", other: "Hola"}}
  ca: {{male: "Benvolgut Sr.", female: "Benvolguda Sra.", other: "Hola"}}
utm:
  source: newsletter
  medium: email
  campaign: bench
"""

# About 6% of the customers (about 63,000 of the million in the g2 shop, whose spend is lower than the old
# generator's: 400 or more left 20,548); `--limit` caps the send at RECIPIENTS.
NARROWING = """\
    - spend: {gte: 200}
"""

SETTINGS = """\
shop: {{name: "Ecomercado", timezone: Europe/Madrid}}
delivery:
  transport: smtp
  unsubscribe_mailto: baja@tienda.example
  smtp: {{host: 127.0.0.1, port: {port}, security: none, connections: {connections}}}
"""

_AIOSMTPD_REUSEPORT = """
import asyncio, sys
from aiosmtpd.smtp import SMTP
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(), hostname="127.0.0.1"), "127.0.0.1", port,
                                      reuse_port=True)
    await server.serve_forever()
asyncio.run(main(int(sys.argv[1])))
"""


def start_sink() -> tuple[list[subprocess.Popen[bytes]], int, str]:
    """Postfix's smtp-sink if installed (bench_send's), else one aiosmtpd process per connection sharing the
    port (SO_REUSEPORT), so the sink is not the bottleneck."""
    from shutil import which

    from bench.bench_send import _free_port, _wait_listening
    from bench.bench_send import start_sink as postfix_or_aiosmtpd

    if which("smtp-sink") or Path("/usr/sbin/smtp-sink").exists():
        process, port, kind = postfix_or_aiosmtpd()
        return [process], port, kind
    port = _free_port()
    processes = [
        subprocess.Popen([sys.executable, "-c", _AIOSMTPD_REUSEPORT, str(port)]) for _ in range(CONNECTIONS)
    ]
    _wait_listening(port)
    return processes, port, f"aiosmtpd x{CONNECTIONS} processes"


def _send_command(db: Path, config: Path, campaign: Path, *extra: str) -> list[str]:
    return [
        *PLEASEPOINT, "--db", str(db), "--config", str(config), "-q", "campaign", "send", str(campaign),
        "--yes", "--now", NOW, "--format", "json", *extra,
    ]  # fmt: skip


def _loop(function: str, *args: object) -> float:
    """A bench_send loop (floor, per message) in a fresh interpreter: its loop seconds."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r}); import bench.bench_send as b; "
        f"b.CONNECTIONS = {CONNECTIONS}; print(b.{function}(*{args!r}))"
    )
    _, _, out = timed(python_snippet(code))
    return float(out.strip().splitlines()[-1])


def run() -> list[Figure]:
    source = enriched_db()
    processes, port, sink = start_sink()
    try:
        with tempfile.TemporaryDirectory(prefix="pleasepoint-bench-send-") as folder:
            shop = Path(folder)
            db = private_copy(source, shop)
            config = shop / "pleasepoint.yaml"
            config.write_text(SETTINGS.format(port=port, connections=CONNECTIONS), encoding="utf-8")
            campaign = shop / "newsletter_bench.yaml"
            campaign.write_text(
                CAMPAIGN.format(narrowing=NARROWING.rstrip("\n"), templates=EXAMPLES / "templates"),
                encoding="utf-8",
            )
            plan_seconds, plan_peak, plan_out = timed(_send_command(db, config, campaign, "--dry-run"))
            plan: dict[str, Any] = json.loads(plan_out)
            seconds, peak, out = timed(_send_command(db, config, campaign, "--limit", str(RECIPIENTS)))
            summary: dict[str, Any] = json.loads(out)
        sent = int(summary["sent"])
        if sent < min(RECIPIENTS, int(plan["audience"])) * 0.99:
            raise RuntimeError(f"campaign send sent {sent} of {RECIPIENTS}: {json.dumps(summary)[:2000]}")
        floor = _loop("floor_loop", port, sent)
        per_message = _loop("per_message_loop", port, PER_MESSAGE)
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    rate, floor_rate, per_message_rate = sent / seconds, sent / floor, PER_MESSAGE / per_message
    return [
        Figure(
            f"campaign send --dry-run (audience {plan['audience']:,})",
            plan_seconds,
            plan_peak,
            target="planning only",
        ),
        Figure(
            f"campaign send, {sent:,} end to end: {rate:,.0f}/s",
            seconds,
            peak,
            f"floor, raw sendmail x{CONNECTIONS} conn: {floor_rate:,.0f}/s ({sink})",
            floor,
            ">= 500 msgs/s, < 3 GB",
        ),
        Figure(
            f"one connection per message: {per_message_rate:,.0f}/s",
            sent / per_message_rate,
            0.0,
            f"campaign send end to end: {rate:,.0f}/s",
            seconds,
            "connections reused",
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure, file=sys.stderr)
