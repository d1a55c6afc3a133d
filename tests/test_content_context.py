"""Each recipient's context, built per batch: salutation, attributes, cluster, CLV, store, signed unsubscribe."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from campaign_data import AS_OF, plant_shop
from pleasepoint_cli.config import Settings
from pleasepoint_cli.content.context import ContextBuilder, normal_gender, salutation
from pleasepoint_cli.content.unsubscribe import (
    SECRET_ENV,
    signing_secret,
    unsubscribe_token,
    verify_unsubscribe,
)
from pleasepoint_cli.errors import ConfigError
from pleasepoint_cli.store import Store


@pytest.fixture
def shop(store: Store) -> Store:
    plant_shop(store.con)
    store.con.execute(
        "INSERT INTO customer_attributes VALUES "
        "('C1', 'segmento', 'Familias con niños', 'manual', now(), NULL), "
        "('C2', 'propensity_plantas', 'high', 'enrich', now(), NULL)"
    )
    return store


def _builder(store: Store, **overrides: object) -> ContextBuilder:
    options: dict[str, object] = {
        "settings": Settings(),
        "as_of": AS_OF,
        "campaign": "newsletter",
        "campaign_name": "Newsletter",
        "signature": "Laura Martínez",
        "secret": b"k",
        "run_id": 1,
    }
    options.update(overrides)
    return ContextBuilder(**options)  # type: ignore[arg-type]


def test_salutations_by_gender_and_language() -> None:
    assert [normal_gender(g) for g in ("M", "f", "Mujer", "hombre", "x", None)] == [
        "male",
        "female",
        "female",
        "male",
        None,
        None,
    ]
    assert salutation("female", "es") == "Sra." and salutation("male", "ca") == "Sr."
    assert salutation("male", "en") == "Mr" and salutation(None, "es") == ""
    assert salutation("female", "fr") == "Sra."  # unknown language: the Spanish forms
    assert salutation("male", "es-ES", {"es": {"male": "Estimado", "other": "Hola"}}) == "Estimado"
    assert salutation(None, "es", {"es": {"male": "Estimado", "other": "Hola"}}) == "Hola"


def test_a_batch_builds_every_field(shop: Store) -> None:
    contexts = _builder(shop).build(shop, ["C1", "C2", "C3", "NOBODY"])
    assert set(contexts) == {"C1", "C2", "C3"}
    c1 = contexts["C1"]
    assert (c1["first_name"], c1["last_name"], c1["full_name"]) == (
        "María José",
        "Núñez Peña",
        "María José Núñez Peña",
    )
    assert c1["salutation"] == "Sra." and c1["gender"] == "female" and c1["email"] == "c1@example.com"
    # Every attribute key known in the database, empty where the customer has none.
    assert c1["attributes"] == {"propensity_plantas": None, "segmento": "Familias con niños"}
    assert contexts["C2"]["attributes"]["propensity_plantas"] == "high"
    assert c1["cluster"] == {"run_id": 1, "id": 1, "label": "Supermercado ECO + Bebé y niño"}
    assert c1["cluster_label"] == "Supermercado ECO + Bebé y niño"
    # CLV: 3 orders, 10+10 + 20+10 + 10+4 = 64, last purchase 2026-08-20 (12 days before).
    assert c1["clv"] == {
        "orders": 3,
        "spend": 64.0,
        "avg_ticket": 21.33,
        "recency_days": 12,
        "state": "active",
        "last_purchase": AS_OF.replace(month=8, day=20),
    }
    # C2's order of 5 September is after the as-of date and does not count.
    assert contexts["C2"]["clv"]["orders"] == 2 and contexts["C2"]["clv"]["recency_days"] == 153
    assert contexts["C3"]["clv"] == {
        "orders": 0,
        "spend": 0.0,
        "avg_ticket": None,
        "recency_days": None,
        "state": None,
        "last_purchase": None,
    }
    # Preferred store: where C1 made most orders (T1: 2, T2: 1).
    assert c1["store"] == {
        "store_id": "T1",
        "name": "Mercado Verde Madrid",
        "address": "Calle de Alcalá, 120",
        "city": "Madrid",
        "postal_code": "28009",
    }
    assert contexts["C2"]["store"]["name"] is None and contexts["C3"]["cluster"]["label"] is None
    assert [p["product_id"] for p in c1["products"]] == ["A1", "C1", "B2"]
    assert c1["products"][0] == {
        "product_id": "A1",
        "name": "Aceite de oliva virgen extra",
        "category": "Supermercado ECO",
        "price": 10.0,
        "offer_price": 8.0,
        "discount_pct": 20,
        "url": "https://tienda.example/p/A1",
        "image_url": "https://tienda.example/img/A1.jpg",
        "slot": 1,
        "reason": "regular",
    }
    assert c1["signature"] == "Laura Martínez" and c1["date"] == AS_OF
    assert c1["shop"] == {"name": "Mi tienda", "url": "https://tienda.example"}


def test_contexts_do_not_depend_on_the_batch(shop: Store) -> None:
    builder = _builder(shop)
    together = builder.build(shop, ["C1", "C2", "C4", "C5"])
    for customer in together:
        assert builder.build(shop, [customer])[customer] == together[customer]


def test_the_made_up_sample_has_the_same_keys(shop: Store) -> None:
    builder = _builder(shop)
    real = builder.build(shop, ["C1"])["C1"]
    sample = builder.sample(shop)
    assert set(sample) == set(real) and set(sample["attributes"]) == set(real["attributes"])
    assert set(sample["products"][0]) == set(real["products"][0]) and len(sample["products"]) == 3


def test_unsubscribe_url_is_signed_per_customer_and_campaign(
    shop: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    secret = signing_secret(shop)
    assert signing_secret(shop) == secret and len(secret) == 64  # made once, kept beside the database
    url = _builder(shop, secret=secret).build(shop, ["C1"])["C1"]["unsubscribe_url"]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "tienda.example", "/baja")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["c"] == "C1" and query["m"] == "newsletter"
    assert verify_unsubscribe(secret, "C1", "newsletter", query["t"])
    assert not verify_unsubscribe(secret, "C2", "newsletter", query["t"])
    assert not verify_unsubscribe(secret, "C1", "otra", query["t"])
    monkeypatch.setenv(SECRET_ENV, "from-the-environment")
    assert signing_secret(shop) == b"from-the-environment"
    assert unsubscribe_token(b"a", "C1", "x") != unsubscribe_token(b"b", "C1", "x")


def test_the_unsubscribe_base_must_be_https() -> None:
    from pleasepoint_cli.content.unsubscribe import check_base_url

    assert check_base_url("https://tienda.example/baja") == "https://tienda.example/baja"
    with pytest.raises(ConfigError, match="absolute https"):
        check_base_url("http://tienda.example/baja")


def test_the_preferred_store_is_the_audience_rules_one(shop_store: Store) -> None:
    from datetime import date, datetime, time

    from pleasepoint_cli.audience.facts import preferred_store_sql

    as_of = date(2026, 6, 30)
    ids = [
        r[0]
        for r in shop_store.con.execute("SELECT customer_id FROM customers ORDER BY customer_id").fetchall()
    ]
    contexts = _builder(shop_store, as_of=as_of, run_id=None).build(shop_store, ids)
    until = datetime.combine(as_of, time.max)
    expected = {  # buyers missing from the customer export have no context
        c: store
        for c, store in shop_store.con.execute(preferred_store_sql(until_param=True), [until]).fetchall()
        if c in contexts
    }
    assert {
        c: ctx["store"]["store_id"] for c, ctx in contexts.items() if ctx["store"]["store_id"]
    } == expected
    assert len(expected) > 1000
