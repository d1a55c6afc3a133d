"""Reading an export file as a DuckDB relation: format and encoding detection, CSV dialects, transcoding."""

from __future__ import annotations

import codecs
import csv
import gzip
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from pleasepoint_cli.errors import InputDataError
from pleasepoint_cli.ingest.filescan import MAX_LINE_BYTES

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass

FileFormat = Literal["csv", "parquet", "json", "sql"]

_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".tab": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_SNIFF_BYTES = 1 << 20


@dataclass(frozen=True)
class ReadOptions:
    """How to read a text export; None means detect it."""

    delimiter: str | None = None
    encoding: str | None = None
    decimal: str = "."
    date_format: str | None = None
    date_order: Literal["dmy", "mdy"] | None = None  # how to read 3/2/2017 (None: refuse when ambiguous)
    header: bool = True
    names: tuple[str, ...] = ()

    @property
    def whitespace(self) -> bool:
        """Columns separated by runs of spaces or tabs (fixed-width-looking exports such as CDNOW's)."""
        return self.delimiter in ("whitespace", "space", " ")


@dataclass
class Source:
    """An export opened for reading: the FROM clause that reads it and its columns with their types."""

    path: Path
    format: FileFormat
    from_sql: str
    params: list[object]
    columns: dict[str, str]
    encoding: str = "utf-8"
    row_word: str = "line"
    first_row: int = 2
    dialect: CsvDialect | None = None  # a CSV's, as sniffed once

    def typed(self, types: dict[str, str], timestamp_format: str | None) -> Source:
        """The same CSV read by DuckDB with these column types; rows that do not convert are skipped and
        recorded in the temporary table `_reject_errors` (the fast path: no parsing in SQL)."""
        assert self.format == "csv" and self.dialect is not None
        columns = {name: types.get(name, kind) for name, kind in self.columns.items()}
        tail, params = _csv_from(self.dialect, columns, timestamp_format)
        return Source(
            self.path,
            self.format,
            tail,
            [self.params[0], *params],
            columns,
            self.encoding,
            self.row_word,
            self.first_row,
            dialect=self.dialect,
        )

    def where(self, row_number: int) -> str:
        """`file:N` for a text file's line N (the header is line 1), `file, row N` for Parquet and JSON."""
        return (
            f"{self.path}:{row_number}"
            if self.row_word == "line"
            else f"{self.path}, {self.row_word} {row_number}"
        )


def detect_format(path: Path) -> FileFormat:
    """The format of a file from its name (`.csv.gz` counts as CSV)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and (fmt := _SUFFIXES.get(suffixes[-1])):
        return fmt
    raise InputDataError(
        f"{path}: cannot tell the format from the name. Use .csv, .tsv, .parquet, .json or .jsonl "
        "(optionally .gz for CSV)."
    )


def _open_bytes(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO
    return path.open("rb")


def detect_encoding(path: Path) -> str:
    """utf-8 when the file's start decodes as UTF-8, else cp1252 (or latin-1 where cp1252 has holes)."""
    with _open_bytes(path) as f:
        head = f.read(_SNIFF_BYTES)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _normalise_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as e:
        raise InputDataError(
            f"unknown encoding {name!r}. Use utf-8, latin-1 or cp1252 (or another Python codec name)."
        ) from e


def _transcode(path: Path, encoding: str, into: Path) -> Path:
    """Copy a text file to UTF-8 in the temporary folder, streaming, so DuckDB can read it."""
    target = into / (path.name.removesuffix(".gz") + ".utf8.csv")
    with _open_bytes(path) as raw, target.open("w", encoding="utf-8", newline="") as out:
        text = codecs.getreader(encoding)(raw)
        try:
            shutil.copyfileobj(text, out, 1 << 20)
        except UnicodeDecodeError as e:
            raise InputDataError(
                f"{path}: not valid {encoding} text ({e.reason} at byte {e.start}). "
                "Pass the file's real encoding with --encoding."
            ) from e
    return target


def cut(text: str, limit: int = 80) -> str:
    """A value or line as echoed in a message: at most `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duckdb_message(error: BaseException) -> str:
    """DuckDB's explanation without its settings dump, on one line, each part cut (it echoes whole lines)."""
    head = str(error).split("\n\n")[0]
    return " ".join(cut(part.strip(), 160) for part in head.splitlines() if part.strip())


def read_error(
    path: Path, error: BaseException, long_line: Callable[[], int | None] | None
) -> InputDataError:
    """A DuckDB read error as an InputDataError naming the file (and the real line of an over-long line:
    DuckDB's sniffer reports such a line as line 1)."""
    text = str(error)
    if "Maximum line size" in text and long_line is not None and (line := long_line()) is not None:
        return InputDataError(
            f"{path}:{line}: the line is longer than {MAX_LINE_BYTES:,} bytes, the longest a CSV line may be "
            "(a quote left open makes the rest of the file one value). Fix or remove that line."
        )
    hint = ""
    if "unicode" in text.lower() or "utf" in text.lower():
        hint = " The file is not UTF-8 throughout: pass its encoding, e.g. --encoding latin-1."
    return InputDataError(f"{path}: cannot read the file: {duckdb_message(error)}.{hint}")


def _describe(
    store: Store,
    from_sql: str,
    params: list[object],
    path: Path,
    long_line: Callable[[], int | None] | None = None,
) -> dict[str, str]:
    con = store.con
    import duckdb

    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {from_sql}", params).fetchall()
    except duckdb.Error as e:
        raise read_error(path, e, long_line) from e
    return {str(row[0]): str(row[1]) for row in rows}


@contextmanager
def sql_source(store: Store, sql: str, label: Path, search_path: Path | None) -> Iterator[Source]:
    """A checked source query as a Source; relative file paths in it resolve against `search_path` (the
    mapping file's folder) while it is open."""
    con = store.con
    import duckdb

    from pleasepoint_cli.ingest.sqlsource import check_source_query

    query = check_source_query(store, sql)
    if search_path is not None:
        con.execute("SET file_search_path = ?", [str(search_path)])
    try:
        from_sql = f"({query})"
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM {from_sql}").fetchall()
        except duckdb.Error as e:
            raise InputDataError(f"{label}: the query cannot run: {duckdb_message(e)}") from e
        yield Source(label, "sql", from_sql, [], {str(r[0]): str(r[1]) for r in rows}, "utf-8", "row", 1)
    finally:
        if search_path is not None:
            with suppress(duckdb.Error):
                con.execute("RESET file_search_path")


def _split_whitespace(path: Path, encoding: str, into: Path) -> Path:
    """Rewrite a whitespace-separated text file as CSV, so DuckDB can read it."""
    target = into / (path.name.removesuffix(".gz") + ".csv")
    with _open_bytes(path) as raw, target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for line in codecs.getreader(encoding)(raw):
            if line.strip():
                writer.writerow(line.split())
    return target


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV is written, as DuckDB's sniffer found it once (`sniff_csv`)."""

    delimiter: str
    quote: str
    escape: str
    new_line: str
    comment: str
    skip: int
    header: bool
    columns: tuple[str, ...]


_REJECTS_ARGS = (
    "store_rejects = true",
    "rejects_table = '_reject_errors'",
    "rejects_scan = '_reject_scans'",
)
"""Rows of the wrong shape, invalid UTF-8 and over-long lines are skipped into `_reject_errors` with their
line, and reported from there. The sniffer gets them too: with rejects stored it tolerates a short row."""


def _sniff_args(options: ReadOptions) -> tuple[str, list[object]]:
    args = [
        f"header = {'true' if options.header else 'false'}",
        "all_varchar = true",
        "sample_size = 20480",
        *_REJECTS_ARGS,
    ]
    params: list[object] = []
    if options.whitespace:
        args.append("delim = ','")
    elif options.delimiter is not None:
        args.append("delim = ?")
        params.append("\t" if options.delimiter in ("\\t", "tab") else options.delimiter)
    if options.names:
        args.append("names = ?")
        params.append(list(options.names))
    return ", ".join(args), params


def _sniff(
    store: Store, readable: Path, options: ReadOptions, path: Path, long_line: Callable[[], int | None] | None
) -> CsvDialect:
    """The file's dialect and columns, sniffed once. Every `read_csv` that detects them sniffs the file's
    start again (0.04-0.06 s on a 381 MB export), and an order load reads the file three or four times."""
    import duckdb

    args, params = _sniff_args(options)
    try:
        row = store.con.execute(
            "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns "
            f"FROM sniff_csv(?, {args})",
            [str(readable), *params],
        ).fetchone()
    except duckdb.Error as e:
        raise read_error(path, e, long_line) from e
    assert row is not None

    def given(value: object) -> str:
        return "" if value is None or value == "(empty)" else str(value)

    quote = given(row[1]) or '"'  # none in the sample: RFC 4180's, so a quoted value further down still reads
    return CsvDialect(
        delimiter=given(row[0]),
        quote=quote,
        escape=given(row[2]) or quote,
        new_line=given(row[3]),
        comment=given(row[4]),
        skip=int(row[5] or 0),
        header=bool(row[6]),
        columns=tuple(str(c["name"]) for c in row[7]),
    )


def _csv_from(
    dialect: CsvDialect, columns: dict[str, str], timestamp_format: str | None = None
) -> tuple[str, list[object]]:
    """`read_csv` with the sniffed dialect and these column types (no detection), and its parameters after
    the path."""
    literal = ", ".join(f"'{name.replace(chr(39), chr(39) * 2)}': '{kind}'" for name, kind in columns.items())
    args = [
        "auto_detect = false",
        "delim = ?",
        "quote = ?",
        "escape = ?",
        "new_line = ?",
        "comment = ?",
        f"skip = {int(dialect.skip)}",
        f"header = {'true' if dialect.header else 'false'}",
        f"columns = {{{literal}}}",
        # No null_padding: a short row is an error to report, not a row to pad with NULLs (and padding
        # stops the parallel reader on quoted line breaks).
        *_REJECTS_ARGS,
    ]
    params: list[object] = [
        dialect.delimiter,
        dialect.quote,
        dialect.escape,
        dialect.new_line,
        dialect.comment,
    ]
    if timestamp_format:
        args.append("timestampformat = ?")
        params.append(timestamp_format)
    return "read_csv(?, " + ", ".join(args) + ")", params


def check_file(path: Path, options: ReadOptions) -> tuple[FileFormat, str | None]:
    """Before reading: the file exists, is a non-empty file, and has a known format; its text encoding (None
    for Parquet and JSON)."""
    if not path.exists():
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError as e:  # a symlink loop
                raise InputDataError(f"{path}: is a loop of symbolic links; point it at a real file.") from e
            except OSError as e:
                raise InputDataError(
                    f"{path}: is a symbolic link to a missing file ({path.readlink()}); point it at a real file."
                ) from e
        raise InputDataError(f"{path}: no such file.")
    if path.is_dir():
        raise InputDataError(f"{path}: is a folder; give a file.")
    fmt = detect_format(path)
    try:
        empty = path.stat().st_size == 0
    except OSError as e:
        raise InputDataError(f"{path}: cannot read the file: {e.strerror}.") from e
    if empty:
        raise InputDataError(f"{path}: is empty (0 bytes): not even a header row. Is the export complete?")
    if fmt != "csv":
        return fmt, None
    encoding = _normalise_encoding(options.encoding) if options.encoding else detect_encoding(path)
    return fmt, encoding


def _json_shape(path: Path, columns: dict[str, str]) -> None:
    """A JSON file must hold objects: DuckDB reads a scalar or a list of scalars as one column `json`."""
    if list(columns) == ["json"]:
        raise InputDataError(
            f"{path}: holds {columns['json'].lower()} values, not records: give an array of objects "
            '([{"order_id": ...}, ...]) or JSON Lines (one object per line).'
        )


@contextmanager
def open_source(
    store: Store,
    path: Path,
    options: ReadOptions,
    long_line: Callable[[], int | None] | None = None,
) -> Iterator[Source]:
    """Open an export for reading; a temporary UTF-8 copy of a non-UTF-8 CSV is removed on exit.

    `long_line`, when given, names the first over-long line (from the pass hashing the file)."""
    fmt, encoding = check_file(path, options)
    if fmt == "parquet":
        from_sql = "read_parquet(?)"
        yield Source(
            path,
            fmt,
            from_sql,
            [str(path)],
            _describe(store, from_sql, [str(path)], path),
            "binary",
            "row",
            1,
        )
        return
    if fmt == "json":
        from_sql = "read_json(?, format = 'auto')"
        columns = _describe(store, from_sql, [str(path)], path)
        _json_shape(path, columns)
        yield Source(path, fmt, from_sql, [str(path)], columns, "utf-8", "record", 1)
        return
    assert encoding is not None
    with tempfile.TemporaryDirectory(prefix="pleasepoint-") as tmp:
        if options.whitespace:
            readable = _split_whitespace(path, encoding, Path(tmp))
        else:
            readable = path if encoding == "utf-8" else _transcode(path, encoding, Path(tmp))
        dialect = _sniff(store, readable, options, path, long_line)
        columns = dict.fromkeys(dialect.columns, "VARCHAR")
        tail, extra = _csv_from(dialect, columns)
        yield Source(
            path,
            fmt,
            tail,
            [str(readable), *extra],
            columns,
            encoding,
            first_row=2 if options.header else 1,
            dialect=dialect,
        )
