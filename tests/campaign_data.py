"""A crafted shop for the content and campaign tests: a handful of products, offers, customers, orders and
one persona run, inserted straight into the tables, so every recommendation can be worked out by hand.

As of 2026-09-01 (offers checked on that day, "recently" = the 30 days before):
- Candidates: A1 (Supermercado ECO, 20% off), A2 (Supermercado ECO, 40%), B1 (Huerto ECO, 10%),
  B2 (Huerto ECO, 25%), C1 (Bebé y niño, 25%), C2 (Bebé y niño, 10%), D1 (Plantas, 50%).
  Not candidates: A3 (no offer), X1 (offer over), U1 (no URL).
- Run 1, cluster 1 buys habitually Supermercado ECO (high, 2.0), Bebé y niño (high, 1.5), Huerto ECO (medium
  but index 1.2 >= 1); cluster 2 buys Plantas (high, 3.0) habitually.
- C1 (cluster 1): A1 in 2 of 3 orders, A2 in 3 of 3 but bought on 2026-08-20, B1 once.
- C2 (cluster 2): B1 once, C2 once: buys nothing regularly.
- C3: no orders, no cluster.
- C4 (cluster 2): B1 in both of its 2 orders.
- C5 (cluster 1): a name with markup, for the escaping tests; no consent.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

AS_OF = date(2026, 9, 1)
CANDIDATES = ["A1", "A2", "B1", "B2", "C1", "C2", "D1"]

PRODUCTS = [
    # product_id, name, category, price, url, image_url, offer_price, offer_from, offer_to
    (
        "A1",
        "Aceite de oliva virgen extra",
        "Supermercado ECO",
        10.0,
        "https://tienda.example/p/A1",
        "https://tienda.example/img/A1.jpg",
        8.0,
        "2026-08-25",
        "2026-09-15",
    ),
    (
        "A2",
        "Arroz integral",
        "Supermercado ECO",
        10.0,
        "https://tienda.example/p/A2",
        "https://tienda.example/img/A2.jpg",
        6.0,
        "2026-08-25",
        "2026-09-15",
    ),
    (
        "A3",
        "Garbanzos cocidos",
        "Supermercado ECO",
        5.0,
        "https://tienda.example/p/A3",
        "https://tienda.example/img/A3.jpg",
        None,
        None,
        None,
    ),
    (
        "B1",
        "Semillas de tomate",
        "Huerto ECO",
        4.0,
        "https://tienda.example/p/B1",
        "https://tienda.example/img/B1.jpg",
        3.6,
        "2026-09-01",
        "2026-09-30",
    ),
    (
        "B2",
        "Sustrato universal",
        "Huerto ECO",
        4.0,
        "https://tienda.example/p/B2",
        "https://tienda.example/img/B2.jpg",
        3.0,
        "2026-08-01",
        "2026-09-01",
    ),
    (
        "C1",
        "Pañales ecológicos",
        "Bebé y niño",
        20.0,
        "https://tienda.example/p/C1",
        "https://tienda.example/img/C1.jpg",
        15.0,
        None,
        None,
    ),
    (
        "C2",
        "Potito de verduras",
        "Bebé y niño",
        20.0,
        "https://tienda.example/p/C2",
        "https://tienda.example/img/C2.jpg",
        18.0,
        "2026-08-01",
        "2026-09-30",
    ),
    (
        "D1",
        "Orquídea en maceta",
        "Plantas",
        8.0,
        "https://tienda.example/p/D1",
        "https://tienda.example/img/D1.jpg",
        4.0,
        "2026-08-15",
        "2026-09-15",
    ),
    (
        "X1",
        "Pasta de espelta",
        "Supermercado ECO",
        3.0,
        "https://tienda.example/p/X1",
        "https://tienda.example/img/X1.jpg",
        2.0,
        "2026-07-01",
        "2026-08-31",
    ),
    ("U1", "Producto sin enlace", "Plantas", 9.0, None, None, 1.0, "2026-08-01", "2026-09-30"),
]

CUSTOMERS = [
    # customer_id, email, first_name, last_name, gender, language, email_consent, lat, lon
    ("C1", "c1@example.com", "María José", "Núñez Peña", "F", "es", True, 40.4233, -3.6756),
    ("C2", "c2@example.com", "Jordi", "Puig Ferrer", "M", "ca", True, 41.3917, 2.1603),
    ("C3", "c3@example.com", "Alex", "Smith", None, "en", True, None, None),
    ("C4", "c4@example.com", "Pedro", "Gómez", "H", "es-ES", True, 40.42, -3.67),
    (
        "C5",
        "c5@example.com",
        "<script>alert(1)</script>",
        "O'Brien & <b>Hijos</b>",
        "F",
        "es",
        False,
        None,
        None,
    ),
]

ORDERS = [
    # order_id, customer_id, ordered_at, product_id, quantity, unit_price, store_id
    ("O1", "C1", "2026-05-01 10:00:00", "A1", 1, 10.0, "T1"),
    ("O1", "C1", "2026-05-01 10:00:00", "A2", 1, 10.0, "T1"),
    ("O2", "C1", "2026-06-01 10:00:00", "A1", 2, 10.0, "T1"),
    ("O2", "C1", "2026-06-01 10:00:00", "A2", 1, 10.0, "T1"),
    ("O3", "C1", "2026-08-20 10:00:00", "A2", 1, 10.0, "T2"),
    ("O3", "C1", "2026-08-20 10:00:00", "B1", 1, 4.0, "T2"),
    ("O4", "C2", "2026-03-01 10:00:00", "B1", 1, 4.0, None),
    ("O5", "C2", "2026-04-01 10:00:00", "C2", 1, 20.0, None),
    ("O6", "C4", "2026-05-10 10:00:00", "B1", 1, 4.0, "T2"),
    ("O7", "C4", "2026-06-10 10:00:00", "B1", 1, 4.0, "T2"),
    ("O8", "C5", "2026-06-10 10:00:00", "A3", 1, 5.0, "T1"),
    # After the as-of date: ignored everywhere.
    ("O9", "C2", "2026-09-05 10:00:00", "D1", 1, 4.0, None),
]

STORES = [
    ("T1", "Mercado Verde Madrid", "Calle de Alcalá, 120", "Madrid", "28009", 40.4233, -3.6756),
    ("T2", "Mercado Verde Chamberí", "Calle de Fuencarral, 88", "Madrid", "28010", 40.43, -3.70),
]

# cluster, variable, position, cluster_value, population_value, propensity, level
PROFILE = [
    (1, "Supermercado ECO", 1, 0.8, 0.4, 2.0, "high"),
    (1, "Bebé y niño", 2, 0.3, 0.2, 1.5, "high"),
    (1, "Huerto ECO", 3, 0.36, 0.3, 1.2, "medium"),
    (1, "Plantas", 4, 0.03, 0.1, 0.3, "low"),
    (2, "Plantas", 4, 0.3, 0.1, 3.0, "high"),
    (2, "Supermercado ECO", 1, 0.2, 0.4, 0.5, "low"),
    (2, "Huerto ECO", 3, 0.15, 0.3, 0.5, "low"),
    (2, "Bebé y niño", 2, 0.1, 0.2, 0.5, "low"),
]
MEMBERS = {"C1": 1, "C2": 2, "C4": 2, "C5": 1}
LABELS = {1: "Supermercado ECO + Bebé y niño", 2: "Plantas"}


def plant_shop(
    con: duckdb.DuckDBPyConnection, *, variable_prefix: str = "", attributes: str = "category"
) -> None:
    """Insert the crafted shop and persona run 1 (its variables prefixed, as a several-attribute run names
    them, when `variable_prefix` is given)."""
    con.executemany(
        "INSERT INTO products (product_id, name, category, price, url, image_url, offer_price, offer_from, "
        "offer_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        PRODUCTS,
    )
    con.executemany(
        "INSERT INTO customers (customer_id, email, first_name, last_name, gender, language, email_consent, "
        "lat, lon) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        CUSTOMERS,
    )
    con.executemany(
        "INSERT INTO order_lines (order_id, customer_id, ordered_at, product_id, quantity, unit_price, amount, "
        "store_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(o, c, t, p, q, u, q * u, s) for o, c, t, p, q, u, s in ORDERS],
    )
    con.executemany("INSERT INTO stores VALUES (?, ?, ?, ?, ?, ?, ?)", STORES)
    manifest = '{"options": {"attributes": [' + ", ".join(f'"{a}"' for a in attributes.split(",")) + "]}}"
    con.execute(
        "INSERT INTO persona_runs VALUES (1, 'analisis-categorias', TIMESTAMP '2026-08-01 10:00:00', 2, 4, ?)",
        [manifest],
    )
    con.executemany(
        "INSERT INTO persona_clusters VALUES (1, ?, ?, 2, 0.5, 0.5, 2.0, 10.0, 30.0, [0.0])",
        [[cluster, label] for cluster, label in LABELS.items()],
    )
    con.executemany(
        "INSERT INTO persona_profile VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
        [(c, variable_prefix + v, p, cv, pv, pr, lv) for c, v, p, cv, pv, pr, lv in PROFILE],
    )
    con.executemany("INSERT INTO persona_assignments VALUES (1, ?, ?)", list(MEMBERS.items()))


def seeded_order(seed: str, customer_id: str, candidates: list[str]) -> list[str]:
    """The documented pseudo-random order, computed independently of the SQL: candidates sorted by
    md5(seed|product), rotated to start at md5(seed|customer) (read as a little-endian number) mod count."""
    ranked = sorted(candidates, key=lambda p: hashlib.md5(f"{seed}|{p}".encode()).hexdigest())
    start = int.from_bytes(hashlib.md5(f"{seed}|{customer_id}".encode()).digest(), "little") % len(ranked)
    return ranked[start:] + ranked[:start]


def example_shop_with_personas(shop_db: Path, directory: Path) -> Path:
    """A copy of the example shop with one persona run (5 clusters) stored, as `persona run` makes it."""
    import shutil

    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.persona.options import PersonaOptions
    from pleasepoint_cli.persona.runs import run_persona
    from pleasepoint_cli.store import open_store

    path = directory / "shop-personas.duckdb"
    shutil.copy(shop_db, path)
    with open_store(path) as store:
        run_persona(store, PersonaOptions(name="analisis-categorias", clusters=5), Settings().levels)
    return path
