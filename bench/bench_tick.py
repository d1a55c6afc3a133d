"""One `automate tick` of the guide's win-back (examples/automations/recuperar_inactivos_plantas.yaml: daily at
09:00, at most once a month per customer, inactive or hibernating customers with a high propensity to Plantas)
at the million-customer shop, each in a fresh process:

- the planning step alone (`automate tick --dry-run`): the due slot, the audience, the caps counted over a
  ledger that already holds three June newsletters (750,000 rows), quiet hours in each customer's zone;
- the whole tick into a local SMTP sink (Postfix's `smtp-sink`, else aiosmtpd processes), with peak memory,
  beside the floor (raw `smtplib.sendmail` of as many pre-serialised messages over as many connections).

The shop is bench.common's enriched copy (persona run, `enrich levels latest`, `clv enrich --by state --key
hibernation`), copied privately so its ops store starts from the seeded ledger every run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PLEASEPOINT, Figure, enriched_db, private_copy, python_snippet, timed

CONNECTIONS = int(os.environ.get("PLEASEPOINT_BENCH_SEND_CONNECTIONS", "4"))
AUTOMATION = Path(__file__).parents[1] / "examples" / "automations" / "recuperar_inactivos_plantas.yaml"
NAME = "recuperar-inactivos-plantas"
NOW = "2026-07-01T09:05"  # shop time: five minutes after the automation's first slot

SETTINGS = """\
shop: {{name: "Ecomercado", timezone: Europe/Madrid}}
marketing:
  global_cap: 3/week
  quiet_hours: {{start: "21:00", end: "09:00", timezone: customer}}
delivery:
  transport: smtp
  unsubscribe_mailto: baja@tienda.example
  smtp: {{host: 127.0.0.1, port: {port}, security: none, connections: {connections}}}
"""

# Past newsletters in the ledger, so the global cap (3/week) has something to count: (slug, UTC sent_at,
# one customer in `share`).
PAST_SENDS = (
    ("newsletter-junio-1", "2026-06-25T08:00:00.000000Z", 3),
    ("newsletter-junio-2", "2026-06-27T08:00:00.000000Z", 3),
    ("newsletter-junio-3", "2026-06-30T08:00:00.000000Z", 3),
)

_SEED = """
import sqlite3, sys
from pathlib import Path
import duckdb
from pleasepoint_cli.ops import OpsStore, ops_path
from pleasepoint_cli.ops.ledger import make_send_id

db = Path(sys.argv[1])
past = {past!r}
OpsStore(ops_path(db)).close()  # creates and migrates the operational store
con = duckdb.connect(str(db), read_only=True)
ops = sqlite3.connect(ops_path(db))
total = 0
for slug, sent_at, share in past:
    rows = con.execute(
        "SELECT customer_id, email FROM customers WHERE hash(customer_id || ?) % ? = 0", [slug, share]
    ).fetchall()
    ops.executemany(
        "INSERT INTO ledger (send_id, kind, source, period, customer_id, email, variant, status, created_at, "
        "claimed_at, sent_at, attempts) VALUES (?, 'campaign', ?, '', ?, ?, '', 'sent', ?, ?, ?, 1)",
        [(make_send_id("campaign", slug, "", c), slug, c, e, sent_at, sent_at, sent_at) for c, e in rows],
    )
    total += len(rows)
ops.commit()
print(total)
"""


def _tick_command(db: Path, config: Path, folder: Path, *extra: str) -> list[str]:
    return [
        *PLEASEPOINT, "--db", str(db), "--config", str(config), "automate", "tick", "--dir", str(folder),
        "--only", NAME, "--now", NOW, "--format", "json", *extra,
    ]  # fmt: skip


def _totals(report: dict[str, Any]) -> dict[str, Any]:
    runs = [r for r in report.get("runs", []) if r.get("name") == NAME]
    if not runs:
        raise RuntimeError(f"the tick did not run {NAME}: {json.dumps(report)[:2000]}")
    run = runs[0]
    if run.get("error"):
        raise RuntimeError(f"{NAME} failed: {run['error']}")
    return dict(run)


def run() -> list[Figure]:
    from bench.bench_campaign_send import _loop, start_sink

    source = enriched_db()
    processes, port, sink = start_sink()
    try:
        with tempfile.TemporaryDirectory(prefix="pleasepoint-bench-tick-") as folder:
            shop = Path(folder)
            db = private_copy(source, shop)
            config = shop / "pleasepoint.yaml"
            config.write_text(SETTINGS.format(port=port, connections=CONNECTIONS), encoding="utf-8")
            automations = shop / "automations"
            automations.mkdir()
            text = AUTOMATION.read_text(encoding="utf-8")
            campaign = (AUTOMATION.parent / "../campaigns/recuperacion_plantas.yaml").resolve()
            (automations / AUTOMATION.name).write_text(
                text.replace("campaign: ../campaigns/recuperacion_plantas.yaml", f"campaign: {campaign}"),
                encoding="utf-8",
            )
            _, _, seeded = timed([*python_snippet(_SEED.format(past=PAST_SENDS)), str(db)])
            plan_seconds, plan_peak, plan_out = timed(_tick_command(db, config, automations, "--dry-run"))
            planned = _totals(json.loads(plan_out))
            baseline, _, _ = timed(
                python_snippet(
                    "from pathlib import Path; from pleasepoint_cli.store import open_store; "
                    f"s = open_store(Path({str(db)!r}), read_only=True); "
                    "print(s.scalar('SELECT count(*) FROM customers'))"
                )
            )
            seconds, peak, out = timed(_tick_command(db, config, automations))
            done = _totals(json.loads(out))
        sent = int(done.get("sent", 0))
        floor = _loop("floor_loop", port, sent) if sent else None
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    ledger_rows = int(seeded.strip() or 0)
    return [
        Figure(
            f"automate tick --dry-run: win-back planned {planned.get('planned', 0):,}, "
            f"capped {planned.get('capped', 0):,}",
            plan_seconds,
            plan_peak,
            f"python + open store + count ({ledger_rows:,} ledger rows)",
            baseline,
            "< 3 s",
        ),
        Figure(
            f"automate tick: win-back sent {sent:,}" + (f": {sent / seconds:,.0f}/s" if sent else ""),
            seconds,
            peak,
            f"floor, raw sendmail x{CONNECTIONS} conn ({sink})" if floor else "",
            floor,
            "< 3 GB",
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure, file=sys.stderr)
