"""Enrichment core: cluster values on members only, clear, apply, levels, top, history and undo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from persona_rows import RUN1_MEMBERS, plant_personas
from pleasepoint_cli.enrich.cluster import clear_cluster, enrich_cluster, parse_pairs
from pleasepoint_cli.enrich.history import customer_history, list_changes, undo_change
from pleasepoint_cli.enrich.levels import enrich_levels, top_variables, write_top
from pleasepoint_cli.enrich.runs import resolve_run
from pleasepoint_cli.enrich.table import apply_enrichment
from pleasepoint_cli.errors import ConfigError, NotFoundError, PleasepointError
from pleasepoint_cli.store import Store


@pytest.fixture
def personas(store: Store) -> Store:
    plant_personas(store.con)
    return store


def attrs(store: Store, key: str) -> dict[str, Any]:
    return dict(
        store.con.execute(
            "SELECT customer_id, value FROM customer_attributes WHERE key = ?", [key]
        ).fetchall()
    )


def test_run_is_an_id_a_name_or_latest(personas: Store) -> None:
    assert resolve_run(personas, "latest") == 2
    assert resolve_run(personas, "1") == 1 and resolve_run(personas, 2) == 2
    assert resolve_run(personas, "analisis-categorias") == 1
    with pytest.raises(NotFoundError, match=r"no persona run 'nada'.*2 \(analisis-marcas\)"):
        resolve_run(personas, "nada")
    with pytest.raises(NotFoundError, match="no persona run '7'"):
        resolve_run(personas, "7")


def test_no_runs_at_all_says_how_to_make_one(store: Store) -> None:
    with pytest.raises(NotFoundError, match="persona run"):
        resolve_run(store, "latest")


def test_pairs_become_slug_keys_and_keep_accented_values() -> None:
    assert parse_pairs(["Bebé y niño=Mucho más", "segmento = Sólo huerto "]) == {
        "bebe_y_nino": "Mucho más",
        "segmento": "Sólo huerto",
    }
    assert parse_pairs(["formula=a=b"]) == {"formula": "a=b"}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_pairs(["segmento"])
    with pytest.raises(ConfigError, match="value is empty"):
        parse_pairs(["segmento="])
    with pytest.raises(ConfigError, match="needs a letter or a digit"):
        parse_pairs(["¿?=x"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_pairs(["Hogar=a", "hogar=b"])


def test_cluster_values_go_to_every_member_and_nobody_else(personas: Store) -> None:
    result = enrich_cluster(personas, "1", 2, {"segmento": "Familias", "bebe_y_nino": "high"})
    assert result.members == 3 and result.change.changed == 6 and result.change.customers == 3
    assert attrs(personas, "segmento") == dict.fromkeys(RUN1_MEMBERS[2], "Familias")
    sources = {
        r[0] for r in personas.con.execute("SELECT DISTINCT source FROM customer_attributes").fetchall()
    }
    assert sources == {"enrich run 1 cluster 2"}
    again = enrich_cluster(personas, "1", 2, {"segmento": "Familias"})
    assert again.change.changed == 0, "writing the same value again changes nothing"


def test_unknown_cluster_is_an_error_naming_the_clusters(personas: Store) -> None:
    with pytest.raises(NotFoundError, match=r"run 1 has no cluster 9 \(its clusters: 1\.\.3\)"):
        enrich_cluster(personas, "1", 9, {"a": "b"})


def test_clear_removes_exactly_what_the_cluster_set(personas: Store) -> None:
    con = personas.con
    con.execute("INSERT INTO customer_attributes VALUES ('C05', 'tienda', 'Logroño', 'ingest', now(), NULL)")
    enrich_cluster(personas, 1, 2, {"segmento": "Familias"})
    enrich_cluster(personas, 1, 3, {"segmento": "Jardineros"})
    enrich_cluster(personas, 2, 1, {"marca": "A"})  # C05 is in run 2 cluster 1 too
    cleared = clear_cluster(personas, 1, 2)
    assert cleared.change.changed == 3
    assert attrs(personas, "segmento") == {"C08": "Jardineros", "C09": "Jardineros"}
    assert attrs(personas, "tienda") == {"C05": "Logroño"}
    assert "C05" in attrs(personas, "marca")
    history = customer_history(personas, "C05")
    segment = [(h["old_value"], h["new_value"]) for h in history if h["key"] == "segmento"]
    assert segment == [("Familias", None), (None, "Familias")], "newest first: the clear, then the set"


def test_a_value_overwritten_since_is_not_cleared(personas: Store) -> None:
    enrich_cluster(personas, 1, 1, {"segmento": "Súper"})
    enrich_cluster(personas, 2, 1, {"segmento": "Marca A"})  # C01-C04 now hold run 2's value, C05 too
    clear_cluster(personas, 1, 1)
    assert attrs(personas, "segmento") == dict.fromkeys(["C01", "C02", "C03", "C04", "C05"], "Marca A")


def test_undo_restores_previous_values_where_still_current(personas: Store) -> None:
    con = personas.con
    first = enrich_cluster(personas, 1, 1, {"segmento": "Viejo"}).change
    second = enrich_cluster(personas, 1, 1, {"segmento": "Nuevo"}).change
    con.execute("UPDATE customer_attributes SET value = 'A mano', change_id = NULL WHERE customer_id = 'C04'")
    undo = undo_change(personas, second.change_id)
    assert undo.changed == 3
    assert attrs(personas, "segmento") == {"C01": "Viejo", "C02": "Viejo", "C03": "Viejo", "C04": "A mano"}
    restored = con.execute("SELECT DISTINCT source FROM customer_attributes WHERE value = 'Viejo'").fetchall()
    assert restored == [("enrich run 1 cluster 1",)], "the old value comes back with its old source"
    changes = {c["change_id"]: c for c in list_changes(personas)}
    assert changes[second.change_id]["undone_by"] == undo.change_id
    assert changes[undo.change_id]["changed"] == 3
    with pytest.raises(PleasepointError, match=f"already undone by change {undo.change_id}"):
        undo_change(personas, second.change_id)
    undo_change(personas, first.change_id)  # the first set removed nothing: undoing it removes the values
    assert attrs(personas, "segmento") == {"C04": "A mano"}
    with pytest.raises(NotFoundError, match="no attribute change 999"):
        undo_change(personas, 999)


def test_history_of_an_unknown_customer_is_an_error(personas: Store) -> None:
    assert customer_history(personas, "C10") == []
    with pytest.raises(NotFoundError, match="no customer 'X99'"):
        customer_history(personas, "X99")


def test_levels_write_labels_and_propensity_levels(personas: Store) -> None:
    result = enrich_levels(personas, "analisis-categorias")
    assert result.run_id == 1 and result.members == 9 and result.change.customers == 9
    assert set(result.change.keys) == {
        "segment",
        "propensity_supermercado_eco",
        "propensity_huerto_eco",
        "propensity_bebe_y_nino",
        "propensity_plantas",
    }
    assert attrs(personas, "segment")["C06"] == "Bebé y niño"
    assert attrs(personas, "propensity_bebe_y_nino") == {
        **dict.fromkeys(RUN1_MEMBERS[1], "low"),
        **dict.fromkeys(RUN1_MEMBERS[2], "high"),
        **dict.fromkeys(RUN1_MEMBERS[3], "zero"),
    }
    source = personas.scalar("SELECT source FROM customer_attributes WHERE customer_id = 'C08' LIMIT 1")
    assert source == "enrich run 1 cluster 3"
    clear_cluster(personas, 1, 3)
    assert personas.scalar("SELECT count(*) FROM customer_attributes WHERE customer_id = 'C08'") == 0
    with pytest.raises(PleasepointError, match="no stored profile"):
        enrich_levels(personas, 2)


def test_top_ranks_by_propensity_and_writes_without_stale_ranks(personas: Store) -> None:
    run_id, top = top_variables(personas, 1, 2)
    assert run_id == 1
    assert [(t.cluster, t.rank, t.variable) for t in top] == [
        (1, 1, "Supermercado ECO"),
        (1, 2, "Huerto ECO"),
        (2, 1, "Bebé y niño"),
        (2, 2, "Plantas"),
        (3, 1, "Plantas"),
        (3, 2, "Huerto ECO"),
    ]
    write_top(personas, 1, 4)
    assert attrs(personas, "top_4") == dict.fromkeys(RUN1_MEMBERS[2], "Huerto ECO")  # cluster 1, 3 have 3
    assert attrs(personas, "top_1")["C09"] == "Plantas"
    write_top(personas, 1, 3)
    write_top(personas, 1, 4)
    personas.con.execute(
        "UPDATE persona_profile SET cluster_value = 0 WHERE cluster = 2 AND variable = 'Huerto ECO'"
    )
    write_top(personas, 1, 4)
    assert attrs(personas, "top_4") == {}, "a rank the cluster no longer has is removed"


GUIDE_TABLE = """\
run: analisis-categorias
clusters:
  - id: 1
    segment: Supermercado + Huerto + Bebé
    levels: {Bebé y niño: medium, Hogar: low, Huerto ECO: medium}
  - id: 3
    segment: Sólo huerto
    levels: {Jardín y exterior: zero}
    attributes: {canal: tienda}
"""


def test_apply_writes_the_whole_table_in_one_change(personas: Store, tmp_path: Path) -> None:
    path = tmp_path / "enrichment.yaml"
    path.write_text(GUIDE_TABLE, encoding="utf-8")
    result = apply_enrichment(personas, path)
    assert result.run_id == 1 and result.clusters == (1, 3) and result.members == 6
    assert attrs(personas, "segment") == {
        **dict.fromkeys(RUN1_MEMBERS[1], "Supermercado + Huerto + Bebé"),
        **dict.fromkeys(RUN1_MEMBERS[3], "Sólo huerto"),
    }
    assert attrs(personas, "propensity_jardin_y_exterior") == {"C08": "zero", "C09": "zero"}
    assert attrs(personas, "canal") == {"C08": "tienda", "C09": "tienda"}
    assert personas.scalar("SELECT count(DISTINCT change_id) FROM customer_attributes") == 1
    clear_cluster(personas, 1, 3)
    assert set(attrs(personas, "segment")) == set(RUN1_MEMBERS[1])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            GUIDE_TABLE.replace("medium}", "mucho}"),
            r"enrichment\.yaml:5: clusters\.0\.levels\.Huerto ECO: Input should be",
        ),
        (
            GUIDE_TABLE.replace("    attributes", "    atributos"),
            r"enrichment\.yaml:9: clusters\.1\.atributos: unknown key",
        ),
        (GUIDE_TABLE.replace("id: 3", "id: 1"), r"cluster 1 appears twice"),
        (
            GUIDE_TABLE.replace("id: 3", "id: 8"),
            r"enrichment\.yaml:6: clusters\.1\.id: run 1 has no cluster 8",
        ),
        (
            GUIDE_TABLE.replace("{canal: tienda}", "{Segment: x}"),
            r"enrichment\.yaml:6: clusters\.1: .*already sets",
        ),
        ("run: analisis-categorias\nclusters: [", r"enrichment\.yaml:\d+: invalid YAML"),
    ],
)
def test_a_bad_enrichment_file_names_file_and_line_and_writes_nothing(
    personas: Store, tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "enrichment.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PleasepointError, match=error):
        apply_enrichment(personas, path)
    assert personas.scalar("SELECT count(*) FROM customer_attributes") == 0
