"""`pleasepoint enrich ...` through the CLI: exit codes, output, and the database afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from persona_rows import RUN1_MEMBERS, plant_personas
from pleasepoint_cli.cli import app
from pleasepoint_cli.store import Store, open_store

EXAMPLES = Path(__file__).parents[2] / "examples"
CATEGORIES = ["Bebé y niño", "Hogar", "Huerto ECO", "Jardín y exterior", "Plantas", "Supermercado ECO"]


@pytest.fixture
def db(store: Store) -> Path:
    """The crafted persona runs in the test's database, closed so the CLI can open it."""
    plant_personas(store.con)
    store.close()
    return store.path


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with open_store(db) as store:
        return store.con.execute(sql, params or []).fetchall()


def values(db: Path, key: str) -> dict[str, str]:
    return dict(query(db, "SELECT customer_id, value FROM customer_attributes WHERE key = ?", [key]))  # type: ignore[arg-type]


def test_cluster_sets_members_only_then_history_clear_and_undo(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "enrich",
            "cluster",
            "analisis-categorias",
            "2",
            "Segmento=Familias con bebé",
            "Bebé y niño=high",
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert (
        written["members"] == 3
        and written["values_changed"] == 6
        and written["keys"] == ["bebe_y_nino", "segmento"]
    )
    assert values(db, "segmento") == dict.fromkeys(RUN1_MEMBERS[2], "Familias con bebé")
    assert values(db, "bebe_y_nino") == dict.fromkeys(RUN1_MEMBERS[2], "high")

    cleared = runner.invoke(app, ["enrich", "clear", "1", "2"])
    assert cleared.exit_code == 0, cleared.output
    assert "6 values changed" in " ".join(cleared.output.split())
    assert query(db, "SELECT count(*) FROM customer_attributes") == [(0,)]

    history = runner.invoke(app, ["enrich", "history", "C06", "-f", "json"])
    assert history.exit_code == 0, history.output
    rows = json.loads(history.stdout)
    assert [(r["kind"], r["key"], r["old_value"], r["new_value"]) for r in rows] == [
        ("enrich_clear", "bebe_y_nino", "high", None),
        ("enrich_clear", "segmento", "Familias con bebé", None),
        ("enrich_cluster", "bebe_y_nino", None, "high"),
        ("enrich_cluster", "segmento", None, "Familias con bebé"),
    ]
    undo = runner.invoke(app, ["enrich", "undo", str(rows[0]["change_id"])])
    assert undo.exit_code == 0, undo.output
    assert values(db, "segmento") == dict.fromkeys(RUN1_MEMBERS[2], "Familias con bebé")
    changes = json.loads(runner.invoke(app, ["enrich", "changes", "-f", "json"]).stdout)
    assert [c["kind"] for c in changes] == ["undo", "enrich_clear", "enrich_cluster"]
    assert changes[1]["undone_by"] == changes[0]["change_id"]
    table = runner.invoke(app, ["enrich", "history", "C06"])
    assert table.exit_code == 0 and "Familias" in table.output and "undo" in table.output
    assert max(len(line) for line in table.output.splitlines()) <= 80


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cluster", "1", "2", "segmento"], "expected key=value"),
        (["cluster", "1", "2", "ok=1", "segmento"], "expected key=value"),
        (["cluster", "9", "1", "a=b"], "no persona run '9'"),
        (["cluster", "nada", "1", "a=b"], "no persona run 'nada'"),
        (["cluster", "1", "7", "a=b"], "run 1 has no cluster 7"),
        (["clear", "1", "4"], "run 1 has no cluster 4"),
        (["undo", "42"], "no attribute change 42"),
        (["history", "Z9"], "no customer 'Z9'"),
        (["levels", "2"], "no stored profile"),
    ],
)
def test_errors_exit_1_with_a_message_and_write_nothing(
    db: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["enrich", *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert query(db, "SELECT count(*) FROM customer_attributes") == [(0,)]
    assert query(db, "SELECT count(*) FROM attribute_changes") == [(0,)]


def test_a_bad_cluster_number_is_a_usage_error(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["enrich", "cluster", "1", "dos", "a=b"])
    assert result.exit_code == 2


def _seven_clusters(db: Path) -> None:
    """A third, newest run with the guide's seven clusters, three customers each."""
    with open_store(db) as store, store.transaction() as con:
        con.execute(
            "INSERT INTO persona_runs VALUES (3, 'categorias-7', TIMESTAMP '2026-03-01 10:00:00', 7, 21, '{}')"
        )
        con.executemany(
            "INSERT INTO persona_clusters VALUES (3, ?, ?, 3, 0.1, 0.1, 1.0, 10.0, 30.0, [0.0])",
            [[c, f"Cluster {c}"] for c in range(1, 8)],
        )
        con.executemany(
            "INSERT INTO persona_assignments VALUES (3, ?, ?)",
            [[f"K{c}{i}", c] for c in range(1, 8) for i in range(3)],
        )


def test_apply_the_guides_table_from_examples(db: Path, runner: CliRunner) -> None:
    _seven_clusters(db)
    result = runner.invoke(app, ["enrich", "apply", str(EXAMPLES / "enrichment.yaml"), "-f", "json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert written["run"] == 3 and written["clusters"] == [1, 2, 3, 4, 5, 6, 7] and written["members"] == 21
    assert written["values_changed"] == 21 * 7
    segment = values(db, "segment")
    assert segment["K10"] == "Supermercado + Huerto + Bebé" and segment["K62"] == "Sólo supermercado"
    assert values(db, "propensity_jardin_y_exterior")["K31"] == "zero"
    assert values(db, "propensity_bebe_y_nino")["K40"] == "high"
    assert {k for (k,) in query(db, "SELECT DISTINCT key FROM customer_attributes")} == {
        "segment",
        *(
            f"propensity_{c}"
            for c in (
                "bebe_y_nino",
                "hogar",
                "huerto_eco",
                "jardin_y_exterior",
                "plantas",
                "supermercado_eco",
            )
        ),
    }
    assert query(db, "SELECT DISTINCT source FROM customer_attributes WHERE customer_id = 'K70'") == [
        ("enrich run 3 cluster 7",)
    ]
    cleared = runner.invoke(app, ["enrich", "clear", "latest", "7"])
    assert cleared.exit_code == 0
    assert "K70" not in values(db, "segment") and "K60" in values(db, "segment")


def test_apply_against_a_run_without_those_clusters_writes_nothing(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["enrich", "apply", str(EXAMPLES / "enrichment.yaml"), "--run", "1"])
    assert result.exit_code == 1
    assert "enrichment.yaml:24: clusters.3.id: run 1 has no cluster 4" in " ".join(result.output.split())
    assert query(db, "SELECT count(*) FROM attribute_changes") == [(0,)]


def test_a_bad_enrichment_yaml_names_file_and_line(db: Path, runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "mala.yaml"
    path.write_text(
        "run: 1\nclusters:\n  - id: 1\n    segmento: Uno\n    levels: {Hogar: alto}\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["enrich", "apply", str(path)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "mala.yaml:4: clusters.0.segmento: unknown key" in output
    assert "mala.yaml:5: clusters.0.levels.Hogar:" in output
    assert query(db, "SELECT count(*) FROM customer_attributes") == [(0,)]


def test_levels_and_top_write_the_profile(db: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["enrich", "levels", "1", "--key", "Segmento cliente"])
    assert result.exit_code == 0, result.output
    assert values(db, "segmento_cliente")["C09"] == "Plantas"
    assert values(db, "propensity_supermercado_eco")["C01"] == "high"
    top = runner.invoke(app, ["enrich", "top", "1", "--n", "1", "--write", "-f", "json"])
    assert top.exit_code == 0, top.output
    document = json.loads(top.stdout)
    assert [(t["cluster"], t["variable"]) for t in document["top"]] == [
        (1, "Supermercado ECO"),
        (2, "Bebé y niño"),
        (3, "Plantas"),
    ]
    assert values(db, "top_1") == {
        **dict.fromkeys(RUN1_MEMBERS[1], "Supermercado ECO"),
        **dict.fromkeys(RUN1_MEMBERS[2], "Bebé y niño"),
        **dict.fromkeys(RUN1_MEMBERS[3], "Plantas"),
    }
    shown = runner.invoke(app, ["enrich", "top", "1"])
    assert shown.exit_code == 0 and "Supermercado ECO" in shown.output
