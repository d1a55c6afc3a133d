"""`persona run -k 7` on the benchmark shop beside its comparator: one DuckDB aggregation query of the same
customer x category matrix plus one scikit-learn KMeans fit, in a fresh interpreter each (same run, same data).

The comparator's query is written the fast way (group by order first rather than count(DISTINCT), which
takes twice as long in DuckDB 1.5), so the ratio measures what the command adds: customer totals, the input
fingerprint, the profile, storing every assignment, and its imports.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from bench.common import PLEASEPOINT, Figure, loaded_db, python_snippet, timed

K = 7
SEED = 1

COMPARATOR = """
import sys
import duckdb
import numpy as np
from sklearn.cluster import KMeans

con = duckdb.connect(sys.argv[1], read_only=True)
cells = con.execute('''
    WITH order_values AS (
        SELECT ol.customer_id, ol.order_id, p.category
        FROM order_lines ol JOIN products p USING (product_id)
        WHERE ol.quantity > 0
        GROUP BY ALL
    ),
    orders AS (
        SELECT customer_id, count(*) AS n
        FROM (SELECT DISTINCT customer_id, order_id FROM order_values)
        GROUP BY customer_id
    ),
    bought AS (
        SELECT customer_id, category, count(*) AS k
        FROM order_values WHERE category IS NOT NULL GROUP BY customer_id, category
    )
    SELECT (dense_rank() OVER (ORDER BY customer_id) - 1)::INTEGER AS row,
           (dense_rank() OVER (ORDER BY category) - 1)::INTEGER AS col,
           k / n AS value
    FROM bought JOIN orders USING (customer_id)
''').fetchnumpy()
matrix = np.zeros((int(cells["row"].max()) + 1, int(cells["col"].max()) + 1))
matrix[cells["row"], cells["col"]] = cells["value"]
model = KMeans(n_clusters=%(k)d, n_init="auto", random_state=%(seed)d).fit(matrix)
print("matrix", matrix.shape[0], matrix.shape[1], model.n_iter_)
"""


def run() -> list[Figure]:
    """Time the command and the comparator on a private copy of the benchmark database."""
    source = loaded_db()
    with tempfile.TemporaryDirectory(prefix="pleasepoint-bench-") as folder:
        db = Path(folder) / "persona.duckdb"
        shutil.copy(source, db)
        command = [*PLEASEPOINT, "--db", str(db), "-q", "persona", "run", "-k", str(K), "--seed", str(SEED),
                   "--format", "json"]  # fmt: skip
        seconds, peak_mb, stdout = timed(command)
        document = json.loads(stdout)
        comparator_seconds, _, comparator_out = timed(
            [*python_snippet(COMPARATOR % {"k": K, "seed": SEED}), str(db)]
        )
    rows, columns, _ = comparator_out.split("matrix")[-1].split()
    assert int(rows) == document["customers"], (rows, document["customers"])
    assert int(columns) == len(document["manifest"]["variables"])
    return [
        Figure(
            step=f"persona run -k {K} ({document['customers']:,} customers)",
            seconds=seconds,
            peak_mb=peak_mb,
            comparator="DuckDB matrix query + one KMeans fit",
            comparator_seconds=comparator_seconds,
            target="< 20 s, <= 2x, < 3 GB",
        )
    ]
