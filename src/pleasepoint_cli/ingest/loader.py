"""Loading one export into the store: stage and check every row, then replace or upsert in one transaction.

The file is read once into a temporary staging table with every value parsed and every problem noted;
only when the whole file is good (or `on_error="skip"`) do the rows land, all in the caller's single
transaction, so a bad row, Ctrl-C or a crash leaves the database exactly as it was.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pleasepoint_cli.errors import InputDataError, StoreError
from pleasepoint_cli.ingest.entities import ENTITIES, Entity, Field
from pleasepoint_cli.ingest.mapping import EntitySection, resolve_columns
from pleasepoint_cli.ingest.source import ReadOptions, Source, open_source
from pleasepoint_cli.store.connection import fetch_int
from pleasepoint_cli.textutil import quote_ident, slugify

if TYPE_CHECKING:
    import duckdb

    from pleasepoint_cli.store import Store

OnError = Literal["abort", "skip"]
ProgressHook = Callable[[str], None]

_SHOWN_PROBLEMS = 5
_AUTO_DATE_FORMATS = [
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
    "%Y%m%d",
]
_TRUE = ("true", "t", "1", "yes", "y", "si", "sí", "s", "x")
_FALSE = ("false", "f", "0", "no", "n")
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)
_PROBLEM_SEPARATOR = chr(31)  # between a row's problems; messages themselves may hold ';'
_RANGES = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0)}


@dataclass
class RowProblem:
    """One bad value: where it is, what it is and why it cannot load."""

    where: str
    column: str
    value: str | None
    reason: str

    def __str__(self) -> str:
        shown = "(empty)" if self.value is None else repr(self.value)
        return f"{self.where}: column {self.column!r}: value {shown}: {self.reason}"


@dataclass
class IngestReport:
    """What an ingest read and did."""

    entity: str
    file: str
    format: str
    encoding: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rejects_file: str | None = None
    attributes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _text_of(ident: str, source_type: str = "VARCHAR", trim: bool = True) -> str:
    """A source column as text, NULL when empty; text files are trimmed (typed formats keep values as they are)."""
    if source_type.upper() != "VARCHAR":
        ident = f"CAST({ident} AS VARCHAR)"
    return f"NULLIF(trim({ident}), '')" if trim else f"NULLIF({ident}, '')"


def _typed(f: Field, ident: str, source_type: str, options: ReadOptions, trim: bool = True) -> str:
    """SQL parsing one source column into a canonical field's type (NULL where it does not parse)."""
    base_type = source_type.split("(")[0].upper()
    numeric_source = base_type in _NUMERIC_TYPES
    text = _text_of(ident, source_type, trim)
    if f.kind == "key":
        if base_type in ("FLOAT", "DOUBLE", "DECIMAL"):
            return (
                f"CASE WHEN {ident} = trunc({ident}) THEN CAST(CAST({ident} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({ident} AS VARCHAR) END"
            )
        return text
    if f.kind == "text":
        return text
    if f.kind == "number":
        if numeric_source:
            return f"CAST({ident} AS DOUBLE)"
        if options.decimal == ",":
            return f"TRY_CAST(replace(replace({text}, '.', ''), ',', '.') AS DOUBLE)"
        return f"TRY_CAST({text} AS DOUBLE)"
    if f.kind in ("timestamp", "date"):
        if base_type.startswith(("TIMESTAMP", "DATE")):
            parsed = f"CAST({ident} AS TIMESTAMP)"
        else:
            formats = [options.date_format] if options.date_format else _AUTO_DATE_FORMATS
            parsed = f"COALESCE(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, {_sql_list(formats)}))"
        return f"CAST({parsed} AS DATE)" if f.kind == "date" else parsed
    if f.kind == "bool":
        if base_type == "BOOLEAN":
            return ident
        lowered = f"lower({text})"
        return (
            f"CASE WHEN {lowered} IN {tuple(_TRUE)} THEN true "
            f"WHEN {lowered} IN {tuple(_FALSE)} THEN false END"
        )
    raise AssertionError(f"unknown kind {f.kind}")


def _problem_sql(f: Field, entity: Entity, has_column: bool, raw: str) -> str | None:
    """SQL naming this field's problem in a staged row, or NULL; `raw` is the column holding the value as
    read (for keys and text, the typed column itself)."""
    typed = quote_ident(f.name)
    checks = []
    if f.required and f.name != entity.owner:
        checks.append(f"WHEN {raw} IS NULL THEN '{f.name}|is empty (every row needs it)'")
    if has_column and f.kind not in ("key", "text"):
        expected = {
            "number": "a number",
            "timestamp": "a date/time",
            "date": "a date",
            "bool": "true/false (or sí/no, 1/0)",
        }[f.kind]
        hint = {
            "number": " (for a decimal comma use --decimal ,)",
            "timestamp": " (ISO or dd/mm/yyyy; else pass --date-format)",
            "date": " (ISO or dd/mm/yyyy; else pass --date-format)",
            "bool": "",
        }[f.kind]
        checks.append(f"WHEN {raw} IS NOT NULL AND {typed} IS NULL THEN '{f.name}|is not {expected}{hint}'")
    if f.name in _RANGES:
        low, high = _RANGES[f.name]
        checks.append(
            f"WHEN {typed} NOT BETWEEN {low} AND {high} THEN '{f.name}|is out of range {low}..{high}'"
        )
    if not checks:
        return None
    return "CASE " + " ".join(checks) + " END"


class _Plan:
    """The staging query for one file: typed canonical columns, extra columns, and a problem column."""

    def __init__(
        self,
        entity: Entity,
        source: Source,
        section: EntitySection,
        explicit: dict[str, str],
        options: ReadOptions,
    ) -> None:
        self.entity = entity
        self.source = source
        self.inserted = False  # set once the file's lines are in the table (the one-pass order load)
        self.columns = resolve_columns(entity, list(source.columns), explicit, source.path)
        self.defaults = dict(section.defaults)
        self.derived = (
            section.order_id_from if entity.name == "orders" and "order_id" not in self.columns else None
        )
        self._check_required()
        used = set(self.columns.values())
        canonical = {f.name for f in entity.fields}
        self.extra = [c for c in source.columns if c not in used and c.lower() not in canonical]
        if not section.keep_extra_columns:
            self.extra = []
        trim = source.format == "csv"  # text files are trimmed of stray spaces; typed formats are kept as is
        expressions: dict[str, tuple[str, str]] = {}
        for f in entity.fields:
            src = self.columns.get(f.name)
            if src is not None:
                ident, source_type = quote_ident(src), source.columns[src]
                typed = _typed(f, ident, source_type, options, trim)
                if f.name in self.defaults:
                    typed = f"COALESCE({typed}, {self._default_literal(f, options)})"
                raw = _text_of(ident, source_type, trim) if source_type.upper() == "VARCHAR" else ident
                expressions[f.name] = (raw, typed)
            elif f.name in self.defaults:
                expressions[f.name] = (self._default_literal(f, options),) * 2
            else:
                expressions[f.name] = ("NULL", f"CAST(NULL AS {self._sql_type(f)})")
        if self.derived == "customer_day":
            # One order per customer and calendar day, as the CLV literature counts purchases.
            customer, ordered_at = expressions["customer_id"][1], expressions["ordered_at"][1]
            order_id = f"({customer}) || '@' || strftime({ordered_at}, '%Y-%m-%d')"
            expressions["order_id"] = (order_id, order_id)
        inner, outer, problems = [], [], []
        self.raw_refs: dict[str, str] = {}
        for f in entity.fields:
            raw, typed = expressions[f.name]
            # Where the value as read is the typed value (keys, text), one column serves both.
            self.raw_refs[f.name] = quote_ident(f.name) if raw == typed else f"raw_{f.name}"
            if raw != typed:
                inner.append(f"{raw} AS raw_{f.name}")
            inner.append(f"{typed} AS {quote_ident(f.name)}")
            if (
                problem := _problem_sql(f, entity, f.name in self.columns, self.raw_refs[f.name])
            ) is not None:
                problems.append(problem)
            outer.append(quote_ident(f.name))
        for i, column in enumerate(self.extra):
            inner.append(f"{_text_of(quote_ident(column), source.columns[column], trim)} AS _extra_{i}")
            outer.append(f"_extra_{i}")
        self.inner = ", ".join(inner)
        self.outer = outer
        self.problem = "NULLIF(concat_ws(chr(31), " + ", ".join(problems) + "), '')" if problems else "NULL"

    def _check_required(self) -> None:
        provided = set(self.columns) | set(self.defaults) | ({"order_id"} if self.derived else set())
        missing = [f.name for f in self.entity.fields if f.required and f.name not in provided]
        if self.entity.name == "orders" and not ({"unit_price", "amount"} & provided):
            missing.append("unit_price (or amount)")
        if missing:
            raise InputDataError(
                f"{self.source.path}: missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} for {self.entity.name}. Columns found: {', '.join(self.source.columns)}. "
                f"Rename the column in the file, or map it: --map {missing[0].split()[0]}=YOUR_COLUMN "
                "(or a mapping YAML with --mapping)."
            )

    @staticmethod
    def _sql_type(f: Field) -> str:
        return {
            "key": "VARCHAR",
            "text": "VARCHAR",
            "number": "DOUBLE",
            "timestamp": "TIMESTAMP",
            "date": "DATE",
            "bool": "BOOLEAN",
        }[f.kind]

    def _default_literal(self, f: Field, options: ReadOptions) -> str:
        value = "'" + self.defaults[f.name].replace("'", "''") + "'"
        return _typed(f, value, "VARCHAR", options) if f.kind not in ("key", "text") else value

    def select(self, checked: bool = True) -> str:
        """The staging SELECT: typed columns, extras and `_problem` (left NULL when `checked` is False, for a
        file a first pass found clean)."""
        problem = self.problem if checked else "NULL"
        return f"SELECT {', '.join(self.outer)}, {problem} AS _problem FROM (SELECT {self.inner} FROM {self.source.from_sql})"


class _Sha256InBackground:
    """The SHA-256 of a file, computed in a daemon thread; `result()` waits for it."""

    def __init__(self, path: Path) -> None:
        import threading

        self._digest = hashlib.sha256()
        self._path = path
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    self._digest.update(chunk)
        except OSError:
            pass  # a missing or unreadable file is reported by the reader itself

    def result(self) -> str:
        self._thread.join()
        return self._digest.hexdigest()


def _duckdb_message(e: Exception) -> str:
    return str(e).split("\n\n")[0].replace("\n", " ")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn DuckDB's complaints about a file it cannot read into an InputDataError naming the file."""
    import duckdb

    try:
        yield
    except duckdb.Error as e:
        hint = ""
        if "unicode" in str(e).lower() or "utf" in str(e).lower():
            hint = " The file is not UTF-8 throughout: pass its encoding, e.g. --encoding latin-1."
        raise InputDataError(f"{path}: cannot read the file: {_duckdb_message(e)}.{hint}") from e


@contextmanager
def _unordered_writes(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB write rows in any order (order lines have none of their own), which parallelises inserts."""
    import duckdb

    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        # In an aborted transaction even RESET fails; the transaction rolls back and _stage resets it itself.
        with suppress(duckdb.Error):
            con.execute("RESET preserve_insertion_order")


def _stage(con: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """Read the whole file into the staging table `_stage`, every value parsed and every problem noted.

    The staged rows keep the file's order (duplicates of a key are resolved last-wins)."""
    con.execute("RESET preserve_insertion_order")
    with _reading(plan.source.path):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {plan.select()}", plan.source.params)


def _timestamp_format(
    con: duckdb.DuckDBPyConnection, source: Source, column: str, options: ReadOptions
) -> str | None:
    """The one strptime format every sampled value of a CSV column parses with ('' for ISO), else None."""
    if options.date_format:
        return options.date_format
    formats = ["", *_AUTO_DATE_FORMATS]
    checks = ", ".join(
        "count(*) FILTER (WHERE TRY_CAST(v AS TIMESTAMP) IS NULL)"
        if not fmt
        else f"count(*) FILTER (WHERE try_strptime(v, '{fmt}') IS NULL)"
        for fmt in formats
    )
    ident = quote_ident(column)
    row = con.execute(
        f"SELECT count(*), {checks} FROM (SELECT trim({ident}) AS v FROM {source.from_sql} "
        f"WHERE NULLIF(trim({ident}), '') IS NOT NULL LIMIT 20000)",
        source.params,
    ).fetchone()
    if row is None or row[0] == 0:
        return None
    return next((fmt for fmt, failures in zip(formats, row[1:], strict=True) if failures == 0), None)


def _fast_plan(
    con: duckdb.DuckDBPyConnection,
    plan: _Plan,
    section: EntitySection,
    mapping: dict[str, str],
    options: ReadOptions,
) -> _Plan | None:
    """For a big CSV, a plan where DuckDB's reader parses numbers and timestamps itself (much faster than
    parsing text in SQL); None when nothing would gain or the columns' formats are not uniform."""
    source = plan.source
    if source.format != "csv" or plan.entity.name != "orders":
        return None
    types = dict.fromkeys(source.columns, "VARCHAR")
    timestamp_format: str | None = None
    for f in plan.entity.fields:
        column = plan.columns.get(f.name)
        if column is None or f.name in plan.defaults:
            continue
        if f.kind == "number" and options.decimal == ".":
            types[column] = "DOUBLE"
        elif f.kind == "timestamp":
            detected = _timestamp_format(con, source, column, options)
            if detected is None:
                continue
            types[column], timestamp_format = "TIMESTAMP", detected or None
    if all(kind == "VARCHAR" for kind in types.values()):
        return None
    return _Plan(plan.entity, source.typed(types, timestamp_format), section, mapping, options)


def _counts(
    con: duckdb.DuckDBPyConnection, relation: str, params: list[object], owner: str
) -> tuple[int, ...]:
    """Rows read, rows with a problem (that could be attributed), and rows that cannot be attributed."""
    row = con.execute(
        f"SELECT count(*), count(_problem) FILTER (WHERE {owner} IS NOT NULL), "
        f"count(*) FILTER (WHERE {owner} IS NULL) FROM {relation}",
        params,
    ).fetchone()
    assert row is not None
    return tuple(int(c) for c in row)


_ORDER_LINE_SQL = """
    SELECT order_id, customer_id, ordered_at, product_id, quantity,
           COALESCE(unit_price, CASE WHEN quantity <> 0 THEN round(amount / quantity, 4) ELSE 0 END),
           COALESCE(amount, round(quantity * unit_price, 4)),
           store_id,
           COALESCE(status, CASE WHEN quantity < 0 THEN 'returned' ELSE 'completed' END),
           ?
"""
_INCOMPLETE_LINE = (
    "order_id IS NULL OR ordered_at IS NULL OR product_id IS NULL OR quantity IS NULL OR unit_price IS NULL "
    "OR amount IS NULL"
)


def _insert_unchecked(con: duckdb.DuckDBPyConnection, plan: _Plan, ingest_id: int) -> tuple[int, ...] | None:
    """Insert every line of an order file in one pass, then check the lines that landed: lines without a
    customer are deleted and counted; any other problem (a value that did not convert, an empty field)
    deletes them all and returns None, so the caller reads the file again through the checking path."""
    with _reading(plan.source.path), _unordered_writes(con):
        con.execute(
            f"INSERT INTO order_lines {_ORDER_LINE_SQL} FROM ({plan.select(checked=False)})",
            [ingest_id, *plan.source.params],
        )
    failed = fetch_int(con, "SELECT count(*) FROM _reject_errors") if plan.source.typed_reader else 0
    _drop_rejects(con)
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE customer_id IS NOT NULL AND ({_INCOMPLETE_LINE})), "
        "count(*) FILTER (WHERE customer_id IS NULL) FROM order_lines WHERE ingest_id = ?",
        [ingest_id],
    ).fetchone()
    assert row is not None
    read, incomplete, unattributed = (int(c) for c in row)
    if failed or incomplete:
        con.execute("DELETE FROM order_lines WHERE ingest_id = ?", [ingest_id])
        return None
    if unattributed:
        con.execute("DELETE FROM order_lines WHERE ingest_id = ? AND customer_id IS NULL", [ingest_id])
    plan.inserted = True
    return read, 0, unattributed


def _drop_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS _reject_errors")
    con.execute("DROP TABLE IF EXISTS _reject_scans")


def _find_problems(con: duckdb.DuckDBPyConnection, plan: _Plan, limit: int | None) -> list[RowProblem]:
    """Second, slower pass (errors only): the rows with problems, with their line numbers and raw values."""
    raw_columns = ", ".join(plan.raw_refs[f.name] for f in plan.entity.fields)
    limit_sql = f"LIMIT {int(limit)}" if limit is not None else ""
    rows = con.execute(
        f"""
        SELECT _row, _problem, {raw_columns} FROM (
            SELECT {plan.problem} AS _problem, * FROM (
                SELECT {plan.inner}, row_number() OVER () AS _row FROM {plan.source.from_sql}))
        WHERE _problem IS NOT NULL AND {quote_ident(plan.entity.owner)} IS NOT NULL ORDER BY _row {limit_sql}
        """,
        plan.source.params,
    ).fetchall()
    names = [f.name for f in plan.entity.fields]
    problems = []
    for row in rows:
        line = int(row[0]) + plan.source.first_row - 1
        for item in str(row[1]).split(_PROBLEM_SEPARATOR):
            name, _, reason = item.partition("|")
            value = row[2 + names.index(name)]
            problems.append(RowProblem(plan.source.where(line), plan.columns.get(name, name), value, reason))
    return problems


def _write_rejects(con: duckdb.DuckDBPyConnection, plan: _Plan, target: Path) -> None:
    """Write the rows that did not load, each with its line and reason, beside the original columns."""
    originals = list(plan.source.columns)
    aliased = ", ".join(f"{quote_ident(c)} AS _orig_{i}" for i, c in enumerate(originals))
    renamed = ", ".join(f"_orig_{i} AS {quote_ident(c)}" for i, c in enumerate(originals))
    owner = quote_ident(plan.entity.owner)
    reason = (
        f"CASE WHEN {owner} IS NULL THEN '{plan.entity.owner}|is empty: the row cannot be attributed' "
        "ELSE _problem END"
    )
    cursor = con.execute(
        f"""
        SELECT _row + {plan.source.first_row - 1} AS line, replace(replace({reason}, '|', ' '), chr(31), '; ') AS reason,
               {renamed}
        FROM (SELECT {plan.problem} AS _problem, * FROM (
                SELECT {plan.inner}, {aliased}, row_number() OVER () AS _row FROM {plan.source.from_sql}))
        WHERE _problem IS NOT NULL OR {owner} IS NULL ORDER BY _row
        """,
        plan.source.params,
    )
    from pleasepoint_cli.outfiles import output_path

    header = [d[0] for d in cursor.description or []]
    with output_path(target, "--rejects") as temp, temp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        while batch := cursor.fetchmany(10_000):
            writer.writerows(batch)


def ingest_file(
    store: Store,
    entity_name: str,
    path: Path,
    *,
    section: EntitySection | None = None,
    explicit: dict[str, str] | None = None,
    options: ReadOptions | None = None,
    on_error: OnError = "abort",
    rejects: Path | None = None,
    progress: ProgressHook | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Load one file as `entity_name`, atomically; raise InputDataError (nothing written) on bad rows."""
    import duckdb

    entity = ENTITIES[entity_name]
    section = section or EntitySection()
    options = options or ReadOptions()
    mapping = {**section.columns, **(explicit or {})}
    started, clock = now or datetime.now(), time.monotonic()
    step = progress or (lambda _stage: None)
    con = store.con
    # The file's fingerprint for the ingest log, hashed in a thread while DuckDB reads (hashlib frees the GIL).
    digest = _Sha256InBackground(path)
    try:
        with store.transaction(), open_source(con, path, options) as source:
            report = IngestReport(entity.name, str(path), source.format, source.encoding)
            plan = _Plan(entity, source, section, mapping, options)
            step(f"reading {path.name}")
            owner = quote_ident(entity.owner)
            ingest_id = fetch_int(con, "SELECT nextval('ingest_id_seq')")
            if entity.name == "orders":
                # Order files are big: insert them in one pass and check what landed (the transaction is
                # still open); only a file with a problem is read again, through the text path that names it.
                fast = _fast_plan(con, plan, section, mapping, options) or plan
                step("writing")
                counts = _insert_unchecked(con, fast, ingest_id)
                if counts is not None:
                    plan = fast
                else:
                    step("checking rows")
                    with _reading(path):
                        counts = _counts(con, f"({plan.select()})", plan.source.params, owner)
            else:
                _stage(con, plan)
                step("checking rows")
                counts = _counts(con, "_stage", [], owner)
            report.rows_read, bad, unattributed = (int(c) for c in counts)
            if bad and on_error == "abort":
                problems = _find_problems(con, plan, _SHOWN_PROBLEMS)
                shown = "\n  ".join(str(p) for p in problems)
                raise InputDataError(
                    f"{path}: {bad:,} row{'s' if bad != 1 else ''} cannot be loaded; nothing was loaded.\n  {shown}\n"
                    "Fix the file, or load the good rows with --on-error skip --rejects rejects.csv."
                )
            if bad:
                report.problems = [str(p) for p in _find_problems(con, plan, _SHOWN_PROBLEMS)]
                report.rejected_reasons["bad values"] = bad
            if unattributed:
                report.rejected_reasons[f"no {entity.owner}"] = unattributed
                report.warnings.append(
                    f"{unattributed:,} rows without a {entity.owner} cannot be attributed and were not loaded"
                )
            report.rejected = bad + unattributed
            if rejects is not None and report.rejected:
                step("writing rejects")
                _write_rejects(con, plan, rejects)
                report.rejects_file = str(rejects)
            step("writing")
            writer = _WRITERS[entity.name]
            writer(con, plan, report, ingest_id, started)
            con.execute("DROP TABLE IF EXISTS _stage")
            report.seconds = time.monotonic() - clock
            con.execute(
                "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ingest_id,
                    entity.name,
                    str(path.resolve()),
                    digest.result(),
                    started,
                    # Not DuckDB's now(): that is the start of the transaction, before this file began.
                    started + timedelta(seconds=report.seconds),
                    report.rows_read,
                    report.inserted,
                    report.updated,
                    report.rejected,
                    json.dumps(report.warnings, ensure_ascii=False),
                ],
            )
    except duckdb.Error as e:
        raise StoreError(f"{path}: the load failed and was rolled back: {_duckdb_message(e)}") from e
    return report


def _write_orders(
    con: duckdb.DuckDBPyConnection, plan: _Plan, report: IngestReport, ingest_id: int, _now: datetime
) -> None:
    """Replace every order of the file whole: insert its lines, then delete older lines of the same orders."""
    had_lines = fetch_int(
        con, "SELECT count(*) FROM (SELECT 1 FROM order_lines WHERE ingest_id <> ? LIMIT 1)", [ingest_id]
    )
    if not plan.inserted:
        # The one-pass insert found a problem: insert the good lines through the checking path.
        with _reading(plan.source.path), _unordered_writes(con):
            con.execute(
                f"INSERT INTO order_lines {_ORDER_LINE_SQL} FROM ({plan.select()}) "
                "WHERE _problem IS NULL AND customer_id IS NOT NULL",
                [ingest_id, *plan.source.params],
            )
    good = report.rows_read - report.rejected
    landed = fetch_int(con, "SELECT count(*) FROM order_lines WHERE ingest_id = ?", [ingest_id])
    if landed != good:
        raise StoreError(
            f"{report.file}: {good:,} lines were read but {landed:,} landed; the load was rolled back."
        )
    replaced = 0
    if had_lines:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _replaced AS
            SELECT DISTINCT order_id FROM order_lines
            WHERE ingest_id <> ? AND order_id IN (SELECT order_id FROM order_lines WHERE ingest_id = ?)
            """,
            [ingest_id, ingest_id],
        )
        replaced = fetch_int(
            con,
            "SELECT count(*) FROM order_lines WHERE ingest_id = ? AND order_id IN (SELECT order_id FROM _replaced)",
            [ingest_id],
        )
        con.execute(
            "DELETE FROM order_lines WHERE ingest_id <> ? AND order_id IN (SELECT order_id FROM _replaced)",
            [ingest_id],
        )
        con.execute("DROP TABLE _replaced")
    report.inserted, report.updated = good - replaced, replaced
    unknown = con.execute(
        """
        WITH c AS (SELECT customer_id, count(*) AS lines FROM order_lines WHERE ingest_id = ? GROUP BY customer_id),
             p AS (SELECT product_id, count(*) AS lines FROM order_lines WHERE ingest_id = ? GROUP BY product_id)
        SELECT (SELECT COALESCE(sum(lines), 0) FROM c ANTI JOIN customers USING (customer_id)),
               (SELECT COALESCE(sum(lines), 0) FROM p ANTI JOIN products USING (product_id)),
               (SELECT COALESCE(sum(lines), 0) FROM p JOIN products USING (product_id) WHERE category IS NULL)
        """,
        [ingest_id, ingest_id],
    ).fetchone()
    assert unknown is not None
    for count, what in zip(
        unknown,
        (
            "of customers not loaded yet (ingest customers to fill in their profile)",
            "of products not loaded yet (ingest products for names and categories)",
            "of products without a category (they count in no category analysis)",
        ),
        strict=True,
    ):
        if count:
            report.warnings.append(f"{int(count):,} lines are {what}")
    if plan.extra:
        report.warnings.append(
            f"columns {', '.join(plan.extra)} are not order fields and were not kept; load them with "
            "`ingest customers` or `ingest products` and the same mapping"
        )


def _upsert(
    con: duckdb.DuckDBPyConnection, plan: _Plan, report: IngestReport, _ingest_id: int, now: datetime
) -> None:
    """Upsert by key: new keys insert, changed rows update the columns the file has, unchanged rows stay."""
    entity = plan.entity
    key = entity.key
    present = [f.name for f in entity.fields if f.name in plan.columns or f.name in plan.defaults]
    cols = ", ".join(quote_ident(c) for c in present)
    extras = ", ".join(f"_extra_{i}" for i in range(len(plan.extra)))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _latest AS
        SELECT {cols}{", " + extras if extras else ""} FROM (
            SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY _row DESC) AS _rank
            FROM (SELECT *, row_number() OVER () AS _row FROM _stage
                  WHERE _problem IS NULL AND {key} IS NOT NULL))
        WHERE _rank = 1
        """
    )
    duplicates = report.rows_read - report.rejected - fetch_int(con, "SELECT count(*) FROM _latest")
    if duplicates:
        report.warnings.append(f"{duplicates:,} rows repeat a {key} already in the file; the last one wins")
    non_key = [c for c in present if c != key]
    differs = (
        " OR ".join(f"n.{quote_ident(c)} IS DISTINCT FROM t.{quote_ident(c)}" for c in non_key) or "false"
    )
    counts = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE t.{key} IS NULL), count(*) FILTER (WHERE t.{key} IS NOT NULL AND ({differs}))
        FROM _latest n LEFT JOIN {entity.table} t USING ({key})
        """
    ).fetchone()
    assert counts is not None
    report.inserted, report.updated = int(counts[0]), int(counts[1])
    touch = ", updated_at = excluded.updated_at" if entity.table in ("customers", "products") else ""
    updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in non_key)
    conflict = f"DO UPDATE SET {updates}{touch}" if updates else "DO NOTHING"
    stamp_col, stamp_val = (", updated_at", ", ?") if touch else ("", "")
    con.execute(
        f"""
        INSERT INTO {entity.table} ({cols}{stamp_col})
        SELECT n.*{stamp_val} FROM (SELECT {cols} FROM _latest) n LEFT JOIN {entity.table} t USING ({key})
        WHERE t.{key} IS NULL OR ({differs})
        ON CONFLICT ({key}) {conflict}
        """,
        [now] if touch else [],
    )
    if plan.extra and entity.attribute_table:
        _write_extra_attributes(con, plan, report, now)
    elif plan.extra:
        report.warnings.append(
            f"columns {', '.join(plan.extra)} are not {entity.name} fields and were not kept"
        )
    con.execute("DROP TABLE _latest")


def _write_extra_attributes(
    con: duckdb.DuckDBPyConnection, plan: _Plan, report: IngestReport, now: datetime
) -> None:
    """Keep the file's extra columns as attributes (key = the column name as a slug)."""
    from pleasepoint_cli.attributes import write_attributes

    key = plan.entity.key
    keys = [slugify(c) for c in plan.extra]
    report.attributes = keys
    pairs = " UNION ALL ".join(
        f"SELECT {key}, '{k}' AS key, _extra_{i} AS value FROM _latest WHERE _extra_{i} IS NOT NULL"
        for i, k in enumerate(keys)
    )
    if plan.entity.attribute_table == "product_attributes":
        con.execute(
            f"INSERT INTO product_attributes {pairs} ON CONFLICT (product_id, key) DO UPDATE SET value = excluded.value"
        )
    else:
        write_attributes(
            con,
            pairs,
            None,
            source="ingest",
            kind="ingest",
            description=f"extra columns of {plan.source.path.name}",
            now=now,
        )


_WRITERS: dict[str, Callable[[duckdb.DuckDBPyConnection, _Plan, IngestReport, int, datetime], None]] = {
    "orders": _write_orders,
    "customers": _upsert,
    "products": _upsert,
    "stores": _upsert,
}
