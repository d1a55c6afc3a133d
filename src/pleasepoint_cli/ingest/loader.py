"""Loading one export into the store: stage and check every row, then replace or upsert in one transaction.

The file is read once into a temporary staging table with every value parsed and every problem noted;
only when the whole file is good (or `on_error="skip"`) do the rows land, all in the caller's single
transaction, so a bad row, Ctrl-C or a crash leaves the database exactly as it was.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pleasepoint_cli.errors import InputDataError, StoreError
from pleasepoint_cli.ingest.entities import ENTITIES, Entity, Field
from pleasepoint_cli.ingest.filescan import MAX_LINE_BYTES, FileScan
from pleasepoint_cli.ingest.mapping import EntitySection, closest, did_you_mean, resolve_columns
from pleasepoint_cli.ingest.source import (
    ReadOptions,
    Source,
    check_file,
    cut,
    open_source,
    read_error,
    sql_source,
)
from pleasepoint_cli.ingest.sqlsource import SqlScan
from pleasepoint_cli.ingest.statuses import (
    canonical_status_sql,
    record_purchase_statuses,
    status_spellings_sql,
)
from pleasepoint_cli.store.connection import fetch_int
from pleasepoint_cli.textutil import quote_ident, slugify

if TYPE_CHECKING:
    from concurrent.futures import Future

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
_MDY_DATE_FORMATS = [
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y",
    "%Y%m%d",
]
_DAY_MONTH = r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"


def _date_formats(options: ReadOptions) -> list[str]:
    """The strptime formats tried on a text date: the given one, else day/month first (month/day first when
    the shop says so: --monthfirst or ingest.date_order: mdy)."""
    if options.date_format:
        return [options.date_format]
    return _MDY_DATE_FORMATS if options.date_order == "mdy" else _AUTO_DATE_FORMATS


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
    """One bad value (or, with no column, a row that cannot be read): where, what, and why it cannot load."""

    where: str
    column: str | None
    value: str | None
    reason: str
    line: int = 0

    def __str__(self) -> str:
        shown = "(empty)" if self.value is None else repr(cut(str(self.value)))
        if self.column is None:
            return f"{self.where}: the row {self.reason}: {shown}"
        return f"{self.where}: column {self.column!r}: value {shown}: {self.reason}"


@dataclass(frozen=True)
class _ShapeRow:
    """A line DuckDB's CSV reader skipped (wrong number of fields, bad UTF-8, too long): its line and why."""

    line: int
    reason: str
    text: str
    fields: list[str]

    @property
    def newlines(self) -> int:
        return self.text.strip("\r\n").count("\n")


def _shape_reason(kind: str, message: str) -> str:
    counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    expected, found = (counts[1], counts[2]) if counts else ("?", "?")
    if "MISSING" in kind:
        return (
            f"has {found} fields where the header has {expected}: a short row, or an export cut off "
            "mid-line (a row is never padded with empty values)"
        )
    if "TOO MANY" in kind:
        return (
            f"has more fields than the header's {expected}: a delimiter inside an unquoted value, "
            "or a stray field"
        )
    if "LINE SIZE" in kind:
        return f"is longer than {MAX_LINE_BYTES:,} bytes, the longest a line may be (a quote left open?)"
    if "UNICODE" in kind or "ENCODING" in kind:
        return "is not valid UTF-8: pass the file's encoding with --encoding (e.g. latin-1)"
    if "UNQUOTED" in kind:
        return "has a quote inside an unquoted value: quote the whole value and double the inner quote"
    return cut(message.split("\n")[0], 160)


def _read_shape_rows(store: Store) -> list[_ShapeRow]:
    """The lines the last CSV read skipped, from DuckDB's rejects table (one per line, by line)."""
    con = store.con
    errors = con.execute(
        "SELECT line, CAST(error_type AS VARCHAR), csv_line, error_message FROM _reject_errors ORDER BY line"
    ).fetchall()
    if not errors:
        return []
    dialect = con.execute("SELECT delimiter, quote FROM _reject_scans LIMIT 1").fetchall()
    delimiter, quote = (str(dialect[0][0]), str(dialect[0][1])) if dialect else (",", '"')
    rows: dict[int, _ShapeRow] = {}
    for line, kind, text, message in errors:
        if int(line) in rows:
            continue
        raw = str(text or "").lstrip("\r\n")
        try:
            fields = next(
                csv.reader(
                    [raw],
                    delimiter=delimiter if len(delimiter) == 1 else ",",
                    quotechar=quote if len(quote) == 1 else '"',
                )
            )
        except (csv.Error, StopIteration):
            fields = [raw]
        rows[int(line)] = _ShapeRow(int(line), _shape_reason(str(kind), str(message or "")), raw, fields)
    return list(rows.values())


class _LineMap:
    """File lines of rows. DuckDB numbers rows ("lines") one per record, header included, skipped rows too;
    a file line is that plus the line breaks inside quoted values of every record before it."""

    def __init__(self, first_row: int, shape: list[_ShapeRow], newline_rows: list[tuple[int, int]]) -> None:
        self.first_row = first_row
        self.skipped = [r.line for r in shape]
        breaks = sorted(
            [(self.logical(row), count) for row, count in newline_rows]
            + [(r.line, r.newlines) for r in shape if r.newlines]
        )
        self.break_lines = [line for line, _ in breaks]
        self.before: list[int] = [0]
        for _, count in breaks:
            self.before.append(self.before[-1] + count)

    def logical(self, row: int) -> int:
        """The record number (DuckDB's line) of the `row`-th row read (skipped rows are not read)."""
        line = row + self.first_row - 1
        for skipped in self.skipped:
            if skipped > line:
                break
            line += 1
        return line

    def physical(self, logical: int) -> int:
        from bisect import bisect_left

        return logical + self.before[bisect_left(self.break_lines, logical)]

    def of_row(self, row: int) -> int:
        return self.physical(self.logical(row))


def _line_map(store: Store, plan: _Plan, shape: list[_ShapeRow]) -> _LineMap:
    """The line map of a CSV read (errors only: it reads the file once more, for quoted line breaks)."""
    con = store.con
    newline_rows: list[tuple[int, int]] = []
    if plan.source.format == "csv":
        with _reading(plan.source.path):
            newline_rows = [
                (int(r[0]), int(r[1]))
                for r in con.execute(
                    f"SELECT _row, _nl FROM (SELECT {_newlines_sql(plan.source)} AS _nl, row_number() OVER () "
                    f"AS _row FROM {plan.source.from_sql}) WHERE _nl > 0",
                    plan.source.params,
                ).fetchall()
            ]
    return _LineMap(plan.source.first_row, shape, newline_rows)


def _shape_problems(plan: _Plan, shape: list[_ShapeRow], lines: _LineMap) -> list[RowProblem]:
    problems = []
    for r in shape:
        line = lines.physical(r.line)
        problems.append(RowProblem(plan.source.where(line), None, r.text, r.reason, line=line))
    return problems


def _newlines_sql(source: Source) -> str:
    """SQL counting the line breaks inside a CSV row's quoted values (0 for Parquet and JSON)."""
    if source.format != "csv":
        return "0"
    parts = [
        f"COALESCE(length({quote_ident(c)}) - length(replace({quote_ident(c)}, chr(10), '')), 0)"
        for c, kind in source.columns.items()
        if kind.upper() == "VARCHAR"  # a typed column (the one-pass reader's numbers and times) has none
    ]
    return " + ".join(parts) or "0"


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
    not_purchases: dict[str, int] = field(default_factory=dict)
    """Orders of the file whose status does not count as a purchase, per canonical status."""
    purchase_statuses: list[str] = field(default_factory=lambda: ["completed"])


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _trimmed(value: str) -> str:
    """`trim(value)`, computed only for values with a space at either end: most have none, and a full trim of
    every key of a big order file costs several percent of the load."""
    return f"CASE WHEN {value} LIKE ' %' OR {value} LIKE '% ' THEN trim({value}) ELSE {value} END"


def _text_of(ident: str, source_type: str = "VARCHAR", trim: bool = True) -> str:
    """A source column as text, NULL when empty; text files are trimmed (typed formats keep values as they are)."""
    if source_type.upper() != "VARCHAR":
        ident = f"CAST({ident} AS VARCHAR)"
    return f"NULLIF({_trimmed(ident)}, '')" if trim else f"NULLIF({ident}, '')"


def _typed(
    f: Field, ident: str, source_type: str, options: ReadOptions, trim: bool = True, trim_keys: bool = True
) -> str:
    """SQL parsing one source column into a canonical field's type (NULL where it does not parse); keys and
    text are left untrimmed with `trim_keys` False (the one-pass order load trims the few padded ones after)."""
    base_type = source_type.split("(")[0].upper()
    numeric_source = base_type in _NUMERIC_TYPES
    text = _text_of(ident, source_type, trim)
    if f.kind == "key":
        if base_type in ("FLOAT", "DOUBLE", "DECIMAL"):
            return (
                f"CASE WHEN {ident} = trunc({ident}) THEN CAST(CAST({ident} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({ident} AS VARCHAR) END"
            )
        # Keys are trimmed in every format: " C0000001 " from a JSON or Parquet export is C0000001, as in CSV.
        return _text_of(ident, source_type, trim=trim_keys)
    if f.kind == "text":
        return text if trim_keys else _text_of(ident, source_type, trim=False)
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
            formats = _date_formats(options)
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


@dataclass(frozen=True)
class Limits:
    """What a value may be beyond its type: dates within [earliest, latest] (offer dates have no upper bound),
    numbers finite and at most MAX_NUMBER in absolute value."""

    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, now: datetime, earliest: date, future_days: int) -> Limits:
        naive = now.replace(tzinfo=None)
        return cls(datetime.combine(earliest, datetime.min.time()), naive + timedelta(days=future_days))

    def window_sql(self, typed: str, f: Field) -> list[str]:
        earliest = self.earliest.strftime("%Y-%m-%d %H:%M:%S")
        latest = self.latest.strftime("%Y-%m-%d %H:%M:%S")
        checks = [
            f"WHEN {typed} < TIMESTAMP '{earliest}' THEN '{f.name}|is before {earliest[:10]}, the earliest date "
            "accepted (ingest.earliest_date in pleasepoint.yaml)'"
        ]
        if not f.future:
            checks.append(
                f"WHEN {typed} > TIMESTAMP '{latest}' THEN '{f.name}|is in the future (after {latest[:16]}; "
                "ingest.future_days in pleasepoint.yaml): a typo in the year?'"
            )
        return checks


MAX_NUMBER = 1e9
"""The largest number (in absolute value) a numeric field may hold: beyond it is a typo or an overflow."""
_DEFAULT_LIMITS = Limits(datetime(1900, 1, 1), datetime(9999, 12, 31))


def _problem_sql(
    f: Field, entity: Entity, has_column: bool, raw: str, limits: Limits, nul_check: bool
) -> str | None:
    """SQL naming this field's problem in a staged row, or NULL; `raw` is the column holding the value as
    read (for keys and text, the typed column itself)."""
    typed = quote_ident(f.name)
    checks = []
    if nul_check and f.kind in ("key", "text"):
        checks.append(
            f"WHEN contains({typed}, chr(0)) THEN '{f.name}|holds a NUL byte (a control character)'"
        )
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
    if has_column and f.kind == "number":
        checks.append(
            f"WHEN NOT isfinite({typed}) OR abs({typed}) > {MAX_NUMBER} THEN '{f.name}|is not a finite number "
            f"within ±{MAX_NUMBER:,.0f} (NaN, Infinity or an overflow)'"
        )
    if has_column and f.kind in ("timestamp", "date"):
        checks.extend(limits.window_sql(typed, f))
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
        limits: Limits = _DEFAULT_LIMITS,
        one_pass: bool = False,
    ) -> None:
        """`one_pass`: the plan of the one-pass order load, which reads keys and text as they are: trimming
        every key in the insert cost 0.13-0.15 s of a 2.6 s Parquet insert; the check of the landed lines
        finds the padded ones (0.07 s) and `_trim_padded_keys` trims them. A status is trimmed by its
        mapping. A derived order id is built from the customer id, so its keys are trimmed as they are read."""
        self.entity = entity
        self.source = source
        self.limits = limits
        self.inserted = False  # set once the file's lines are in the table (the one-pass order load)
        # The duplicate count and the order check of the landed lines, started by the one-pass load's check.
        self.counting: Future[_KeyCounts] | None = None
        self.shape: list[_ShapeRow] = []  # the rows the CSV reader skipped (their lines shift the others')
        # Date fields read day/month first without the shop saying so: field -> source column. The largest
        # day among such values is counted by the query that checks the rows; all <= 12 is ambiguous.
        self.day_month: dict[str, str] = {}
        self.largest_day: dict[str, int | None] = {}
        self.day_first_format = False  # the one-pass reader parses ordered_at with a day/month format
        self.columns, self.unresolved = resolve_columns(entity, list(source.columns), explicit, source.path)
        for name, column in self.columns.items():
            kind = source.columns[column]
            if kind.endswith("]") or kind.upper().startswith(("STRUCT", "MAP", "UNION")):
                raise InputDataError(
                    f"{source.path}: column {column!r} holds {kind} values (lists or records), not single "
                    f"values: it cannot be the {name}. Map {name} to another column, or flatten the export."
                )
        self.defaults = dict(section.defaults)
        self.derived = (
            section.order_id_from if entity.name == "orders" and "order_id" not in self.columns else None
        )
        self.one_pass = one_pass and self.derived is None
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
                typed = _typed(f, ident, source_type, options, trim, trim_keys=not self.one_pass)
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
                problem := _problem_sql(
                    f, entity, f.name in self.columns, self.raw_refs[f.name], limits, source.format != "csv"
                )
            ) is not None:
                problems.append(problem)
            outer.append(quote_ident(f.name))
        if entity.name == "orders":
            problems.append(self._money_sql())
        for f in entity.fields:
            src = self.columns.get(f.name)
            if (
                f.kind in ("timestamp", "date")
                and src is not None
                and f.name not in self.defaults
                and source.columns[src].upper() == "VARCHAR"
                and not options.date_format
                and options.date_order is None
            ):
                self.day_month[f.name] = src
                raw = self.raw_refs[f.name]
                outer.append(
                    f"CASE WHEN regexp_matches({raw}, '{_DAY_MONTH}') THEN dayofmonth({quote_ident(f.name)}) "
                    f"END AS _dm_{f.name}"
                )
        for i, column in enumerate(self.extra):
            inner.append(f"{_text_of(quote_ident(column), source.columns[column], trim)} AS _extra_{i}")
            outer.append(f"_extra_{i}")
        self.inner = ", ".join(inner)
        self.outer = outer
        self.problem = "NULLIF(concat_ws(chr(31), " + ", ".join(problems) + "), '')" if problems else "NULL"

    def _money_sql(self) -> str:
        """An order line needs its money: a unit price or an amount, not negative on a purchase line."""
        price, amount = self.raw_refs["unit_price"], self.raw_refs["amount"]
        return (
            f"CASE WHEN {price} IS NULL AND {amount} IS NULL AND unit_price IS NULL AND amount IS NULL THEN 'unit_price|is empty and so is amount: a line "
            "needs its unit price or its amount' "
            "WHEN quantity > 0 AND unit_price < 0 THEN 'unit_price|is negative on a purchase line (a return has "
            "a negative quantity)' "
            "WHEN quantity > 0 AND amount < 0 THEN 'amount|is negative on a purchase line (a return has a "
            "negative quantity)' "
            # Derived money is bounded as given money is: 5 / 1e-310 stored an infinite unit price.
            f"WHEN unit_price IS NULL AND quantity <> 0 AND NOT abs(amount / quantity) <= {MAX_NUMBER} THEN "
            f"'quantity|divides the amount into a unit price beyond ±{MAX_NUMBER:,.0f}: a quantity of almost "
            "zero?' "
            f"WHEN amount IS NULL AND NOT abs(quantity * unit_price) <= {MAX_NUMBER} THEN 'quantity|times the "
            f"unit price is an amount beyond ±{MAX_NUMBER:,.0f}: a typo in the quantity or the price?' END"
        )

    def _check_required(self) -> None:
        """Every required field has a column and every mapped column exists; all problems in one message,
        each with the closest header name, and a header read as one column named as a delimiter problem."""
        provided = set(self.columns) | set(self.defaults) | ({"order_id"} if self.derived else set())
        missing = [
            f.name
            for f in self.entity.fields
            if f.required and f.name not in provided and f.name not in dict(self.unresolved)
        ]
        money = {"unit_price", "amount"}
        if self.entity.name == "orders" and not money & provided and not money & set(dict(self.unresolved)):
            missing.append("unit_price (or amount)")
        if not missing and not self.unresolved:
            return
        found = list(self.source.columns)
        path = self.source.path
        if len(found) == 1 and self.source.format == "csv":
            header = found[0]
            counts = {d: header.count(d) for d in (";", "\t", "|", ",")}
            delimiter = max(counts, key=lambda d: counts[d])
            if counts[delimiter]:
                shown = "tab" if delimiter == "\t" else delimiter
                raise InputDataError(
                    f"{path}: the header came out as one column ({cut(header)!r}): the file's delimiter looks "
                    f"like {shown!r}, not the one used. Pass --delimiter {shown!r} (or format.delimiter in the "
                    "mapping YAML)."
                )
        lines = [
            f"column {wanted!r} (mapped to {name}) is not in the file{did_you_mean(wanted, found)}"
            for name, wanted in self.unresolved
        ]
        lines += [f"no column for {name}{did_you_mean(name.split()[0], found)}" for name in missing]
        first = (missing[0].split()[0], None) if missing else self.unresolved[0]
        near = closest(first[0] if first[1] is None else first[1], found) or "YOUR_COLUMN"
        raise InputDataError(
            f"{path}: {len(lines)} column problem{'s' if len(lines) > 1 else ''} for {self.entity.name}:\n  "
            + "\n  ".join(lines)
            + f"\nColumns found: {', '.join(found)}.\nRename the columns in the file, or map them: "
            f"--map {first[0]}={near} (or a mapping YAML with --mapping)."
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


def _duckdb_message(e: Exception) -> str:
    from pleasepoint_cli.ingest.source import duckdb_message

    return duckdb_message(e)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn DuckDB's complaints about a file it cannot read into an InputDataError naming the file."""
    import duckdb

    try:
        yield
    except duckdb.Error as e:
        raise read_error(path, e, None) from e


@contextmanager
def _unordered_writes(store: Store) -> Iterator[None]:
    """Let DuckDB write rows in any order (order lines have none of their own), which parallelises inserts;
    and keep the status join's hash table on its small side. A CSV read with its sniffed dialect pinned
    (`auto_detect = false`) has no row estimate, and DuckDB's build-side optimizer then built the table on the
    file's 5.7M lines instead of the ~200 spellings: 6.3 s for the insert instead of 3.5 s."""
    con = store.con
    import duckdb

    disabled = str(store.scalar("SELECT current_setting('disabled_optimizers')") or "")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET disabled_optimizers = ?", [",".join(filter(None, [disabled, "build_side_probe_side"]))])
    try:
        yield
    finally:
        # In an aborted transaction even RESET fails; the transaction rolls back and _stage resets it itself.
        with suppress(duckdb.Error):
            con.execute("RESET preserve_insertion_order")
        with suppress(duckdb.Error):
            con.execute("SET disabled_optimizers = ?", [disabled])


def _stage(store: Store, plan: _Plan) -> None:
    """Read the whole file into the staging table `_stage`, every value parsed and every problem noted.

    The staged rows keep the file's order (duplicates of a key are resolved last-wins)."""
    con = store.con
    con.execute("RESET preserve_insertion_order")
    with _reading(plan.source.path):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {plan.select()}", plan.source.params)


def _timestamp_format(store: Store, source: Source, column: str, options: ReadOptions) -> str | None:
    """The one strptime format every sampled value of a CSV column parses with ('' for ISO), else None.

    The first 5,000 values: a format that fails further down only sends the file through the checking path
    (the typed reader rejects the value), and every format tried on every sampled value costs time in every
    load (20,000 values took 0.09 s of a 5 s load)."""
    con = store.con
    if options.date_format:
        return options.date_format
    formats = ["", *_date_formats(options)]
    checks = ", ".join(
        "count(*) FILTER (WHERE TRY_CAST(v AS TIMESTAMP) IS NULL)"
        if not fmt
        else f"count(*) FILTER (WHERE try_strptime(v, '{fmt}') IS NULL)"
        for fmt in formats
    )
    ident = quote_ident(column)
    row = con.execute(
        f"SELECT count(*), {checks} FROM (SELECT trim({ident}) AS v FROM {source.from_sql} "
        f"WHERE NULLIF(trim({ident}), '') IS NOT NULL LIMIT 5000)",
        source.params,
    ).fetchone()
    if row is None or row[0] == 0:
        return None
    return next((fmt for fmt, failures in zip(formats, row[1:], strict=True) if failures == 0), None)


def _fast_plan(
    store: Store,
    plan: _Plan,
    section: EntitySection,
    mapping: dict[str, str],
    options: ReadOptions,
) -> _Plan | None:
    """The plan of the one-pass order load (None for other entities): keys read as they are (see `_Plan`),
    and for a CSV, DuckDB's reader parsing numbers and timestamps itself where their formats are uniform
    (much faster than parsing text in SQL)."""
    source = plan.source
    if plan.entity.name != "orders":
        return None
    if source.format != "csv":
        return _Plan(plan.entity, source, section, mapping, options, plan.limits, one_pass=True)
    types = dict.fromkeys(source.columns, "VARCHAR")
    timestamp_format: str | None = None
    for f in plan.entity.fields:
        column = plan.columns.get(f.name)
        if column is None or f.name in plan.defaults:
            continue
        if f.kind == "number" and options.decimal == ".":
            types[column] = "DOUBLE"
        elif f.kind == "timestamp":
            detected = _timestamp_format(store, source, column, options)
            if detected is None:
                continue
            types[column], timestamp_format = "TIMESTAMP", detected or None
    typed = (
        source if all(kind == "VARCHAR" for kind in types.values()) else source.typed(types, timestamp_format)
    )
    fast = _Plan(plan.entity, typed, section, mapping, options, plan.limits, one_pass=True)
    fast.day_month = {"ordered_at": plan.columns["ordered_at"]} if "ordered_at" in plan.day_month else {}
    fast.day_first_format = bool(fast.day_month) and (timestamp_format or "").startswith("%d")
    return fast


def _counts(store: Store, relation: str, params: list[object], owner: str, plan: _Plan) -> tuple[int, ...]:
    """Rows read, rows with a problem (that could be attributed), and rows that cannot be attributed; the
    largest day of each date field read day/month first goes to `plan.largest_day` (same query)."""
    con = store.con
    days = "".join(f", max(_dm_{name})" for name in plan.day_month)
    row = con.execute(
        f"SELECT count(*), count(_problem) FILTER (WHERE {owner} IS NOT NULL), "
        f"count(*) FILTER (WHERE {owner} IS NULL){days} FROM {relation}",
        params,
    ).fetchone()
    assert row is not None
    for name, day in zip(plan.day_month, row[3:], strict=True):
        plan.largest_day[name] = None if day is None else int(day)
    return tuple(int(c) for c in row[:3])


def _check_date_order(plan: _Plan) -> None:
    """Refuse a date column every value of which reads both as day/month and as month/day."""
    ambiguous = [name for name, day in plan.largest_day.items() if day is not None and day <= 12]
    if ambiguous:
        columns = ", ".join(f"{plan.day_month[n]!r} ({n})" for n in ambiguous)
        raise InputDataError(
            f"{plan.source.path}: the dates of column {columns} read both as day/month and as month/day "
            "(no day is above 12, so 3/2/2017 could be 3 February or 2 March); nothing was loaded. "
            "Say which: --dayfirst or --monthfirst (or --date-format %m/%d/%Y), or set "
            "ingest.date_order: dmy|mdy in pleasepoint.yaml."
        )


def _round4(value: str) -> str:
    """SQL for `round(value, 4)`, the same double at half the cost. DuckDB 2.0 rounds a double's exact
    decimal value, 0.15 s of CPU for the 5.7M derived amounts of the bench file; `round(value * 10000) /
    10000` gives the same result except within a hair of a tie (2.00005 is 2.0000499999... and rounds
    down) or where the scaled value is too large for its error to be that small, and those go to `round`.
    No difference on 11M values around ties and up to 1e8 (docs/performance.md)."""
    scaled = f"(({value}) * 10000)"
    return (
        f"CASE WHEN abs({scaled}) < 1e12 AND abs({scaled} - trunc({scaled})) NOT BETWEEN 0.499 AND 0.501 "
        f"THEN round({scaled}) / 10000 ELSE round({value}, 4) END"
    )


def _insert_order_lines(select: str, where: str = "") -> str:
    """INSERT of the lines a staging SELECT reads (placeholders: the ingest id, then the source's), with the
    money derived where one of price and amount is missing, and every status mapped to its canonical name (a
    value outside the vocabulary is kept lower-cased; no status: a return when the quantity is negative, else
    completed). Most exports spell their statuses as the vocabulary does, so a join on the exact spelling maps
    them at one hash probe a line, and only the rest go through the CASE that lower-cases and trims: 0.34 s
    of CPU a 5.7M-line file against 1.59 s for the CASE on every line (docs/performance.md)."""
    return f"""
    INSERT INTO order_lines
    SELECT l.order_id, l.customer_id, l.ordered_at, l.product_id, l.quantity,
           COALESCE(l.unit_price, CASE WHEN l.quantity <> 0 THEN {_round4("l.amount / l.quantity")} ELSE 0 END),
           COALESCE(l.amount, {_round4("l.quantity * l.unit_price")}),
           l.store_id,
           COALESCE(_spellings.canonical, {canonical_status_sql("l.status")},
                    CASE WHEN l.quantity < 0 THEN 'returned' ELSE 'completed' END),
           ?
    FROM ({select}) AS l LEFT JOIN {status_spellings_sql()} ON _spellings.spelling = l.status
    {where}
    """


def import_for_keys() -> None:
    """What the check of the landed lines needs, imported in a thread while DuckDB works (it releases the
    GIL): the command starts it while the store opens, `ingest_file` again in case it was not."""
    import concurrent.futures  # noqa: F401

    import numpy  # noqa: F401  (not numpy.ma: fetchnumpy imports it only for a column with NULLs, never here)


# A line's hash (its order id's hash with the rest's), and its order head: the order id's hash with its low
# 16 bits flipped by the customer's and time's. Sorted, an order's heads sit together (the same 48 high
# bits), and two that differ name two customers or two times. DuckDB computes `hash(order_id)` once for both.
_LINE_HASH = "xor(hash(order_id), hash(product_id, quantity, unit_price, ordered_at))"
_ORDER_HEAD = "xor(hash(order_id), hash(customer_id, ordered_at) & 65535)"


@dataclass
class _LineKeys:
    """Per landed line, its `_LINE_HASH` and (unless the order id is derived from customer and day) its
    `_ORDER_HEAD`, as NumPy arrays of uint64."""

    hashes: Any
    heads: Any = None


@dataclass(frozen=True)
class _KeyCounts:
    """What the sorted keys tell: lines that repeat another exactly, and the 48-bit order-id hashes whose
    lines differ in customer or time, for `_mixed_orders` to confirm by grouping those orders alone. Two
    order ids sharing 48 bits (about one file in 500 at a million orders) only cost that query, which finds
    nothing; a mixed order is missed only if all its customers and times share 16 bits of hash (1 in 65,536)."""

    duplicates: int
    mixed_heads: list[int]


def _line_keys(fetched: dict[str, Any], kept: Any = None) -> _LineKeys:
    """The keys in a `_scan_landed` result, of the lines `kept` (a boolean mask; all by default)."""
    import numpy as np

    hashes = np.asarray(fetched["h"], dtype=np.uint64)
    heads = np.asarray(fetched["m"], dtype=np.uint64) if "m" in fetched else None
    if kept is None:
        return _LineKeys(hashes, heads)
    return _LineKeys(hashes[kept], None if heads is None else heads[kept])


def _count_keys(keys: _LineKeys) -> Future[_KeyCounts]:
    """Count the duplicate lines and find the mixed orders' heads in threads (the caller's next queries run
    meanwhile). An order id names one customer, so order, product, quantity, price and time identify a line;
    two lines with the same 64-bit hash of them are counted as one (a chance collision among 10M lines is
    about 1 in 400,000). Each array is sorted by NumPy in its own thread (NumPy releases the GIL) and
    neighbours compared: 0.08 s of CPU a sort of the 5.7M-line bench file, against 1.0 s for DuckDB's
    `count(DISTINCT ...)` and 0.8-1.2 s for a grouping by order (docs/performance.md)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    # Sorted in place: nothing reads them after.
    hashes, order_heads = keys.hashes, keys.heads

    def duplicates() -> int:
        hashes.sort()
        return int(np.count_nonzero(hashes[1:] == hashes[:-1]))

    def mixed() -> list[int]:
        if order_heads is None or len(order_heads) < 2:
            return []
        order_heads.sort()
        apart = order_heads[1:] ^ order_heads[:-1]
        # Same 48 high bits (the order), different low 16 (its customer or time).
        flagged = (apart != 0) & (apart < 65536)
        if not flagged.any():
            return []
        return [int(h) for h in np.unique(order_heads[1:][flagged] >> np.uint64(16))]

    pool = ThreadPoolExecutor(2, thread_name_prefix="pleasepoint-keys")
    counted, found = pool.submit(duplicates), pool.submit(mixed)
    both = pool.submit(lambda: _KeyCounts(counted.result(), found.result()))
    pool.shutdown(wait=False)  # the sorts run on; the caller waits for them with .result()
    return both


_SHOWN_MIXED = 3


def _mixed_orders(store: Store, plan: _Plan, ingest_id: int, heads: list[int]) -> list[str]:
    """Warnings for the file's order ids whose lines name two customers or two times, with up to three
    examples each and their lines. Only the orders the sorted heads flagged are grouped (the exact check)."""
    rows = store.tuples(
        """
        SELECT order_id, count(DISTINCT customer_id) > 1, count(DISTINCT ordered_at) > 1
        FROM order_lines
        WHERE ingest_id = ? AND hash(order_id) >> 16 IN (SELECT unnest(CAST(? AS UBIGINT[])))
        GROUP BY order_id HAVING count(DISTINCT customer_id) > 1 OR count(DISTINCT ordered_at) > 1
        ORDER BY order_id
        """,
        [ingest_id, heads],
    )
    if not rows:
        return []
    two_customers = [str(r[0]) for r in rows if r[1]]
    two_times = [str(r[0]) for r in rows if not r[1] and r[2]]
    examples = {*two_customers[:_SHOWN_MIXED], *two_times[:_SHOWN_MIXED]}
    where = _lines_of_orders(store, plan, sorted(examples))
    source = plan.source.path
    warnings = []
    for ids, what, field_name in (
        (two_customers, "customers", "customer_id"),
        (two_times, "dates or times", "ordered_at"),
    ):
        if not ids:
            continue
        shown = "; ".join(
            f"order {order!r}: "
            + ", ".join(
                _value_at(value, lines, plan.source.row_word) for value, lines in where[order][field_name]
            )
            for order in ids[:_SHOWN_MIXED]
        )
        more = f" (and {len(ids) - _SHOWN_MIXED:,} more)" if len(ids) > _SHOWN_MIXED else ""
        warnings.append(
            f"{source}: {len(ids):,} order id{'s' if len(ids) != 1 else ''} with lines of two or more {what} "
            f"(column {plan.columns.get(field_name, field_name)!r}): {shown}{more}. An order id names one "
            "customer and one time: two exports merged, or order numbers reused? The lines were loaded as "
            "they are"
        )
    return warnings


def _value_at(value: str, lines: list[int], word: str) -> str:
    """`'C1' (lines 2, 5)`: a value and the first few lines (or rows) that hold it."""
    shown = ", ".join(map(str, lines[:_SHOWN_MIXED])) + (", …" if len(lines) > _SHOWN_MIXED else "")
    return f"{cut(value)!r} ({word}{'s' if len(lines) > 1 else ''} {shown})"


def _lines_of_orders(
    store: Store, plan: _Plan, orders: list[str]
) -> dict[str, dict[str, list[tuple[str, list[int]]]]]:
    """For each of a few order ids: per field (customer_id, ordered_at), each value with the file lines (or
    rows) that hold it. It reads the file once more (twice for a CSV with line breaks inside values): only
    when a mixed order was found. Keys are trimmed as they landed (the one-pass plan reads them as they are
    and trims the padded ones after the insert)."""
    lines = _line_map(store, plan, plan.shape)
    with _reading(plan.source.path):
        rows = store.tuples(
            f"""
            SELECT _row, _order, _customer, _at FROM (
                SELECT _row, NULLIF(trim(order_id), '') AS _order, NULLIF(trim(customer_id), '') AS _customer,
                       CAST(ordered_at AS VARCHAR) AS _at
                FROM (SELECT {plan.inner}, row_number() OVER () AS _row FROM {plan.source.from_sql}))
            WHERE _order IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY _row
            """,
            [*plan.source.params, orders],
        )
    found: dict[str, dict[str, dict[str, list[int]]]] = {}
    for row, order, customer, ordered_at in rows:
        line = lines.of_row(int(row))
        per_order = found.setdefault(str(order), {"customer_id": {}, "ordered_at": {}})
        per_order["customer_id"].setdefault(str(customer), []).append(line)
        per_order["ordered_at"].setdefault(str(ordered_at), []).append(line)
    return {
        order: {name: list(values.items()) for name, values in fields.items()}
        for order, fields in found.items()
    }


def _suspect_line_sql(plan: _Plan) -> tuple[str, list[object]]:
    """A condition on a landed order line that the checking path might refuse: a field missing, a number not
    finite or too large, money negative on a purchase, a date outside the window, a NUL byte in a key. It may
    flag more than the checking path refuses (a large derived amount): such a file is only read again."""
    sql = (
        "order_id IS NULL OR ordered_at IS NULL OR product_id IS NULL OR quantity IS NULL OR unit_price IS NULL "
        # NaN and Infinity are above any bound (DuckDB orders NaN above every number).
        f"OR amount IS NULL OR greatest(abs(quantity), abs(unit_price), abs(amount)) > {MAX_NUMBER} "
        "OR (quantity > 0 AND least(unit_price, amount) < 0) OR NOT ordered_at BETWEEN ? AND ?"
    )
    if plan.source.format == "json":  # in CSV a NUL byte is refused by the pass over the file's bytes
        sql += (
            " OR contains(order_id, chr(0)) OR contains(customer_id, chr(0)) OR contains(product_id, chr(0))"
            " OR contains(store_id, chr(0))"
        )
    # Parquet order files are not searched for NUL bytes on this path: it would cost ~0.1x of DuckDB's own
    # load; their keys are checked when a problem sends the file through the checking path.
    return sql, [plan.limits.earliest, plan.limits.latest]


def _insert_unchecked(store: Store, plan: _Plan, ingest_id: int) -> tuple[int, ...] | None:
    """Insert every line of an order file in one pass, then check the lines that landed: lines without a
    customer are deleted and counted; any other problem (a value that did not convert, an empty field)
    deletes them all and returns None, so the caller reads the file again through the checking path."""
    con = store.con
    csv_file = plan.source.format == "csv"
    if csv_file:
        _drop_rejects(store)  # a sampling read may have left some
    with _reading(plan.source.path), _unordered_writes(store):
        con.execute(
            _insert_order_lines(plan.select(checked=False)),
            [ingest_id, *plan.source.params],
        )
    # Lines DuckDB's reader skipped: a value it could not convert, a row of the wrong shape, bad UTF-8.
    failed = fetch_int(store, "SELECT count(*) FROM _reject_errors") if csv_file else 0
    if csv_file:
        _drop_rejects(store)
    # One scan of the landed lines gives the check and the keys the duplicate count and the order check need
    # (`_scan_landed`); padded keys are trimmed where they landed, and the lines scanned again.
    import numpy as np

    suspect, params = _suspect_line_sql(plan)
    fetched = _scan_landed(store, plan, ingest_id, suspect, params, padded=plan.one_pass)
    hashes = np.asarray(fetched["h"], dtype=np.uint64)
    if plan.one_pass and bool(np.any(hashes == 1)):
        _trim_padded_keys(store, plan, ingest_id)
        fetched = _scan_landed(store, plan, ingest_id, suspect, params, padded=False)
        hashes = np.asarray(fetched["h"], dtype=np.uint64)
    read, incomplete, unattributed = len(hashes), 0, 0
    if not np.all(hashes):  # a line without a customer, a suspect line, or (1 in 2^64) a hash of 0
        row = store.first(
            f"SELECT count(*) FILTER (WHERE customer_id IS NOT NULL AND ({suspect})), "
            "count(*) FILTER (WHERE customer_id IS NULL) FROM order_lines WHERE ingest_id = ?",
            [*params, ingest_id],
        )
        assert row is not None
        incomplete, unattributed = int(row[0] or 0), int(row[1] or 0)
    if failed or incomplete:
        con.execute("DELETE FROM order_lines WHERE ingest_id = ?", [ingest_id])
        return None
    keys = _line_keys(fetched, hashes != 0 if unattributed else None)
    plan.inserted, plan.counting = True, _count_keys(keys)
    if unattributed:
        con.execute("DELETE FROM order_lines WHERE ingest_id = ? AND customer_id IS NULL", [ingest_id])
    if plan.day_first_format:
        day = store.scalar(
            "SELECT max(dayofmonth(ordered_at)) FROM order_lines WHERE ingest_id = ?", [ingest_id]
        )
        plan.largest_day["ordered_at"] = None if day is None else int(day)
    return read, 0, unattributed


def _key_fields(plan: _Plan) -> list[str]:
    return [f.name for f in plan.entity.fields if f.kind == "key" and f.name in plan.columns]


def _padded_sql(keys: list[str]) -> str:
    """A condition: one of these keys has a space at either end."""
    return " OR ".join(f"{k} LIKE ' %' OR {k} LIKE '% '" for k in keys)


def _scan_landed(
    store: Store, plan: _Plan, ingest_id: int, suspect: str, params: list[object], padded: bool
) -> dict[str, Any]:
    """Per landed line, as NumPy arrays: `h`, its hash, or 0 for a line without a customer or a suspect one,
    or (with `padded`) 1 for a key with a space at either end (flag columns cost more to fetch than they
    say; the zeros are told apart by a count, only when there are some); and `m`, its order head."""
    keys = _key_fields(plan)
    flagged = f"WHEN {_padded_sql(keys)} THEN 1 " if padded and keys else ""
    head = f", {_ORDER_HEAD} AS m" if plan.derived is None else ""
    return dict(
        store.con.execute(
            f"SELECT CASE WHEN customer_id IS NULL OR ({suspect}) THEN 0 {flagged}ELSE {_LINE_HASH} END AS h"
            f"{head} FROM order_lines WHERE ingest_id = ?",
            [*params, ingest_id],
        ).fetchnumpy()
    )


def _trim_padded_keys(store: Store, plan: _Plan, ingest_id: int) -> None:
    """Trim the keys of the landed lines that have a space at either end (an empty one becomes NULL), as
    the checking path trims every key as it reads it."""
    keys = _key_fields(plan)
    trimmed = ", ".join(f"{k} = NULLIF(trim({k}), '')" for k in keys)
    store.con.execute(
        f"UPDATE order_lines SET {trimmed} WHERE ingest_id = ? AND ({_padded_sql(keys)})", [ingest_id]
    )


def _drop_rejects(store: Store) -> None:
    con = store.con
    con.execute("DROP TABLE IF EXISTS _reject_errors")
    con.execute("DROP TABLE IF EXISTS _reject_scans")


def _find_problems(
    store: Store, plan: _Plan, limit: int | None, shape: list[_ShapeRow], lines: _LineMap
) -> list[RowProblem]:
    """Second, slower pass (errors only): the rows with problems, with their line numbers and raw values,
    and the rows the reader skipped, in file order."""
    con = store.con
    raw_columns = ", ".join(plan.raw_refs[f.name] for f in plan.entity.fields)
    limit_sql = f"LIMIT {int(limit)}" if limit is not None else ""
    with _reading(plan.source.path):
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
    problems = _shape_problems(plan, shape, lines)
    for row in rows:
        line = lines.of_row(int(row[0]))
        for item in str(row[1]).split(_PROBLEM_SEPARATOR):
            name, _, reason = item.partition("|")
            value = row[2 + names.index(name)]
            problems.append(
                RowProblem(plan.source.where(line), plan.columns.get(name, name), value, reason, line=line)
            )
    problems.sort(key=lambda p: p.line)
    return problems if limit is None else problems[:limit]


def _write_rejects(store: Store, plan: _Plan, target: Path, shape: list[_ShapeRow], lines: _LineMap) -> None:
    """Write the rows that did not load, each with its line and reason, beside the original columns (a row
    the reader skipped, with the fields it has)."""
    con = store.con
    from pleasepoint_cli.outfiles import output_path

    originals = list(plan.source.columns)
    aliased = ", ".join(f"{quote_ident(c)} AS _orig_{i}" for i, c in enumerate(originals))
    renamed = ", ".join(f"_orig_{i}" for i in range(len(originals)))
    owner = quote_ident(plan.entity.owner)
    reason = (
        f"CASE WHEN {owner} IS NULL THEN '{plan.entity.owner}|is empty: the row cannot be attributed' "
        "ELSE _problem END"
    )
    waiting = sorted(((lines.physical(r.line), r) for r in shape), key=lambda pair: pair[0])
    with _reading(plan.source.path):
        cursor = con.execute(
            f"""
            SELECT _row, replace(replace({reason}, '|', ' '), chr(31), '; '), {renamed}
            FROM (SELECT {plan.problem} AS _problem, * FROM (
                    SELECT {plan.inner}, {aliased}, row_number() OVER () AS _row FROM {plan.source.from_sql}))
            WHERE _problem IS NOT NULL OR {owner} IS NULL ORDER BY _row
            """,
            plan.source.params,
        )
        with output_path(target, "--rejects") as temp, temp.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", *originals])
            while batch := cursor.fetchmany(10_000):
                for row in batch:
                    line = lines.of_row(int(row[0]))
                    while waiting and waiting[0][0] < line:
                        at, skipped = waiting.pop(0)
                        writer.writerow([at, f"the row {skipped.reason}", *skipped.fields])
                    writer.writerow([line, row[1], *row[2:]])
            for at, skipped in waiting:
                writer.writerow([at, f"the row {skipped.reason}", *skipped.fields])


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
    limits: Limits | None = None,
    purchase_statuses: list[str] | None = None,
    sql: str | None = None,
    sql_base: Path | None = None,
) -> IngestReport:
    """Load one file as `entity_name`, atomically; raise InputDataError (nothing written) on bad rows.

    `limits` bounds dates and numbers (default: the IngestSettings defaults around `now`);
    `purchase_statuses` (default: completed) is recorded as the statuses that count as purchases.
    With `sql`, the source is that query over files (relative paths against `sql_base`); `path` labels it."""
    import duckdb

    from pleasepoint_cli.config import IngestSettings

    entity = ENTITIES[entity_name]
    section = section or EntitySection()
    options = options or ReadOptions()
    mapping = {**section.columns, **(explicit or {})}
    started, clock = now or datetime.now(), time.monotonic()
    if limits is None:
        defaults = IngestSettings()
        limits = Limits.around(started, defaults.earliest_date, defaults.future_days)
    step = progress or (lambda _stage: None)
    con = store.con
    scan: FileScan | SqlScan
    if sql is not None:
        fmt, scan = "sql", SqlScan(sql)
        opened = sql_source(store, sql, path, sql_base)
    else:
        fmt, encoding = check_file(path, options)
        if encoding is not None:
            options = replace(options, encoding=encoding)
        # One pass over the file's bytes in a thread while DuckDB reads it (hashlib and bytes methods free the
        # GIL): its SHA-256 for the ingest log, and the byte checks (control bytes, mixed encodings, long lines).
        scan = FileScan(path, encoding)
        opened = open_source(store, path, options, scan.long_line)
    try:
        with store.transaction(), opened as source:
            report = IngestReport(entity.name, str(path), source.format, source.encoding)
            record_purchase_statuses(store, purchase_statuses or IngestSettings().purchase_statuses)
            plan = _Plan(entity, source, section, mapping, options, limits)
            step(f"reading {path.name}")
            owner = quote_ident(entity.owner)
            ingest_id = fetch_int(store, "SELECT nextval('ingest_id_seq')")
            csv_file = fmt == "csv"
            shape: list[_ShapeRow] = []
            if entity.name == "orders":
                # Order files are big: insert them in one pass and check what landed (the transaction is
                # still open); only a file with a problem is read again, through the text path that names it.
                # NumPy (for the keys of the lines) is imported meanwhile, while DuckDB has released the GIL.
                threading.Thread(target=import_for_keys, name="pleasepoint-warm-imports", daemon=True).start()
                fast = _fast_plan(store, plan, section, mapping, options) or plan
                step("writing")
                counts = _insert_unchecked(store, fast, ingest_id)
                if counts is not None:
                    plan = fast
                else:
                    step("checking rows")
                    if csv_file:
                        _drop_rejects(store)
                    with _reading(path):
                        counts = _counts(store, f"({plan.select()})", plan.source.params, owner, plan)
                    if csv_file:
                        shape = _read_shape_rows(store)
            else:
                if csv_file:
                    _drop_rejects(store)
                _stage(store, plan)
                if csv_file:
                    shape = _read_shape_rows(store)
                step("checking rows")
                counts = _counts(store, "_stage", [], owner, plan)
            _check_date_order(plan)
            scan.check()  # a control byte or mixed encodings: the whole file is refused, naming the line
            read, bad, unattributed = (int(c) for c in counts)
            report.rows_read, bad = read + len(shape), bad + len(shape)
            lines = (
                _line_map(store, plan, shape) if bad or (unattributed and rejects) else _LineMap(0, [], [])
            )
            if bad and on_error == "abort":
                problems = _find_problems(store, plan, _SHOWN_PROBLEMS, shape, lines)
                shown = "\n  ".join(str(p) for p in problems)
                raise InputDataError(
                    f"{path}: {bad:,} row{'s' if bad != 1 else ''} cannot be loaded; nothing was loaded.\n  {shown}\n"
                    "Fix the file, or load the good rows with --on-error skip --rejects rejects.csv."
                )
            if bad:
                report.problems = [str(p) for p in _find_problems(store, plan, _SHOWN_PROBLEMS, shape, lines)]
                report.rejected_reasons["bad values"] = bad
            if unattributed:
                report.rejected_reasons[f"no {entity.owner}"] = unattributed
                report.warnings.append(
                    f"{unattributed:,} rows without a {entity.owner} cannot be attributed and were not loaded"
                )
            report.rejected = bad + unattributed
            if report.rows_read == 0:
                # A header and nothing else: nothing to load and nothing to log.
                report.warnings.append("no rows: the file has a header and nothing else; nothing was loaded")
                con.execute("DROP TABLE IF EXISTS _stage")
                report.seconds = time.monotonic() - clock
                return report
            if rejects is not None and report.rejected:
                step("writing rejects")
                _write_rejects(store, plan, rejects, shape, lines)
                report.rejects_file = str(rejects)
            step("writing")
            plan.shape = shape
            writer = _WRITERS[entity.name]
            report.purchase_statuses = purchase_statuses or IngestSettings().purchase_statuses
            writer(store, plan, report, ingest_id, started)
            con.execute("DROP TABLE IF EXISTS _stage")
            if csv_file:
                _drop_rejects(store)
            report.seconds = time.monotonic() - clock
            con.execute(
                "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ingest_id,
                    entity.name,
                    f"sql: {cut(sql, 500)}" if sql is not None else str(path.resolve()),
                    scan.sha256(),
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


def _write_orders(store: Store, plan: _Plan, report: IngestReport, ingest_id: int, _now: datetime) -> None:
    """Replace every order of the file whole: insert its lines, then delete older lines of the same orders."""
    con = store.con
    had_lines = fetch_int(
        store, "SELECT count(*) FROM (SELECT 1 FROM order_lines WHERE ingest_id <> ? LIMIT 1)", [ingest_id]
    )
    if not plan.inserted:
        # The one-pass insert found a problem: insert the good lines through the checking path.
        with _reading(plan.source.path), _unordered_writes(store):
            con.execute(
                _insert_order_lines(plan.select(), "WHERE l._problem IS NULL AND l.customer_id IS NOT NULL"),
                [ingest_id, *plan.source.params],
            )
    good = report.rows_read - report.rejected
    landed = fetch_int(store, "SELECT count(*) FROM order_lines WHERE ingest_id = ?", [ingest_id])
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
            store,
            "SELECT count(*) FROM order_lines WHERE ingest_id = ? AND order_id IN (SELECT order_id FROM _replaced)",
            [ingest_id],
        )
        con.execute(
            "DELETE FROM order_lines WHERE ingest_id <> ? AND order_id IN (SELECT order_id FROM _replaced)",
            [ingest_id],
        )
        con.execute("DROP TABLE _replaced")
    report.inserted, report.updated = good - replaced, replaced
    # The checking path inserted only attributable lines that passed every check: nothing to flag.
    counting = plan.counting or _count_keys(
        _line_keys(_scan_landed(store, plan, ingest_id, "FALSE", [], padded=False))
    )
    unknown = _unknown_keys(store, ingest_id, good)
    not_purchases = _not_purchases(store, ingest_id)
    counted = counting.result()
    duplicates = counted.duplicates
    if counted.mixed_heads:
        report.warnings += _mixed_orders(store, plan, ingest_id, counted.mixed_heads)
    for count, what in zip(
        unknown[:3],
        (
            "of customers not loaded yet (ingest customers to fill in their profile)",
            "of products not loaded yet (ingest products for names and categories)",
            "of products without a category (they count in no category analysis)",
        ),
        strict=True,
    ):
        if count:
            report.warnings.append(f"{int(count):,} lines are {what}")
    if duplicates:
        report.warnings.append(
            f"{duplicates:,} duplicate lines repeat another line of the file exactly (same order, product, "
            "quantity, price and time): a doubled export? They were loaded as they are"
        )
    _report_not_purchases(report, not_purchases)
    if plan.extra:
        report.warnings.append(
            f"columns {', '.join(plan.extra)} are not order fields and were not kept; load them with "
            "`ingest customers` or `ingest products` and the same mapping"
        )


def _unknown_keys(store: Store, ingest_id: int, landed: int) -> tuple[int, int, int]:
    """The file's lines whose customer is not in `customers`, whose product is not in `products`, and whose
    product has no category. Against an empty table every line is unknown (the first load of a shop often
    brings the orders first): no scan. Customers: an anti join straight on the lines (grouping them by
    customer first costs a hash table of every buyer, ~0.1x of DuckDB's own load); products are few, so
    grouping first is cheap."""
    has_customers = store.scalar("SELECT EXISTS (SELECT 1 FROM customers)")
    has_products = store.scalar("SELECT EXISTS (SELECT 1 FROM products)")
    customers = (
        int(
            store.scalar(
                "SELECT count(*) FROM order_lines ANTI JOIN customers USING (customer_id) WHERE ingest_id = ?",
                [ingest_id],
            )
        )
        if has_customers
        else landed
    )
    if not has_products:
        return customers, landed, 0
    row = store.first(
        """
        SELECT COALESCE(sum(lines) FILTER (WHERE known IS NULL), 0),
               COALESCE(sum(lines) FILTER (WHERE known AND category IS NULL), 0)
        FROM (SELECT product_id, count(*) AS lines FROM order_lines WHERE ingest_id = ? GROUP BY product_id)
        LEFT JOIN (SELECT product_id, category, TRUE AS known FROM products) USING (product_id)
        """,
        [ingest_id],
    )
    assert row is not None
    return customers, int(row[0]), int(row[1])


def _not_purchases(store: Store, ingest_id: int) -> dict[str, int]:
    """The file's orders whose status is not a purchase (they are loaded, and left out of analyses), by
    status."""
    # The purchase statuses as literals: a NOT IN over a subquery is a join on every line of the file.
    purchases = [str(r[0]) for r in store.tuples("SELECT status FROM purchase_statuses")]
    not_a_purchase = f"status NOT IN ({', '.join('?' for _ in purchases)})" if purchases else "TRUE"
    rows = store.tuples(
        "SELECT status, count(DISTINCT order_id) FROM order_lines "
        f"WHERE ingest_id = ? AND quantity > 0 AND {not_a_purchase} GROUP BY status ORDER BY 2 DESC, 1",
        [ingest_id, *purchases],
    )
    return {str(status): int(n) for status, n in rows}


def _report_not_purchases(report: IngestReport, not_purchases: dict[str, int]) -> None:
    from pleasepoint_cli.ingest.statuses import CANONICAL

    report.not_purchases = not_purchases
    if not not_purchases:
        return
    listed = ", ".join(f"{n:,} {status}" for status, n in report.not_purchases.items())
    report.warnings.append(
        f"orders that do not count as purchases (ingest.purchase_statuses: "
        f"{', '.join(report.purchase_statuses)}): {listed}; they are loaded and left out of every analysis"
    )
    unknown = [s for s in report.not_purchases if s not in CANONICAL]
    if unknown:
        report.warnings.append(
            f"status values outside the vocabulary ({', '.join(CANONICAL)}): {', '.join(unknown)}; "
            "list them in ingest.purchase_statuses if they are purchases"
        )


def _upsert(store: Store, plan: _Plan, report: IngestReport, _ingest_id: int, now: datetime) -> None:
    """Upsert by key: new keys insert, changed rows update the columns the file has, unchanged rows stay."""
    con = store.con
    entity = plan.entity
    key = entity.key
    present = [f.name for f in entity.fields if f.name in plan.columns or f.name in plan.defaults]
    cols = ", ".join(quote_ident(c) for c in present)
    conflicting = _merge_rows(store, plan, present, most_frequent=entity.name == "products")
    duplicates = report.rows_read - report.rejected - fetch_int(store, "SELECT count(*) FROM _latest")
    if entity.name == "products":
        if conflicting:
            report.warnings.append(
                f"{conflicting:,} products have conflicting values on their rows (a name, price or category "
                "differs or is blank on some rows); the most frequent non-empty value of each field was kept (ties: the last)"
            )
    elif duplicates:
        report.warnings.append(
            f"{duplicates:,} rows repeat a {key} already in the file; the last non-empty value of each field wins"
        )
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
    _entity_warnings(store, plan, report)
    if plan.extra and entity.attribute_table:
        _write_extra_attributes(store, plan, report, now)
    elif plan.extra:
        report.warnings.append(
            f"columns {', '.join(plan.extra)} are not {entity.name} fields and were not kept"
        )
    con.execute("DROP TABLE _latest")


def _entity_warnings(store: Store, plan: _Plan, report: IngestReport) -> None:
    """Loads that succeed but deserve a word: products without a category, a shop nobody can be emailed."""
    con = store.con
    if plan.entity.name == "products":
        uncategorised = (
            fetch_int(store, "SELECT count(*) FILTER (WHERE category IS NULL) FROM _latest")
            if ("category" in plan.columns or "category" in plan.defaults)
            else fetch_int(store, "SELECT count(*) FROM _latest")
        )
        if uncategorised:
            report.warnings.append(
                f"{uncategorised:,} products have no category: they count in no category analysis "
                "(map a category column, or load one with another file)"
            )
    elif plan.entity.name == "customers":
        row = con.execute(
            "SELECT count(*), count(email), count(*) FILTER (WHERE email IS NOT NULL AND email_consent) "
            "FROM customers"
        ).fetchall()[0]
        if row[0] and not row[1]:
            report.warnings.append(
                "no customer has an email address: no campaign can reach anyone (map the email column)"
            )
        elif row[0] and not row[2]:
            report.warnings.append(
                "no customer with an email has given consent (email_consent): marketing campaigns will "
                "reach nobody (map the consent column)"
            )


def _merge_rows(store: Store, plan: _Plan, present: list[str], most_frequent: bool) -> int:
    """One row per key into `_latest`: for each field, the last non-empty value among the file's rows of that
    key, or for products the most frequent one (ties: the later), so an order export whose last line of a
    product or customer has blanks does not blank its name, price or city. Returns how many keys had
    conflicting values."""
    con = store.con
    key = plan.entity.key
    fields = [c for c in present if c != key] + [f"_extra_{i}" for i in range(len(plan.extra))]
    idents = [quote_ident(c) for c in fields]
    counts = (
        ", ".join(f"count(*) OVER (PARTITION BY {key}, {c}) AS _n{i}" for i, c in enumerate(idents))
        if most_frequent
        else ""
    )
    picks = ", ".join(
        f"arg_max({c}, (CAST(_n{i} AS HUGEINT) << 40) + _row) FILTER (WHERE {c} IS NOT NULL) AS {c}"
        if most_frequent
        else f"arg_max({c}, _row) FILTER (WHERE {c} IS NOT NULL) AS {c}"
        for i, c in enumerate(idents)
    )
    # Conflicting: two non-empty values, or a value on some rows and a blank on others.
    conflict = (
        " OR ".join(f"count(DISTINCT {c}) > 1 OR (count({c}) > 0 AND count({c}) < count(*))" for c in idents)
        or "false"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _latest AS
        SELECT {key}{", " + picks if picks else ""}, ({conflict}) AS _conflict
        FROM (SELECT *{", " + counts if counts else ""} FROM (
                SELECT *, row_number() OVER () AS _row FROM _stage WHERE _problem IS NULL AND {key} IS NOT NULL))
        GROUP BY {key}
        """
    )
    return fetch_int(store, "SELECT count(*) FILTER (WHERE _conflict) FROM _latest")


def _write_extra_attributes(store: Store, plan: _Plan, report: IngestReport, now: datetime) -> None:
    """Keep the file's extra columns as attributes (key = the column name as a slug)."""
    con = store.con
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
            store,
            pairs,
            None,
            source="ingest",
            kind="ingest",
            description=f"extra columns of {plan.source.path.name}",
            now=now,
        )


_WRITERS: dict[str, Callable[[Store, _Plan, IngestReport, int, datetime], None]] = {
    "orders": _write_orders,
    "customers": _upsert,
    "products": _upsert,
    "stores": _upsert,
}
