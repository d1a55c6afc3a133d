"""Engagement in the rule language over real stores: the DuckDB file and the operational store beside it,
events loaded with `events ingest`; and suppression by events stopping the next marketing send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audience_oracle import Customer, Ev, Line, Oracle, Send, Shop, load
from events_data import add_send
from pleasepoint_cli.audience import funnel, parse_rule, select_customers
from pleasepoint_cli.errors import RuleError
from pleasepoint_cli.events.ingest import ingest_events_file
from pleasepoint_cli.ops.store import open_ops
from pleasepoint_cli.ops.suppression import attach_suppressions
from pleasepoint_cli.store import open_store
from pleasepoint_cli.store.connection import memory_store

AS_OF = datetime(2026, 6, 30, 12, 0)  # shop time (Madrid, UTC+2 in summer)
RULE = {
    "all": [
        {"engagement": {"clicked": True, "within_days": 30}},
        {"not": {"engagement": {"opened": True, "within_days": 90}}},
    ]
}


def _utc(local: datetime) -> str:
    return (local - timedelta(hours=2)).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _scenario() -> tuple[Shop, list[dict[str, object]]]:
    """Eight customers, each sent one email 20 days (or 100) ago, and what they did with it."""
    shop = Shop(products={"P1": "A"})
    sent = AS_OF - timedelta(days=20)
    plan = {
        "C1": [("click", 19, "")],  # clicked, never opened: selected
        "C2": [("click", 19, ""), ("open", 19, "")],  # clicked and opened: not selected
        "C3": [("click", 19, ""), ("open", 19, "machine")],  # machine open only: still selected
        "C4": [("open", 19, "")],  # opened, no click
        "C5": [("click", 45, "")],  # clicked 45 days ago: outside 30 days
        "C6": [("click", 5, ""), ("open", 60, "")],  # opened 60 days ago counts within 90
        "C7": [("click", 10, ""), ("open", 95, "")],  # opened 95 days ago: outside 90: selected
        "C8": [],
    }
    events: list[dict[str, object]] = []
    for n, (cid, happened) in enumerate(plan.items(), start=1):
        shop.customers.append(Customer(cid, email=f"{cid.lower()}@example.com", email_consent=True))
        send = Send(
            f"S{n}",
            cid,
            "verano",
            sent_at=min([sent, *(AS_OF - timedelta(days=d + 1) for _, d, _ in happened)]),
        )
        shop.sends.append(send)
        for i, (kind, days_ago, subkind) in enumerate(happened):
            when = AS_OF - timedelta(days=days_ago)
            shop.events.append(Ev(send.send_id, kind, when, subkind))
            events.append(
                {"id": f"{cid}-{i}", "event": kind, "at": _utc(when), "send_id": send.send_id}
                | ({"machine": True} if subkind == "machine" else {})
                | ({"url": "https://tienda.example/x"} if kind == "click" else {})
            )
    return shop, events


def _stores(tmp_path: Path, shop: Shop, events: list[dict[str, object]]) -> Path:
    import json

    db = tmp_path / "shop.duckdb"
    with open_store(db) as store:
        load(store.con, shop)
    with open_ops(db) as ops:
        for s in shop.sends:
            customer = next(c for c in shop.customers if c.customer_id == s.customer_id)
            assert s.sent_at is not None and customer.email is not None
            add_send(ops, s.send_id, s.customer_id, customer.email, source=s.source, sent_at=_utc(s.sent_at))
        path = tmp_path / "events.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
        ingest_events_file(ops, path, "pleasepoint", now=datetime(2026, 7, 1, tzinfo=UTC))
    return db


def test_clicked_within_30_days_and_not_opened_in_90_selects_what_the_events_say(tmp_path: Path) -> None:
    shop, events = _scenario()
    db = _stores(tmp_path, shop, events)
    rule = parse_rule(RULE)
    expected = Oracle(shop, AS_OF).select(rule, marketing=False)
    assert expected == ["C1", "C3", "C7"]
    with open_store(db) as store:  # the views come from the operational store beside the file
        assert select_customers(store, rule, as_of=AS_OF, marketing=False) == expected
        steps = funnel(store, rule, as_of=AS_OF, marketing=False)
    assert [s.customers for s in steps] == [8, 5, 3]  # clicked within 30: C1 C2 C3 C6 C7
    machine = parse_rule({"engagement": {"opened": True, "machine_opens": True}})
    with open_store(db) as store:
        assert select_customers(store, machine, as_of=AS_OF, marketing=False) == [
            "C2",
            "C3",
            "C4",
            "C6",
            "C7",
        ]


def test_received_counts_sent_mail_per_campaign_and_window(tmp_path: Path) -> None:
    shop, events = _scenario()
    db = _stores(tmp_path, shop, events)
    with open_ops(db) as ops:
        add_send(
            ops,
            "X1",
            "C1",
            "c1@example.com",
            source="otoño",
            period="",
            sent_at=_utc(AS_OF - timedelta(days=2)),
        )
        add_send(
            ops,
            "X2",
            "C1",
            "c1@example.com",
            source="otoño",
            kind="automation",
            period="p1",
            sent_at=_utc(AS_OF - timedelta(days=3)),
        )
        add_send(ops, "X3", "C2", "tester@example.com", kind="test", sent_at=_utc(AS_OF - timedelta(days=3)))
    with open_store(db) as store:
        pick = lambda data: select_customers(store, parse_rule(data), as_of=AS_OF, marketing=False)  # noqa: E731
        assert pick({"engagement": {"received": {"gte": 3}}}) == ["C1"]
        assert pick({"engagement": {"received": {"gte": 2}, "within_days": 7}}) == ["C1"]
        assert pick({"engagement": {"received": {"gte": 1}, "automation": "otoño"}}) == ["C1"]
        assert pick({"engagement": {"received": {"lte": 0}, "campaign": "verano"}}) == []
        assert pick(
            {
                "engagement": {"received": {"gte": 2}, "within_days": 7},
            }
        ) == ["C1"]


def test_last_conversion_is_an_order_within_the_attribution_window_after_a_click() -> None:

    from audience_oracle import register_engagement
    from pleasepoint_cli.store.migrations import apply_migrations

    shop = Shop(products={"P1": "A"})
    click = AS_OF - timedelta(days=20)
    for cid, order_after in (
        ("C1", timedelta(days=7)),
        ("C2", timedelta(days=7, seconds=1)),
        ("C3", timedelta(seconds=-1)),
        ("C4", timedelta(hours=1)),
    ):
        shop.customers.append(Customer(cid, email=f"{cid}@example.com"))
        shop.sends.append(Send(f"S{cid}", cid, "verano", sent_at=click - timedelta(hours=1)))
        shop.events.append(Ev(f"S{cid}", "click", click))
        shop.lines.append(Line(f"O{cid}", cid, click + order_after, "P1", 1, 10.0, None))
    store = memory_store()
    apply_migrations(store)
    load(store.con, shop)
    register_engagement(store, shop)
    rule = parse_rule({"last_conversion_days": {"lte": 30}})
    assert select_customers(store, rule, as_of=AS_OF, marketing=False) == ["C1", "C4"]
    assert Oracle(shop, AS_OF).select(rule, marketing=False) == ["C1", "C4"]
    assert select_customers(
        store, parse_rule({"last_conversion_days": {"gte": 20}}), as_of=AS_OF, marketing=False
    ) == ["C4"]


def test_engagement_rules_are_validated_with_file_and_path() -> None:
    with pytest.raises(RuleError, match="exactly one of `opened`, `clicked` or `received`"):
        parse_rule({"engagement": {"opened": True, "clicked": True}})
    with pytest.raises(RuleError, match="unknown operator 'opend'"):
        parse_rule({"engagement": {"opend": True}})
    with pytest.raises(RuleError, match="`machine_opens` goes with `opened`"):
        parse_rule({"engagement": {"clicked": True, "machine_opens": True}})


def test_hard_bounce_complaint_and_unsubscribe_stop_the_next_marketing_send_a_soft_bounce_does_not(
    tmp_path: Path,
) -> None:
    from events_data import FIXTURES, NOW, RECIPIENTS

    db = tmp_path / "shop.duckdb"
    shop = Shop(
        customers=[Customer(cid, email=email, email_consent=True) for cid, email in RECIPIENTS.values()]
    )
    with open_store(db) as store:
        load(store.con, shop)
    with open_ops(db) as ops:
        for send_id, (cid, email) in RECIPIENTS.items():
            add_send(ops, send_id, cid, email)
        ingest_events_file(ops, FIXTURES["ses"], "ses", now=NOW)
        with open_store(db) as store:
            attach_suppressions(store, ops)  # what audience planning does before a send
            audience = select_customers(store, parse_rule({"consent": True}), as_of=AS_OF, marketing=True)
    assert audience == [
        "C1",
        "C2",
        "C4",
    ]  # C3 hard bounce, C5 complaint, C6 unsubscribe; C4 soft bounce stays
