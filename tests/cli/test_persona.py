"""`pleasepoint persona ...` through the CLI on the example shop: exit codes, output and the database afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.store import open_store

RUN_KEYS = {
    "run_id",
    "name",
    "created_at",
    "k",
    "customers",
    "as_of",
    "fingerprint",
    "manifest",
    "clusters",
    "profile",
}
CLUSTER_KEYS = {
    "cluster",
    "label",
    "customers",
    "share_customers",
    "share_revenue",
    "orders_per_customer",
    "avg_ticket",
    "mean_recency_days",
    "centroid",
}
PROFILE_KEYS = {"cluster", "variable", "position", "cluster_value", "population_value", "propensity", "level"}


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with open_store(db) as store:
        return store.con.execute(sql, params or []).fetchall()


def runs(db: Path) -> int:
    return int(query(db, "SELECT count(*) FROM persona_runs")[0][0])


def invoke(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(app, list(args))


def run_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = invoke(runner, "persona", "run", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_run_stores_everything_and_prints_the_clusters(shop_path: Path, runner: CliRunner) -> None:
    result = invoke(runner, "persona", "run", "--name", "categorias", "-k", "5")
    assert result.exit_code == 0, result.stderr
    assert "run 1 categorias: k=5, 2,000 customers, freq, as of 2026-06-29" in result.stdout
    assert "stored as run 1" in result.stderr
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert query(shop_path, "SELECT run_id, name, k, customers FROM persona_runs") == [
        (1, "categorias", 5, 2000)
    ]
    assert query(shop_path, "SELECT count(*), count(DISTINCT cluster) FROM persona_assignments") == [
        (2000, 5)
    ]
    assert query(shop_path, "SELECT count(*) FROM persona_clusters") == [(5,)]
    assert query(shop_path, "SELECT count(*), 5 * count(DISTINCT variable) FROM persona_profile") == [
        (40, 40)
    ]


def test_run_json_has_the_documented_keys(shop_path: Path, runner: CliRunner) -> None:
    document = run_json(runner, "-k", "4", "--seed", "7")
    assert set(document) == RUN_KEYS | {"auto_k", "warnings"}
    assert document["auto_k"] is None
    assert set(document["clusters"][0]) == CLUSTER_KEYS
    assert set(document["profile"][0]) == PROFILE_KEYS
    assert {c["level"] for c in document["profile"]} <= {"high", "medium", "low", "zero"}
    assert document["manifest"]["kmeans"]["seed"] == 7
    assert sum(c["customers"] for c in document["clusters"]) == document["customers"] == 2000


def test_auto_k_picks_the_planted_k_and_prints_its_table(
    shop_path: Path, runner: CliRunner, tmp_path: Path
) -> None:
    regulars = tmp_path / "regulares.yaml"  # half the example shop buys once: cluster the 3+ order customers
    regulars.write_text("audience:\n  orders: {gte: 3}\n", encoding="utf-8")
    result = invoke(runner, "persona", "run", "--auto-k", "3-9", "--audience", str(regulars))
    assert result.exit_code == 0, result.stderr
    assert "silhouette" in result.stderr and "<- chosen" in result.stderr
    assert query(shop_path, "SELECT k FROM persona_runs") == [(5,)]
    document = run_json(runner, "--auto-k", "3-9", "--audience", str(regulars))
    assert document["k"] == 5
    assert [s["k"] for s in document["auto_k"]] == list(range(3, 10))


def test_where_since_and_several_attributes(shop_path: Path, runner: CliRunner) -> None:
    madrid = run_json(runner, "-k", "3", "--where", "city=Madrid")
    in_madrid = query(shop_path, "SELECT count(*) FROM customers WHERE city = 'Madrid'")[0][0]
    assert madrid["customers"] == in_madrid and 0 < in_madrid < 2000
    assert madrid["manifest"]["audience"] == "city=Madrid"
    outside = query(
        shop_path,
        "SELECT count(*) FROM persona_assignments a JOIN customers c USING (customer_id) "
        "WHERE a.run_id = ? AND c.city <> 'Madrid'",
        [madrid["run_id"]],
    )
    assert outside == [(0,)]
    gold = run_json(runner, "-k", "3", "--where", "loyalty_card=Oro")  # a customer attribute
    assert (
        gold["customers"]
        == query(
            shop_path, "SELECT count(*) FROM customer_attributes WHERE key = 'loyalty_card' AND value = 'Oro'"
        )[0][0]
    )

    recent = run_json(runner, "-k", "3", "--since", "2026-01-01")
    buyers = query(
        shop_path,
        "SELECT count(DISTINCT customer_id) FROM order_lines WHERE ordered_at >= '2026-01-01' AND quantity > 0",
    )[0][0]
    assert recent["customers"] == buyers < 2000
    assert recent["manifest"]["options"]["since"] == "2026-01-01"

    both = run_json(runner, "-k", "5", "--attribute", "category", "--attribute", "brand")
    variables = both["manifest"]["variables"]
    assert "category: Plantas" in variables and any(v.startswith("brand: ") for v in variables)
    assert both["manifest"]["resolved"]["transform"] == "standardize"
    assert all(not c["label"].startswith("Mixed") for c in both["clusters"][:1])


def test_config_file_with_flags_overriding(shop_path: Path, runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "persona.yaml"
    config.write_text(
        "name: desde-yaml\nclusters: 3\nunit: binary\nwhere:\n  city: Madrid\n", encoding="utf-8"
    )
    document = run_json(runner, "--config", str(config), "-k", "4")
    assert (document["name"], document["k"]) == ("desde-yaml", 4)
    assert document["manifest"]["options"]["unit"] == "binary"
    assert document["manifest"]["audience"] == "city=Madrid"
    config.write_text("name: x\nclusterz: 3\n", encoding="utf-8")
    result = invoke(runner, "persona", "run", "--config", str(config))
    assert result.exit_code == 1
    assert f"{config}:2: clusterz: unknown key" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--attribute", "colour"],
            "--attribute 'colour': no product has this attribute. Known: category, brand",
        ),
        (["-k", "25"], "--clusters: Input should be less than or equal to 20 (k is the number of clusters"),
        (["-k", "1"], "--clusters: Input should be greater than or equal to 2"),
        (["--where", "city=Atlantis"], "the audience is empty"),
        (["--where", "planet=Mars"], "'planet' is neither a customers column nor a customer attribute"),
        (["-k", "3", "--where", "customer_id=C0000001"], "k = 3 clusters but only 1 customers"),
        (["--auto-k", "9-3"], "--auto-k: '9-3': need 2 <= LOW < HIGH <= 20"),
        (["--unit", "kilos"], "--unit: Input should be 'freq', 'count', 'spend' or 'binary'"),
        (["--since", "2030-01-01"], "there are no orders between 2030-01-01"),
    ],
)
def test_run_errors_exit_1_and_store_nothing(
    shop_path: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    result = invoke(runner, "persona", "run", *args)
    assert result.exit_code == 1, result.stdout
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert runs(shop_path) == 0


def test_unknown_run_is_named(shop_path: Path, runner: CliRunner) -> None:
    result = invoke(runner, "persona", "show", "99")
    assert result.exit_code == 1
    assert "there are no persona runs yet" in result.stderr
    assert invoke(runner, "persona", "run", "-k", "3", "-n", "uno").exit_code == 0
    for command in (
        ["show", "dos"],
        ["export", "dos", "--out", "x.csv"],
        ["diff", "uno", "dos"],
        ["verify", "7"],
    ):
        result = invoke(runner, "persona", *command)
        assert result.exit_code == 1, command
        assert "no persona run" in result.stderr and "Recent runs: 1 (uno)" in " ".join(result.stderr.split())


def test_show_heatmap_fits_80_columns_for_9_clusters(shop_path: Path, runner: CliRunner) -> None:
    document = run_json(runner, "-k", "9", "-a", "category", "-a", "brand", "--rfm", "--name", "nueve")
    variables = document["manifest"]["clustering_variables"]
    assert len(variables) >= 30
    result = invoke(runner, "persona", "show", "nueve", "--view", "heatmap")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split() == [str(c) for c in range(1, 10)]
    # Title, two header lines, then one line per variable (a wrapped one would take two), then the legend.
    rows = lines[3 : 3 + len(variables)]
    assert all(len(row.split()) >= 10 and row.split()[-1][-1].isdigit() for row in rows)
    assert lines[3 + len(variables)].startswith("propensity index:")
    plantas = next(row for row in rows if row.startswith("category: Plantas"))
    indexes = [p["propensity"] for p in document["profile"] if p["variable"] == "category: Plantas"]
    assert plantas.split()[-9:] == [f"{x:.2f}" if x < 9.995 else f"{x:.1f}" for x in indexes]
    assert "red = low, blue = high" in result.stdout


def test_show_table_json_csv_and_html(shop_path: Path, runner: CliRunner, tmp_path: Path) -> None:
    run_json(runner, "-k", "5", "--name", "informe")
    table = invoke(runner, "persona", "show", "informe")
    assert table.exit_code == 0 and "label" in table.stdout and "customers" in table.stdout
    document = json.loads(invoke(runner, "persona", "show", "latest", "--format", "json").stdout)
    assert set(document) == RUN_KEYS
    profile_csv = invoke(
        runner, "persona", "show", "1", "--view", "heatmap", "--format", "csv"
    ).stdout.splitlines()
    assert profile_csv[0] == "cluster,variable,position,cluster_value,population_value,propensity,level"
    assert len(profile_csv) == 1 + 5 * 8  # 6 categories and the 2 rare ones
    clusters_csv = invoke(runner, "persona", "show", "1", "--format", "csv").stdout.splitlines()
    assert clusters_csv[0].startswith("cluster,label,customers,share_customers") and len(clusters_csv) == 6
    report = tmp_path / "informe.html"
    result = invoke(runner, "persona", "show", "informe", "--view", "heatmap", "--html", str(report))
    assert result.exit_code == 0 and f"wrote {report}" in result.stderr
    page = report.read_text(encoding="utf-8")
    assert (
        "Supermercado ECO" in page and '<table class="heat">' in page and '<table class="clusters">' in page
    )


def test_list_pages_newest_first(shop_path: Path, runner: CliRunner) -> None:
    for i in range(11):
        assert (
            invoke(runner, "persona", "run", "-k", "2", "-n", f"r{i}", "--since", "2026-06-01").exit_code == 0
        )
    first = json.loads(invoke(runner, "persona", "list", "--format", "json").stdout)
    assert (first["page"], first["pages"], first["total"]) == (1, 2, 11)
    assert [r["name"] for r in first["runs"]] == [f"r{i}" for i in range(10, 0, -1)]
    assert set(first["runs"][0]) == {
        "run_id", "name", "created_at", "k", "customers", "attributes", "unit", "transform", "as_of", "fingerprint",
    }  # fmt: skip
    second = invoke(runner, "persona", "list", "--page", "2")
    assert second.exit_code == 0 and " r0 " in second.stdout and "page 2 of 2" in second.stdout
    assert invoke(runner, "persona", "list", "--page", "3").exit_code == 1


def test_export_csv_and_parquet(shop_path: Path, runner: CliRunner, tmp_path: Path) -> None:
    run_json(runner, "-k", "4")
    result = invoke(runner, "persona", "export", "latest", "--out", str(tmp_path / "a.csv"))
    assert result.exit_code == 0 and "wrote 2,000 assignments of run 1" in result.stderr
    lines = (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "customer_id,cluster,label" and len(lines) == 2001
    result = invoke(
        runner, "persona", "export", "1", "--out", str(tmp_path / "a.parquet"), "--format", "json"
    )
    assert json.loads(result.stdout)["rows"] == 2000
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 2000
    bad = invoke(runner, "persona", "export", "1", "--out", str(tmp_path / "a.xlsx"))
    assert bad.exit_code == 1 and "write a .csv or a .parquet file" in bad.stderr


def test_diff_two_runs(shop_path: Path, runner: CliRunner) -> None:
    run_json(runner, "-k", "5", "--seed", "1")
    run_json(runner, "-k", "5", "--seed", "2", "--since", "2024-06-30")
    document = json.loads(invoke(runner, "persona", "diff", "1", "2", "--format", "json").stdout)
    assert document["matched"] and len(document["matches"]) == 5
    assert document["common"] + document["only_a"] == 2000
    assert document["moved"] == document["common"] - document["stayed"]
    assert sum(m["customers"] for m in document["migrations"]) == 2000
    table = invoke(runner, "persona", "diff", "1", "2")
    assert table.exit_code == 0 and "moved to a cluster other than the match" in table.stderr
    run_json(runner, "-k", "5", "--unit", "binary")
    other = invoke(runner, "persona", "diff", "1", "3")
    assert other.exit_code == 0
    assert "clusters not matched: the unit differs (freq vs binary)" in " ".join(other.stderr.split())


def test_verify_passes_then_fails_after_new_orders(
    shop_path: Path, runner: CliRunner, tmp_path: Path
) -> None:
    run_json(runner, "-k", "5", "--name", "ci")
    run_json(runner, "-k", "5", "--name", "ci")
    same = query(
        shop_path,
        "SELECT count(*) FROM persona_assignments a JOIN persona_assignments b USING (customer_id, cluster) "
        "WHERE a.run_id = 1 AND b.run_id = 2",
    )
    assert same == [(2000,)]
    ok = invoke(runner, "persona", "verify", "ci")
    assert ok.exit_code == 0, ok.stdout
    assert "identical" in ok.stdout
    # New orders inside the window: garden buyers who now buy only baby products.
    orders = tmp_path / "extra.csv"
    baby = query(shop_path, "SELECT product_id FROM products WHERE category = 'Bebé y niño' LIMIT 1")[0][0]
    garden = [r[0] for r in query(shop_path, "SELECT customer_id FROM persona_assignments WHERE run_id = 2 "
                                             "AND cluster = 4 ORDER BY customer_id LIMIT 30")]  # fmt: skip
    rows = [
        f"X{i:03d}-{j},{customer},2026-06-{10 + j:02d} 12:00:00,{baby},1,9.99"
        for i, customer in enumerate(garden)
        for j in range(8)
    ]
    orders.write_text(
        "order_id,customer_id,ordered_at,product_id,quantity,unit_price\n" + "\n".join(rows) + "\n"
    )
    assert invoke(runner, "persona", "verify", "1").exit_code == 0  # nothing changed yet
    assert invoke(runner, "ingest", "orders", str(orders)).exit_code == 0
    failed = invoke(runner, "persona", "verify", "ci")
    assert failed.exit_code == 1
    assert "NOT identical" in failed.stdout and "customers that changed cluster" in failed.stdout
    assert "input fingerprint: stored" in failed.stdout
    document = json.loads(invoke(runner, "persona", "verify", "ci", "--format", "json").stdout)
    assert document["identical"] is False and document["changed_cluster"] > 0
    assert document["fingerprint_matches"] is False
    assert runs(shop_path) == 2  # verify stores nothing
