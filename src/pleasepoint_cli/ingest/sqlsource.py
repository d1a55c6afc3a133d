"""A DuckDB query over export files as an ingest source (`ingest orders --sql "SELECT ..."` or `sql:` in a
mapping YAML), for relational exports (orders, order items and customers in separate files).

Only one SELECT is accepted, reading files with DuckDB's reading functions: the query is parsed with
`extract_statements` and its syntax tree (`json_serialize_sql`) walked, so no write, ATTACH, COPY, PRAGMA,
SET, INSTALL/LOAD or other table function (and no function reading the environment or a sequence) runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import InputDataError

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass

READING_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "read_json",
        "read_json_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_json_objects",
        "unnest",
        "range",
        "generate_series",
    }
)
"""The table functions a source query may call."""

REFUSED_FUNCTIONS = frozenset(
    {
        "getenv",
        "nextval",
        "currval",
        "setseed",
        "current_setting",
        "read_text",
        "read_blob",
        "query",
        "query_table",
    }
)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def check_source_query(store: Store, sql: str) -> str:
    """The query, checked: one SELECT that only reads files; InputDataError otherwise."""
    con = store.con
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise InputDataError(f"--sql: the query does not parse: {str(e).splitlines()[0]}") from e
    if len(statements) != 1:
        raise InputDataError(f"--sql: give exactly one SELECT statement (found {len(statements)}).")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        raise InputDataError(
            f"--sql: only a SELECT reading files is allowed, not {statement.type.name} "
            "(no writes, ATTACH, COPY, PRAGMA, SET, INSTALL or LOAD)."
        )
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [statement.query]).fetchall()[0][0])
    if tree.get("error"):
        raise InputDataError(f"--sql: only a plain SELECT is allowed: {tree.get('error_message', '')}")
    for node in _walk(tree):
        if node.get("type") == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name not in READING_FUNCTIONS:
                raise InputDataError(
                    f"--sql: table function {name}() is not allowed; read files with "
                    f"{', '.join(sorted(f for f in READING_FUNCTIONS if f.startswith('read_')))}."
                )
        if (
            node.get("class") == "FUNCTION"
            and str(node.get("function_name", "")).lower() in REFUSED_FUNCTIONS
        ):
            raise InputDataError(
                f"--sql: function {node['function_name']}() is not allowed in a source query."
            )
    return statement.query


class SqlScan:
    """The FileScan of a query: its hash (the query text) for the ingest log, and no bytes to check."""

    def __init__(self, sql: str) -> None:
        self._digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()

    def sha256(self) -> str:
        return self._digest

    def check(self) -> None:
        return None

    def long_line(self) -> int | None:
        return None
