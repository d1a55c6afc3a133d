"""Each recipient's template context, built for a whole batch of customers with a few set-based queries.

Three queries per batch, whatever its size: the profile (customer, cluster, CLV figures, preferred store),
the attributes, and the recommended products. Every context has the same keys, so a template that renders
for one customer renders for all (see docs/campaigns.md for the list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.audience.facts import preferred_store_sql
from pleasepoint_cli.content.batch import customer_batch
from pleasepoint_cli.content.recommend import CandidateSpec, RecommendationRules, recommend
from pleasepoint_cli.content.unsubscribe import unsubscribe_url

if TYPE_CHECKING:
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store.connection import Store

DEFAULT_SALUTATIONS: dict[str, dict[str, str]] = {
    "es": {"male": "Sr.", "female": "Sra.", "other": ""},
    "ca": {"male": "Sr.", "female": "Sra.", "other": ""},
    "en": {"male": "Mr", "female": "Ms", "other": ""},
}
"""Salutation by language and gender; a campaign's `salutations:` overrides or adds languages."""

DEFAULT_LANGUAGE = "es"
"""The salutations used for a customer whose language is missing or has none."""

_GENDERS = {
    "m": "male",
    "male": "male",
    "man": "male",
    "h": "male",
    "hombre": "male",
    "home": "male",
    "v": "male",
    "varon": "male",
    "varón": "male",
    "f": "female",
    "female": "female",
    "woman": "female",
    "w": "female",
    "mujer": "female",
    "dona": "female",
}
"""Gender codes as shops export them (`M` is male, the English convention the example shop follows)."""


def normal_gender(value: str | None) -> str | None:
    """`M`/`Hombre`/`male` -> male, `F`/`Mujer`/`female` -> female, anything else -> None."""
    return _GENDERS.get(value.strip().lower()) if value else None


def salutation(
    gender: str | None, language: str | None, table: Mapping[str, Mapping[str, str]] = DEFAULT_SALUTATIONS
) -> str:
    """The salutation for a normalised gender in the customer's language (`es-ES` counts as `es`)."""
    code = (language or "").strip().lower()[:2]
    forms = table.get(code) or table.get(DEFAULT_LANGUAGE) or DEFAULT_SALUTATIONS[DEFAULT_LANGUAGE]
    return forms.get(gender or "other", forms.get("other", ""))


GREETINGS: dict[str, tuple[str, str]] = {
    "es": ("Hola, {name}:", "Hola:"),
    "ca": ("Hola, {name}:", "Hola:"),
    "en": ("Hello {name},", "Hello,"),
}
"""The greeting with a name and the fallback without one, by language: never "Hola :" or "Hello ,"."""


def greeting(first_name: str | None, title: str, language: str | None, default_language: str = "es") -> str:
    """`Hola, Sra. Ana:` / `Hello Ana,`; without a first name the fallback (`Hola:` / `Hello,`)."""
    code = (language or "").strip().lower()[:2]
    with_name, without = GREETINGS.get(code) or GREETINGS.get(default_language) or GREETINGS["es"]
    name = (first_name or "").strip()
    if not name:
        return without
    return with_name.format(name=f"{title} {name}".strip())


def recency_state(days: int | None, settings: Settings) -> str | None:
    """active / inactive / hibernating / lost by days since the last purchase (None without purchases)."""
    from pleasepoint_cli.recency import state_of

    return state_of(days, settings.states)


_PROFILE_SQL = """
WITH batch AS (SELECT DISTINCT customer_id FROM {batch}),
lines AS (SELECT l.* FROM purchase_lines l JOIN batch USING (customer_id) WHERE l.ordered_at <= ?),
orders AS (
    SELECT customer_id,
           count(DISTINCT order_id) FILTER (WHERE quantity > 0) AS orders,
           sum(amount) AS spend,
           max(ordered_at) FILTER (WHERE quantity > 0)::DATE AS last_purchase_day
    FROM lines
    GROUP BY customer_id
),
preferred AS ({preferred})
SELECT c.customer_id, c.email, c.first_name, c.last_name, c.gender, c.language, c.city, c.postal_code,
       c.country, c.birth_date, coalesce(c.email_consent, false) AS email_consent,
       a.cluster, pc.label,
       coalesce(o.orders, 0) AS orders, coalesce(o.spend, 0.0) AS spend, o.last_purchase_day,
       s.store_id, s.name AS store_name, s.address AS store_address, s.city AS store_city,
       s.postal_code AS store_postal_code
FROM customers c
JOIN batch USING (customer_id)
LEFT JOIN persona_assignments a ON a.customer_id = c.customer_id AND a.run_id = ?
LEFT JOIN persona_clusters pc ON pc.run_id = a.run_id AND pc.cluster = a.cluster
LEFT JOIN orders o ON o.customer_id = c.customer_id
LEFT JOIN preferred p ON p.customer_id = c.customer_id
LEFT JOIN stores s ON s.store_id = p.store_id
"""


ContextPart = tuple[dict[str, Any], dict[str, Any], Sequence[Any]]
"""One customer's profile row, attributes and recommendations: what `ContextBuilder.context_of` assembles."""


@dataclass(frozen=True)
class ContextRows:
    """A batch's query results per customer, before assembly (plain data: it pickles)."""

    parts: dict[str, ContextPart]

    def __len__(self) -> int:
        return len(self.parts)


@dataclass
class ContextBuilder:
    """Everything constant across a campaign's recipients; `build` makes a batch of per-customer contexts."""

    settings: Settings
    as_of: date
    campaign: str
    campaign_name: str
    signature: str
    secret: bytes
    run_id: int | None = None
    candidates: CandidateSpec = field(default_factory=CandidateSpec)
    rules: RecommendationRules = field(default_factory=RecommendationRules)
    salutations: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_SALUTATIONS)
    _attribute_keys: tuple[str, ...] | None = None

    def attribute_keys(self, store: Store) -> tuple[str, ...]:
        """Every attribute key held in the database: each context has them all (None where unset)."""
        if self._attribute_keys is None:
            rows = store.tuples("SELECT DISTINCT key FROM customer_attributes ORDER BY key")
            self._attribute_keys = tuple(str(row[0]) for row in rows)
        return self._attribute_keys

    def build(self, store: Store, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The contexts of the given customers (unknown ids are left out), keyed by customer id."""
        rows = self.fetch(store, customer_ids)
        return {customer: self.context_of(part) for customer, part in rows.parts.items()}

    def fetch(self, store: Store, customer_ids: Sequence[str]) -> ContextRows:
        """What the database holds for the contexts of the given customers (unknown ids are left out): the
        set-based queries of `build`, without the per-customer assembly (`context_of`), which a send does in
        its render worker processes."""
        ids = list(dict.fromkeys(customer_ids))
        until = datetime.combine(self.as_of, time.max)
        keys = self.attribute_keys(store)
        with customer_batch(store, ids) as batch:
            profiles = store.rows(
                _PROFILE_SQL.format(batch=batch, preferred=preferred_store_sql(lines="lines")),
                [until, self.run_id if self.run_id is not None else -1],
            )
            values = store.tuples(
                f"SELECT a.customer_id, a.key, a.value FROM customer_attributes a JOIN {batch} USING (customer_id)"
            )
        known = [p["customer_id"] for p in profiles]
        attributes = {customer: dict.fromkeys(keys) for customer in known}
        for customer, key, value in values:
            attributes[customer][key] = value
        products = recommend(
            store, known, as_of=self.as_of, candidates=self.candidates, rules=self.rules, run_id=self.run_id
        )
        return ContextRows(
            {
                p["customer_id"]: (p, attributes[p["customer_id"]], products.get(p["customer_id"], []))
                for p in profiles
            }
        )

    def context_of(self, part: ContextPart) -> dict[str, Any]:
        """One customer's context from their part of a `ContextRows`."""
        row, attributes, products = part
        customer = row["customer_id"]
        return self.assemble(row, {customer: attributes}, {customer: products})

    def assemble(
        self,
        row: dict[str, Any],
        attributes: dict[str, dict[str, Any]],
        products: Mapping[str, Sequence[Any]],
    ) -> dict[str, Any]:
        """One customer's context from its profile row (the columns of the profile query), its attributes
        and its recommendations (pure Python: the per-customer part of `build`)."""
        customer_id = row["customer_id"]
        gender = normal_gender(row["gender"])
        first = row["first_name"] or ""
        last = row["last_name"] or ""
        orders = int(row["orders"])
        spend = float(row["spend"])
        last_day = row["last_purchase_day"]
        recency = (self.as_of - last_day).days if last_day is not None else None
        shop = self.settings.shop
        return {
            "customer_id": customer_id,
            "email": row["email"],
            "first_name": first,
            "last_name": last,
            "full_name": " ".join(part for part in (first, last) if part),
            "gender": gender,
            "language": row["language"],
            "salutation": salutation(gender, row["language"], self.salutations),
            "greeting": greeting(
                first, salutation(gender, row["language"], self.salutations), row["language"], shop.language
            ),
            "email_consent": bool(row.get("email_consent", False)),
            "city": row["city"],
            "postal_code": row["postal_code"],
            "country": row["country"],
            "birth_date": row["birth_date"],
            "attributes": attributes.get(customer_id, {}),
            "cluster": {"run_id": self.run_id, "id": row["cluster"], "label": row["label"]},
            "cluster_label": row["label"],
            "clv": {
                "orders": orders,
                "spend": round(spend, 2),
                "avg_ticket": round(spend / orders, 2) if orders else None,
                "recency_days": recency,
                "state": recency_state(recency, self.settings),
                "last_purchase": last_day,
            },
            "store": {
                "store_id": row["store_id"],
                "name": row["store_name"],
                "address": row["store_address"],
                "city": row["store_city"],
                "postal_code": row["store_postal_code"],
            },
            "products": [p.as_context() for p in products.get(customer_id, ())],
            "signature": self.signature,
            "unsubscribe_url": unsubscribe_url(
                self.settings.email.unsubscribe_base_url, self.secret, customer_id, self.campaign
            ),
            "date": self.as_of,
            "shop": {"name": shop.name, "url": shop.url},
            "currency": shop.currency,
            "campaign": {"name": self.campaign_name, "slug": self.campaign},
        }

    def sample(self, store: Store) -> dict[str, Any]:
        """A made-up customer's context with every key filled, to check templates on an empty audience."""
        row: dict[str, Any] = {
            "customer_id": "EJEMPLO",
            "email": "ejemplo@example.com",
            "first_name": "María José",
            "last_name": "Núñez Peña",
            "gender": "F",
            "language": DEFAULT_LANGUAGE,
            "city": "Madrid",
            "postal_code": "28001",
            "country": "ES",
            "birth_date": date(1980, 5, 17),
            "cluster": 1,
            "label": "Ejemplo",
            "orders": 4,
            "spend": 123.45,
            "last_purchase_day": self.as_of,
            "store_id": "T00",
            "store_name": "Tienda de ejemplo",
            "store_address": "Calle Mayor, 1",
            "store_city": "Madrid",
            "store_postal_code": "28001",
        }
        keys = self.attribute_keys(store)
        attributes = {"EJEMPLO": dict.fromkeys(keys, "ejemplo")}
        sample_product = {
            "product_id": "P0",
            "name": "Producto de ejemplo",
            "category": "Ejemplo",
            "price": 10.0,
            "offer_price": 8.0,
            "discount_pct": 20,
            "url": f"{self.settings.shop.url}/ejemplo",
            "image_url": f"{self.settings.shop.url}/ejemplo.jpg",
            "slot": 1,
            "reason": "random",
        }
        context = self.assemble(row, attributes, {})
        context["products"] = [{**sample_product, "slot": slot} for slot in range(1, self.rules.slots + 1)]
        return context
