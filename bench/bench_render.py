"""Rendering throughput on one core: the blog's newsletter (MJML compiled once, Jinja per recipient, HTML and
text parts, subject and preheader, UTM-tagged links) for synthetic recipients, beside the same emails made by
compiling the MJML per recipient (Jinja over the MJML source, then MRML, then the text from the HTML).
And how fast the recipients' contexts are built from the benchmark shop, so rendering is fed.

Each side runs in its own interpreter (one process, one core) and reports the time of its render loop only.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import Figure, loaded_db, python_snippet, timed

EXAMPLES = Path(__file__).parents[1] / "examples"
NEWSLETTER = EXAMPLES / "campaigns" / "newsletter_septiembre.yaml"
EMAILS = int(os.environ.get("PLEASEPOINT_BENCH_EMAILS", "20000"))
COMPARATOR_EMAILS = int(os.environ.get("PLEASEPOINT_BENCH_COMPARATOR_EMAILS", "2000"))
CONTEXTS = int(os.environ.get("PLEASEPOINT_BENCH_CONTEXTS", "50000"))
AS_OF = date(2026, 9, 1)

_FIRST = ("María José", "Jordi", "Begoña", "Íñigo", "Núria", "Álvaro", "Lucía", "Óscar", "Ainhoa", "Sofía")
_LAST = ("Núñez Peña", "Puig i Ferrer", "García López", "Ibáñez Ruiz", "Martínez Sáez", "Gómez Ortiz")
_STORES = (
    ("Mercado Verde Madrid", "Calle de Alcalá, 120", "Madrid"),
    ("Mercado Verde Málaga", "Calle Larios, 6", "Málaga"),
)


def _prepared() -> Any:
    """The example newsletter compiled once (no database: synthetic recipients)."""
    from pleasepoint_cli.campaign.model import load_campaign
    from pleasepoint_cli.campaign.prepare import PreparedCampaign, PreparedVariant
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.content.context import ContextBuilder
    from pleasepoint_cli.content.templates import compile_line, compile_template

    campaign = load_campaign(NEWSLETTER)
    settings = Settings()
    variants = tuple(
        PreparedVariant(
            name=v.name,
            template=compile_template(v.template, utm=campaign.utm_params()),
            subject=compile_line(v.subject, v.subject_where),
            preheader=compile_line(v.preheader, v.preheader_where),
        )
        for v in campaign.variants
    )
    builder = ContextBuilder(
        settings=settings,
        as_of=AS_OF,
        campaign=campaign.slug,
        campaign_name=campaign.model.name,
        signature=campaign.signature(settings),
        secret=b"bench-secret",
        salutations=campaign.salutation_table(),
    )
    return PreparedCampaign(campaign, settings, AS_OF, None, variants, builder)


def _contexts(prepared: Any, count: int) -> list[dict[str, Any]]:
    """`count` distinct recipients (names with accents, three products each) through the real assembly."""
    from pleasepoint_cli.content.recommend import Recommendation

    contexts = []
    for i in range(count):
        customer = f"C{i:07d}"
        store = _STORES[i % len(_STORES)]
        row = {
            "customer_id": customer,
            "email": f"cliente{i}@example.com",
            "first_name": _FIRST[i % len(_FIRST)],
            "last_name": _LAST[i % len(_LAST)],
            "gender": "F" if i % 2 else "M",
            "language": "ca" if i % 7 == 0 else "es",
            "city": store[2],
            "postal_code": "28009",
            "country": "ES",
            "birth_date": date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
            "cluster": 1 + i % 5,
            "label": "Supermercado ECO + Huerto ECO",
            "orders": 1 + i % 9,
            "spend": 12.5 * (1 + i % 9),
            "last_purchase_day": AS_OF,
            "store_id": "T01",
            "store_name": store[0],
            "store_address": store[1],
            "store_city": store[2],
            "store_postal_code": "28009",
        }
        products = [
            Recommendation(
                customer,
                slot,
                f"PR{(i * 7 + slot * 13) % 500:05d}",
                f"Aceite de oliva virgen nº {slot}",
                "Supermercado ECO",
                10.99 + slot,
                8.49 + slot,
                0.22,
                f"https://tienda.example/p/PR{(i + slot) % 500:05d}",
                f"https://tienda.example/img/PR{(i + slot) % 500:05d}.jpg",
                "cluster",
            )
            for slot in (1, 2, 3)
        ]
        attributes = {customer: {"segmento": "Familias", "propensity_plantas": "high"}}
        contexts.append(prepared.builder.assemble(row, attributes, {customer: products}))
    return contexts


def render_loop(emails: int) -> float:
    """Seconds to render `emails` personalised emails (subject, preheader, HTML and text), compiled once."""
    prepared = _prepared()
    contexts = _contexts(prepared, 1000)
    variants = len(prepared.variants)
    started = time.perf_counter()
    for i in range(emails):
        email = prepared.render(contexts[i % len(contexts)], i % variants)
        assert email.html and email.text
    return time.perf_counter() - started


def compile_per_recipient_loop(emails: int) -> float:
    """Seconds for the same emails made by compiling the MJML per recipient: Jinja over the MJML source,
    MRML on the result, UTM tags and the text part taken from each recipient's HTML."""
    import jinja2
    import mjml

    from pleasepoint_cli.content.templates import add_utm, compile_line, html_to_text, rewrite_links

    prepared = _prepared()
    contexts = _contexts(prepared, 1000)
    campaign = prepared.campaign
    utm = campaign.utm_params()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["money"] = lambda value, currency=None: f"{value:.2f} €"
    sources = [env.from_string(v.template.read_text(encoding="utf-8")) for v in campaign.variants]
    subjects = [compile_line(v.subject, v.subject_where) for v in campaign.variants]
    started = time.perf_counter()
    for i in range(emails):
        index = i % len(sources)
        context = dict(contexts[i % len(contexts)])
        context["subject"] = subjects[index].render(context)
        context["preheader"] = ""
        html = mjml.mjml2html(sources[index].render(context))
        html = rewrite_links(html, lambda url: add_utm(url, utm))
        text = html_to_text(html)
        assert html and text
    return time.perf_counter() - started


def contexts_loop(recipients: int, db: str) -> float:
    """Seconds to build the contexts (profile, attributes, three recommended products) of `recipients`
    customers of the benchmark shop, 5,000 per batch, as a send would."""
    from pathlib import Path

    from pleasepoint_cli.campaign.model import load_campaign
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.content.context import ContextBuilder
    from pleasepoint_cli.content.recommend import RecommendationRules
    from pleasepoint_cli.store import open_store

    campaign = load_campaign(NEWSLETTER)
    with open_store(Path(db)) as store:
        con = store.con
        run = con.execute("SELECT max(run_id) FROM persona_runs").fetchone()
        builder = ContextBuilder(
            settings=Settings(),
            as_of=date(2026, 6, 30),
            campaign=campaign.slug,
            campaign_name=campaign.model.name,
            signature="bench",
            secret=b"bench-secret",
            run_id=run[0] if run else None,
            rules=RecommendationRules(seed=campaign.slug),
        )
        ids = [
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM customers ORDER BY md5(customer_id) LIMIT ?", [recipients]
            ).fetchall()
        ]
        started = time.perf_counter()
        for start in range(0, len(ids), 5000):
            assert builder.build(store, ids[start : start + 5000])
        return time.perf_counter() - started


def _child(function: str, *args: object) -> tuple[float, float]:
    """Run one loop in a fresh interpreter; its loop seconds and the process's peak memory in MB."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r}); "
        f"from bench.bench_render import {function}; print({function}(*{args!r}))"
    )
    _, peak, out = timed(python_snippet(code))
    return float(out.strip().splitlines()[-1]), peak


def run() -> list[Figure]:
    seconds, peak = _child("render_loop", EMAILS)
    comparator, _ = _child("compile_per_recipient_loop", COMPARATOR_EMAILS)
    rate = EMAILS / seconds
    comparator_rate = COMPARATOR_EMAILS / comparator
    figures = [
        Figure(
            f"render {EMAILS:,} emails: {rate:,.0f}/s (1 core)",
            seconds,
            peak,
            f"MJML per recipient: {comparator_rate:,.0f}/s, {EMAILS:,} at that rate",
            EMAILS / comparator_rate,
            ">= 3,000 emails/s",
        )
    ]
    context_seconds, context_peak = _child("contexts_loop", CONTEXTS, str(loaded_db()))
    figures.append(
        Figure(
            f"contexts of {CONTEXTS:,} recipients: {CONTEXTS / context_seconds:,.0f}/s",
            context_seconds,
            context_peak,
            target="not the bottleneck: >= the render rate",
        )
    )
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure, file=sys.stderr)
