"""Writing output files whole or not at all: into a temporary file beside the target, renamed over it once
complete, so a full disk, a bad path or an interrupt never leaves a partial file where the user expects one."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pleasepoint_cli.errors import OutputError, StoreError


def _problem(what: str, path: Path, error: BaseException) -> OutputError:
    reason = getattr(error, "strerror", None) or str(error).split("\n")[0]
    return OutputError(
        f"{what} {path}: cannot write it ({reason}). Nothing was written there; free some space or pick another path."
    )


def _special(path: Path) -> bool:
    """An existing target that is not a regular file (a device such as /dev/null, a FIFO): written in place."""
    try:
        return not stat.S_ISREG(path.stat().st_mode) and not path.is_dir()
    except OSError:
        return False


@contextmanager
def output_path(path: Path, what: str = "--out") -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) to write to; renamed over `path` when the block ends
    without an error, removed otherwise. Any OSError (or an error from a writer such as DuckDB's COPY) in the
    block becomes an OutputError naming `what` and the path."""
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a folder; give a file name.")
    if _special(path):
        try:
            yield path
        except OSError as e:
            raise _problem(what, path, e) from e
        return
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=parent
        )
        os.close(handle)
    except OSError as e:
        raise _problem(what, path, e) from e
    temp = Path(temporary)
    try:
        yield temp
        os.replace(temp, path)
    except OutputError:
        temp.unlink(missing_ok=True)
        raise
    except BaseException as e:
        temp.unlink(missing_ok=True)
        # The store wraps DuckDB's errors (a COPY that hit a full disk) in StoreError: name the output, as
        # for the bare error.
        cause: BaseException = e
        if isinstance(e, StoreError) and e.__cause__ is not None and _from_duckdb(e.__cause__):
            cause = e.__cause__
        if isinstance(cause, OSError) or _from_duckdb(cause):
            raise _problem(what, path, cause) from e
        raise


def _from_duckdb(error: BaseException | None) -> bool:
    return error is not None and type(error).__module__.startswith(("duckdb", "_duckdb"))


def write_text(path: Path, text: str, what: str = "--out") -> None:
    """Write a text file (UTF-8) whole or not at all."""
    with output_path(path, what) as temp, temp.open("w", encoding="utf-8", newline="") as f:
        f.write(text)
