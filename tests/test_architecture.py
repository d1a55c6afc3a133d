"""The shape of the code, checked: one way into DuckDB, and a core that never talks to the terminal."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "pleasepoint_cli"
TERMINAL_LIBRARIES = ("typer", "rich", "click")


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_store_calls_duckdb_connect() -> None:
    callers = []
    for name, tree in _modules():
        if name.startswith("store/"):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "duckdb"
            ):
                callers.append(f"{name}:{node.lineno}")
    assert callers == [], "open DuckDB through pleasepoint_cli.store (open_store, StoreOpener, memory_store)"


def test_no_core_module_imports_a_terminal_library() -> None:
    offenders = [
        name
        for name, tree in _modules()
        if not name.startswith("cli/") and _imported(tree) & set(TERMINAL_LIBRARIES)
    ]
    assert offenders == [], "the core returns data; only cli/ prints, prompts or exits"


def _connection_parameters(tree: ast.Module) -> list[tuple[str, int]]:
    """(function, line) of every parameter annotated with DuckDB's connection type."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                if arg.annotation is not None and "DuckDBPyConnection" in ast.unparse(arg.annotation):
                    found.append((getattr(node, "name", "<lambda>"), arg.lineno))
    return found


def test_the_core_takes_a_store_never_a_bare_connection() -> None:
    """Core functions take the `Store` (its rows/scalar/execute wrap DuckDB's errors); only store/ itself, which
    builds that handle (`Store`, `registered`, `connect`), handles the bare connection."""
    offenders = [
        f"{name}:{line} {function}"
        for name, tree in _modules()
        if not name.startswith("store/")
        for function, line in _connection_parameters(tree)
    ]
    assert offenders == [], (
        "take a pleasepoint_cli.store.Store (use store.con only where Arrow or relations need it)"
    )


def test_only_the_store_polls_the_query_progress() -> None:
    """Progress reaches callers as a callback (store/progress.py); nobody else polls the connection."""
    pollers = [
        f"{name}:{node.lineno}"
        for name, tree in _modules()
        if not name.startswith("store/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "query_progress"
    ]
    assert pollers == [], "take a `percent` callback and use store.progress.reporting_progress"


def test_the_checks_above_can_fail() -> None:
    """The scanner finds what it looks for (a rule that cannot fail is no rule)."""
    tree = ast.parse("import duckdb\nfrom rich.table import Table\ncon = duckdb.connect('x')\n")
    assert _imported(tree) >= {"duckdb", "rich"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert calls and isinstance(calls[0].func, ast.Attribute) and calls[0].func.attr == "connect"
    typed = ast.parse(
        "def f(con: duckdb.DuckDBPyConnection, n: int) -> None: ...\ndef g(store: Store) -> None: ...\n"
    )
    assert _connection_parameters(typed) == [("f", 1)]
