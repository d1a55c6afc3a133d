"""How an ingest's options merge: flags over the mapping file over pleasepoint.yaml, and what cannot go together."""

from __future__ import annotations

from pathlib import Path

import pytest

from pleasepoint_cli.config import IngestSettings
from pleasepoint_cli.errors import ConfigError, UsageError
from pleasepoint_cli.ingest.options import IngestFlags, resolve_ingest


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_flags_win_over_the_mapping_file_which_wins_over_the_settings(tmp_path: Path) -> None:
    mapping = _mapping(
        tmp_path,
        "format:\n  delimiter: ';'\n  decimal: ','\n  encoding: latin-1\n  date_order: mdy\n"
        "orders:\n  columns:\n    customer_id: cliente\n",
    )
    settings = IngestSettings(date_order="dmy", purchase_statuses=["completed", "pending"])
    from_file = resolve_ingest("orders", IngestFlags(files=[Path("v.csv")], mapping_file=mapping), settings)
    assert (from_file.options.delimiter, from_file.options.decimal, from_file.options.encoding) == (
        ";",
        ",",
        "latin-1",
    )
    assert from_file.options.date_order == "mdy", "the mapping's format block is above pleasepoint.yaml"
    assert from_file.section.columns == {"customer_id": "cliente"}
    assert from_file.purchase_statuses == ["completed", "pending"]

    flags = IngestFlags(
        files=[Path("v.csv")],
        mapping_file=mapping,
        maps=["customer_id=id"],
        delimiter="tab",
        decimal=".",
        dayfirst=True,
        no_header=True,
        columns="a, b",
    )
    given = resolve_ingest("orders", flags, settings)
    assert (given.options.delimiter, given.options.decimal, given.options.date_order) == ("tab", ".", "dmy")
    assert given.options.header is False and given.options.names == ("a", "b")
    assert given.explicit == {"customer_id": "id"}, "--map goes beside the mapping, the loader prefers it"
    assert given.sources == [(Path("v.csv"), None)]

    bare = resolve_ingest("orders", IngestFlags(files=[Path("v.csv")]), settings)
    assert bare.options.date_order == "dmy", "without flag or mapping, pleasepoint.yaml decides"
    assert bare.options.delimiter is None and bare.options.header is True


def test_rejects_imply_skip_and_a_mapping_query_reads_beside_its_file(tmp_path: Path) -> None:
    settings = IngestSettings()
    plan = resolve_ingest("orders", IngestFlags(files=[Path("v.csv")], rejects=tmp_path / "r.csv"), settings)
    assert plan.on_error == "skip" and plan.rejects == tmp_path / "r.csv"
    mapping = _mapping(tmp_path, "orders:\n  sql: SELECT * FROM read_csv('lines.csv')\n")
    query = resolve_ingest("orders", IngestFlags(mapping_file=mapping), settings)
    assert query.sources == [(mapping, "SELECT * FROM read_csv('lines.csv')")]
    assert query.sql_base == tmp_path.resolve()
    day = resolve_ingest("orders", IngestFlags(files=[Path("v.csv")], order_id_from="customer-day"), settings)
    assert day.section.order_id_from == "customer_day"


@pytest.mark.parametrize(
    ("entity", "flags", "message"),
    [
        (
            "customers",
            IngestFlags(files=[Path("c.csv")], order_id_from="customer-day"),
            "`ingest orders` only",
        ),
        ("orders", IngestFlags(files=[Path("v.csv")], sql="SELECT 1"), "not both"),
        ("orders", IngestFlags(sql="SELECT 1", rejects=Path("r.csv")), "--rejects applies to files"),
        ("orders", IngestFlags(files=[Path("v.csv")], decimal=";"), "use '.' or ','"),
        (
            "orders",
            IngestFlags(files=[Path("a.csv"), Path("b.csv")], rejects=Path("r.csv")),
            "one file at a time",
        ),
    ],
)
def test_what_cannot_go_together_is_refused(entity: str, flags: IngestFlags, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_ingest(entity, flags, IngestSettings())


def test_a_missing_section_the_input_as_rejects_and_no_source_at_all(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path, "customers:\n  columns: {}\n")
    with pytest.raises(ConfigError, match="has no `orders:` section"):
        resolve_ingest("orders", IngestFlags(files=[Path("v.csv")], mapping_file=mapping), IngestSettings())
    export = tmp_path / "v.csv"
    export.write_text("order_id\n1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is the input file itself"):
        resolve_ingest("orders", IngestFlags(files=[export], rejects=export), IngestSettings())
    with pytest.raises(UsageError, match="give one or more files"):
        resolve_ingest("orders", IngestFlags(), IngestSettings())
