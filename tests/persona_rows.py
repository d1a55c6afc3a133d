"""A small crafted set of persona runs, written straight into the persona tables (no clustering needed).

Run 1 "analisis-categorias" (3 clusters): C01-C04 in cluster 1, C05-C07 in 2, C08-C09 in 3; C10 in none.
Run 2 "analisis-marcas" (2 clusters), newer: C01-C05 in 1, C06-C09 in 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

CUSTOMERS = [f"C{i:02d}" for i in range(1, 11)]
RUN1_MEMBERS = {1: ["C01", "C02", "C03", "C04"], 2: ["C05", "C06", "C07"], 3: ["C08", "C09"]}
RUN2_MEMBERS = {1: ["C01", "C02", "C03", "C04", "C05"], 2: ["C06", "C07", "C08", "C09"]}
LABELS = {1: "Supermercado ECO + Huerto ECO", 2: "Bebé y niño", 3: "Plantas"}
# (cluster, variable, position, cluster_value, population_value, level)
PROFILE = [
    (1, "Supermercado ECO", 1, 0.90, 0.50, "high"),
    (1, "Huerto ECO", 2, 0.60, 0.40, "medium"),
    (1, "Bebé y niño", 3, 0.10, 0.30, "low"),
    (1, "Plantas", 4, 0.00, 0.20, "zero"),
    (2, "Supermercado ECO", 1, 0.30, 0.50, "low"),
    (2, "Huerto ECO", 2, 0.20, 0.40, "low"),
    (2, "Bebé y niño", 3, 0.80, 0.30, "high"),
    (2, "Plantas", 4, 0.20, 0.20, "medium"),
    (3, "Supermercado ECO", 1, 0.10, 0.50, "low"),
    (3, "Huerto ECO", 2, 0.30, 0.40, "medium"),
    (3, "Bebé y niño", 3, 0.00, 0.30, "zero"),
    (3, "Plantas", 4, 0.70, 0.20, "high"),
]


def plant_personas(con: duckdb.DuckDBPyConnection) -> None:
    """Insert the customers, both runs, their clusters, run 1's profile and the assignments."""
    con.begin()
    con.executemany(
        "INSERT INTO customers (customer_id, email, first_name) VALUES (?, ?, ?)",
        [[c, f"{c.lower()}@example.es", f"Nombre {c}"] for c in CUSTOMERS],
    )
    con.execute(
        "INSERT INTO persona_runs VALUES "
        "(1, 'analisis-categorias', TIMESTAMP '2026-01-10 10:00:00', 3, 9, '{}'), "
        "(2, 'analisis-marcas', TIMESTAMP '2026-02-10 10:00:00', 2, 9, '{}')"
    )
    for run_id, members, labels in (
        (1, RUN1_MEMBERS, LABELS),
        (2, RUN2_MEMBERS, {1: "Marca A", 2: "Marca B"}),
    ):
        con.executemany(
            "INSERT INTO persona_clusters VALUES (?, ?, ?, ?, 0.3, 0.3, 1.0, 10.0, 30.0, [0.0])",
            [[run_id, cluster, labels[cluster], len(ids)] for cluster, ids in members.items()],
        )
        con.executemany(
            "INSERT INTO persona_assignments VALUES (?, ?, ?)",
            [[run_id, c, cluster] for cluster, ids in members.items() for c in ids],
        )
    con.executemany(
        "INSERT INTO persona_profile VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
        [[cl, var, pos, cv, pv, cv / pv, level] for cl, var, pos, cv, pv, level in PROFILE],
    )
    con.commit()
