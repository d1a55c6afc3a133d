"""The canonical entities: their fields, types, keys and the table each lands in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["key", "text", "number", "timestamp", "date", "bool"]


@dataclass(frozen=True)
class Field:
    """One canonical column: its name, how its values are parsed, and whether a file must provide it."""

    name: str
    kind: Kind
    required: bool = False
    future: bool = False  # a date that may lie in the future (an offer's end); others are refused there


@dataclass(frozen=True)
class Entity:
    """A canonical entity: the table it lands in, its key and its fields."""

    name: str
    table: str
    key: str
    fields: tuple[Field, ...]
    attribute_table: str | None = None
    attributed_by: str = ""

    @property
    def owner(self) -> str:
        """The field without which a row cannot be attributed (skipped and counted, never an abort)."""
        return self.attributed_by or self.key

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


ORDERS = Entity(
    name="orders",
    table="order_lines",
    key="order_id",
    attributed_by="customer_id",
    fields=(
        Field("order_id", "key", required=True),
        Field("customer_id", "key", required=True),
        Field("ordered_at", "timestamp", required=True),
        Field("product_id", "key", required=True),
        Field("quantity", "number", required=True),
        Field("unit_price", "number"),
        Field("amount", "number"),
        Field("store_id", "key"),
        Field("status", "text"),
    ),
)

CUSTOMERS = Entity(
    name="customers",
    table="customers",
    key="customer_id",
    attribute_table="customer_attributes",
    fields=(
        Field("customer_id", "key", required=True),
        Field("email", "text"),
        Field("first_name", "text"),
        Field("last_name", "text"),
        Field("gender", "text"),
        Field("birth_date", "date"),
        Field("phone", "text"),
        Field("postal_code", "text"),
        Field("city", "text"),
        Field("country", "text"),
        Field("lat", "number"),
        Field("lon", "number"),
        Field("email_consent", "bool"),
        Field("consent_at", "timestamp"),
        Field("created_at", "timestamp"),
        Field("language", "text"),
    ),
)

PRODUCTS = Entity(
    name="products",
    table="products",
    key="product_id",
    attribute_table="product_attributes",
    fields=(
        Field("product_id", "key", required=True),
        Field("name", "text"),
        Field("category", "text"),
        Field("price", "number"),
        Field("url", "text"),
        Field("image_url", "text"),
        Field("offer_price", "number"),
        Field("offer_from", "date", future=True),
        Field("offer_to", "date", future=True),
    ),
)

STORES = Entity(
    name="stores",
    table="stores",
    key="store_id",
    fields=(
        Field("store_id", "key", required=True),
        Field("name", "text"),
        Field("address", "text"),
        Field("city", "text"),
        Field("postal_code", "text"),
        Field("lat", "number"),
        Field("lon", "number"),
    ),
)

ENTITIES: dict[str, Entity] = {e.name: e for e in (ORDERS, CUSTOMERS, PRODUCTS, STORES)}
